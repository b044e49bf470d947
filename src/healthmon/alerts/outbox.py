"""Where every message waits until it is sent: the history store, or memory without one.

A message is written here before its first try, and each try's outcome
after it; so a deliverer killed mid-send leaves the message open, and the
next one (a restart, or the other monitor taking the lead) sends it again
with the same key. With history disabled the outbox is in memory, and
messages not yet sent are lost with the process (README says so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import structlog

from healthmon.archive import Archive
from healthmon.store import HistoryStore, StoreError
from healthmon.store.base import AlertRow

log = structlog.get_logger(__name__)

OPEN_STATES = ("pending", "retrying")


class Outbox(Protocol):
    async def add(self, rows: Sequence[AlertRow]) -> None: ...
    async def mark(self, row: AlertRow) -> None: ...
    async def open(self) -> list[AlertRow]:
        """Messages not finished, oldest first."""

    async def log(self, limit: int, since: int) -> list[AlertRow]:
        """The latest messages, newest first: open ones, and finished ones since ``since``."""


class MemoryOutbox:
    """For a process without history: the same log, for this run only."""

    def __init__(self) -> None:
        self._rows: dict[str, AlertRow] = {}

    async def add(self, rows: Sequence[AlertRow]) -> None:
        for row in rows:
            self._rows.setdefault(row.key, row)

    async def mark(self, row: AlertRow) -> None:
        self._rows[row.key] = row

    async def open(self) -> list[AlertRow]:
        rows = [r for r in self._rows.values() if r.state in OPEN_STATES]
        return sorted(rows, key=lambda r: r.created_ms)

    async def log(self, limit: int, since: int) -> list[AlertRow]:
        # Memory has no writer's prune: what is older than the log goes here.
        for key in [
            k for k, r in self._rows.items() if r.state not in OPEN_STATES and r.updated_ms < since
        ]:
            del self._rows[key]
        rows = sorted(self._rows.values(), key=lambda r: (-r.updated_ms, r.key))
        return rows[:limit]


class StoreOutbox:
    """The outbox in the history store: shared by every monitor using that store.

    A store that fails (or is not open yet) never stops an alert: the
    message is still sent from memory, and the failure is shown as history's
    (logged once, counted, on the page).
    """

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._memory = MemoryOutbox()
        self._unstored: dict[str, AlertRow] = {}

    async def _keep(
        self, write: Callable[[HistoryStore], Awaitable[None]], rows: Sequence[AlertRow]
    ) -> None:
        store = self.archive.store
        if store is None:
            # Sent from memory meanwhile; kept in the store once it opens.
            self._unstored.update((r.key, r) for r in rows)
            log.warning("alert.not_stored", why="history is not open", keys=[r.key for r in rows])
            return
        try:
            if self._unstored:
                await store.add_alerts(list(self._unstored.values()))
                self._unstored.clear()
            await write(store)
        except StoreError as exc:
            self.archive.failed(exc.kind, str(exc))

    async def add(self, rows: Sequence[AlertRow]) -> None:
        await self._memory.add(rows)
        await self._keep(lambda store: store.add_alerts(rows), rows)

    async def mark(self, row: AlertRow) -> None:
        await self._memory.mark(row)
        await self._keep(lambda store: store.mark_alert(row), [row])

    async def open(self) -> list[AlertRow]:
        store = self.archive.store
        if store is None:
            return await self._memory.open()
        try:
            return await store.open_alerts()
        except StoreError as exc:
            self.archive.failed(exc.kind, str(exc))
            return await self._memory.open()

    async def log(self, limit: int, since: int) -> list[AlertRow]:
        store = self.archive.store
        if store is None:
            return await self._memory.log(limit, since)
        try:
            rows = await store.alert_log(limit, since)
        except StoreError as exc:
            self.archive.failed(exc.kind, str(exc))
            return await self._memory.log(limit, since)
        if not self._unstored:
            return rows
        # Messages kept while the store was opening are not in it until they are written:
        # the log shows them all the same, as they stand now.
        found = {r.key: r for r in rows}
        found.update(self._unstored)
        return sorted(found.values(), key=lambda r: (-r.updated_ms, r.key))[:limit]

    async def store_unstored(self) -> None:
        """Once the store opens, write what was kept in memory meanwhile (at the first
        message or mark after it otherwise)."""
        await self.archive.opened.wait()
        store = self.archive.store
        if store is None or not self._unstored:
            return
        try:
            await store.add_alerts(list(self._unstored.values()))
        except StoreError as exc:
            self.archive.failed(exc.kind, str(exc))
            return
        self._unstored.clear()
