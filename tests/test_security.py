"""Security: the Host allow-list, the Origin rule, headers, refused inputs, safe output."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from healthmon.app import create_app
from healthmon.config import ConfigError, ServiceSettings, Settings, load_settings
from healthmon.keys import CONFIG, MOCKS, MONITOR
from healthmon.logs import configure_logging, visible
from healthmon.origins import allowed_hosts, host_allowed, origin_allowed
from healthmon.security import service_sources
from tests.support import System, make_settings, run_healthmon

EVIL = "evil.example"
ESC = "\x1b"


@pytest.fixture
def web_options() -> dict[str, Any]:
    """Extra [web] settings for this module's system; tests parametrize it."""
    return {}


@pytest.fixture
def settings(web_options: dict[str, Any]) -> Settings:
    """The shared fixture's settings, with ``web_options`` in [web]."""
    return make_settings(**web_options)


def _headers(system: System, host: str, **extra: str) -> dict[str, str]:
    return {"Host": f"{host}:{system.settings.web.port}", **extra}


async def _status(system: System, method: str, path: str, headers: dict[str, str]) -> int:
    body = {"/api/mocks/auth": {"mode": "down"}, "/api/components/monitor": {"running": False}}
    async with system.session.request(
        method, system.base + path, json=body.get(path), headers=headers
    ) as response:
        return response.status


async def _ws_status(system: System, headers: dict[str, str]) -> int:
    """The handshake's answer: 101 when the socket opened, else the refusal."""
    try:
        ws = await system.session.ws_connect(f"{system.base}/ws", headers=headers)
    except aiohttp.WSServerHandshakeError as error:
        return error.status
    await ws.close()
    return 101


# -- the Host allow-list ---------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
async def test_loopback_names_are_served(system: System, host: str) -> None:
    """The page, the API, the socket and the controls answer to every loopback name."""
    headers = _headers(system, host)
    assert await _status(system, "GET", "/", headers) == 200
    assert await _status(system, "GET", "/api/services", headers) == 200
    assert await _ws_status(system, headers) == 101
    assert await _status(system, "POST", "/api/mocks/auth", headers) == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/services"),
        ("GET", "/statuses"),
        ("GET", "/metrics"),
        ("GET", "/static/dashboard/main.js"),
        ("GET", "/no/such/page"),
        ("POST", "/api/mocks/auth"),
        ("POST", "/api/components/monitor"),
    ],
)
async def test_a_foreign_host_is_refused_before_any_handler(
    system: System, method: str, path: str
) -> None:
    """A Host that is not one of the server's names gets 421, plain text, and changes nothing."""
    headers = _headers(system, EVIL, Origin=f"http://{EVIL}:{system.settings.web.port}")
    async with system.session.request(
        method, system.base + path, json={"mode": "down", "running": False}, headers=headers
    ) as response:
        assert response.status == 421
        assert response.content_type == "text/plain"
        assert "allowed_hosts" in await response.text()
    assert system.app[MOCKS]["auth"].mode.value == "up"
    assert system.app[MONITOR].running


async def test_a_foreign_host_cannot_open_the_socket(system: System) -> None:
    """GET /ws naming a foreign host (with its own matching Origin) is refused with 421."""
    port = system.settings.web.port
    headers = _headers(system, EVIL, Origin=f"http://{EVIL}:{port}")
    assert await _ws_status(system, headers) == 421
    assert await _ws_status(system, {"Host": f"localhost.{EVIL}:{port}"}) == 421


async def test_a_request_without_host_is_refused(system: System) -> None:
    """An HTTP/1.0 request with no Host header at all gets 400."""
    reader, writer = await asyncio.open_connection("127.0.0.1", system.settings.web.port)
    writer.write(b"GET /api/services HTTP/1.0\r\n\r\n")
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"400"


@pytest.mark.parametrize("web_options", [{"allowed_hosts": ["healthmon.lan"]}])
async def test_a_configured_host_serves_its_own_page(system: System) -> None:
    """A name in [web] allowed_hosts is served, and its page may use the controls and socket."""
    port = system.settings.web.port
    own = _headers(system, "healthmon.lan", Origin=f"http://healthmon.lan:{port}")
    assert await _status(system, "GET", "/", own) == 200
    assert await _status(system, "POST", "/api/mocks/auth", own) == 200
    assert await _ws_status(system, own) == 101
    other = _headers(system, "other.lan", Origin=f"http://other.lan:{port}")
    assert await _status(system, "POST", "/api/mocks/auth", other) == 421


