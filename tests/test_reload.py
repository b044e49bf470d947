"""Live config reload under a running app with a connected WebSocket client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port

from healthmon.app import create_app
from healthmon.config import load_settings
from tests.support import Messages, System


def render(web_port: int, services: dict[str, int], **extra: str) -> str:
    lines = [
        f"[web]\nport = {web_port}\n",
        "[monitor]\ninterval_ms = 100\nheartbeat_ms = 200\n",
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

    def write(self, services: dict[str, int], **extra: str) -> None:
        self.path.write_text(render(self.settings.web.port, services, **extra))


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Reloadable]:
    path = tmp_path / "config.toml"
    ports = {"auth": unused_port(), "billing": unused_port()}
    path.write_text(render(unused_port(), ports))
    settings = load_settings(path)
    server = TestServer(create_app(settings, config_path=path), port=settings.web.port)
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
    assert "config.toml" in error["error"]
    assert "invalid TOML" in error["error"] or "bogus" in error["error"]
    assert (await live.get("/api/services"))["config_error"] == error["error"]
    late = await live.connected()
    assert late.seen[-1]["config_error"] == error["error"]
    live.path.write_text(render(live.settings.web.port, live.ports, auth="interval_ms = 0"))
    named = await messages.until(lambda m: m["type"] == "configError")
    assert "services[0].interval_ms: Input should be greater than 0" in named["error"]
    await live.set_mode("billing", "down")
    assert (await messages.update_for("billing"))["up"] is False
    live.write(live.ports)
    cleared = await messages.until(lambda m: m["type"] == "configError")
    assert cleared["error"] is None
    assert (await live.get("/api/services"))["config_error"] is None
