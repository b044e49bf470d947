"""One WebSocket client in the benchmark process that timestamps what it hears."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from bench.server import BenchError


@dataclass(frozen=True, slots=True)
class Update:
    service: str
    up: bool
    received: float  # time.perf_counter() when the frame was read


class Watcher:
    """Every ``statusUpdate`` the server sends to one client, in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self.updates: list[Update] = []
        self.snapshot: dict[str, bool] | None = None
        self._arrived = asyncio.Event()

    def mark(self) -> int:
        """A cursor: ``wait`` looks only at updates received after it."""
        return len(self.updates)

    async def wait(self, service: str, *, up: bool, since: int, timeout_s: float) -> Update:
        deadline = time.monotonic() + timeout_s
        index = since
        while True:
            for update in self.updates[index:]:
                if update.service == service and update.up is up:
                    return update
            index = len(self.updates)
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no update {service} up={up} within {timeout_s} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def read(self) -> None:
        async for msg in self._ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            received = time.perf_counter()
            frame = json.loads(msg.data)
            if frame["type"] == "statusUpdate":
                data = frame["data"]
                self.updates.append(Update(data["service"], data["up"], received))
                self._arrived.set()
            elif frame["type"] == "initialSnapshot":
                self.snapshot = frame["data"]


@contextlib.asynccontextmanager
async def watching(session: aiohttp.ClientSession, ws_url: str) -> AsyncIterator[Watcher]:
    """A connected ``Watcher`` reading in the background until the block ends."""
    try:
        ws = await session.ws_connect(ws_url, timeout=aiohttp.ClientWSTimeout(ws_close=2.0))
    except aiohttp.ClientError as exc:
        raise BenchError(f"cannot connect to {ws_url}: {exc}") from None
    watcher = Watcher(ws)
    reader = asyncio.create_task(watcher.read())
    try:
        yield watcher
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.close()
