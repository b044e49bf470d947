"""Live config reload under a running app with a connected WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp.test_utils import TestServer, unused_port
from structlog.testing import capture_logs

from healthmon import reload
from healthmon.alerts.settings import AlertSettings, ChannelSettings, MaintenanceWindow
from healthmon.api import services_document
from healthmon.app import create_app
from healthmon.config import (
    BrokerSettings,
    HistorySettings,
    MonitorSettings,
    ServiceSettings,
    Settings,
    StatusPageSettings,
    WebSettings,
    load_settings,
)
from healthmon.keys import BOARD, CONFIG, HUB, MOCKS, MONITOR
from healthmon.mocks import MockService
from healthmon.reload import RELOADER
from tests.support import Messages, System


def render(
    web_port: int,
    services: dict[str, int],
    *,
    heartbeat_ms: int = 200,
    web: str = "",
    monitor: str = "",
    broker: str = "",
    **extra: str,
) -> str:
    lines = [
        f"[web]\nport = {web_port}\n{web}\n",
        f"[monitor]\ninterval_ms = 100\nheartbeat_ms = {heartbeat_ms}\n{monitor}\n",
        f"[broker]\n{broker}\n",
    ]
    for name, port in services.items():
        lines.append(
            f'[[services]]\nname = "{name}"\nurl = "http://127.0.0.1:{port}"\n'
            f'data_endpoint = "/data"\nmock = true\n{extra.get(name, "")}\n'
        )
    return "\n".join(lines)


class Reloadable(System):
    path: Path
    ports: dict[str, int]

    def write(self, services: dict[str, int], **extra: Any) -> None:
        self.path.write_text(render(self.settings.web.port, services, **extra))

    async def reload(self, services: dict[str, int], **extra: Any) -> None:
        """Write the file and reload it at once (the watcher's own reload then finds no change)."""
        self.write(services, **extra)
        await self.app[RELOADER].reload()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Reloadable]:
    async with reloadable(tmp_path / "config.toml") as system:
        yield system


@contextlib.asynccontextmanager
async def reloadable(path: Path, *, demo: bool = False) -> AsyncIterator[Reloadable]:
    """The real app watching ``path`` (two mocks); ``demo``: started without reading it."""
    ports = {"auth": unused_port(), "billing": unused_port()}
    web_port = unused_port()
    if demo:
        settings = Settings.model_validate(
            {
                "web": {"port": web_port},
                "monitor": {"interval_ms": 100, "heartbeat_ms": 200},
                "services": [
                    {
                        "name": n,
                        "url": f"http://127.0.0.1:{p}",
                        "data_endpoint": "/data",
                        "mock": True,
                    }
                    for n, p in ports.items()
                ],
            }
        )
    else:
        await asyncio.to_thread(path.write_text, render(web_port, ports))
        settings = load_settings(path)
    app = create_app(settings, config_path=path, demo=demo)
    server = TestServer(app, port=settings.web.port)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        system = Reloadable(settings, server, session)
        system.path, system.ports = path, ports
        try:
            yield system
        finally:
            for ws in system.sockets:
                await ws.close()
            await server.close()


async def snapshot(messages: Messages) -> dict[str, object]:
    return await messages.until(lambda m: m["type"] == "initialSnapshot")


async def test_added_service_appears_without_reload(live: Reloadable) -> None:
    """A [[services]] table saved into the file reaches open pages, checked and mocked."""
    messages = await live.connected()
    port = unused_port()
    live.write({**live.ports, "search": port})
    fresh = await snapshot(messages)
    assert list(fresh["services"]) == ["auth", "billing", "search"]  # type: ignore[call-overload]
    update = await messages.update_for("search")
    assert update["status"] == "up"
    async with live.session.get(f"http://127.0.0.1:{port}/data") as response:
        assert response.status == 200
    names = [s["name"] for s in (await live.get("/api/services"))["services"]]
    assert names == ["auth", "billing", "search"]


async def test_removed_service_disappears_and_its_mock_stops(live: Reloadable) -> None:
    """A table removed from the file leaves every page, and its mock stops listening."""
    messages = await live.connected()
    live.write({"auth": live.ports["auth"]})
    fresh = await snapshot(messages)
    assert list(fresh["services"]) == ["auth"]  # type: ignore[call-overload]
    # Its mock stops once nothing checks it, after the snapshot: reloads run one at a
    # time, so another returns only after this one has finished.
    await live.app[RELOADER].reload()
    with pytest.raises(aiohttp.ClientConnectorError):
        async with live.session.get(f"http://127.0.0.1:{live.ports['billing']}/health"):
            pass
    assert list(await live.get("/statuses")) == ["auth"]


