"""A keep-alive HTTP/1.1 client for plain ``http://`` checks: one connection per service.

aiohttp's client spends about 250 µs of CPU setting up each request, more than
2,000 services checked twice a second can afford on one core. A ``Probe``
builds its request bytes once, keeps one connection open between checks and
sends one request at a time (a service's check loop never has two in flight).
Answers are parsed by httptools (llhttp, the parser uvicorn uses), so the HTTP
grammar — chunked bodies, HTTP/1.0, keep-alive rules — is a well-kept
library's job, not ours.

Limits: a response head (status line and header fields, interim answers
included) over ``MAX_HEAD_BYTES`` (16 KiB) or with more than ``MAX_HEADERS``
(100) header fields is no usable answer (``ProbeError``, so the check is DOWN);
a body is read up to the caller's ``max_body`` bytes, and the connection is not
kept after a longer one. Framing: an answer must end where its Content-Length
or chunking says. Bytes after it (in the same read or later), or a parser error
once it is complete, close the connection, so they are never taken for the
start of the next answer; the complete answer itself still counts. llhttp skips
bare CR/LF between answers, as HTTP allows; those cannot be mistaken for an answer.

A kept connection that the service closes or resets while idle is news: its
process may have died (the kernel closes its sockets at once) or it may only
have timed the connection out. ``on_idle_lost`` says so; the next fetch
reconnects either way, so a timed-out connection never costs a failed check.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable, Iterable
from typing import NamedTuple, cast

import httptools
import yarl

# Limits on an answer's head; over either there is no usable answer.
#: Bytes of status line and header fields, interim (1xx) answers included.
MAX_HEAD_BYTES = 16 * 1024
#: Header fields in one answer, interim (1xx) answers included.
MAX_HEADERS = 100


class Answer(NamedTuple):
    """What a service answered: its status code, body and Content-Type ("" if none)."""

    status: int
    body: bytes
    content_type: str = ""


def connect_failure(exc: OSError) -> str:
    """Why a connection could not be opened, in the words every kind of check uses.

    A reset while connecting (a listener closed with the connection still in
    its queue: a service stopping) reads as the reset it is, like one later on.
    """
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, ConnectionResetError) or exc.errno == errno.ECONNRESET:
        return f"network error: {exc.strerror or 'Connection reset by peer'}"
    return f"cannot connect: {exc.strerror or exc}"


class ProbeError(Exception):
    """No usable answer; the message is the reason a person sees."""


class _Stale(ProbeError):
    """A kept-alive connection closed before any byte of the answer: ask again."""


class _Overrun(Exception):
    """Bytes after a complete answer: the server broke HTTP framing (stops the parser)."""


# Headers that say where the body ends; without either it ends when the server closes.
_FRAMING = (b"content-length", b"transfer-encoding")
_HEAD_TOO_BIG = f"response headers over {MAX_HEAD_BYTES // 1024} KiB"


class Probe:
    """One service's HTTP connection, reused from check to check."""

    def __init__(
        self,
        url: str,
        method: str,
        headers: Iterable[tuple[str, str]],
        max_body: int,
        on_idle_lost: Callable[[], None] | None = None,
    ) -> None:
        target = yarl.URL(url)
        # Checked by config: an absolute http:// URL with a host.
        self._host = target.raw_host or ""
        self._port = target.port or 80
        self._head = method == "HEAD"
        self._max_body = max_body
        self._request = _request_bytes(
            method, target.raw_path_qs, [("Host", target.host_port_subcomponent or ""), *headers]
        )
        self._connection: _Connection | None = None
        self._on_idle_lost = on_idle_lost

    async def fetch(self) -> Answer:
        """Send the request; the status code, at most ``max_body`` bytes of the body, the type.

        Raises ``ProbeError`` with the reason when there is no answer. A caller's
        timeout (cancellation) closes the connection: the next fetch reconnects.
        """
        connection = self._connection
        if connection is not None and connection.reusable:
            try:
                return await self._exchange(connection)
            except _Stale:
                # The server closed the idle connection as we sent: that says
                # nothing about the service, so ask once on a fresh one.
                pass
        return await self._exchange(await self._connect())

    async def aclose(self) -> None:
        """Close the connection, if any, and wait until it is closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.abort()
            await connection.lost

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self._on_idle_lost), self._host, self._port
            )
        except OSError as exc:
            raise ProbeError(connect_failure(exc)) from None
        self._connection = connection
        return connection

    async def _exchange(self, connection: _Connection) -> Answer:
        try:
            return await connection.send(self._request, self._head, self._max_body)
        except BaseException:
            # A timeout or a broken answer leaves the connection in an unknown state.
            connection.abort()
            raise


def _request_bytes(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The request; header names and values were validated with the config."""
    merged: dict[str, tuple[str, str]] = {}
    for name, value in headers:
        # A later header of the same name (a service's own Host or Accept) wins.
        merged[name.lower()] = (name, value)
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in merged.values()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Connection(asyncio.Protocol):
    """One TCP connection, reading one answer at a time."""

    def __init__(self, on_idle_lost: Callable[[], None] | None = None) -> None:
        self._on_idle_lost = on_idle_lost
        self._transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # True while idle after an answer the server let us keep the connection for.
        self.reusable = False
        self._answered = False
        self._answer: asyncio.Future[Answer] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._head = False
        self._max_body = 0
        self._received = False
        self._status = 0
        self._headers_done = False
        self._framed = False
        self._keep_alive = False
        self._body: list[bytes] = []
        self._size = 0
        self._content_type = ""
        # The head's size two ways: raw bytes fed while it is incomplete (httptools
        # gathers a whole header field before calling back), and parsed fields.
        self._head_raw = 0
        self._head_fields = 0
        self._headers = 0

    def send(self, request: bytes, head: bool, max_body: int) -> asyncio.Future[Answer]:
        assert self._transport is not None
        assert self._answer is None
        self.reusable = False
        self._answer = asyncio.get_running_loop().create_future()
        if self._parser is None or head:
            # llhttp reads answer after answer on a connection; but after a HEAD
            # answer with a Content-Length it would wait for a body that never comes.
            self._parser = httptools.HttpResponseParser(self)
        self._head, self._max_body = head, max_body
        self._received = False
        self._interim_reset()
        self._head_raw, self._head_fields, self._headers = 0, 0, 0
        self._transport.write(request)
        return self._answer

    def abort(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()

    def _interim_reset(self) -> None:
        self._status, self._headers_done, self._framed = 0, False, False
        self._body, self._size, self._content_type = [], 0, ""

    def _finish(self, body: bytes, keep: bool) -> None:
        answer, self._answer = self._answer, None
        assert answer is not None
        self._answered = True
        if not answer.done():
            answer.set_result(Answer(self._status, body, self._content_type))
        if keep:
            self.reusable = True
        elif self._transport is not None:
            self._transport.close()

    def _fail(self, error: ProbeError) -> None:
        answer, self._answer = self._answer, None
        assert answer is not None
        if not answer.done():
            answer.set_exception(error)
        self.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is no asyncio.Transport subclass).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None:
            # Bytes nobody asked for: the server broke HTTP; start afresh next time.
            self.abort()
            return
        assert self._parser is not None
        self._received = True
        if not self._headers_done:
            self._head_raw += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self._answer is None:
                # The answer was complete and judged; what followed it broke
                # the framing, so nothing more is read from this connection.
                self.abort()
                return
            refused = exc.__context__
            if isinstance(refused, ProbeError):
                self._fail(refused)
            else:
                detail = str(exc) or type(exc).__name__
                self._fail(ProbeError(f"invalid HTTP response: {detail}"))
            return
        if self._answer is not None and not self._headers_done and self._head_raw > MAX_HEAD_BYTES:
            self._fail(ProbeError(_HEAD_TOO_BIG))

    def connection_lost(self, exc: Exception | None) -> None:
        # Still reusable means idle and not closed by us (abort() clears it first).
        idle, self.reusable = self.reusable, False
        self._transport = None
        if not self.lost.done():
            self.lost.set_result(None)
        if idle and self._on_idle_lost is not None:
            self._on_idle_lost()
        if self._answer is None:
            return
        if self._headers_done and not self._framed:
            # No Content-Length, not chunked: the body ends where the connection does.
            self._finish(b"".join(self._body), keep=False)
        elif self._answered and not self._received:
            self._fail(_Stale("connection closed before answering"))
        elif isinstance(exc, OSError):
            self._fail(ProbeError(f"network error: {exc.strerror or exc}"))
        elif self._received:
            self._fail(ProbeError("connection closed in the middle of the answer"))
        else:
            self._fail(ProbeError("connection closed before answering"))

    # httptools callbacks. One raising stops the parser: feed_data raises
    # HttpParserCallbackError with the callback's exception as its __context__.

    def _check_head(self, more: int) -> None:
        self._head_fields += more
        if self._head_fields > MAX_HEAD_BYTES:
            raise ProbeError(_HEAD_TOO_BIG)

    def on_message_begin(self) -> None:
        if self._answer is None:
            # A second answer nobody asked for: the last one overran its framing.
            raise _Overrun

    def on_status(self, status: bytes) -> None:
        if self._answer is not None:
            self._check_head(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._answer is None:
            return
        self._headers += 1
        if self._headers > MAX_HEADERS:
            raise ProbeError(f"more than {MAX_HEADERS} response headers")
        self._check_head(len(name) + len(value))
        lowered = name.lower()
        if lowered in _FRAMING:
            self._framed = True
        elif lowered == b"content-type":
            self._content_type = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self._answer is None:
            return
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        if 100 <= self._status < 200 and self._status != 101:
            return  # interim (100 Continue, 103 Early Hints): the answer follows
        self._headers_done = True
        self._keep_alive = self._parser.should_keep_alive()
        if self._head:
            self._finish(b"", keep=self._keep_alive)

    def on_body(self, body: bytes) -> None:
        if self._answer is None:
            # After a HEAD answer (which has no body) or one cut at max_body.
            raise _Overrun
        self._body.append(body)
        self._size += len(body)
        if self._size > self._max_body:
            # Enough to judge by; the rest is not read, so the connection goes.
            self._finish(b"".join(self._body)[: self._max_body], keep=False)

    def on_message_complete(self) -> None:
        if self._answer is None:
            return
        if not self._headers_done:
            self._interim_reset()
            return
        self._finish(b"".join(self._body), keep=self._keep_alive)
