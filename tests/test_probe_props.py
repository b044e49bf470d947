"""Property tests: the probe survives any bytes, and never reuses a misframed connection.

One loopback server per module answers the first connection of each example
with the example's bytes and every later request with a clean answer, counting
the connections it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator

import aiohttp
import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from healthmon.checker import CheckSpec
from healthmon.checks.http import check_once
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.models import CheckResult, Status
from healthmon.probe import Answer, Probe, ProbeError

WAIT_S = 5.0
PASS = b'{"status":"pass"}'
CLEAN = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n" + PASS
MAX_BODY = 64 * 1024 + 1

FRAGMENTS = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 503 Service Unavailable\r\n",
    b"HTTP/1.1 204 No Content\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Content-Type: application/health+json\r\n",
    b"\r\n",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    PASS,
    b'{"status":"fail"}',
]
http_ish = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=16), max_size=12).map(b"".join)
any_reply = st.binary(max_size=300) | http_ish


class Wire:
    """The server: the first connection of an example gets ``reply``, later ones CLEAN."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self.runner = runner
        self.reply = b""
        self.keep = False
        self.accepted = 0
        self.url = ""
        self.tls_url = ""
        self.session: aiohttp.ClientSession | None = None
        self._servers: list[asyncio.Server] = []

    def example(self, reply: bytes, keep: bool) -> None:
        """Start an example: ``keep`` leaves the first connection open after the reply."""
        self.reply, self.keep, self.accepted = reply, keep, 0

    async def start(self) -> None:
        # The same conversation over TLS, where checks go through aiohttp.
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
        for tls in (None, context):
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
            self._servers.append(server)
        ports = [server.sockets[0].getsockname()[1] for server in self._servers]
        self.url, self.tls_url = f"http://127.0.0.1:{ports[0]}", f"https://127.0.0.1:{ports[1]}"
        self.session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        for server in self._servers:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        first = self.accepted == 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(self.reply if first else CLEAN)
                await writer.drain()
                if first and not self.keep:
                    break
                first = False
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture(scope="module")
def wire() -> Iterator[Wire]:
    with asyncio.Runner() as runner:
        server = Wire(runner)
        runner.run(server.start())
        try:
            yield server
        finally:
            runner.run(server.stop())


async def fetch_twice(wire: Wire) -> tuple[Answer | ProbeError, Answer]:
    """The example's answer (or the error), then the next, clean one."""
    probe = Probe(wire.url + "/health", "GET", [], MAX_BODY)
    try:
        async with asyncio.timeout(WAIT_S):
            try:
                first: Answer | ProbeError = await probe.fetch()
            except ProbeError as exc:
                first = exc
            return first, await probe.fetch()
    finally:
        await probe.aclose()


@settings(max_examples=50, deadline=None)
@given(reply=any_reply)
def test_any_reply_is_an_answer_or_a_probe_error(wire: Wire, reply: bytes) -> None:
    """Any bytes are an answer or a ProbeError, and the next check gets its clean answer."""
    wire.example(reply, keep=False)
    _, second = wire.runner.run(fetch_twice(wire))
    assert (second.status, second.body) == (200, PASS)
    # The server closed the first connection: the clean answer came on a new one.
    assert wire.accepted == 2


def framed(status: int, body: bytes, chunked: bool) -> bytes:
    if chunked:
        head = f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        chunks = b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]) if part
        )
        return head + chunks + b"0\r\n\r\n"
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


@settings(max_examples=50, deadline=None)
@given(
    status=st.sampled_from([200, 201, 404, 500, 503]),
    body=st.binary(max_size=200),
    chunked=st.booleans(),
    suffix=st.binary(max_size=40) | http_ish,
)
def test_bytes_past_the_framing_are_never_read_as_the_next_answer(
    wire: Wire, status: int, body: bytes, chunked: bool, suffix: bytes
) -> None:
    """A whole answer counts; bytes after it close the connection, so the next check is clean."""
    wire.example(framed(status, body, chunked) + suffix, keep=True)
    first, second = wire.runner.run(fetch_twice(wire))
    assert isinstance(first, Answer)
    assert (first.status, first.body) == (status, body)
    assert (second.status, second.body) == (200, PASS)
    if not suffix:
        assert wire.accepted == 1  # a clean answer keeps its connection
    elif suffix.strip(b"\r\n"):
        assert wire.accepted == 2  # anything but the CR/LF llhttp skips closes it


def spec_for(url: str) -> CheckSpec:
    service = ServiceSettings.model_validate(
        {"name": "svc", "url": url, "timeout_ms": 2000, "verify_tls": False}
    )
    return CheckSpec.resolve(service, MonitorSettings())


async def check(wire: Wire, tls: bool) -> CheckResult:
    assert wire.session is not None
    return await check_once(wire.session, spec_for(wire.tls_url if tls else wire.url))


@settings(max_examples=50, deadline=None)
@given(reply=any_reply, tls=st.booleans())
def test_any_reply_is_a_check_result(wire: Wire, reply: bytes, tls: bool) -> None:
    """check_once (the probe, or aiohttp over TLS) turns any reply into a result, never raises."""
    wire.example(reply, keep=False)
    with capture_logs() as logs:
        result = wire.runner.run(check(wire, tls))
    # Every failure was one the checker knows how to name, not its last-resort catch.
    assert [e for e in logs if e["event"] in ("check.failed", "check.unreadable_body")] == []
    assert isinstance(result, CheckResult)
    assert result.status in (Status.UP, Status.DEGRADED, Status.DOWN)
    assert (result.reason is None) == (result.status is Status.UP)