def test_allowed_hosts_rules() -> None:
    """Loopback, the bound host, [monitor] urls and configured names; '*' and '*.domain' match."""
    settings = Settings.model_validate(
        {
            "web": {"host": "10.0.0.5", "allowed_hosts": ["Board.Example.org", "*.lan", "::1"]},
            "monitor": {"urls": ["http://mon1.internal:3000"]},
        }
    )
    hosts = allowed_hosts(settings.web, settings.monitor)
    assert {"localhost", "127.0.0.1", "[::1]", "10.0.0.5", "mon1.internal"} <= hosts
    for host in ("board.example.org:443", "a.lan:4000", "10.0.0.5", "[::1]:4000", "LOCALHOST"):
        assert host_allowed(host, hosts), host
    for foreign in ("lan:4000", "evil.example", "127.0.0.1.evil.example", "", None):
        assert not host_allowed(foreign, hosts), foreign
    assert host_allowed("anything.example:1", ["*"])
    wildcard = Settings.model_validate({"web": {"host": "0.0.0.0"}}).web
    assert allowed_hosts(wildcard) == {"localhost", "127.0.0.1", "[::1]"}


@pytest.mark.parametrize("entry", ["evil.example:4000", "a b", "http://x", ""])
def test_allowed_hosts_entries_are_validated(entry: str) -> None:
    """An allowed_hosts entry with a port, a scheme or spaces stops the start, named."""
    with pytest.raises(ValueError, match=r"web\.allowed_hosts"):
        Settings.model_validate({"web": {"allowed_hosts": [entry]}})


async def test_monitor_port_checks_the_host_too(session: aiohttp.ClientSession) -> None:
    """A monitor-only process answers its loopback names and refuses a foreign Host with 421."""
    settings = make_settings()
    port = settings.web.port
    server = TestServer(create_app(settings, {"monitor"}), host="127.0.0.1", port=port)
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{port}/api/statuses"
        async with session.get(url) as response:
            assert response.status == 200
        async with session.get(url, headers={"Host": f"{EVIL}:{port}"}) as response:
            assert response.status == 421
    finally:
        await server.close()


# -- the Origin rule -------------------------------------------------------


async def test_a_foreign_origin_is_refused_by_a_loopback_host(system: System) -> None:
    """Origin http://evil.example:PORT is refused for controls and /ws even with Host localhost."""
    port = system.settings.web.port
    headers = _headers(system, "localhost", Origin=f"http://{EVIL}:{port}")
    assert await _status(system, "POST", "/api/mocks/auth", headers) == 403
    assert await _status(system, "POST", "/api/components/monitor", headers) == 403
    assert await _ws_status(system, headers) == 403
    assert system.app[MOCKS]["auth"].mode.value == "up"
    assert system.app[MONITOR].running


def test_origin_is_never_derived_from_the_host() -> None:
    """origin_allowed ignores the request's Host: only configured origins pass."""
    web_settings = make_settings().web
    port = web_settings.port
    assert not origin_allowed(f"http://{EVIL}:{port}", f"{EVIL}:{port}", web_settings)
    assert origin_allowed(f"http://localhost:{port}", f"{EVIL}:{port}", web_settings)
    assert origin_allowed("http://localhost:5173", "localhost:1", web_settings)


# -- headers ---------------------------------------------------------------


