"""GET /events (Server-Sent Events), and what pages on other origins may read."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from healthmon import sse
from healthmon.hub import JOURNAL_SIZE
from healthmon.keys import HUB, MOCKS
from healthmon.paths import static_dir
from healthmon.sse import EVENTS
from tests.support import System

LISTED = "http://localhost:5173"  # in make_settings' default [web] cors_origins
UNLISTED = "http://evil.example"


@dataclass
class Event:
    """One event as a browser's EventSource sees it."""

    event: str
    data: dict[str, Any]
    id: str | None


@dataclass
class Events:
    """An /events stream read as a browser would: events, and the comments and retry between."""

    response: aiohttp.ClientResponse
    buffer: bytes = b""
    seen: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)

    async def _block(self) -> bytes | None:
        while b"\n\n" not in self.buffer:
            chunk = await self.response.content.readany()
            if not chunk:
                return None
            self.buffer += chunk
        block, self.buffer = self.buffer.split(b"\n\n", 1)
        return block

    async def next(self, within: float = 5.0) -> Event:
        async with asyncio.timeout(within):
            while True:
                block = await self._block()
                if block is None:
                    raise EOFError("the stream ended")
                fields: dict[str, str] = {}
                for line in block.decode().split("\n"):
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "":
                        self.comments.append(value)
                    elif name == "retry":
                        self.retry.append(int(value))
                    else:
                        fields[name] = value
                if "data" in fields:
                    event = Event(
                        fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")
                    )
                    self.seen.append(event)
                    return event

    async def until(self, predicate: Callable[[Event], bool], within: float = 5.0) -> Event:
        async with asyncio.timeout(within):
            while True:
                if predicate(event := await self.next(within)):
                    return event

    async def ended(self, within: float = 5.0) -> bool:
        """Reads until the stream ends; True when it did within the time."""
        async with asyncio.timeout(within):
            while await self._block() is not None:
                pass
        return True


@pytest.fixture
async def streams(system: System) -> AsyncIterator[Callable[..., Any]]:
    """Opens /events streams (with optional headers and query), closed after the test."""
    opened: list[aiohttp.ClientResponse] = []

    async def open_events(headers: dict[str, str] | None = None, **params: str) -> Events:
        response = await system.session.get(f"{system.base}/events", headers=headers, params=params)
        opened.append(response)
        assert response.status == 200, await response.text()
        return Events(response)

    yield open_events
    for response in opened:
        response.close()


async def started(events: Events) -> Event:
    """Reads welcome and the initial snapshot; returns the snapshot."""
    assert (await events.next()).event == "welcome"
    snapshot = await events.next()
    assert snapshot.event == "initialSnapshot"
    return snapshot


async def test_events_start_with_retry_welcome_and_a_numbered_snapshot(
    system: System, streams: Callable[..., Any]
) -> None:
    """The stream is text/event-stream: retry first, welcome with no id, a snapshot with its id."""
    events: Events = await streams()
    assert events.response.headers["Content-Type"] == "text/event-stream"
    assert events.response.headers["Cache-Control"] == "no-cache"
    assert events.response.headers["X-Content-Type-Options"] == "nosniff"
    welcome = await events.next()
    assert events.retry == [1000]
    assert (welcome.event, welcome.id, welcome.data["type"]) == ("welcome", None, "welcome")
    assert welcome.data["clients"] == 1
    snapshot = await events.next()
    hub = system.app[HUB]
    assert snapshot.event == snapshot.data["type"] == "initialSnapshot"
    assert snapshot.id == f"{hub.stream}:{snapshot.data['seq']}"
    assert set(snapshot.data["services"]) == {s.name for s in system.settings.services}


async def test_events_carry_the_same_messages_as_the_socket(
    system: System, streams: Callable[..., Any]
) -> None:
    """A change reaches the stream and the socket as the same message, the same number."""
    socket_client = await system.connected()
    events: Events = await streams()
    await started(events)
    await system.set_mode("billing", "down")
    on_socket = await socket_client.until(lambda m: m["type"] == "statusUpdate")
    on_stream = await events.until(lambda e: e.event == "statusUpdate")
    assert on_stream.data == on_socket
    assert on_stream.id == f"{on_socket['stream']}:{on_socket['seq']}"
    assert on_stream.data["data"]["service"] == "billing"
    beat = await events.until(lambda e: e.event == "heartbeat")
    assert beat.id is None
    assert beat.data["monitor"]["alive"] is True


