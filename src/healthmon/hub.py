"""The WebSocket hub: a snapshot on connect, then every change, plus heartbeats.

A broadcast is encoded once, framed once, and the same bytes are written to
every socket's transport: writing never waits, so one slow reader delays no
one. Each socket's unsent backlog is bounded; a client past the bound is
dropped (it reconnects and gets a fresh snapshot, so it loses nothing).

Every message that changes what a client holds (``initialSnapshot``,
``statusUpdate``, ``configError``, ``restartNeeded``) is numbered: ``stream`` names this hub
instance (new at each start), ``seq`` counts from 1. The last
``JOURNAL_SIZE`` numbered messages are kept, encoded, so a client that comes
back with ``since=<stream>:<seq>`` gets exactly what it missed instead of a
snapshot. Other push channels (Server-Sent Events) are outlets: the
hub hands each message to them encoded once, in the same order.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from healthmon.config import ServiceSettings, WebSettings
from healthmon.models import ServiceState, now_ms
from healthmon.origins import origin_allowed
from healthmon.status import StatusBoard

log = structlog.get_logger(__name__)

# Status changes a snapshot carries for the page's event log.
SNAPSHOT_LOG = 50
# Client frames are read and ignored; anything larger closes the socket (1009).
MAX_CLIENT_FRAME = 4096
# Bytes a client may leave unread before it is dropped.
MAX_BACKLOG = 256 * 1024
# Sockets a heartbeat is written to before the loop gets a turn.
HEARTBEAT_SLICE = 256
# Numbered messages kept for clients that resume.
JOURNAL_SIZE = 1024
# The messages that change what a client holds: numbered, kept, replayed.
NUMBERED = frozenset(
    {"initialSnapshot", "statusUpdate", "configError", "restartNeeded", "historyState"}
)
# ``<stream>:<seq>`` as the hub writes them: lower-case hex, a decimal of at most 18 digits.
_SINCE = re.compile(r"([0-9a-f]{1,32}):(0|[1-9][0-9]{0,17})", re.ASCII)


@dataclass(frozen=True, slots=True)
class Since:
    """Where a client left off: the last numbered message it applied."""

    stream: str
    seq: int

    def __str__(self) -> str:
        return f"{self.stream}:{self.seq}"


def parse_since(value: str | None) -> Since | None:
    """``since`` or ``Last-Event-ID`` as a resume point; None (a snapshot) for anything else."""
    if value is None:
        return None
    match = _SINCE.fullmatch(value.strip())
    if match is None:
        return None
    return Since(match[1], int(match[2]))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message encoded once: its type, its JSON, and its number (None: not numbered)."""

    type: str
    json: bytes
    seq: int | None = None


class Outlet(Protocol):
    """Another kind of push client: handed every broadcast, encoded once."""

    def __len__(self) -> int: ...

    def publish(self, message: Encoded) -> None:
        """Write ``message`` to every client now, without waiting."""

    async def publish_gently(self, message: Encoded) -> None:
        """The same, in slices with the loop free between them (heartbeats)."""


def public_info(service: ServiceSettings) -> dict[str, object]:
    """What a page needs to reach a service itself (URLs only, never headers)."""
    return {
        "url": service.url,
        "health_path": service.health_path,
        "data_endpoint": service.data_endpoint,
        "health_url": service.health_url,
        "data_url": service.data_url,
        "mock": service.mock,
        "kind": service.kind,
    }


def _service_info(services: Iterable[ServiceSettings]) -> dict[str, dict[str, object]]:
    return {s.name: public_info(s) for s in services}


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked, uncompressed text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def ws_frame(message: Encoded) -> bytes:
    return text_frame(message.json)


