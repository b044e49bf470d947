"""The keep-alive probe behind plain-http checks, against real servers on loopback.

aiohttp test servers stand for well-behaved services; raw asyncio servers
write odd answers byte by byte and count the connections they see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from healthmon.broker.memory import MemoryBroker
from healthmon.checker import CheckSpec, Monitor
from healthmon.checks.http import MAX_BODY, check_once, probe_for
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.models import CheckResult, Status
from healthmon.probe import Probe

WAIT_S = 5.0
PASS = b'{"status":"pass"}'
Conversation = Callable[["Peer"], Awaitable[None]]


class Peer:
    """The server's side of one connection."""

    def __init__(
        self,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        requests: list[bytes],
    ) -> None:
        self.number = number
        self.reader = reader
        self.writer = writer
        self._requests = requests
        # Resolved when the server sees the client close the connection.
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def request(self) -> bool:
        """Read one request's head; False when the client closed the connection."""
        try:
            self._requests.append(await self.reader.readuntil(b"\r\n\r\n"))
        except (asyncio.IncompleteReadError, ConnectionError):
            self._client_closed()
            return False
        return True

    async def until_client_closes(self) -> None:
        try:
            while await self.reader.read(4096):
                pass
        except ConnectionError:
            pass
        self._client_closed()

    def _client_closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class RawService:
    """A loopback TCP server whose conversation a test writes byte by byte.

    The server closes a connection when its conversation returns.
    """

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.peers: list[Peer] = []
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def connections(self) -> int:
        return len(self.peers)

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = Peer(len(self.peers) + 1, reader, writer, self.requests)
        self.peers.append(peer)
        try:
            await self.conversation(peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._tasks.discard(task)


def answer(body: bytes, status: str = "200 OK", *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Conversation], Awaitable[tuple[RawService, str]]]]:
    services: list[RawService] = []

    async def start(conversation: Conversation) -> tuple[RawService, str]:
        service = RawService(conversation)
        services.append(service)
        return service, await service.start()

    yield start
    for service in services:
        await service.stop()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1", port=unused_port())
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def checker(
    session: aiohttp.ClientSession,
) -> AsyncIterator[Callable[[CheckSpec], Awaitable[CheckResult]]]:
    """Checks through one probe per spec, as a Monitor loop does; closed at the end."""
    probes: dict[CheckSpec, Probe] = {}

    async def check(spec: CheckSpec) -> CheckResult:
        probe = probes.get(spec) or probes.setdefault(spec, _probe(spec))
        return await check_once(session, spec, probe)

    yield check
    for probe in probes.values():
        await probe.aclose()


def _probe(spec: CheckSpec) -> Probe:
    probe = probe_for(spec)
    assert probe is not None
    return probe


def spec_for(url: str, **knobs: Any) -> CheckSpec:
    service = ServiceSettings.model_validate({"name": "svc", "url": url, **knobs})
    return CheckSpec.resolve(service, MonitorSettings())


