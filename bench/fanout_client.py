"""A fan-out client process: many raw WebSocket or event-stream connections on one epoll loop.

A Python WebSocket library would spend more time per frame than the server
spends per client, and the benchmark would measure the clients. Here a frame
costs a ``recv``, a header read and a dictionary lookup: the broadcast's
bytes are the same for every client, so each distinct payload is parsed once.
With ``--transport sse`` the connections are ``GET /events`` streams, read
the same way: an HTTP/1.1 chunk per event, its bytes looked up once.

For every ``statusUpdate`` it records how many of its connections received it
and the first and worst receive time minus the broadcast's outer ``ts``
(epoch ms; all processes share the machine's clock).

Talks to the benchmark over stdin/stdout, one JSON line each way:
prints ``{"ready": n}`` once connected, answers ``report`` with its counts,
and exits on end of input or after ``--max-seconds``.

    python -m bench.fanout_client --port 4000 --count 2500 [--transport sse]
    python -m bench.fanout_client --port 4100 --count 2500 --prefix /status/live/
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import socket
import sys
import time

from bench.procfs import raise_open_files_limit

BATCH = 100
CONNECT_TIMEOUT_S = 30.0
RECV_SIZE = 65536

# (service, observation ts, up, broadcast ts)
Key = tuple[str, int, bool, int]


def handshake(host: str, port: int, prefix: str = "/") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {prefix}ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def events_request(host: str, port: int, prefix: str = "/") -> bytes:
    return (
        f"GET {prefix}events HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()


def connect_all(
    host: str, port: int, count: int, transport: str = "ws", prefix: str = "/"
) -> dict[int, tuple[socket.socket, bytes]]:
    """``count`` upgraded sockets (or open streams) by fd, each with the bytes past its headers."""
    opened: dict[int, tuple[socket.socket, bytes]] = {}
    request = handshake if transport == "ws" else events_request
    expected = b"HTTP/1.1 101" if transport == "ws" else b"HTTP/1.1 200"
    for start in range(0, count, BATCH):
        batch = []
        for _ in range(min(BATCH, count - start)):
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
            sock.sendall(request(host, port, prefix))
            batch.append(sock)
        for sock in batch:
            response = b""
            while b"\r\n\r\n" not in response:
                chunk = sock.recv(RECV_SIZE)
                if not chunk:
                    raise ConnectionError("server closed during the handshake")
                response += chunk
            head, _, rest = response.partition(b"\r\n\r\n")
            if not head.startswith(expected):
                raise ConnectionError(f"refused: {head.splitlines()[0]!r}")
            sock.setblocking(False)
            opened[sock.fileno()] = (sock, rest)
    return opened


class Receiver:
    """Reads every WebSocket, counting and timing each ``statusUpdate``."""

    def __init__(self, opened: dict[int, tuple[socket.socket, bytes]]) -> None:
        self.socks = {fd: sock for fd, (sock, _) in opened.items()}
        self.pending = {fd: rest for fd, (_, rest) in opened.items() if rest}
        self.keys: dict[bytes, Key] = {}
        # key → [connections that received it, first and worst delay in ms]
        self.stats: dict[Key, list[float]] = {}
        self.closed = 0

    def feed(self, fd: int, data: bytes, now_ms: float) -> None:
        if fd in self.pending:
            data = self.pending.pop(fd) + data
        pos, size = 0, len(data)
        while pos + 2 <= size:
            opcode, length = data[pos] & 0x0F, data[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                start, length = pos + 4, int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif length == 127:
                start, length = pos + 10, int.from_bytes(data[pos + 2 : pos + 10], "big")
            if start + length > size:
                break
            if opcode == 0x1:
                self._text(data[start : start + length], now_ms)
            elif opcode == 0x8:
                self.closed += 1
            pos = start + length
        if pos < size:
            self.pending[fd] = data[pos:]

    def _text(self, payload: bytes, now_ms: float) -> None:
        key = self.keys.get(payload)
        if key is None:
            # Welcomes, snapshots and heartbeats are not timed.
            if b'"statusUpdate"' not in payload:
                return
            key = self.keys[payload] = _key(payload)
        self._count(key, now_ms)

    def _count(self, key: Key, now_ms: float) -> None:
        entry = self.stats.get(key)
        delay = now_ms - key[3]
        if entry is None:
            self.stats[key] = [1, delay, delay]
        else:
            entry[0] += 1
            if delay > entry[2]:
                entry[2] = delay

    def report(self) -> dict[str, object]:
        rows = [
            [*key, int(count), round(first, 2), round(worst, 2)]
            for key, (count, first, worst) in self.stats.items()
        ]
        return {"stats": rows, "closed": self.closed, "open": len(self.socks)}


class EventReceiver(Receiver):
    """Reads every event stream (chunked HTTP/1.1), counting and timing each ``statusUpdate``."""

    def feed(self, fd: int, data: bytes, now_ms: float) -> None:
        if fd in self.pending:
            data = self.pending.pop(fd) + data
        pos, size = 0, len(data)
        while (eol := data.find(b"\r\n", pos)) >= 0:
            length = int(data[pos:eol], 16)
            start = eol + 2
            if start + length + 2 > size:
                break
            if length == 0:  # the last chunk: the stream ended
                self.closed += 1
            else:
                self._event(data[start : start + length], now_ms)
            pos = start + length + 2
        if pos < size:
            self.pending[fd] = data[pos:]

    def _event(self, chunk: bytes, now_ms: float) -> None:
        key = self.keys.get(chunk)
        if key is None:
            # One event per chunk once registered; the first chunks are not timed.
            if b"event: statusUpdate\n" not in chunk:
                return
            payload = chunk[chunk.index(b"data: ") + 6 :].rstrip(b"\n")
            key = self.keys[chunk] = _key(payload)
        self._count(key, now_ms)


def _key(payload: bytes) -> Key:
    frame = json.loads(payload)
    data = frame["data"]
    return (data["service"], data["ts"], data["up"], frame["ts"])


def serve(receiver: Receiver, max_seconds: float) -> None:
    """The epoll loop: sockets and stdin, until end of input or the time bound."""
    poller = select.epoll()
    stdin = sys.stdin.fileno()
    poller.register(stdin, select.EPOLLIN)
    for fd in receiver.socks:
        poller.register(fd, select.EPOLLIN)
    recvs = {fd: sock.recv for fd, sock in receiver.socks.items()}
    commands = b""
    deadline = time.monotonic() + max_seconds
    clock = time.time
    while time.monotonic() < deadline:
        for fd, _ in poller.poll(1.0):
            if fd == stdin:
                chunk = os.read(stdin, 4096)
                if not chunk:
                    return
                commands += chunk
                while b"\n" in commands:
                    line, commands = commands.split(b"\n", 1)
                    if line.strip() == b"report":
                        _say(receiver.report())
                continue
            try:
                data = recvs[fd](RECV_SIZE)
            except BlockingIOError:
                continue
            if not data:
                poller.unregister(fd)
                del recvs[fd]
                receiver.closed += 1
                continue
            receiver.feed(fd, data, clock() * 1000)


def _say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout_client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--transport", choices=("ws", "sse"), default="ws")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    # Where the channel is: "/" (the dashboard's /ws, /events) or "/status/live/" (public).
    parser.add_argument("--prefix", default="/")
    args = parser.parse_args()
    raise_open_files_limit()
    opened = connect_all(args.host, args.port, args.count, args.transport, args.prefix)
    _say({"ready": len(opened)})
    receiver = Receiver(opened) if args.transport == "ws" else EventReceiver(opened)
    try:
        serve(receiver, args.max_seconds)
    finally:
        for sock in receiver.socks.values():
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
