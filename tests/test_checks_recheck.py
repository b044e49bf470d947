"""Connection-loss re-checks: a service whose idle connection closes is checked again at once.

The check interval in these tests is long (10 s) and every bound is far below
it, so a change seen in time was seen by the re-check, not by the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from healthmon.broker import STATUS_TOPIC
from healthmon.broker.memory import MemoryBroker
from healthmon.checker import RECHECK_SPACING, Monitor
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.mocks import MockService, Mode
from healthmon.models import CheckResult, Status, StatusUpdate, decode

LONG_INTERVAL_MS = 10_000
# How soon a lost connection must show: far below the interval.
BOUND_S = 2.0
WAIT_S = 10.0
PASS = b'{"status":"pass"}'

# A real HTTP service in its own process: aiohttp keeps connections alive.
CHILD = """
import asyncio
from aiohttp import web

async def health(request):
    return web.json_response({"status": "pass"})

async def main():
    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class Watched:
    """A running monitor's published updates and every result it recorded, as queues."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.updates: asyncio.Queue[StatusUpdate] = asyncio.Queue()
        self.results: asyncio.Queue[CheckResult] = asyncio.Queue()
        monitor.observers.append(self.results.put_nowait)

    async def update(self, timeout_s: float = WAIT_S) -> StatusUpdate:
        return await asyncio.wait_for(self.updates.get(), timeout_s)

    async def result(self, timeout_s: float = WAIT_S) -> CheckResult:
        return await asyncio.wait_for(self.results.get(), timeout_s)


@contextlib.asynccontextmanager
async def monitoring(service: ServiceSettings, interval_ms: int) -> AsyncIterator[Watched]:
    broker = MemoryBroker()
    settings = MonitorSettings(interval_ms=interval_ms, heartbeat_ms=60_000)
    watched = Watched(Monitor([service], settings, broker))

    async def read(messages: AsyncIterator[bytes]) -> None:
        async for body in messages:
            watched.updates.put_nowait(decode(StatusUpdate, body))

    async with broker.subscribe(STATUS_TOPIC) as messages:
        reader = asyncio.create_task(read(messages))
        await watched.monitor.start()
        try:
            yield watched
        finally:
            await watched.monitor.stop()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def service_at(url: str) -> ServiceSettings:
    return ServiceSettings(name="svc", url=url)


@pytest.fixture
async def child() -> AsyncIterator[Callable[[], Awaitable[tuple[asyncio.subprocess.Process, int]]]]:
    """Start HTTP services in child processes; killed at the end."""
    processes: list[asyncio.subprocess.Process] = []

    async def start() -> tuple[asyncio.subprocess.Process, int]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, stdout=asyncio.subprocess.PIPE
        )
        processes.append(process)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), WAIT_S)
        return process, int(line)

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_kill_9_is_seen_at_once(
    child: Callable[[], Awaitable[tuple[asyncio.subprocess.Process, int]]],
) -> None:
    """kill -9 of a service's process shows it down within 2 s, with a 10 s interval."""
    process, port = await child()
    async with monitoring(service_at(f"http://127.0.0.1:{port}"), LONG_INTERVAL_MS) as watched:
        assert (await watched.update()).effective_status is Status.UP
        os.kill(process.pid, signal.SIGKILL)
        down = await watched.update(BOUND_S)
    assert down.effective_status is Status.DOWN
    # Refused, or reset when the re-check got in before the kernel closed the listener.
    assert down.reason in ("connection refused", "network error: Connection reset by peer")


async def test_mock_switched_down_is_seen_at_once() -> None:
    """A mock switched to down (its sockets really close) is shown down within 2 s, not 10."""
    port = await free_port()
    service = ServiceSettings(name="svc", url=f"http://127.0.0.1:{port}", mock=True)
    mock = MockService(service, cors_origins=(), slow_ms=3000)
    await mock.start()
    try:
        async with monitoring(service, LONG_INTERVAL_MS) as watched:
            assert (await watched.update()).effective_status is Status.UP
            await mock.set_mode(Mode.DOWN)
            down = await watched.update(BOUND_S)
            assert (down.effective_status, down.reason) == (Status.DOWN, "connection refused")
            await mock.set_mode(Mode.UP)
    finally:
        await mock.stop()


async def free_port() -> int:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


class ClosingService:
    """Answers one request per connection, then closes it: with a keep-alive answer
    (as if its idle timeout ran out at once) or with ``Connection: close``."""

    def __init__(self, header: str | None) -> None:
        extra = f"{header}\r\n" if header else ""
        self.reply = (
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(PASS)}\r\n{extra}\r\n".encode() + PASS
        )
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.reply)
            await writer.drain()
        writer.close()


@pytest.fixture
async def closing() -> AsyncIterator[Callable[[str | None], Awaitable[str]]]:
    services: list[ClosingService] = []

    async def start(header: str | None) -> str:
        service = ClosingService(header)
        services.append(service)
        return await service.start()

    yield start
    for service in services:
        await service.stop()


async def test_idle_timeout_close_costs_no_failed_check(
    closing: Callable[[str | None], Awaitable[str]],
) -> None:
    """A service that closes its idle connection is checked again at once, and is still up."""
    async with monitoring(service_at(await closing(None)), LONG_INTERVAL_MS) as watched:
        first = await watched.result()
        again = await watched.result(BOUND_S)
    assert [first.status, again.status] == [Status.UP, Status.UP]
    assert watched.updates.qsize() == 1


@pytest.mark.parametrize(
    ("header", "per_interval"),
    [("Connection: close", 1), (None, 1 + 1 / RECHECK_SPACING)],
    ids=["connection-close", "closed-after-each-answer"],
)
async def test_closing_every_connection_causes_no_check_storm(
    closing: Callable[[str | None], Awaitable[str]], header: str | None, per_interval: float
) -> None:
    """A service that closes every connection is checked at most a few times per interval."""
    interval_s, intervals = 0.4, 3
    async with monitoring(service_at(await closing(header)), int(interval_s * 1000)) as watched:
        loop = asyncio.get_running_loop()
        await watched.result()
        start = loop.time()
        count = 0
        while loop.time() < start + intervals * interval_s:
            assert (await watched.result()).status is Status.UP
            count += 1
    # One check may land on each edge of the window.
    assert count <= intervals * per_interval + 1
