"""Check knobs and health body formats, each against a real HTTP(S) server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from healthmon.checker import CheckSpec, Debounce
from healthmon.checks.http import check_once
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.models import Status

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start a server with one /health handler; returns its base URL."""
    servers: list[TestServer] = []

    async def start(handler: Handler, *, tls: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        app.router.add_route("*", "/health", handler)
        server = TestServer(app, host="127.0.0.1", port=unused_port())
        await server.start_server(ssl=tls)
        servers.append(server)
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[bytes, ssl.SSLContext | None], Awaitable[str]]]:
    """Start a TCP server that answers every request with these bytes, then closes."""
    servers: list[asyncio.Server] = []

    async def start(reply: bytes, tls: ssl.SSLContext | None) -> str:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(reply)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def spec_for(url: str, **knobs: Any) -> CheckSpec:
    service = ServiceSettings.model_validate({"name": "svc", "url": url, **knobs})
    return CheckSpec.resolve(service, MonitorSettings())


def body(doc: object, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(doc, status=status, content_type="application/health+json")

    return handler


HEALTH_JSON_WARN = {
    "status": "pass",
    "checks": {
        "db:connections": [
            {
                "componentId": "primary",
                "status": "warn",
                "observedValue": 91,
                "observedUnit": "%",
                "output": "91 of 100 connections used",
            }
        ],
        "cache:responseTime": [{"status": "pass", "observedValue": 2, "observedUnit": "ms"}],
    },
}

ACTUATOR_DOWN = {
    "status": "DOWN",
    "components": {
        "db": {"status": "DOWN", "details": {"error": "Connection refused: db:5432"}},
        "diskSpace": {"status": "UP", "details": {"free": 1000}},
        "group": {"components": {"redis": {"status": "OUT_OF_SERVICE"}}},
    },
}


@pytest.mark.parametrize(
    ("doc", "http", "status", "reason", "check_names"),
    [
        (
            HEALTH_JSON_WARN,
            200,
            Status.DEGRADED,
            "db:connections (primary): warn: 91 of 100 connections used",
            ["db:connections (primary)"],
        ),
        ({"status": "Error", "output": "disk full"}, 200, Status.DOWN, "disk full", []),
        ({"status": "UP"}, 200, Status.UP, None, []),
        (
            ACTUATOR_DOWN,
            503,
            Status.DOWN,
            "HTTP 503: db: fail: Connection refused: db:5432 (+1 more)",
            ["db", "group.redis"],
        ),
        ({"status": "UNKNOWN"}, 200, Status.DEGRADED, "health status: UNKNOWN", []),
        (
            {"status": "pass", "details": {"api": [{"status": "fail", "output": "upstream 500"}]}},
            200,
            Status.DOWN,
            "api: fail: upstream 500",
            ["api"],
        ),
        # The issue's cases: a word healthmon does not know is degraded, never up.
        ({"status": "unhealthy"}, 200, Status.DEGRADED, "unknown status 'unhealthy'", []),
        (
            {"status": "failed", "output": "db"},
            200,
            Status.DEGRADED,
            "unknown status 'failed': db",
            [],
        ),
        ({"status": "CRITICAL"}, 200, Status.DEGRADED, "unknown status 'CRITICAL'", []),
        ({"status": False}, 200, Status.DEGRADED, "unknown status false", []),
        (
            {"status": "pass", "checks": {"db": [{"status": "unhealthy"}]}},
            200,
            Status.DEGRADED,
            "db: warn: unknown status 'unhealthy'",
            ["db"],
        ),
        (
            {"status": "UP", "components": {"db": {"status": "FATAL"}}},
            200,
            Status.DEGRADED,
            "db: warn: unknown status 'FATAL'",
            ["db"],
        ),
        ({"status": "unhealthy"}, 503, Status.DOWN, "HTTP 503: unknown status 'unhealthy'", []),
    ],
    ids=[
        "health+json-warn",
        "alias-error",
        "actuator-up",
        "actuator-down",
        "unknown",
        "details",
        "word-unhealthy",
        "word-failed",
        "word-CRITICAL",
        "word-false",
        "check-word",
        "component-word",
        "word-with-503",
    ],
)
async def test_body_formats(
    serve: Callable[..., Awaitable[str]],
    session: aiohttp.ClientSession,
    doc: object,
    http: int,
    status: Status,
    reason: str | None,
    check_names: list[str],
) -> None:
    """health+json and Actuator bodies decide the state; the worst check names the reason."""
    url = await serve(body(doc, http))
    result = await check_once(session, spec_for(url))
    assert (result.status, result.reason) == (status, reason)
    assert [c.name for c in result.checks] == check_names


# The check goes through the Probe for http://, through aiohttp for https://:
# both paths must read answers alike.
PATHS = pytest.mark.parametrize("scheme", ["http", "https"], ids=["probe", "aiohttp"])


@pytest.fixture(scope="module")
def tls() -> ssl.SSLContext:
    """A server certificate for 127.0.0.1 (checks use verify_tls = false)."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


def raw_body(data: bytes, content_type: str = "application/health+json") -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=data, headers={"Content-Type": content_type})

    return handler


def nested(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b'{"status":"pass"}' + b"}" * (levels - 1)


@PATHS
@pytest.mark.parametrize(
    ("data", "content_type", "status", "reason"),
    [
        (
            json.dumps(
                {
                    "status": "pass",
                    "checks": {
                        "disk": [{"status": "warn", "observedValue": 91, "observedUnit": 5}]
                    },
                }
            ).encode(),
            "application/health+json",
            Status.DEGRADED,
            "disk: warn: 91 5",
        ),
        (
            b"[" * 30_000 + b"]" * 30_000,
            "application/json",
            Status.DOWN,
            "health body nested deeper than 32 levels",
        ),
        (nested(33), "application/json", Status.DOWN, "health body nested deeper than 32 levels"),
        (nested(32), "application/json", Status.UP, None),
        (
            json.dumps({"status": "fail", "output": "x" * (64 * 1024)}).encode(),
            "application/json",
            Status.DOWN,
            "health body over 64 KiB",
        ),
        (
            b'{"status":"pass","free":' + b"9" * 5000 + b"}",
            "application/json",
            Status.DOWN,
            "unreadable health body: a number longer than 100 characters",
        ),
        (
            b'{"status":"fail"',
            "text/plain",
            Status.DOWN,
            "unreadable health body: invalid JSON (Expecting ',' delimiter at line 1 column 17)",
        ),
        (
            b"fail",
            "application/health+json",
            Status.DOWN,
            "unreadable health body: invalid JSON (Expecting value at line 1 column 1)",
        ),
        (b"OK", "text/plain", Status.UP, None),
        (b"OK", "application/json", Status.UP, None),
    ],
    ids=[
        "numeric-observedUnit",
        "deeply-nested",
        "33-levels",
        "32-levels",
        "over-64KiB-fail",
        "huge-number",
        "broken-object",
        "declared-json-not-json",
        "text-ok",
        "mislabelled-text-ok",
    ],
)
async def test_bodies_are_read_totally_and_within_limits(
    serve: Callable[..., Awaitable[str]],
    session: aiohttp.ClientSession,
    scheme: str,
    tls: ssl.SSLContext,
    data: bytes,
    content_type: str,
    status: Status,
    reason: str | None,
) -> None:
    """Odd, deep, huge or broken 2xx bodies give a result, never an exception or a guessed up."""
    context = tls if scheme == "https" else None
    url = await serve(raw_body(data, content_type), tls=context)
    result = await check_once(session, spec_for(url, verify_tls=False))
    assert (result.status, result.reason) == (status, reason)


@PATHS
async def test_garbage_answer_is_a_result(
    raw_server: Callable[[bytes, ssl.SSLContext | None], Awaitable[str]],
    session: aiohttp.ClientSession,
    scheme: str,
    tls: ssl.SSLContext,
) -> None:
    """A server that answers with garbage gives a DOWN result saying the answer is not HTTP."""
    url = await raw_server(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", tls if scheme == "https" else None)
    result = await check_once(session, spec_for(url, verify_tls=False))
    assert result.status is Status.DOWN
    assert result.reason is not None
    assert result.reason.startswith("invalid HTTP response: ")


@PATHS
@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"".join(b"X-%d: a\r\n" % i for i in range(110)), "more than 100 response headers"),
        (
            b"".join(b"X-%d: %s\r\n" % (i, b"a" * 6000) for i in range(3)),
            "response headers over 16 KiB",
        ),
    ],
    ids=["many-headers", "big-headers"],
)
async def test_header_limits(
    raw_server: Callable[[bytes, ssl.SSLContext | None], Awaitable[str]],
    session: aiohttp.ClientSession,
    scheme: str,
    tls: ssl.SSLContext,
    head: bytes,
    reason: str,
) -> None:
    """An answer with too many or too big headers is DOWN with the limit as the reason."""
    reply = b"HTTP/1.1 200 OK\r\n" + head + b'Content-Length: 17\r\n\r\n{"status":"pass"}'
    url = await raw_server(reply, tls if scheme == "https" else None)
    result = await check_once(session, spec_for(url, verify_tls=False))
    assert (result.status, result.reason) == (Status.DOWN, reason)


@PATHS
async def test_line_over_a_limit(
    raw_server: Callable[[bytes, ssl.SSLContext | None], Awaitable[str]],
    session: aiohttp.ClientSession,
    scheme: str,
    tls: ssl.SSLContext,
) -> None:
    """One header line longer than a parser's limit is DOWN with a reason naming it, never up."""
    reply = b"HTTP/1.1 200 OK\r\nX: " + b"a" * 20_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    url = await raw_server(reply, tls if scheme == "https" else None)
    result = await check_once(session, spec_for(url, verify_tls=False))
    assert result.status is Status.DOWN
    assert result.reason in (
        "response headers over 16 KiB",
        "invalid HTTP response: a status or header line over 8190 bytes",
    )


async def test_a_reading_bug_is_a_down_result(
    serve: Callable[..., Awaitable[str]],
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should reading an answer ever raise, check_once still returns DOWN with the reason."""

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("healthmon.checks.http.read_answer", broken)
    result = await check_once(session, spec_for(await serve(body({"status": "pass"}))))
    assert (result.status, result.reason) == (
        Status.DOWN,
        "unreadable health body: RuntimeError: boom",
    )


async def test_accept_header_and_method_head(
    serve: Callable[..., Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    """Checks ask for health+json, and method = HEAD sends a HEAD request."""
    seen: list[tuple[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.headers["Accept"]))
        return web.Response(status=204)

    url = await serve(handler)
    assert (await check_once(session, spec_for(url))).status is Status.UP
    assert (await check_once(session, spec_for(url, method="HEAD"))).status is Status.UP
    assert [m for m, _ in seen] == ["GET", "HEAD"]
    assert seen[0][1].startswith("application/health+json, application/json")


@pytest.mark.parametrize(
    ("expected", "http", "status"),
    [
        (None, 302, Status.DOWN),
        ("3xx", 302, Status.UP),
        ([200, "400-404"], 404, Status.UP),
        ([200, "400-404"], 405, Status.DOWN),
    ],
)
async def test_expected_status(
    serve: Callable[..., Awaitable[str]],
    session: aiohttp.ClientSession,
    expected: object,
    http: int,
    status: Status,
) -> None:
    """expected_status accepts codes, ranges and Nxx; anything else is down (no redirects)."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=http, headers={"Location": "/elsewhere"})

    url = await serve(handler)
    knobs = {} if expected is None else {"expected_status": expected}
    result = await check_once(session, spec_for(url, **knobs))
    assert result.status is status
    if status is Status.DOWN:
        assert result.reason == f"HTTP {http}"


async def test_secret_header_from_environment(
    serve: Callable[..., Awaitable[str]],
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A header value may come from the environment; it is sent and never shown."""
    monkeypatch.setenv("HM_TEST_TOKEN", "t0ps3cret")
    received: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(request.headers.get("Authorization"))
        ok = request.headers.get("Authorization") == "Bearer t0ps3cret"
        return web.json_response({"status": "pass"}, status=200 if ok else 401)

    url = await serve(handler)
    spec = spec_for(url, headers={"Authorization": "Bearer ${HM_TEST_TOKEN}"})
    assert (await check_once(session, spec)).status is Status.UP
    assert received == ["Bearer t0ps3cret"]
    assert "t0ps3cret" not in repr(spec)
    service = ServiceSettings.model_validate(
        {"name": "svc", "url": url, "headers": {"Authorization": "Bearer ${HM_TEST_TOKEN}"}}
    )
    assert "t0ps3cret" not in repr(service)
    assert "t0ps3cret" not in service.model_dump_json()


async def test_verify_tls(
    serve: Callable[..., Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    """A self-signed certificate is down by default and up with verify_tls = false."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    url = await serve(body({"status": "pass"}), tls=server_context)
    strict = await check_once(session, spec_for(url))
    assert strict.status is Status.DOWN
    assert strict.reason is not None
    assert strict.reason.startswith("TLS certificate not trusted")
    relaxed = await check_once(session, spec_for(url, verify_tls=False))
    assert relaxed.status is Status.UP


async def test_degraded_after(
    serve: Callable[..., Awaitable[str]], session: aiohttp.ClientSession
) -> None:
    """An answer slower than degraded_after_ms is degraded, saying how slow."""
    delay = {"s": 0.15}

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(delay["s"])  # the slow service under test, not synchronisation
        return web.json_response({"status": "pass"})

    url = await serve(handler)
    result = await check_once(session, spec_for(url, degraded_after_ms=100))
    assert result.status is Status.DEGRADED
    assert result.reason is not None
    assert result.reason.startswith("slow answer: ")
    assert result.reason.endswith("(over 100 ms)")
    delay["s"] = 0
    fast = await check_once(session, spec_for(url, degraded_after_ms=100))
    assert fast.status is Status.UP


def test_thresholds_both_directions() -> None:
    """Down shows after failure_threshold bad results in a row, up after success_threshold."""
    debounce = Debounce(failure_threshold=3, success_threshold=2)
    feed = [Status.UP, Status.DOWN, Status.DOWN, Status.UP, Status.DOWN, Status.DOWN, Status.DOWN]
    shown = []
    for status in feed:
        debounce.feed(status)
        shown.append(debounce.shown)
    assert shown == [Status.UP] * 6 + [Status.DOWN]
    assert [debounce.feed(s) for s in (Status.UP, Status.DOWN, Status.UP, Status.UP)] == [
        False,
        False,
        False,
        True,
    ]
    assert debounce.shown is Status.UP


def test_first_result_is_shown_at_once() -> None:
    """Whatever the thresholds, the first result after start counts as a change."""
    debounce = Debounce(failure_threshold=5, success_threshold=5)
    assert debounce.feed(Status.DOWN) is True
    assert debounce.shown is Status.DOWN


def test_service_knobs_override_monitor_defaults() -> None:
    """A service's own knobs win; the rest come from [monitor]."""
    defaults = MonitorSettings.model_validate(
        {"interval_ms": 2000, "timeout_ms": 700, "failure_threshold": 2}
    )
    service = ServiceSettings.model_validate(
        {"name": "a", "url": "http://h", "interval_ms": 250, "success_threshold": 3}
    )
    spec = CheckSpec.resolve(service, defaults)
    assert (spec.interval_ms, spec.timeout_ms) == (250, 700)
    assert (spec.failure_threshold, spec.success_threshold) == (2, 3)
    assert spec.expected_status == ((200, 299),)
    assert json.loads(service.model_dump_json())["interval_ms"] == 250


async def test_a_refused_check_has_no_latency() -> None:
    """Nothing answered: the result carries no latency, so no card shows one."""
    service = ServiceSettings(name="gone", url=f"http://127.0.0.1:{unused_port()}")
    async with aiohttp.ClientSession() as session:
        result = await check_once(session, CheckSpec.resolve(service, MonitorSettings()))
    assert result.status is Status.DOWN
    assert result.reason == "connection refused"
    assert result.latency_ms is None
