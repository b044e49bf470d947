"""A service for ``bench.detect`` in a process of its own.

``http PORT``: answers every request on 127.0.0.1:PORT with 200 and a pass
body, keeping connections alive (the benchmark kills it with SIGKILL).
``grpc PORT``: grpcio's reference ``grpc.health.v1.Health`` servicer;
each stdin line ``serving`` or ``not_serving`` sets the server's status.

Prints ``ready`` once listening; exits on end of input or after ``--max-seconds``.

    python -m bench.detect_service http 3105
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import cast

BODY = b'{"status":"pass"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/health+json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


class Health(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        assert self.transport is not None
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(RESPONSE)


async def _lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return reader


async def serve_http(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Health, "127.0.0.1", port)
    print("ready", flush=True)
    reader = await _lines()
    try:
        while await reader.readline():
            pass
    finally:
        server.close()


async def serve_grpc(port: int) -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    statuses = {
        b"serving": health_pb2.HealthCheckResponse.SERVING,
        b"not_serving": health_pb2.HealthCheckResponse.NOT_SERVING,
    }
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    reader = await _lines()
    try:
        while line := await reader.readline():
            if (status := statuses.get(line.strip())) is not None:
                await servicer.set("", status)
    finally:
        await server.stop(None)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detect_service")
    parser.add_argument("kind", choices=["http", "grpc"])
    parser.add_argument("port", type=int)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    serve = serve_http if args.kind == "http" else serve_grpc

    async def bounded() -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.max_seconds):
                await serve(args.port)

    asyncio.run(bounded())
    return 0


if __name__ == "__main__":
    sys.exit(main())