async def test_last_event_id_resumes_with_exactly_the_missed_events(
    system: System, streams: Callable[..., Any]
) -> None:
    """Last-Event-ID (or ?since=) replays exactly the numbered events after it, then live ones."""
    watcher = await system.connected()
    first: Events = await streams()
    last_id = (await started(first)).id
    assert last_id is not None
    first.response.close()
    await system.set_mode("billing", "down")
    await watcher.update_for("billing")
    await system.set_mode("auth", "error")
    await watcher.update_for("auth")
    missed = [m for m in watcher.seen if m["type"] == "statusUpdate"]
    for back in (
        await streams({"Last-Event-ID": last_id}),
        await streams(since=last_id),
        # The header wins: a browser's reconnection sends the newer id.
        await streams({"Last-Event-ID": last_id}, since="0:0"),
    ):
        assert (await back.next()).event == "welcome"
        for expected in missed:
            replayed = await back.until(lambda e: e.event != "heartbeat")
            assert replayed.data == expected
            assert replayed.id == f"{expected['stream']}:{expected['seq']}"
    await system.set_mode("billing", "up")
    live = await back.until(lambda e: e.event != "heartbeat")
    assert live.data["seq"] == missed[-1]["seq"] + 1
    assert not any(e.event == "initialSnapshot" for e in back.seen)


async def test_resuming_with_nothing_missed_keeps_the_stream_open(
    system: System, streams: Callable[..., Any]
) -> None:
    """A stream that resumes at the latest id gets welcome, then heartbeats: it stays open."""
    first: Events = await streams()
    last_id = (await started(first)).id
    assert last_id is not None
    first.response.close()
    back: Events = await streams({"Last-Event-ID": last_id})
    assert (await back.next()).event == "welcome"
    # Then only what happens from now on (the history store may report itself ready
    # meanwhile: historyState) and heartbeats; never a snapshot.
    await back.until(lambda e: e.event == "heartbeat")
    await system.set_mode("billing", "down")
    live = await back.until(lambda e: e.event == "statusUpdate")
    assert live.data["data"]["service"] == "billing"
    assert not any(e.event == "initialSnapshot" for e in back.seen)


async def test_an_id_too_old_or_foreign_gets_a_snapshot(
    system: System, streams: Callable[..., Any]
) -> None:
    """An id older than the journal, from another hub or garbage: a fresh, numbered snapshot."""
    first: Events = await streams()
    old_id = (await started(first)).id
    assert old_id is not None
    first.response.close()
    hub = system.app[HUB]
    for _ in range(JOURNAL_SIZE + 1):
        hub.show_config_error(None)
    for last_id in (old_id, "0123456789ab:1", "not an id"):
        back: Events = await streams({"Last-Event-ID": last_id})
        snapshot = await started(back)
        assert snapshot.id == f"{hub.stream}:{hub.seq}"


async def test_sse_switched_off_ends_streams_and_refuses_new_ones(
    system: System, streams: Callable[..., Any]
) -> None:
    """The sse switch ends open streams and answers 503 until on; the WebSocket stays open."""
    socket_client = await system.connected()
    events: Events = await streams()
    await started(events)
    status, body = await system.post("/api/components/sse", {"running": False})
    assert (status, body) == (200, {"component": "sse", "running": False})
    assert await events.ended()
    async with system.session.get(f"{system.base}/events") as refused:
        assert refused.status == 503
    document = await system.get("/api/services")
    assert document["sse"] == {"running": False, "clients": 0}
    await system.set_mode("auth", "down")
    assert (await socket_client.update_for("auth"))["up"] is False
    await system.post("/api/components/sse", {"running": True})
    await started(await streams())


async def test_ws_switched_off_leaves_the_streams_open(
    system: System, streams: Callable[..., Any]
) -> None:
    """Switching the WebSocket off closes sockets only: a stream keeps getting changes."""
    events: Events = await streams()
    await started(events)
    await system.post("/api/components/ws", {"running": False})
    await system.set_mode("billing", "down")
    update = await events.until(lambda e: e.event == "statusUpdate")
    assert update.data["data"]["service"] == "billing"


async def test_head_on_events_is_refused(system: System) -> None:
    """HEAD /events gets 405: a stream's events would follow a HEAD answer's headers."""
    async with system.session.head(f"{system.base}/events") as response:
        assert response.status == 405


@pytest.fixture
def fast_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    """A keep-alive period of 50 ms, set before the app starts its loop."""
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.05)


@pytest.mark.usefixtures("fast_keepalive")
async def test_keepalive_comments_flow(system: System, streams: Callable[..., Any]) -> None:
    """A ': keep-alive' comment is written to every stream each keep-alive period."""
    events: Events = await streams()
    await started(events)
    async with asyncio.timeout(5):
        while "keep-alive" not in events.comments:
            await events.next()