async def test_changed_service_is_checked_anew_and_others_untouched(live: Reloadable) -> None:
    """A changed service is checked with its new settings; the others keep their state."""
    messages = await live.connected()
    before = await live.get("/api/services")
    auth_since = before["services"][0]["since"]
    # billing now expects a 404 from its health URL: its mock answers 200, so it is down.
    live.write(live.ports, billing="expected_status = 404")
    update = await messages.update_for("billing")
    assert update["status"] == "down"
    assert update["reason"] == "HTTP 200"
    after = await live.get("/api/services")
    assert after["services"][0]["since"] == auth_since
    assert not messages.ws.closed


async def test_invalid_edit_keeps_running_and_is_shown_until_fixed(live: Reloadable) -> None:
    """A broken edit keeps the running config and shows its error; fixing it clears it."""
    messages = await live.connected()
    live.path.write_text(render(live.settings.web.port, live.ports) + "\n[monitor]\nbogus = 1\n")
    error = await messages.until(lambda m: m["type"] == "configError")
    assert error["error"].startswith(f"{live.path}:")
    assert "invalid TOML" in error["error"] or "bogus" in error["error"]
    assert (await live.get("/api/services"))["config_error"] == error["error"]
    late = await live.connected()
    assert late.seen[-1]["config_error"] == error["error"]
    live.path.write_text(render(live.settings.web.port, live.ports, auth="interval_ms = 0"))
    named = await messages.until(lambda m: m["type"] == "configError")
    assert 'services[0] "auth".interval_ms: Input should be greater than 0' in named["error"]
    await live.set_mode("billing", "down")
    assert (await messages.update_for("billing"))["up"] is False
    with structlog.testing.capture_logs() as logs:
        live.write(live.ports)
        cleared = await messages.until(lambda m: m["type"] == "configError")
    assert cleared["error"] is None
    assert (await live.get("/api/services"))["config_error"] is None
    # The fixed file is the running config again: one line says it is in force.
    assert [e["event"] for e in logs if e["event"].startswith("config.")] == ["config.applied"]


def consistent(live: Reloadable) -> list[str]:
    """What disagrees among the parts a reload switches (nothing, when it is atomic)."""
    app = live.app
    settings = app[CONFIG].settings
    names = [s.name for s in settings.services]
    mocks: dict[str, MockService] = app[MOCKS]
    views: dict[str, list[str]] = {
        "board": list(app[BOARD].names),
        "hub": list(app[HUB].service_info),
        "monitor": list(app[MONITOR].specs),
        "mocks": sorted(mocks),
        "document": [s["name"] for s in services_document(app)["services"]],
    }
    wanted = {
        **{k: names for k in views},
        "mocks": sorted(s.name for s in settings.services if s.mock),
    }
    return [f"{k}={v} settings={wanted[k]}" for k, v in views.items() if v != wanted[k]]


async def test_reload_switches_every_part_in_one_step(live: Reloadable) -> None:
    """No loop step mid-reload sees its parts disagree, and no request fails meanwhile."""
    await live.connected()
    seen: list[str] = []
    failures: list[int] = []
    done = asyncio.Event()

    async def observe() -> None:
        while not done.is_set():
            seen.extend(consistent(live))
            await asyncio.sleep(0)  # look again at the next step of the loop

    async def request() -> None:
        while not done.is_set():
            for path in ("/api/services", "/"):
                async with live.session.get(f"{live.base}{path}") as response:
                    if response.status != 200:
                        failures.append(response.status)

    tasks = [asyncio.create_task(observe()), asyncio.create_task(request())]
    await live.reload({**live.ports, "search": unused_port(), "zeta": unused_port()})
    await live.reload({"auth": live.ports["auth"]})
    done.set()
    await asyncio.gather(*tasks)
    assert seen == []
    assert failures == []
    assert [s["name"] for s in (await live.get("/api/services"))["services"]] == ["auth"]


