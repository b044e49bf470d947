"""The history store's life in a running process: opened, watched, retried.

A store that cannot be opened (a corrupt or newer file, a read-only folder,
PostgreSQL not answering) stops nothing: one line says what happened, the
rest of healthmon runs without history, and opening is tried again every
``REOPEN_S`` until it works. Every failure is logged once per kind (until
history works again), counted in ``/metrics``, and shown on the page as
"history unavailable".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog

from healthmon.config import HistorySettings
from healthmon.store import HistoryStore, StoreError, StoreUnusable, create_store

log = structlog.get_logger(__name__)

# ``problem`` until the first try to open the store has an outcome.
STARTING = "history is starting"
# How often a store that could not be opened is tried again.
REOPEN_S = 10.0


class Archive:
    """Holds the store once it is open, and says whether history works right now."""

    def __init__(self, settings: HistorySettings, base: Path) -> None:
        self.settings = settings
        self.base = base
        self.store: HistoryStore | None = None
        self.where: str | None = None
        # Why history is unavailable now (None while it works).
        self.problem: str | None = STARTING
        self.opened = asyncio.Event()
        self._logged: set[str] = set()
        # Told of every failure's kind (metrics); must be quick.
        self.on_error: list[Callable[[str], None]] = []
        self.on_change: list[Callable[[], None]] = []

    @property
    def available(self) -> bool:
        return self.problem is None

    async def run(self) -> None:
        """Open the store, trying again until it opens (a supervised task)."""
        while self.store is None:
            try:
                store = create_store(self.settings, self.base)
                self.where = store.where
                await store.open()
            except (StoreUnusable, StoreError) as exc:
                kind = exc.kind if isinstance(exc, StoreError) else "unusable"
                self.failed(kind, str(exc), event="history.unusable")
                await asyncio.sleep(REOPEN_S)
                continue
            self.store = store
            log.info("history.opened", where=store.where)
            self.succeeded()
            self.opened.set()
        await asyncio.Event().wait()

    def failed(self, kind: str, message: str, *, event: str = "history.error") -> None:
        for tell in self.on_error:
            tell(kind)
        changed = self.problem != message
        self.problem = message
        if kind not in self._logged:
            self._logged.add(kind)
            log.error(event, kind=kind, error=message)
        if changed:
            for listener in self.on_change:
                listener()

    def succeeded(self) -> None:
        if self.problem is not None and self.store is not None:
            if self._logged:
                log.info("history.recovered", where=self.where)
            self.problem = None
            self._logged.clear()
            for listener in self.on_change:
                listener()

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
            self.store = None