def _policy(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {words[0]: words[1:] for words in directives}


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade"}


@pytest.mark.parametrize("upgrade", [False, True], ids=["plain", "upgrade"])
@pytest.mark.parametrize(
    "path", ["/", "/api/services", "/static/dashboard/main.js", "/no/such/page", "/events"]
)
async def test_every_answer_carries_the_security_headers(
    system: System, path: str, upgrade: bool
) -> None:
    """CSP without inline script or style, nosniff and no-referrer, whatever the request carries."""
    async with system.session.get(
        system.base + path, headers=UPGRADE if upgrade else {}
    ) as response:
        headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    policy = _policy(headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'self'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert "http://127.0.0.1:*" in policy["connect-src"]
    assert f"ws://127.0.0.1:{system.settings.web.port}" in policy["connect-src"]


@pytest.mark.parametrize("running", [True, False])
async def test_the_socket_answer_carries_the_security_headers(
    system: System, running: bool
) -> None:
    """The WebSocket's 101, and its 503 when switched off, carry the headers too."""
    await system.post("/api/components/ws", {"running": running})
    async with system.session.get(
        system.base + "/ws",
        headers={**UPGRADE, "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "a" * 22 + "=="},
    ) as response:
        assert response.status == (101 if running else 503)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_connect_src_follows_a_reload(system: System) -> None:
    """A service added by a reload (on a new host) is in the next answer's connect-src."""
    old = system.app[CONFIG].settings
    orders = ServiceSettings(name="orders", url="https://orders.internal:8443")
    system.app[CONFIG].settings = old.model_copy(update={"services": (*old.services, orders)})
    async with system.session.get(system.base + "/") as response:
        policy = _policy(response.headers["Content-Security-Policy"])
    assert "https://orders.internal:*" in policy["connect-src"]


@pytest.mark.parametrize("web_options", [{"frame_ancestors": ["'none'"]}])
async def test_frame_ancestors_is_configurable(system: System) -> None:
    """[web] frame_ancestors is the policy's frame-ancestors."""
    async with system.session.get(system.base + "/") as response:
        policy = _policy(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("entry", ["'self'; script-src *", "a b", ""])
def test_frame_ancestors_cannot_inject_a_directive(entry: str) -> None:
    """A frame_ancestors entry that could end the directive stops the start."""
    with pytest.raises(ValueError, match=r"web\.frame_ancestors"):
        Settings.model_validate({"web": {"frame_ancestors": [entry]}})


# -- inputs ------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "url",
    ["http://user:s3cr3t-pw@127.0.0.1:3001", "https://s3cr3t-pw@orders.internal", "http://u:@h"],
)
def test_credentials_in_a_url_are_refused(tmp_path: Path, url: str) -> None:
    """A URL with user:password@ stops the start, pointing to a header, never quoting it."""
    path = _write(tmp_path, f'[[services]]\nname = "orders"\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert 'services[0] "orders".url: must not carry a user name or password' in message
    assert 'headers = { Authorization = "Basic ${VAR}" }' in message
    assert "s3cr3t" not in message
    result = run_healthmon("check-config", str(path))
    assert result.returncode == 2
    assert "must not carry a user name or password" in result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr


def test_credentials_in_monitor_urls_are_refused() -> None:
    """[monitor] urls refuse credentials too."""
    with pytest.raises(ValueError, match=r"monitor\.urls\.0"):
        Settings.model_validate({"monitor": {"urls": ["http://a:b@127.0.0.1:3000"]}})


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_refused(name: str) -> None:
    """A service name must be one URL path segment: '.' and '..' are refused."""
    with pytest.raises(ValueError, match="cannot be a service name"):
        Settings.model_validate({"services": [{"name": name, "url": "http://127.0.0.1:3001"}]})
    Settings.model_validate({"services": [{"name": "a.b", "url": "http://127.0.0.1:3001"}]})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"web": {"port": 0}}, "web.port"),
        ({"web": {"port": 65536}}, "web.port"),
        ({"monitor": {"port": 0}}, "monitor.port"),
        ({"services": [{"name": "a", "url": "http://127.0.0.1:0"}]}, "services.0.url"),
        ({"services": [{"name": "a", "url": "http://127.0.0.1:65536"}]}, "services.0.url"),
    ],
)
def test_ports_outside_1_to_65535_are_refused(data: dict[str, Any], field: str) -> None:
    """Port 0 and ports past 65535 are refused wherever a port is configured."""
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        Settings.model_validate(data)