async def test_a_mock_that_cannot_start_undoes_the_whole_reload(live: Reloadable) -> None:
    """A mock whose port is taken undoes the reload: all mocks as before, the error shown."""
    messages = await live.connected()
    before = live.app[CONFIG].settings
    moved = unused_port()
    with socket.socket() as taken, capture_logs() as logs:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # search takes billing's port (so billing stops first) and zeta cannot start.
        await live.reload(
            {
                "auth": live.ports["auth"],
                "billing": moved,
                "search": live.ports["billing"],
                "zeta": taken.getsockname()[1],
            }
        )
        error = await messages.until(lambda m: m["type"] == "configError")
    assert "zeta" in error["error"]
    assert "cannot listen" in error["error"]
    assert next(e for e in logs if e["event"] == "config.invalid")["service"] == "zeta"
    assert live.app[CONFIG].settings is before
    assert live.app[CONFIG].error == error["error"]
    assert consistent(live) == []
    assert [s["name"] for s in (await live.get("/api/services"))["services"]] == [
        "auth",
        "billing",
    ]
    # billing answers on its old port again; nothing is left on the ports tried.
    async with live.session.get(f"http://127.0.0.1:{live.ports['billing']}/health") as response:
        assert (await response.json(content_type=None))["serviceId"] == "billing"
    with pytest.raises(aiohttp.ClientConnectorError):
        async with live.session.get(f"http://127.0.0.1:{moved}/health"):
            pass
    assert not any(e["event"] in ("config.applied", "config.reloaded") for e in logs)


async def test_heartbeat_ms_applies_live(live: Reloadable) -> None:
    """A changed heartbeat_ms sets the pace of the page's heartbeats at once, logged as applied."""
    messages = await live.connected()
    with capture_logs() as logs:
        await live.reload(live.ports, heartbeat_ms=40)

    def beat(message: dict[str, Any]) -> bool:
        return bool(message["type"] == "heartbeat")

    await messages.until(beat, within=1.0)
    # Ten beats: 0.4 s at the new pace, 2 s at the old one.
    async with asyncio.timeout(1.2):
        for _ in range(10):
            await messages.until(beat)
    applied = [e for e in logs if e["event"] == "config.applied"]
    assert applied[0]["keys"] == ["monitor.heartbeat_ms"]
    assert not [e for e in logs if e["event"] == "config.restart_needed"]
    assert live.app[MONITOR].settings.heartbeat_ms == 40


async def test_keys_needing_a_restart_are_logged_by_name_and_kept(live: Reloadable) -> None:
    """Keys read only at start are logged by exact name as needing a restart, and kept."""
    running = live.app[CONFIG].settings
    with capture_logs() as logs:
        await live.reload(
            live.ports,
            web='cors_origins = ["http://example.test"]',
            monitor="port = 3999",
            broker='url = "amqp://guest:guest@127.0.0.1:5999/"',
        )
    restart = [e for e in logs if e["event"] == "config.restart_needed"]
    assert restart[0]["keys"] == ["broker.url", "monitor.port", "web.cors_origins"]
    assert restart[0]["file"] == str(live.path)
    assert live.app[CONFIG].settings == running
    assert not [e for e in logs if e["event"] in ("config.applied", "config.invalid")]


async def test_waiting_keys_reach_pages_and_reverting_one_logs_it_applied(
    live: Reloadable,
) -> None:
    """Pages and the API list the saved keys that wait for a restart; putting one back says so."""
    messages = await live.connected()
    first = await live.get("/api/services")
    assert (first["config_file"], first["restart_needed"]) == (str(live.path), [])
    await live.reload(live.ports, web='cors_origins = ["http://a.test"]', monitor="port = 3999")
    told = await messages.until(lambda m: m["type"] == "restartNeeded")
    assert (told["keys"], told["file"]) == (["monitor.port", "web.cors_origins"], str(live.path))
    assert told["stream"] == live.app[HUB].stream
    assert (await live.get("/api/services"))["restart_needed"] == told["keys"]
    late = await live.connected()
    snapshot = late.seen[-1]
    assert (snapshot["config_file"], snapshot["restart_needed"]) == (str(live.path), told["keys"])
    # One of the two back at its running value: logged as applied, gone from the list.
    with capture_logs() as logs:
        await live.reload(live.ports, web='cors_origins = ["http://a.test"]')
    assert (await messages.until(lambda m: m["type"] == "restartNeeded"))["keys"] == [
        "web.cors_origins"
    ]
    applied = [e for e in logs if e["event"] == "config.applied"]
    assert [(e["reverted"], e["file"]) for e in applied] == [(["monitor.port"], str(live.path))]
    assert [e["keys"] for e in logs if e["event"] == "config.restart_needed"] == [
        ["web.cors_origins"]
    ]
    # All back: applied again, nothing waits, and no page is told twice.
    with capture_logs() as logs:
        await live.reload(live.ports)
        await live.reload(live.ports)
    assert (await messages.until(lambda m: m["type"] == "restartNeeded"))["keys"] == []
    assert [e["reverted"] for e in logs if e["event"] == "config.applied"] == [["web.cors_origins"]]
    assert not [e for e in logs if e["event"] == "config.restart_needed"]
    assert (await live.get("/api/services"))["restart_needed"] == []
    assert live.app[CONFIG].restart_needed == ()
    assert [m["keys"] for m in messages.seen if m["type"] == "restartNeeded"] == [
        ["monitor.port", "web.cors_origins"],
        ["web.cors_origins"],
        [],
    ]


