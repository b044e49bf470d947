"""In-process broker: one bounded ``asyncio.Queue`` per subscriber."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog

log = structlog.get_logger(__name__)

_CLOSED = object()


class MemoryBroker:
    def __init__(self, queue_size: int = 4096) -> None:
        self._queue_size = queue_size
        self._subscribers: defaultdict[str, set[asyncio.Queue[object]]] = defaultdict(set)
        self.dropped = 0
        # An in-process queue is never lost; the lists satisfy the protocol.
        self.on_disconnect: list[Callable[[], None]] = []
        self.on_reconnect: list[Callable[[], None]] = []

    async def publish(self, topic: str, body: bytes) -> None:
        for queue in self._subscribers.get(topic, ()):
            if queue.full():
                # A stuck subscriber must not block the publisher; it loses its
                # oldest message, which a newer one for the same topic supersedes.
                queue.get_nowait()
                self.dropped += 1
                log.warning("broker.overflow", topic=topic, dropped=self.dropped)
            queue.put_nowait(body)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        queue: asyncio.Queue[object] = asyncio.Queue(self._queue_size)
        self._subscribers[topic].add(queue)
        try:
            yield self._iterate(queue)
        finally:
            self._subscribers[topic].discard(queue)

    @staticmethod
    async def _iterate(queue: asyncio.Queue[object]) -> AsyncIterator[bytes]:
        while True:
            item = await queue.get()
            if item is _CLOSED:
                return
            assert isinstance(item, bytes)
            yield item

    async def close(self) -> None:
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(_CLOSED)
        self._subscribers.clear()
