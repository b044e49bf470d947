"""Thousands of ``/health`` endpoints in one process, noting when each is asked.

Service ``i`` is ``GET /h/<i>`` on one of a few listening ports. A raw
asyncio protocol (on uvloop) answers keep-alive requests for a few
microseconds each, so the farm stays far cheaper than the checker it feeds
and the arrival times it records say when the checker sent each check.

Talks to the benchmark over stdin/stdout, one JSON line each way: prints
``{"ports": [...]}`` once listening; ``reset`` forgets the arrivals so far;
``report`` prints ``{"arrivals": {"<i>": [monotonic seconds, ...]}}``. Exits
on end of input or after ``--max-seconds``.

    python -m bench.mockfarm --listeners 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import defaultdict
from typing import cast

import uvloop

from bench.procfs import raise_open_files_limit

BODY = b'{"status":"pass"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Arrivals:
    def __init__(self) -> None:
        self.by_path: defaultdict[bytes, list[float]] = defaultdict(list)


class HealthProtocol(asyncio.Protocol):
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        assert self.transport is not None
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            path = head.split(b" ", 2)[1]
            if path.startswith(b"/h/"):
                self.arrivals.by_path[path[3:]].append(now)
                self.transport.write(RESPONSE)
            else:
                self.transport.write(NOT_FOUND)


async def serve(listeners: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    arrivals = Arrivals()
    servers = [
        await loop.create_server(lambda: HealthProtocol(arrivals), "127.0.0.1", 0, backlog=1024)
        for _ in range(listeners)
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    _say({"ports": ports})
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_seconds):
                while line := await reader.readline():
                    command = line.strip()
                    if command == b"reset":
                        arrivals.by_path.clear()
                    elif command == b"report":
                        _say({"arrivals": {k.decode(): v for k, v in arrivals.by_path.items()}})
    finally:
        for server in servers:
            server.close()


def _say(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mockfarm")
    parser.add_argument("--listeners", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    raise_open_files_limit()
    uvloop.run(serve(args.listeners, args.max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