async def test_a_page_that_comes_back_gets_the_waiting_keys_it_missed(live: Reloadable) -> None:
    """restartNeeded is numbered: a page resuming after it gets it replayed, not lost."""
    hub = live.app[HUB]
    since = f"{hub.stream}:{hub.seq}"
    await live.reload(live.ports, monitor="port = 3999")
    ws = await live.session.ws_connect(f"{live.base}/ws", params={"since": since})
    live.sockets.append(ws)
    resumed = Messages(ws)
    assert (await resumed.next())["type"] == "welcome"
    replayed = await resumed.until(lambda m: m["type"] == "restartNeeded")
    assert replayed["keys"] == ["monitor.port"]
    assert not [m for m in resumed.seen if m["type"] == "initialSnapshot"]


async def test_every_config_message_names_the_file_in_use(tmp_path: Path) -> None:
    """With --config class-b.toml, the error, the logs and the page all name class-b.toml."""
    async with reloadable(tmp_path / "class-b.toml") as live:
        messages = await live.connected()
        with capture_logs() as logs:
            live.path.write_text(
                render(live.settings.web.port, live.ports, monitor="intervall_ms = 1")
            )
            error = await messages.until(lambda m: m["type"] == "configError")
            live.write(live.ports)
            await messages.until(lambda m: m["type"] == "configError" and m["error"] is None)
        assert error["error"] == (
            f"{live.path}:8: monitor.intervall_ms: unknown key (did you mean interval_ms?)"
        )
        invalid = next(e for e in logs if e["event"] == "config.invalid")
        assert invalid["file"] == str(live.path)
        assert next(e for e in logs if e["event"] == "config.applied")["file"] == str(live.path)
        assert (await live.get("/api/services"))["config_file"] == str(live.path)


async def test_the_demo_names_no_file_until_one_is_saved(tmp_path: Path) -> None:
    """Running the built-in demo, pages see no config file; a saved config.toml is named then."""
    async with reloadable(tmp_path / "config.toml", demo=True) as live:
        messages = await live.connected()
        assert (messages.seen[-1]["config_file"], messages.seen[-1]["restart_needed"]) == (None, [])
        assert (await live.get("/api/services"))["config_file"] is None
        with capture_logs() as logs:
            await live.reload(live.ports)
        told = await messages.until(lambda m: m["type"] == "restartNeeded")
        assert (told["keys"], told["file"]) == ([], str(live.path))
        assert (await live.get("/api/services"))["config_file"] == str(live.path)
        # The same services as the demo: still one line says the file is in force.
        assert [e["file"] for e in logs if e["event"] == "config.applied"] == [str(live.path)]


def test_every_key_is_live_or_needs_a_restart() -> None:
    """Every key of every settings section is either applied live or needs a restart."""
    sections: dict[str, type[Any]] = {
        "web": WebSettings,
        "monitor": MonitorSettings,
        "broker": BrokerSettings,
        "history": HistorySettings,
        "status_page": StatusPageSettings,
        "services": ServiceSettings,
        "channels": ChannelSettings,
        "alerts": AlertSettings,
        "maintenance": MaintenanceWindow,
    }
    assert set(sections) == set(Settings.model_fields)
    for section, model in sections.items():
        live_keys = reload.LIVE_KEYS[section]
        restart = reload.RESTART_KEYS.get(section, frozenset())
        assert live_keys | restart == set(model.model_fields), section
        assert not live_keys & restart, section


