"""The public status page, badges and live channel over real loopback sockets.

Each test runs the real app (mocks, monitor, hub, history in memory) and,
beside it, the public listener's own application sharing its parts; a
"leaky" service of the test's own answers 503 with a reason that names an
internal host, so hiding reasons is checked on what a stranger receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from healthmon.alerts.settings import MaintenanceWindow
from healthmon.app import create_app
from healthmon.config import ServiceSettings, StatusPageSettings, load_settings
from healthmon.public.shared import PUBLIC
from healthmon.public.site import create_public_app
from tests.support import Messages, System, free_ports, make_settings, poll, running_system

SECRET = "connect to db.internal.example:5432 refused"
HOSTILE = "Auth <&\"'> ]]>"


async def leaky_health(request: web.Request) -> web.Response:
    """A service that fails with a reason naming an internal host."""
    body = {"status": "fail", "output": SECRET}
    return web.json_response(body, status=503, content_type="application/health+json")


@dataclass
class Public:
    """The main app, and the public listener beside it."""

    system: System
    server: TestServer
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
        async with self.system.session.get(self.base + path, headers=headers) as response:
            return response.status, response.headers.copy(), await response.read()


@contextlib.asynccontextmanager
async def public_system(
    maintenance: tuple[MaintenanceWindow, ...] = (), **page: Any
) -> AsyncIterator[Public]:
    """Four mocks plus the leaky "db", a status page showing ``page``'s choice, both listeners;
    ``maintenance``: the configured windows."""
    leaky = web.Application()
    leaky.router.add_get("/health", leaky_health)
    leaky_port, public_port = free_ports(2)
    leaky_server = TestServer(leaky, host="127.0.0.1", port=leaky_port)
    await leaky_server.start_server()
    base = make_settings()
    services = [
        base.services[0].model_copy(update={"display_name": HOSTILE, "group": "Core & <Edge>"}),
        *base.services[1:],
        ServiceSettings(name="db", url=f"http://127.0.0.1:{leaky_port}", group="Data"),
    ]
    settings = base.model_copy(
        update={
            "services": tuple(services),
            "status_page": StatusPageSettings.model_validate({"port": public_port, **page}),
            "maintenance": maintenance,
        }
    )
    try:
        async with running_system(settings) as system:
            server = TestServer(create_public_app(system.app), host="127.0.0.1", port=public_port)
            await server.start_server()
            try:
                await poll(lambda: system.get("/api/services"), _all_known, within=15)
                yield Public(system, server, public_port)
            finally:
                await server.close()
    finally:
        await leaky_server.close()


def _all_known(document: dict[str, Any]) -> bool:
    return all(s["status"] != "unknown" for s in document["services"])


BADGES = [
    "/badge/auth/status",
    "/badge/db/status",
    *(f"/badge/auth/uptime/{w}" for w in ("24h", "7d", "30d", "90d")),
    *(f"/badge/auth/latency/{w}" for w in ("24h", "7d")),
    "/badge/@group/Core%20&%20%3CEdge%3E/status",
    "/badge/@all/status",
]


async def test_every_badge_is_xml_and_shields_json_with_hostile_names() -> None:
    """Each badge parses as SVG (names escaped) and its .json has shields' fields."""
    async with public_system() as public:
        for path in BADGES:
            status, headers, body = await public.get(path + ".svg")
            assert status == 200, path
            assert headers["Content-Type"] == "image/svg+xml"
            root = ET.fromstring(body)
            assert root.tag == "{http://www.w3.org/2000/svg}svg"
            title = root.find("{http://www.w3.org/2000/svg}title")
            assert title is not None
            assert title.text
            status, _, body = await public.get(path + ".json")
            assert status == 200
            badge = json.loads(body)
            assert badge["schemaVersion"] == 1
            assert {"label", "message", "color", "cacheSeconds"} <= badge.keys()
        _, _, body = await public.get("/badge/auth/status.svg")
        title = ET.fromstring(body).find("{http://www.w3.org/2000/svg}title")
        assert title is not None
        assert title.text == f"{HOSTILE}: up"
        _, _, body = await public.get("/badge/db/status.json")
        assert json.loads(body)["message"] == "down"
        _, _, body = await public.get("/badge/@all/status.json")
        assert json.loads(body)["message"] == "partial outage"
        # A label given in the query is escaped too.
        _, _, body = await public.get("/badge/auth/status.svg?label=%3Cb%3E%26")
        assert ET.fromstring(body).get("aria-label") == "<b>&: up"