async def test_a_slow_stream_is_dropped_and_a_fast_one_gets_everything(
    system: System, streams: Callable[..., Any]
) -> None:
    """A stream that stops reading is dropped at its backlog bound; others get every event."""
    fast: Events = await streams()
    await started(fast)
    port = system.settings.web.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert b"200" in await reader.readline()
    await asyncio.wait_for(reader.readuntil(b"initialSnapshot"), 5)
    events = system.app[EVENTS]
    blob = "y" * 60_000
    for index in range(1000):
        system.app[HUB].broadcast({"type": "bulk", "index": index, "blob": blob})
        received = await fast.until(lambda e: e.event == "bulk")
        assert received.data["index"] == index
        if events.dropped:
            break
    assert events.dropped == 1
    assert len(events) == 1
    writer.close()


# -- cross-origin ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/statuses", "/api/services", "/client.js", "/events"])
async def test_a_listed_origin_may_read(system: System, path: str) -> None:
    """A page on an origin in cors_origins may read the shared routes (CORS allows its origin)."""
    async with system.session.get(system.base + path, headers={"Origin": LISTED}) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == LISTED
        assert "Origin" in response.headers.getall("Vary")


@pytest.mark.parametrize("path", ["/statuses", "/api/services", "/client.js"])
async def test_an_unlisted_origin_gets_no_cors_headers(system: System, path: str) -> None:
    """Another origin's page gets the answer without CORS headers, so its browser hides it."""
    async with system.session.get(system.base + path, headers={"Origin": UNLISTED}) as response:
        assert response.status == 200
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Origin" in response.headers.getall("Vary")


async def test_an_unlisted_origin_is_refused_the_channels(system: System) -> None:
    """/events and /ws refuse an unlisted origin with 403; a listed one opens both."""
    async with system.session.get(
        f"{system.base}/events", headers={"Origin": UNLISTED}
    ) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await system.connect(Origin=UNLISTED)
    assert refused.value.status == 403
    messages = await system.connect(Origin=LISTED)
    assert (await messages.next())["type"] == "welcome"


async def test_preflight_is_answered_for_listed_origins_only(system: System) -> None:
    """OPTIONS on a shared route: 204 with GET and Last-Event-ID for listed origins, else 403."""
    headers = {"Origin": LISTED, "Access-Control-Request-Method": "GET"}
    async with system.session.options(f"{system.base}/events", headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == LISTED
        assert "GET" in response.headers["Access-Control-Allow-Methods"]
        assert "Last-Event-ID" in response.headers["Access-Control-Allow-Headers"]
    headers["Origin"] = UNLISTED
    async with system.session.options(f"{system.base}/api/services", headers=headers) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_controls_stay_same_origin(system: System) -> None:
    """A listed origin may read but not switch: controls answer the page's own origins only."""
    own = {"Origin": f"http://127.0.0.1:{system.settings.web.port}"}
    for origin, expected in ((LISTED, 403), (own["Origin"], 200)):
        async with system.session.post(
            f"{system.base}/api/mocks/auth", json={"mode": "down"}, headers={"Origin": origin}
        ) as response:
            assert response.status == expected
    assert system.app[MOCKS]["auth"].mode.value == "down"


async def test_client_module_is_served_as_javascript(system: System) -> None:
    """/client.js is static/client.js as text/javascript, with validators like static files."""
    async with system.session.get(f"{system.base}/client.js") as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
        assert await response.read() == (static_dir() / "client.js").read_bytes()
        etag = response.headers["ETag"]
    async with system.session.get(
        f"{system.base}/client.js", headers={"If-None-Match": etag}
    ) as response:
        assert response.status == 304


async def test_declarations_and_example_are_served(system: System) -> None:
    """/client.d.ts serves the declarations; /example renders the shop listing every service."""
    async with system.session.get(f"{system.base}/client.d.ts") as response:
        assert response.status == 200
        assert response.content_type == "application/typescript"
        assert await response.read() == (static_dir() / "client.d.ts").read_bytes()
    async with system.session.get(f"{system.base}/example") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    for service in system.settings.services:
        assert f'data-hm-status="{service.name}"' in page


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_a_keep_alive_stream_ends_within_a_second_of_sse_off(
    system: System, version: str
) -> None:
    """A stream asked for with Connection: keep-alive ends within 1 s of sse off, on any version."""
    port = system.settings.web.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET /events HTTP/{version}\r\nHost: 127.0.0.1:{port}\r\n"
            "Connection: keep-alive\r\n\r\n".encode()
        )
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode().lower()
        assert head.startswith(f"http/{version} 200")
        # Unframed (HTTP/1.0) the connection itself must end the stream:
        # the answer does not promise to keep it alive.
        framed = "transfer-encoding: chunked" in head
        assert framed or "keep-alive" not in head
        await asyncio.wait_for(reader.readuntil(b"initialSnapshot"), 5)
        await system.post("/api/components/sse", {"running": False})
        async with asyncio.timeout(1):
            rest = b""
            while not (reader.at_eof() or (framed and rest.endswith(b"0\r\n\r\n"))):
                rest += await reader.read(65536)
    finally:
        writer.close()
