"""A badge load process: keep-alive HTTP/1.1 GETs over raw sockets on one epoll loop.

A Python HTTP library would spend more per request than the server does and
the figure would measure the client. Each of ``--connections`` sockets sends
one request, reads its answer (headers, then ``Content-Length`` bytes), and
sends the next, cycling through ``--path`` values; the latency of each is
its send-to-last-byte time.

Runs for ``--seconds`` or ``--max-requests``, whichever comes first, then
prints one JSON line: ``{"requests", "seconds", "statuses", "latencies_ms"}``.

    python -m bench.badge_client --port 4100 --seconds 5 --path /badge/s0/status.svg
"""

from __future__ import annotations

import argparse
import itertools
import json
import selectors
import socket
import sys
import time

RECV_SIZE = 65536
CONNECT_TIMEOUT_S = 10.0


class Connection:
    def __init__(self, sock: socket.socket, host: str, port: int) -> None:
        self.sock = sock
        self.host = f"{host}:{port}"
        self.buffer = b""
        self.sent_at = 0.0

    def send(self, path: str) -> None:
        self.sent_at = time.monotonic()
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())

    def answer(self) -> int | None:
        """The status of a complete answer in the buffer (consumed), or None yet."""
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buffer[:head_end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return None
        self.buffer = self.buffer[end:]
        return int(head.split(" ", 2)[1])


def run(
    host: str, port: int, paths: list[str], connections: int, seconds: float, max_requests: int
) -> dict[str, object]:
    selector = selectors.DefaultSelector()
    cycle = itertools.cycle(paths)
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    for _ in range(connections):
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(sock, host, port)
        connection.send(next(cycle))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, connection)
    started = time.monotonic()
    deadline = started + seconds
    sent = connections
    while len(latencies) < max_requests and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            connection = key.data
            chunk = connection.sock.recv(RECV_SIZE)
            if not chunk:
                raise ConnectionError("the server closed a keep-alive connection")
            connection.buffer += chunk
            while (status := connection.answer()) is not None:
                latencies.append((time.monotonic() - connection.sent_at) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if sent < max_requests:
                    connection.sock.setblocking(True)
                    connection.send(next(cycle))
                    connection.sock.setblocking(False)
                    sent += 1
    elapsed = time.monotonic() - started
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "statuses": statuses,
        "latencies_ms": [round(x, 3) for x in latencies],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", action="append", required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()
    result = run(args.host, args.port, args.path, args.connections, args.seconds, args.max_requests)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