async def test_etag_cache_control_and_304() -> None:
    """A badge carries an ETag and max-age; the same ETag back is a 304 with no body."""
    async with public_system(badge_max_age_s=7) as public:
        status, headers, _ = await public.get("/badge/auth/status.svg")
        assert status == 200
        assert headers["Cache-Control"] == "public, max-age=7"
        etag = headers["ETag"]
        status, _, body = await public.get("/badge/auth/status.svg", **{"If-None-Match": etag})
        assert (status, body) == (304, b"")
        status, _, _ = await public.get("/badge/auth/status.svg", **{"If-None-Match": '"other"'})
        assert status == 200
        # Drawn once per state version, not per request: 30 more cost at most a redraw
        # or two (a summaries refresh, or a service's state, may move on meanwhile).
        cache = public.system.app[PUBLIC].badges
        before = cache.renders
        for _ in range(30):
            status, _, _ = await public.get("/badge/auth/status.svg")
            assert status == 200
        assert cache.renders - before <= 2


async def test_a_badge_follows_a_change_and_unknown_names_are_grey_404() -> None:
    """Switching a mock down changes its badge (new ETag); an unknown name is a grey 404."""
    async with public_system() as public:
        _, headers, _ = await public.get("/badge/billing/status.json")
        before = headers["ETag"]
        await public.system.set_mode("billing", "down")

        async def billing() -> tuple[int, CIMultiDict[str], bytes]:
            return await public.get("/badge/billing/status.json")

        _, headers, body = await poll(billing, lambda a: json.loads(a[2])["message"] == "down")
        assert headers["ETag"] != before
        assert json.loads(body)["color"] == "b42318"
        for path in ("/badge/nope/status.svg", "/badge/auth/uptime/1y.svg", "/badge/x.svg"):
            status, _, body = await public.get(path)
            assert status == 404
            root = ET.fromstring(body)
            assert 'fill="#6b7280"' in body.decode()
            assert "unknown service" in str(root.get("aria-label"))


async def test_the_public_listener_serves_only_public_routes() -> None:
    """Every route of the main app that is not public (controls, /, /metrics, /api/*, /ws,
    /events, /static) is 404 on the public port, by GET and POST alike."""
    async with public_system() as public:
        public_paths = {r.canonical for r in public.server.app.router.resources()}
        checked = 0
        for resource in public.system.app.router.resources():
            canonical = resource.canonical
            if canonical in public_paths:
                continue
            path = canonical.replace("{name}", "auth").replace("{component}", "monitor")
            path = path.replace("{filename}", "client.js")
            for method in ("GET", "POST"):
                async with public.system.session.request(
                    method, public.base + path, json={"mode": "down", "running": False}
                ) as response:
                    assert response.status == 404, (method, path)
                    checked += 1
        assert checked >= 20
        for path in ("/", "/metrics", "/api/services", "/api/mocks/auth", "/ws", "/events"):
            status, _, _ = await public.get(path)
            assert status == 404, path
        # Nothing was switched by those calls.
        document = await public.system.get("/api/services")
        assert all(s["mode"] in (None, "up") for s in document["services"])
        assert document["monitor"]["running"] is True


async def _public_messages(public: Public) -> Messages:
    ws = await public.system.session.ws_connect(public.base + "/status/live/ws")
    public.system.sockets.append(ws)
    return Messages(ws)