async def test_watching_the_file_runs_in_a_thread(
    live: Reloadable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's stat and read and its parsing never run on the event loop's thread."""
    loop_thread = threading.get_ident()
    threads: list[tuple[str, int]] = []
    path_type = type(live.path)

    class Watched(path_type):  # type: ignore[valid-type,misc]
        def stat(self, **kwargs: Any) -> Any:
            threads.append(("stat", threading.get_ident()))
            return super().stat(**kwargs)

        def read_bytes(self) -> bytes:
            threads.append(("read", threading.get_ident()))
            return bytes(super().read_bytes())

    def parse(path: Path | None = None) -> Settings:
        threads.append(("parse", threading.get_ident()))
        return load_settings(path)

    monkeypatch.setattr(reload, "load_settings", parse)
    live.app[RELOADER].path = Watched(live.path)
    messages = await live.connected()
    live.write({**live.ports, "search": unused_port()})
    await messages.until(lambda m: m["type"] == "initialSnapshot" and "search" in m["services"])
    assert {kind for kind, _ in threads} == {"stat", "read", "parse"}
    assert all(ident != loop_thread for _, ident in threads)


async def test_a_crashed_load_is_shown_and_the_next_save_applies(
    live: Reloadable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load that crashes keeps the running config, shows the error, and the next save applies."""
    crashes = [RuntimeError("disk on fire")]

    def parse(path: Path | None = None) -> Settings:
        if crashes:
            raise crashes.pop()
        return load_settings(path)

    monkeypatch.setattr(reload, "load_settings", parse)
    messages = await live.connected()
    with capture_logs() as logs:
        await live.reload({**live.ports, "search": unused_port()})
        error = await messages.until(lambda m: m["type"] == "configError")
        assert error["error"].endswith("cannot load: RuntimeError: disk on fire")
        invalid = next(e for e in logs if e["event"] == "config.invalid")
        assert invalid["exc_info"] is True
        assert [s.name for s in live.app[CONFIG].settings.services] == ["auth", "billing"]
        live.write({**live.ports, "search": unused_port()})
        await messages.until(lambda m: m["type"] == "initialSnapshot" and "search" in m["services"])
    assert not [e for e in logs if e["event"] == "task.crashed"]
    assert live.app[CONFIG].error is None


async def answers(live: Reloadable, name: str, path: str = "/health") -> bool:
    """Whether the mock ``name`` answers its health on ``path`` (False: refused)."""
    try:
        async with live.session.get(f"http://127.0.0.1:{live.ports[name]}{path}") as response:
            return bool((await response.json(content_type=None))["serviceId"] == name)
    except aiohttp.ClientConnectorError:
        return False


async def test_a_mock_moved_to_an_odd_path_is_served_there(live: Reloadable) -> None:
    """A reload that moves a mock's health_path to '/{' serves it there and keeps it up."""
    messages = await live.connected()
    await live.reload(live.ports, billing='health_path = "/he{alth?verbose"')
    reloaded = time.monotonic()
    assert live.app[CONFIG].error is None
    assert await answers(live, "billing", "/he%7Balth")

    def checked_since_reload(message: dict[str, Any]) -> bool:
        age = message.get("ages", {}).get("billing") if message["type"] == "heartbeat" else None
        return age is not None and age / 1000 < time.monotonic() - reloaded

    await messages.until(checked_since_reload)
    billing = (await live.get("/api/services"))["services"][1]
    assert (billing["status"], billing["reason"]) == ("up", None)
    assert live.app[MOCKS]["billing"].mode.value == "up"


@pytest.mark.parametrize("step", ["mock", "switch"])
async def test_a_reload_that_fails_at_any_step_leaves_everything_as_it_was(
    live: Reloadable, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Any failure mid-reload keeps every part and mock as it was, shows it, and a fix recovers."""
    messages = await live.connected()
    before = live.app[CONFIG].settings
    billing = live.app[MOCKS]["billing"]
    if step == "mock":
        real_start = MockService.start

        async def start(mock: MockService) -> None:
            if mock.service.health_path == "/moved":
                raise ValueError("the router refused it")
            await real_start(mock)

        monkeypatch.setattr(MockService, "start", start)
    else:
        real_set_services = live.app[MONITOR].set_services

        async def set_services(
            services: tuple[ServiceSettings, ...], settings: MonitorSettings
        ) -> None:
            if any(service.name == "search" for service in services):
                raise ValueError("the monitor refused it")
            await real_set_services(services, settings)

        monkeypatch.setattr(live.app[MONITOR], "set_services", set_services)
    with capture_logs() as logs:
        # billing is served anew (so its old mock stops first), and a service is added.
        await live.reload({**live.ports, "search": unused_port()}, billing='health_path = "/moved"')
    error = await messages.until(lambda m: m["type"] == "configError")
    assert "refused it" in error["error"]
    assert next(e for e in logs if e["event"] == "config.invalid")["exc_info"] is True
    assert live.app[CONFIG].settings is before
    assert consistent(live) == []
    assert live.app[MOCKS]["billing"] is billing
    assert (billing.mode.value, billing.listening) == ("up", True)
    assert await answers(live, "billing")
    monkeypatch.undo()
    # Fixed: the file as it was clears the error; the mock never stopped answering.
    await live.reload(live.ports)
    assert live.app[CONFIG].error is None
    assert (await messages.until(lambda m: m["type"] == "configError"))["error"] is None
    assert await answers(live, "billing")
