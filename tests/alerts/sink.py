"""A real webhook receiver on loopback: answers 200, 500, never (hangs), or slowly."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Sink:
    """Every request is kept and queued; ``/ok``, ``/fail``, ``/hang`` and ``/slow`` answer
    as their names say (``/flaky`` fails its first ``flaky_failures`` requests;
    ``/hangfirst`` hangs on its very first request only)."""

    def __init__(self, slow_s: float = 0.5, flaky_failures: int = 2) -> None:
        self.received: list[Received] = []
        self.arrivals: asyncio.Queue[Received] = asyncio.Queue()
        self.slow_s = slow_s
        self.flaky_failures = flaky_failures
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{mode}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        got = Received(request.path, dict(request.headers), await request.read(), loop.time())
        self.received.append(got)
        self.arrivals.put_nowait(got)
        mode = request.match_info["mode"]
        first = [r for r in self.received if r.path == got.path] == [got]
        if mode == "hang" or (mode == "hangfirst" and first):
            await self.release.wait()
        elif mode == "slow":
            await asyncio.sleep(self.slow_s)
        elif mode == "fail" or (
            mode == "flaky"
            and sum(r.path == "/flaky" for r in self.received) <= self.flaky_failures
        ):
            return web.json_response({"error": "receiver broken"}, status=500)
        return web.json_response({"ok": True, "n": len(self.received)})

    def _flaky_fails(self) -> bool:
        return sum(r.path == "/flaky" for r in self.received) <= self.flaky_failures

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/{mode}"

    async def next(self, within: float = 10.0) -> Received:
        return await asyncio.wait_for(self.arrivals.get(), within)

    async def __aenter__(self) -> Sink:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        await self.server.close()