async def test_reasons_and_urls_never_reach_strangers_unless_configured() -> None:
    """With show_reasons off, the internal host in a reason is in no page, JSON, badge or
    live message of the public listener (and the main dashboard's API does show it)."""
    async with public_system(services=["auth", "billing", "db"]) as public:
        main = await public.system.get("/api/services")
        assert SECRET in json.dumps(main)
        messages = await _public_messages(public)
        welcome = await messages.next()
        snapshot = await messages.next()
        assert (welcome["type"], snapshot["type"]) == ("welcome", "initialSnapshot")
        assert set(snapshot["services"]) == {"auth", "billing", "db"}
        await public.system.set_mode("billing", "down")
        update = await messages.update_for("billing")
        assert update["status"] == "down"
        assert update["reason"] is None
        events = b""
        async with public.system.session.get(public.base + "/status/live/events") as stream:
            while b"initialSnapshot" not in events:
                events += await asyncio.wait_for(stream.content.readany(), 5)
        received = [
            (await public.get("/status"))[2],
            (await public.get("/status/live/api/services"))[2],
            (await public.get("/badge/db/status.svg"))[2],
            (await public.get("/badge/db/status.json"))[2],
            json.dumps(messages.seen).encode(),
            events,
        ]
        mock_port = str(public.system.settings.services[1].port).encode()
        for body in received:
            assert SECRET.encode() not in body
            assert b"db.internal" not in body
            assert b"127.0.0.1:" + mock_port not in body  # no service URL
            assert b"notifications" not in body  # not shown
        assert b"/api/mocks" not in received[0]
        # A service the page does not show has no badge there; the main listener has one.
        status, _, _ = await public.get("/badge/notifications/status.svg")
        assert status == 404
        async with public.system.session.get(
            public.system.base + "/badge/notifications/status.svg"
        ) as response:
            assert response.status == 200


async def test_reasons_are_shown_when_configured() -> None:
    """show_reasons = true puts the reason on the page and in the public channel."""
    async with public_system(show_reasons=True) as public:
        status, _, page = await public.get("/status")
        assert status == 200
        assert SECRET.encode() in page
        _, _, document = await public.get("/status/live/api/services")
        db = next(s for s in json.loads(document)["services"] if s["name"] == "db")
        assert db["reason"] == f"HTTP 503: {SECRET}"


async def test_a_service_in_a_maintenance_window_reads_under_maintenance() -> None:
    """A window covering auth now: /status says "Under maintenance" on auth's row only, and the
    public JSON says so; neither the window's description nor a silence reaches the public."""
    now = datetime.now(UTC).replace(microsecond=0)
    window = MaintenanceWindow.model_validate(
        {
            "services": ["auth"],
            "description": "swap db.internal.example disks",
            "start": now - timedelta(hours=1),
            "end": now + timedelta(hours=1),
        }
    )
    async with public_system(maintenance=(window,)) as public:
        status, silence = await public.system.post(
            "/api/silences", {"services": ["billing"], "minutes": 30, "comment": "quiet deploy"}
        )
        assert status == 201, silence
        _, _, page = await public.get("/status")
        html = page.decode()
        rows = {
            name: html.split(f'data-service="{name}"', 1)[1].split("</li>\n", 1)[0]
            for name in ("auth", "billing")
        }
        assert '<p class="under-maintenance" data-role="maintenance">' in rows["auth"]
        assert "Under maintenance" in rows["auth"]
        assert 'data-role="maintenance" hidden' in rows["billing"]
        _, _, document = await public.get("/status/live/api/services")
        shown = json.loads(document)
        flags = {s["name"]: s["maintenance"] for s in shown["services"]}
        assert flags["auth"] is True
        assert flags["billing"] is False
        assert shown["maintenance_next_ms"] == int((now + timedelta(hours=1)).timestamp() * 1000)
        for body in (page, document):
            assert b"db.internal" not in body
            assert b"quiet deploy" not in body
            assert b"swap" not in body