def encode(message: dict[str, object]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def send(transport: asyncio.Transport, frame: bytes) -> bool:
    """Queue ``frame``; False when the client is gone or too far behind."""
    if transport.is_closing() or transport.get_write_buffer_size() > MAX_BACKLOG:
        return False
    transport.write(frame)
    return True


class Hub:
    def __init__(
        self,
        board: StatusBoard,
        *,
        web_settings: WebSettings,
        heartbeat_ms: int,
        snapshot_wait_ms: int,
        services: Iterable[ServiceSettings],
        config_file: str | None = None,
    ) -> None:
        self.board = board
        self.web = web_settings
        self.heartbeat_s = heartbeat_ms / 1000
        self.snapshot_wait_s = snapshot_wait_ms / 1000
        self.service_info = _service_info(services)
        self.config_error: str | None = None
        # The config file as the user named it (None: the built-in demo), and
        # the keys saved in it that wait for a restart.
        self.config_file = config_file
        self.restart_needed: list[str] = []
        self.enabled = True
        # Every open socket, and those of them that get broadcasts (their
        # snapshot sent); a socket still waiting for its snapshot is only in
        # the first, so a shutdown closes it too.
        self.sockets: set[web.WebSocketResponse] = set()
        # A broadcast client is its transport: the least to keep per socket.
        self.clients: set[asyncio.Transport] = set()
        self.dropped = 0
        self.broadcasts = 0
        self.outlets: list[Outlet] = []
        # This instance's stream of numbered messages, and the latest of them.
        self.stream = secrets.token_hex(6)
        self.seq = 0
        self.journal: deque[Encoded] = deque(maxlen=JOURNAL_SIZE)
        board.on_change.append(self._on_change)
        board.on_liveness.append(self._on_liveness)

    # -- connections -----------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /ws`` (``?since=<stream>:<seq>`` to resume): only this handler reads its socket."""
        if not self.enabled:
            raise web.HTTPServiceUnavailable(text="WebSocket channel is switched off")
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin, self.web):
            log.warning("ws.origin_refused", origin=origin)
            raise web.HTTPForbidden(text=f"origin {origin} is not allowed")
        ws = web.WebSocketResponse(max_msg_size=MAX_CLIENT_FRAME, compress=False)
        await ws.prepare(request)
        transport = request.transport
        if transport is None:  # the peer left during the upgrade
            return ws
        # asyncio's or uvloop's TCP transport (not an asyncio.Transport
        # subclass, so never isinstance-checked): both write, buffer, abort.
        since = parse_since(request.query.get("since"))
        self.sockets.add(ws)
        try:
            await ws.send_str(self.welcome().json.decode())
            if self.catch_up(since) is None:
                await self.wait_ready()
            # What it missed (or its snapshot) and registration with no await
            # between them: no change can fall in the gap, none come before.
            # Nothing of the opening stays referenced while the socket is open.
            if not ws.closed and send(transport, self.opening(since, ws_frame)):
                self.clients.add(transport)
                async for msg in ws:
                    if msg.type is WSMsgType.ERROR:
                        break
        finally:
            self.clients.discard(transport)
            self.sockets.discard(ws)
        return ws

    def origin_allowed(self, origin: str, web: WebSettings) -> bool:
        """Which pages may read this hub's socket and stream (another hub may allow more)."""
        return origin_allowed(origin, None, web)

    def _unknown_names(self) -> list[str]:
        return [n for n in self.board.names if n not in self.board.booleans()]

    async def wait_ready(self) -> None:
        """Until every service has been observed once, or the snapshot wait is over."""
        try:
            await asyncio.wait_for(self.board.ready.wait(), self.snapshot_wait_s)
        except TimeoutError:
            log.warning("ws.snapshot_incomplete", missing=self._unknown_names())

    # -- numbering and resuming ------------------------------------------

    def number(self, message: dict[str, object]) -> Encoded:
        """Encode ``message`` once; a numbered type gets the next ``seq`` and is kept."""
        kind = str(message["type"])
        if kind not in NUMBERED:
            return Encoded(kind, encode(message))
        self.seq += 1
        numbered = Encoded(
            kind, encode({**message, "seq": self.seq, "stream": self.stream}), self.seq
        )
        self.journal.append(numbered)
        return numbered

    def catch_up(self, since: Since | None) -> list[Encoded] | None:
        """The numbered messages after ``since``, in order; None when a snapshot is needed.

        A client can resume when it names this stream and a ``seq`` no older
        than the journal's first message minus one, and not from the future.
        """
        if since is None or since.stream != self.stream:
            return None
        first = self.seq - len(self.journal) + 1
        if not first - 1 <= since.seq <= self.seq:
            return None
        return list(islice(self.journal, since.seq - first + 1, None))

    def opening(self, since: Since | None, frame: Callable[[Encoded], bytes]) -> bytes:
        """What a client gets after its welcome, framed: what it missed, or a snapshot."""
        missed = self.catch_up(since)
        if missed is None:
            return frame(self.snapshot())
        return b"".join(frame(message) for message in missed)

    def welcome(self, joining: int = 0) -> Encoded:
        """The first message on every connection: not numbered, it says where the stream is.

        ``clients`` counts every open socket and stream, and ``joining`` ones
        not registered yet (an event stream registers after its welcome).
        """
        return self.number(
            {
                "type": "welcome",
                "clients": len(self.sockets) + sum(map(len, self.outlets)) + joining,
                "ts": now_ms(),
                "stream": self.stream,
                "seq": self.seq,
            }
        )

    def snapshot(self) -> Encoded:
        """One client's snapshot: numbered with the latest ``seq`` it includes, not kept.

        Not a new number: a snapshot per connection would push out of the
        journal what other clients need to resume.
        """
        message = {**self._snapshot(), "seq": self.seq, "stream": self.stream}
        return Encoded("initialSnapshot", encode(message), self.seq)

    def _snapshot(self) -> dict[str, object]:
        services = self.board.details()
        for name, info in services.items():
            info.update(self.service_info.get(name, {}))
        return {
            "type": "initialSnapshot",
            "data": self.board.booleans(),
            "services": services,
            "monitor": self._monitor(),
            "config_error": self.config_error,
            "config_file": self.config_file,
            "restart_needed": self.restart_needed,
            # Whether stored history works (None: history is off).
            "history": self.board.history_state,
            # The latest changes, so every page's event log starts the same.
            "log": self.board.recent_changes()[-SNAPSHOT_LOG:],
            "ts": now_ms(),
        }

    def set_services(self, services: Iterable[ServiceSettings], heartbeat_ms: int) -> None:
        """After a reload: every open page gets the new service list as a fresh snapshot."""
        self.service_info = _service_info(services)
        self.heartbeat_s = heartbeat_ms / 1000
        self.broadcast(self._snapshot())

    def show_config_error(self, error: str | None) -> None:
        """Show (or, with None, clear) a reload's error on every open page."""
        self.config_error = error
        self.broadcast({"type": "configError", "error": error, "ts": now_ms()})

    def show_restart_needed(self, keys: Iterable[str], file: str | None) -> None:
        """Tell every open page which saved keys (sorted) wait for a restart, and in which file."""
        self.restart_needed = sorted(keys)
        self.config_file = file
        self.broadcast(
            {"type": "restartNeeded", "keys": self.restart_needed, "file": file, "ts": now_ms()}
        )

    def show_history_state(self) -> None:
        """Tell every open page that history stopped or started working."""
        self.broadcast(
            {"type": "historyState", "history": self.board.history_state, "ts": now_ms()}
        )

    def _monitor(self) -> dict[str, object]:
        return {
            "alive": self.board.monitor_alive,
            "id": self.board.monitor_id,
            "last_seen": self.board.monitor_seen,
        }

    # -- broadcasting ----------------------------------------------------

    def broadcast(self, message: dict[str, object]) -> int:
        """Send to every client at once; returns how many were reached.

        A numbered message is numbered and kept even with no one connected:
        a client away now gets it when it resumes.
        """
        encoded = self.number(message)
        reached = len(self.clients) + sum(len(outlet) for outlet in self.outlets)
        if not reached:
            return 0
        self.broadcasts += 1
        if self.clients:
            self._write(text_frame(encoded.json), self.clients)
        for outlet in self.outlets:
            outlet.publish(encoded)
        return reached

    def _write(self, frame: bytes, clients: Iterable[asyncio.Transport]) -> None:
        slow = [client for client in clients if not send(client, frame)]
        for client in slow:
            self._drop(client)

    def _drop(self, client: asyncio.Transport) -> None:
        self.clients.discard(client)
        if not client.is_closing():
            self.dropped += 1
            log.warning("ws.client_dropped", reason="backlog over limit", dropped=self.dropped)
            # Abort frees the backlog now; a close frame would wait behind it.
            client.abort()

    def _on_change(self, name: str, state: ServiceState) -> None:
        self.broadcast(
            {"type": "statusUpdate", "data": self.board.message(name, state), "ts": now_ms()}
        )

    def _on_liveness(self, alive: bool) -> None:
        # Tell pages at once, not at the next tick, so they fall back quickly.
        self.send_heartbeat()

    def _heartbeat(self) -> dict[str, object]:
        return {
            "type": "heartbeat",
            "ts": now_ms(),
            "monitor": self._monitor(),
            # Fresh latencies between changes, for the cards and sparklines.
            "latency": self.board.latency,
            # How old each service's latest check is, and which are stale.
            "ages": self.board.ages(),
            "stale": self.board.stale_names(),
        }

    def send_heartbeat(self) -> None:
        self.broadcast(self._heartbeat())

    async def heartbeats(self) -> None:
        """A heartbeat a period, written in slices with the loop free between them.

        Writing to 10,000 sockets takes ~100 ms; a status change arriving
        meanwhile must not wait for the whole heartbeat to be written.
        """
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if not self.clients and not any(len(outlet) for outlet in self.outlets):
                continue
            self.broadcasts += 1
            encoded = self.number(self._heartbeat())
            frame = text_frame(encoded.json)
            clients = list(self.clients)
            for start in range(0, len(clients), HEARTBEAT_SLICE):
                # A client that left or was dropped meanwhile fails its write quietly.
                self._write(frame, clients[start : start + HEARTBEAT_SLICE])
                await asyncio.sleep(0)
            for outlet in self.outlets:
                await outlet.publish_gently(encoded)

    # -- switching the channel -------------------------------------------

    async def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            await self.close_all(WSCloseCode.GOING_AWAY, "WebSocket channel switched off")

    async def close_all(self, code: int, message: str) -> None:
        sockets = list(self.sockets)
        self.clients.clear()
        await asyncio.gather(
            *(ws.close(code=code, message=message.encode()) for ws in sockets),
            return_exceptions=True,
        )
