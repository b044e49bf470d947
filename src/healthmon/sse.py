"""Server-Sent Events: the socket's messages over plain HTTP, ``GET /events``.

For networks whose proxies break WebSocket upgrades. The stream carries the
same JSON as the socket, in the same order: each numbered message as

    id: <stream>:<seq>
    event: statusUpdate
    data: {...}

and welcome and heartbeats with no ``id:`` line (a browser keeps the last id
it saw, so a reconnection resumes from the last numbered message). A
``retry:`` line comes first and a ``: keep-alive`` comment every 15 s.
``Last-Event-ID`` (or ``?since=``, the same format) resumes as the socket's
``?since=`` does.

Like the hub, a message is formatted once per broadcast and the same bytes
are written to every stream's transport, framed as an HTTP/1.1 chunk (the
response is chunked; aiohttp's own writer sends the headers, the first chunk
and the last). An HTTP/1.0 stream is not chunked, so its connection closes
when the stream ends, keep-alive or not. Writing never waits; a stream whose
unsent backlog passes the bound is dropped, and its client resumes where it
left off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import structlog
from aiohttp import web
from aiohttp.http import HttpVersion11

from healthmon.hub import HEARTBEAT_SLICE, Encoded, Hub, Since, parse_since, send
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

# How long a browser waits before reconnecting a stream that ended.
RETRY_MS = 1000
# A comment this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0
KEEPALIVE = b": keep-alive\n\n"


def event(message: Encoded, stream: str) -> bytes:
    """One event: ``id:`` for numbered messages, ``event:`` its type, ``data:`` its JSON line."""
    head = b"" if message.seq is None else f"id: {stream}:{message.seq}\n".encode()
    return b"%sevent: %s\ndata: %s\n\n" % (head, message.type.encode(), message.json)


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk (RFC 9112 §7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


class EventStreams:
    """Every open ``/events`` stream, fed by the hub as one of its outlets."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.enabled = True
        # Each open stream's transport, and what ends it (resolved when it is
        # dropped, switched off or shut down); the few HTTP/1.0 ones, unchunked.
        self.streams: dict[asyncio.Transport, asyncio.Future[None]] = {}
        self.plain: set[asyncio.Transport] = set()
        self.dropped = 0
        hub.outlets.append(self)

    def __len__(self) -> int:
        return len(self.streams)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /events``: the stream ends when it is dropped or switched off."""
        if not self.enabled:
            raise web.HTTPServiceUnavailable(text="event stream is switched off")
        origin = request.headers.get("Origin")
        if origin is not None and not self.hub.origin_allowed(origin, self.hub.web):
            log.warning("sse.origin_refused", origin=origin)
            raise web.HTTPForbidden(text=f"origin {origin} is not allowed")
        since = parse_since(request.headers.get("Last-Event-ID") or request.query.get("since"))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                # nginx: pass each event on at once.
                "X-Accel-Buffering": "no",
            }
        )
        chunked = request.version >= HttpVersion11
        if chunked:
            response.enable_chunked_encoding()
        else:
            # Unframed (HTTP/1.0), only the end of the connection can end the
            # stream: never keep it alive, whatever the request asks for.
            response.force_close()
        await response.prepare(request)
        transport = request.transport
        if transport is None:  # the client left already
            return response
        try:
            # Built inside the call: nothing of it stays referenced while the stream is open.
            await response.write(
                b"retry: %d\n\n%s" % (RETRY_MS, event(self.hub.welcome(joining=1), self.hub.stream))
            )
        except ConnectionError:
            return response
        if self.hub.catch_up(since) is None:
            await self.hub.wait_ready()
        if self.enabled and self._open(transport, since, chunked):
            try:
                await self.streams[transport]
            finally:
                self.streams.pop(transport, None)
                self.plain.discard(transport)
        return response

    def _open(self, transport: asyncio.Transport, since: Since | None, chunked: bool) -> bool:
        """Write what it missed (or its snapshot) and register, with no await between them.

        No change can fall in the gap and none can come first; nothing of the
        opening stays referenced while the stream is open.
        """
        stream = self.hub.stream
        body = self.hub.opening(since, lambda message: event(message, stream))
        if transport.is_closing():
            return False
        # Nothing missed, nothing to write: an empty chunk would end the response.
        if body and not send(transport, chunk(body) if chunked else body):
            return False
        self.streams[transport] = asyncio.get_running_loop().create_future()
        if not chunked:
            self.plain.add(transport)
        return True

    # -- writing -----------------------------------------------------------

    def publish(self, message: Encoded) -> None:
        if self.streams:
            self._write(event(message, self.hub.stream), self.streams)

    async def publish_gently(self, message: Encoded) -> None:
        await self._write_gently(event(message, self.hub.stream))

    async def _write_gently(self, data: bytes) -> None:
        transports = list(self.streams)
        for start in range(0, len(transports), HEARTBEAT_SLICE):
            # A stream that ended meanwhile fails its write quietly.
            self._write(data, transports[start : start + HEARTBEAT_SLICE])
            await asyncio.sleep(0)

    def _write(self, data: bytes, transports: Iterable[asyncio.Transport]) -> None:
        framed, plain = chunk(data), self.plain
        slow = [t for t in transports if not send(t, data if t in plain else framed)]
        for transport in slow:
            self._drop(transport)

    def _drop(self, transport: asyncio.Transport) -> None:
        done = self.streams.pop(transport, None)
        if done is not None and not done.done():
            done.set_result(None)
        if not transport.is_closing():
            self.dropped += 1
            log.warning("sse.client_dropped", reason="backlog over limit", dropped=self.dropped)
            # Abort frees the backlog now; the end of the stream would wait behind it.
            transport.abort()

    async def keepalive(self) -> None:
        """A comment every ``KEEPALIVE_S``, so idle proxies keep the streams open."""
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            await self._write_gently(KEEPALIVE)

    # -- switching the channel ---------------------------------------------

    async def set_enabled(self, enabled: bool) -> None:
        """Off: end every open stream and refuse new ones (503) until on again."""
        self.enabled = enabled
        if not enabled:
            self.close_all()

    def close_all(self) -> None:
        ends = list(self.streams.values())
        self.streams.clear()
        for done in ends:
            if not done.done():
                done.set_result(None)


EVENTS = web.AppKey("events", EventStreams)


async def _keepalive(app: web.Application) -> AsyncIterator[None]:
    task = supervise("sse.keepalive", app[EVENTS].keepalive)
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _close_streams(app: web.Application) -> None:
    app[EVENTS].close_all()


def setup_events(app: web.Application, hub: Hub) -> EventStreams:
    """``GET /events`` beside the hub's socket, its keep-alive, and its end at shutdown."""
    events = app[EVENTS] = EventStreams(hub)
    # No HEAD: a stream's events are written past aiohttp's writer, which alone knows to omit them.
    app.router.add_get("/events", events.handle, allow_head=False)
    app.cleanup_ctx.append(_keepalive)
    app.on_shutdown.append(_close_streams)
    return events