def health_app(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/health", handler)
    return app


async def test_keep_alive_reuses_one_connection(
    serve: Callable[[web.Application], Awaitable[str]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """Several checks of a service travel over one connection."""
    peers: set[object] = set()

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        return web.json_response({"status": "pass"})

    spec = spec_for(await serve(health_app(handler)))
    results = [await checker(spec) for _ in range(4)]
    assert [r.status for r in results] == [Status.UP] * 4
    assert len(peers) == 1


async def test_chunked_body_is_read(
    serve: Callable[[web.Application], Awaitable[str]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """A health body sent in chunks decides the state as a whole."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"status":"warn",')
        await response.write(b'"output":"disk 91%"}')
        await response.write_eof()
        return response

    spec = spec_for(await serve(health_app(handler)))
    for _ in range(2):
        result = await checker(spec)
        assert (result.status, result.reason) == (Status.DEGRADED, "disk 91%")


async def test_content_length_body_is_read(
    serve: Callable[[web.Application], Awaitable[str]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """A body with a Content-Length is read to its end, status and reason from it."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"status": "fail", "output": "db gone"}, status=503)

    spec = spec_for(await serve(health_app(handler)))
    for _ in range(2):
        result = await checker(spec)
        assert (result.status, result.reason) == (Status.DOWN, "HTTP 503: db gone")


async def test_connection_close_is_honoured(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """After 'Connection: close' the checker closes its side and the next check reconnects."""

    async def conversation(peer: Peer) -> None:
        if await peer.request():
            peer.writer.write(answer(PASS, "200 OK", "Connection: close"))
            # The server leaves the connection open: closing it is the client's part.
            await peer.until_client_closes()

    service, url = await raw(conversation)
    spec = spec_for(url)
    assert (await checker(spec)).status is Status.UP
    await asyncio.wait_for(service.peers[0].closed, WAIT_S)
    assert (await checker(spec)).status is Status.UP
    assert service.connections == 2


async def test_http_1_0_body_until_close(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """An HTTP/1.0 answer without Content-Length ends where the server closes, and counts."""

    async def conversation(peer: Peer) -> None:
        if await peer.request():
            peer.writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
            peer.writer.write(b'{"status":"warn","output":"old server"}')

    service, url = await raw(conversation)
    spec = spec_for(url)
    for _ in range(2):
        result = await checker(spec)
        assert (result.status, result.reason) == (Status.DEGRADED, "old server")
    assert service.connections == 2


async def test_body_over_the_limit(
    serve: Callable[[web.Application], Awaitable[str]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """A huge body is read only up to the limit, and checks go on on a new connection."""
    peers: set[object] = set()
    huge = json.dumps({"status": "fail", "output": "x" * (4 * MAX_BODY)}).encode()

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        return web.Response(body=huge, status=503, content_type="application/json")

    spec = spec_for(await serve(health_app(handler)))
    for _ in range(2):
        result = await checker(spec)
        assert (result.status, result.reason) == (Status.DOWN, "HTTP 503")
    assert len(peers) == 2
    probe = _probe(spec)
    try:
        answer = await asyncio.wait_for(probe.fetch(), WAIT_S)
    finally:
        await probe.aclose()
    # One byte over the limit is read: enough to know the body is over it.
    assert (answer.status, answer.body) == (503, huge[: MAX_BODY + 1])
    assert answer.content_type == "application/json"


@pytest.mark.parametrize(
    "extra",
    [b"XYZ", answer(b'{"status":"fail"}'), b"\r\nHTTP/1.1 200 OK\r\n"],
    ids=["junk", "a-second-answer", "a-second-head"],
)
async def test_bytes_after_the_answer_close_the_connection(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
    extra: bytes,
) -> None:
    """An answer longer than its Content-Length counts, but its connection is never reused."""

    async def conversation(peer: Peer) -> None:
        while await peer.request():
            peer.writer.write(answer(PASS) + (extra if peer.number == 1 else b""))

    service, url = await raw(conversation)
    spec = spec_for(url)
    results = [await checker(spec) for _ in range(3)]
    assert [(r.status, r.reason) for r in results] == [(Status.UP, None)] * 3
    # The first connection is replaced after its one answer; the second is clean and kept.
    assert service.connections == 2
    assert len(service.requests) == 3


async def test_head_answer_with_a_body_closes_the_connection(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """A body sent after a HEAD answer is more than HTTP framing allows: the connection goes."""

    async def conversation(peer: Peer) -> None:
        while await peer.request():
            peer.writer.write(answer(PASS))

    service, url = await raw(conversation)
    spec = spec_for(url, method="HEAD")
    results = [await checker(spec) for _ in range(2)]
    assert [(r.status, r.reason) for r in results] == [(Status.UP, None)] * 2
    assert service.connections == 2


async def test_head_answers_keep_the_connection(
    serve: Callable[[web.Application], Awaitable[str]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """HEAD answers carry a Content-Length but no body; checks neither hang nor reconnect."""
    seen: list[tuple[str, object]] = []

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        seen.append((request.method, request.transport.get_extra_info("peername")))
        return web.json_response({"status": "fail"}, status=200 if len(seen) < 3 else 503)

    spec = spec_for(await serve(health_app(handler)), method="HEAD")
    results = [await checker(spec) for _ in range(3)]
    assert [(r.status, r.reason) for r in results] == [
        (Status.UP, None),
        (Status.UP, None),
        (Status.DOWN, "HTTP 503"),
    ]
    assert {method for method, _ in seen} == {"HEAD"}
    assert len({peer for _, peer in seen}) == 1


async def test_server_closing_idle_connection_is_no_false_down(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """A kept-alive connection the server drops between checks never shows the service down."""

    async def conversation(peer: Peer) -> None:
        # Keep-alive promised, but the next request on this connection finds
        # it closed: the race of a server's idle timeout with the next check.
        if await peer.request():
            peer.writer.write(answer(PASS))
        await peer.request()

    service, url = await raw(conversation)
    spec = spec_for(url)
    results = [await checker(spec) for _ in range(4)]
    assert [(r.status, r.reason) for r in results] == [(Status.UP, None)] * 4
    assert service.connections == 4


async def test_idle_close_seen_before_the_check(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """A connection the server closed while idle is replaced without a failed check."""
    answered = asyncio.Event()

    async def conversation(peer: Peer) -> None:
        if await peer.request():
            peer.writer.write(answer(PASS))
            await peer.writer.drain()
            answered.set()

    service, url = await raw(conversation)
    spec = spec_for(url)
    assert (await checker(spec)).status is Status.UP
    await asyncio.wait_for(answered.wait(), WAIT_S)
    assert (await checker(spec)).status is Status.UP
    assert service.connections == 2


async def test_refused_connection(checker: Callable[[CheckSpec], Awaitable[CheckResult]]) -> None:
    """Nothing listening is down with 'connection refused'."""
    result = await checker(spec_for(f"http://127.0.0.1:{unused_port()}"))
    assert (result.status, result.reason) == (Status.DOWN, "connection refused")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "invalid HTTP response: "),
        (b"", "connection closed before answering"),
        (answer(PASS)[:-4], "connection closed in the middle of the answer"),
    ],
    ids=["garbage", "no-answer", "truncated"],
)
async def test_broken_answers_are_down_with_reason(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
    reply: bytes,
    reason: str,
) -> None:
    """Something that is not a whole HTTP answer is down, saying what was wrong."""

    async def conversation(peer: Peer) -> None:
        if await peer.request():
            peer.writer.write(reply)

    _, url = await raw(conversation)
    result = await checker(spec_for(url))
    assert result.status is Status.DOWN
    assert result.reason is not None
    assert result.reason.startswith(reason)


async def test_timeout_then_recovery_on_a_new_connection(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
) -> None:
    """A check that times out closes its connection; the next check reconnects and is up."""

    async def conversation(peer: Peer) -> None:
        while await peer.request():
            if peer.number == 1:
                await peer.until_client_closes()
                return
            peer.writer.write(answer(PASS))

    service, url = await raw(conversation)
    spec = spec_for(url, timeout_ms=200)
    late = await checker(spec)
    assert (late.status, late.reason) == (Status.DOWN, "no answer within 200 ms")
    await asyncio.wait_for(service.peers[0].closed, WAIT_S)
    assert (await checker(spec)).status is Status.UP
    assert service.connections == 2


async def test_request_headers_and_secrets_are_sent(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
    checker: Callable[[CheckSpec], Awaitable[CheckResult]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request names the host, healthmon and health+json, and carries secret headers."""
    monkeypatch.setenv("HM_PROBE_TOKEN", "t0ps3cret")

    async def conversation(peer: Peer) -> None:
        while await peer.request():
            peer.writer.write(answer(PASS))

    service, url = await raw(conversation)
    spec = spec_for(
        url,
        health_path="/ready",
        headers={"Authorization": "Bearer ${HM_PROBE_TOKEN}", "X-Tenant": "blue"},
    )
    assert (await checker(spec)).status is Status.UP
    lines = service.requests[0].decode().split("\r\n")
    assert lines[0] == "GET /ready HTTP/1.1"
    assert f"Host: {url.removeprefix('http://')}" in lines
    assert "User-Agent: healthmon" in lines
    assert any(line.startswith("Accept: application/health+json") for line in lines)
    assert "Authorization: Bearer t0ps3cret" in lines
    assert "X-Tenant: blue" in lines


async def test_monitor_closes_connections_it_no_longer_needs(
    raw: Callable[[Conversation], Awaitable[tuple[RawService, str]]],
) -> None:
    """Changing a service reconnects it; stopping the monitor closes its connection."""
    answered: asyncio.Queue[int] = asyncio.Queue()

    async def conversation(peer: Peer) -> None:
        while await peer.request():
            peer.writer.write(answer(PASS))
            answered.put_nowait(peer.number)

    service, url = await raw(conversation)
    settings = MonitorSettings(interval_ms=20, heartbeat_ms=1000)
    before = ServiceSettings(name="svc", url=url)
    monitor = Monitor([before], settings, MemoryBroker())
    try:
        async with asyncio.timeout(WAIT_S):
            await monitor.start()
            assert await answered.get() == 1
            await monitor.set_services([before.model_copy(update={"timeout_ms": 900})], settings)
            await service.peers[0].closed
            while await answered.get() != 2:
                pass
    finally:
        await monitor.stop()
    await asyncio.wait_for(service.peers[1].closed, WAIT_S)
    assert service.connections == 2


def test_under_uvloop() -> None:
    """Under uvloop (healthmon's loop when installed) checks reuse and replace connections too."""
    import uvloop  # the dev extras install it: a missing uvloop fails, never skips

    async def conversation(peer: Peer) -> None:
        # The first connection answers twice, then drops the third request.
        for _ in range(2 if peer.number == 1 else 10):
            if not await peer.request():
                return
            peer.writer.write(answer(PASS))
        await peer.request()

    async def scenario() -> tuple[list[Status], int]:
        service = RawService(conversation)
        spec = spec_for(await service.start())
        probe = _probe(spec)
        try:
            async with aiohttp.ClientSession() as session:
                results = [await check_once(session, spec, probe) for _ in range(4)]
        finally:
            await probe.aclose()
            await service.stop()
        return [r.status for r in results], service.connections

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(scenario()) == ([Status.UP] * 4, 2)
