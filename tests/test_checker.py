"""The check as one step against real HTTP servers, and the loop that publishes changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from healthmon.broker import STATUS_TOPIC
from healthmon.broker.memory import MemoryBroker
from healthmon.checker import CheckSpec, Monitor
from healthmon.checks.http import check_once
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.models import Status, StatusUpdate, decode

Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Responder], Awaitable[ServiceSettings]]]:
    servers: list[TestServer] = []

    async def start(handler: Responder) -> ServiceSettings:
        app = web.Application()
        app.router.add_get("/health", handler)
        server = TestServer(app, host="127.0.0.1", port=unused_port())
        await server.start_server()
        servers.append(server)
        return ServiceSettings(name="svc", url=f"http://127.0.0.1:{server.port}")

    yield start
    for server in servers:
        await server.close()


def spec(service: ServiceSettings, **monitor: object) -> CheckSpec:
    return CheckSpec.resolve(service, MonitorSettings.model_validate(monitor))


def answer(status: int, body: str, content_type: str = "application/health+json") -> Responder:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    return handler


@pytest.mark.parametrize(
    ("status", "body", "expected", "reason"),
    [
        (200, '{"status":"pass"}', Status.UP, None),
        (200, '{"status":"OK"}', Status.UP, None),
        (204, "", Status.UP, None),
        (200, "<html>fine</html>", Status.UP, None),
        (200, '{"status":"warn","output":"disk 91%"}', Status.DEGRADED, "disk 91%"),
        (200, '{"status":"fail"}', Status.DOWN, "health status: fail"),
        (503, '{"status":"fail","output":"db gone"}', Status.DOWN, "HTTP 503: db gone"),
        (404, "nope", Status.DOWN, "HTTP 404"),
    ],
)
async def test_classification(
    serve: Callable[[Responder], Awaitable[ServiceSettings]],
    session: aiohttp.ClientSession,
    status: int,
    body: str,
    expected: Status,
    reason: str | None,
) -> None:
    """2xx with pass or no health body is up, warn degraded, fail or non-2xx down, with why."""
    service = await serve(answer(status, body))
    result = await check_once(session, spec(service))
    assert (result.status, result.reason) == (expected, reason)
    assert result.service == "svc"
    assert result.latency_ms is not None
    assert result.latency_ms >= 0


async def test_timeout_is_down_with_reason(
    serve: Callable[[Responder], Awaitable[ServiceSettings]], session: aiohttp.ClientSession
) -> None:
    """A service that never answers is down by timeout, reported as data."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    service = await serve(hang)
    result = await check_once(session, spec(service, timeout_ms=200))
    release.set()
    assert result.status is Status.DOWN
    assert result.reason == "no answer within 200 ms"
    # Nothing answered: the 200 ms waited are no latency of the service.
    assert result.latency_ms is None


async def test_refused_connection_is_down(session: aiohttp.ClientSession) -> None:
    """Nothing listening is down with 'connection refused', not an exception."""
    service = ServiceSettings(name="gone", url=f"http://127.0.0.1:{unused_port()}")
    result = await check_once(session, spec(service))
    assert (result.status, result.reason) == (Status.DOWN, "connection refused")


async def test_monitor_publishes_only_changes() -> None:
    """The loop publishes the first observation and each change, never a repeat."""
    state = {"status": 200, "calls": 0}
    many_failures = asyncio.Event()

    async def health(request: web.Request) -> web.Response:
        if state["status"] == 500:
            state["calls"] += 1
            if state["calls"] >= 10:
                many_failures.set()
        return web.json_response({"status": "pass"}, status=state["status"])

    app = web.Application()
    app.router.add_get("/health", health)
    server = TestServer(app, host="127.0.0.1", port=unused_port())
    await server.start_server()
    broker = MemoryBroker()
    service = ServiceSettings(name="svc", url=f"http://127.0.0.1:{server.port}")
    monitor = Monitor([service], MonitorSettings(interval_ms=20, heartbeat_ms=1000), broker)
    updates: list[StatusUpdate] = []
    try:
        async with broker.subscribe(STATUS_TOPIC) as messages, asyncio.timeout(10):
            await monitor.start()
            async for body in messages:
                updates.append(decode(StatusUpdate, body))
                if len(updates) == 1:
                    state["status"] = 500
                elif len(updates) == 2:
                    # Ten failing checks in a row publish nothing more.
                    await many_failures.wait()
                    state["status"] = 200
                else:
                    break
    finally:
        await monitor.stop()
        await server.close()
    assert [u.effective_status for u in updates] == [Status.UP, Status.DOWN, Status.UP]
    assert state["calls"] >= 10
    assert all(u.monitor == monitor.instance_id for u in updates)