async def test_deeply_nested_control_body_is_a_400(system: System) -> None:
    """JSON nested past the parser's depth (inside the size limit) gets 400 naming it, not 500."""
    depth = 2000
    body = '{"mode": ' + "[" * depth + "]" * depth + "}"
    assert len(body) < 4096
    async with system.session.post(
        f"{system.base}/api/mocks/auth", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert "nested" in (await response.json())["error"]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("depth", [10_000, 0], ids=["10000-deep", "5MB"])
async def test_huge_control_body_is_refused_by_size(
    system: System, depth: int, chunked: bool
) -> None:
    """A control body over the limit (10,000 levels deep or 5 MB) gets 413 naming the size."""
    text = '{"mode": ' + ("[" * depth + "]" * depth if depth else '"' + "x" * 5_000_000 + '"')
    payload = (text + "}").encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    async with system.session.post(
        f"{system.base}/api/mocks/auth",
        data=chunks() if chunked else io.BytesIO(payload),
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 413
        assert "size" in (await response.json())["error"]
    assert system.app[MOCKS]["auth"].mode.value == "up"


# -- safe output -------------------------------------------------------------

HOSTILE_REASON = f"{ESC}]0;pwned\x07{ESC}[2J db gone\r\n\x9b1m\u202eevil"


def test_visible_writes_out_every_control_character() -> None:
    """ESC, BEL, CR, LF, C1 and bidi overrides become visible escapes; plain text stays."""
    shown = visible(HOSTILE_REASON)
    assert shown == "\\x1b]0;pwned\\x07\\x1b[2J db gone\\x0d\\x0a\\x9b1m\\u202eevil"
    assert visible("plain — text é") == "plain — text é"
    assert visible("a\n\tb\x1b", keep_lines=True) == "a\n\tb\\x1b"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream_class", [_Terminal, io.StringIO], ids=["console", "json"])
def test_logs_escape_control_characters(stream_class: type[io.StringIO]) -> None:
    """A service's reason is logged with its control characters escaped, on a terminal too."""
    saved = structlog.get_config()
    stream = stream_class()
    try:
        # The console renderer prints every value in full (classroom lines are cut).
        configure_logging("info", stream, fmt="console" if stream_class is _Terminal else "auto")
        structlog.get_logger("test").info(
            "status.changed", reason=HOSTILE_REASON, checks=[{"output": f"{ESC}[31m"}]
        )
    finally:
        structlog.configure(**saved)
    # The console renderer colours its own columns; nothing else may carry ESC.
    out = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
    assert ESC not in out
    assert "\x07" not in out
    assert "\u202e" not in out
    if stream_class is io.StringIO:
        assert json.loads(out)["reason"] == visible(HOSTILE_REASON)
    else:
        # The renderer may quote a value (repr) after it was escaped: one backslash or two.
        assert re.search(r"\\+x1b\]0;pwned\\+x07\\+x1b\[2J db gone", out), out
        assert re.search(r"\\+x1b\[31m", out), out


async def _fake_server(reason: str) -> TestServer:
    async def services(request: web.Request) -> web.Response:
        service = {"name": "auth", "status": "down", "latency_ms": 3.0, "reason": reason}
        return web.json_response({"services": [service], "monitor": {"alive": True}})

    app = web.Application()
    app.router.add_get("/api/services", services)
    server = TestServer(app, host="127.0.0.1", port=unused_port())
    await server.start_server()
    return server


async def test_status_command_escapes_what_a_service_sent() -> None:
    """healthmon status prints a reason's control characters as visible escapes."""
    server = await _fake_server(HOSTILE_REASON)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "healthmon",
            "status",
            "--url",
            str(server.make_url("/")),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await server.close()
    text = out.decode()
    assert process.returncode == 1
    assert ESC not in text
    assert "\r" not in text
    assert "\\x1b]0;pwned\\x07\\x1b[2J db gone" in text


async def test_static_modules_are_revalidated(system: System) -> None:
    """A page module is served 200 with no-cache, so an upgrade never mixes old and new code."""
    async with system.session.get(f"{system.base}/static/dashboard/main.js") as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-cache"
        etag = response.headers["ETag"]
    headers = {"If-None-Match": etag}
    async with system.session.get(
        f"{system.base}/static/dashboard/main.js", headers=headers
    ) as response:
        assert response.status == 304


def test_only_http_services_are_connect_sources() -> None:
    """A tcp or grpc service is no connect-src: a browser cannot poll it, so none is allowed."""
    settings = Settings.model_validate(
        {
            "services": [
                {"name": "web", "url": "http://10.1.2.3:8080"},
                {"name": "db", "kind": "tcp", "url": "tcp://10.9.9.9:5432"},
            ]
        }
    )
    assert service_sources(settings) == ["http://10.1.2.3:*"]