async def test_status_page_is_complete_html_on_both_listeners() -> None:
    """/status names each shown service by its display name, grouped, with the banner."""
    async with public_system(groups=["Core & <Edge>", "Data"]) as public:
        for base in (public.system.base, public.base):
            async with public.system.session.get(base + "/status") as response:
                assert response.status == 200
                html = await response.text()
                policy = response.headers["Content-Security-Policy"]
            assert "Auth &lt;&amp;&#34;&#39;&gt; ]]&gt;" in html
            assert "Core &amp; &lt;Edge&gt;" in html
            # One of the two shown is down: half is a major outage.
            assert 'data-banner="major"' in html
            assert "Major outage" in html
            assert 'data-service="db" data-status="down"' in html
            assert 'data-service="billing"' not in html  # in no shown group
            assert html.count('data-day-status="') == 2 * 90
            # The page's policy names no service host, whichever listener.
            assert "127.0.0.1:*" not in policy
            assert "frame-ancestors 'self'" in policy


async def test_embeds_only_from_configured_origins() -> None:
    """Another site may read the public channel and frame /status only where configured:
    a cors_origins page gets CORS and its socket; any other origin gets neither."""
    listed, other = "http://localhost:5173", "https://evil.example"
    async with public_system(frame_ancestors=["https://intranet.example"]) as public:
        session = public.system.session
        for path in ("/status/live/api/services", "/client.js"):
            _, headers, _ = await public.get(path, Origin=listed)
            assert headers["Access-Control-Allow-Origin"] == listed
            _, headers, _ = await public.get(path, Origin=other)
            assert "Access-Control-Allow-Origin" not in headers
        ws = await session.ws_connect(public.base + "/status/live/ws", origin=listed)
        public.system.sockets.append(ws)
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "welcome"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(public.base + "/status/live/ws", origin=other)
        assert refused.value.status == 403
        _, headers, _ = await public.get("/status")
        assert "frame-ancestors https://intranet.example;" in headers["Content-Security-Policy"]
        # The page's own origin (the public port) may use its socket.
        ws = await session.ws_connect(public.base + "/status/live/ws", origin=public.base)
        public.system.sockets.append(ws)
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "welcome"


def _config(web: int, public: int, mocks: list[int], shown: list[str]) -> str:
    services = "".join(
        f'[[services]]\nname = "{name}"\nurl = "http://127.0.0.1:{port}"\nmock = true\n'
        for name, port in zip(("auth", "billing"), mocks, strict=True)
    )
    return (
        f"[web]\nport = {web}\n[monitor]\ninterval_ms = 100\nheartbeat_ms = 200\n"
        f'[history]\npath = ":memory:"\n'
        f"[status_page]\nport = {public}\nservices = {json.dumps(shown)}\n{services}"
    )


async def test_a_reload_that_hides_a_service_reaches_open_pages(tmp_path: Path) -> None:
    """Saving the config with a service taken off the page sends open public pages a fresh
    snapshot without it, and its badge is gone from the public listener."""
    web_port, public_port, *mocks = free_ports(4)
    path = tmp_path / "config.toml"
    path.write_text(_config(web_port, public_port, mocks, ["auth", "billing"]))
    app = create_app(load_settings(path), config_path=path)
    main = TestServer(app, host="127.0.0.1", port=web_port)
    await main.start_server()
    public = TestServer(create_public_app(app), host="127.0.0.1", port=public_port)
    await public.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{public_port}"
            async with session.ws_connect(base + "/status/live/ws") as ws:
                messages = Messages(ws)
                first = await messages.until(lambda m: m["type"] == "initialSnapshot")
                assert set(first["services"]) == {"auth", "billing"}
                await asyncio.to_thread(
                    path.write_text, _config(web_port, public_port, mocks, ["auth"])
                )
                fresh = await messages.until(lambda m: m["type"] == "initialSnapshot", 10)
                assert set(fresh["services"]) == {"auth"}
            async with session.get(base + "/badge/billing/status.svg") as response:
                assert response.status == 404
    finally:
        await public.close()
        await main.close()
