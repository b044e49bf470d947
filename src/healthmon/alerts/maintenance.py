"""When alerts are held: maintenance windows from the config, silences from the API.

Checks go on during both; only what is said waits. A window is one-off
(``start``/``end``) or recurring (a ``cron`` expression for its starts, in
its IANA ``timezone``, lasting ``duration``); cron is read by ``cronsim``.
Pure: every question takes the time it is asked for.
"""

from __future__ import annotations

import asyncio
import fnmatch
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from healthmon.alerts.rules import ServiceInfo
from healthmon.alerts.settings import MaintenanceWindow
from healthmon.archive import Archive
from healthmon.models import now_ms
from healthmon.store import HistoryStore, StoreError
from healthmon.store.base import Silence


def _aware(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def window_active(window: MaintenanceWindow, now_ms: int) -> bool:
    """Whether ``window`` covers the moment ``now_ms``."""
    zone = ZoneInfo(window.timezone)
    now = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(zone)
    if window.start is not None and window.end is not None:
        return _aware(window.start, zone) <= now < _aware(window.end, zone)
    assert window.cron is not None
    assert window.duration is not None
    length = timedelta(milliseconds=window.duration)
    # The latest start at or before now: cronsim walks forward, so start one
    # duration back (naive local time, as cron reads wall clocks).
    local = now.replace(tzinfo=None)
    for start in CronSim(window.cron, local - length - timedelta(minutes=1)):
        if start > local:
            return False
        if start <= local < start + length:
            return True
    return False


class Maintenance:
    """The engine's ``Mute``: windows from the config, silences as last read."""

    def __init__(self, windows: Sequence[MaintenanceWindow] = ()) -> None:
        self.windows = tuple(windows)
        self.silences: tuple[Silence, ...] = ()

    def reason(self, service: ServiceInfo, now: int) -> str | None:
        for window in self.windows:
            if window.covers(service.name, service.group, service.tags) and window_active(
                window, now
            ):
                return f"maintenance: {window.description or 'window'}"
        for silence in self.silences:
            if silence.until_ms > now and any(
                fnmatch.fnmatchcase(service.name, p) for p in silence.services
            ):
                return f"silenced: {silence.comment or silence.id}"
        return None


class Silences:
    """Silences set through the API: in the history store (every process sees them),
    or in this process's memory without history."""

    def __init__(self, archive: Archive | None) -> None:
        self.archive = archive
        self._memory: dict[str, Silence] = {}
        # The latest list read: what /api/services shows without waiting on the store.
        self.cached: tuple[Silence, ...] = ()
        # Told when the list changed (the alerter in this process, at once).
        self.on_change: list[Callable[[tuple[Silence, ...]], None]] = []

    def _store(self) -> HistoryStore | None:
        return self.archive.store if self.archive is not None else None

    async def add(self, services: Sequence[str], until_ms: int, comment: str | None) -> Silence:
        silence = Silence(uuid.uuid4().hex[:12], tuple(services), until_ms, comment, now_ms())
        store = self._store()
        if store is None:
            self._memory[silence.id] = silence
        else:
            await store.add_silence(silence)
        await self.list(now_ms())
        return silence

    async def remove(self, silence_id: str) -> bool:
        store = self._store()
        gone = self._memory.pop(silence_id, None) is not None
        if store is not None:
            gone = await store.remove_silence(silence_id) or gone
        await self.list(now_ms())
        return gone

    async def watch(self, every_s: float = 1.0) -> None:
        """Read the list again every ``every_s``: the API may run in another process."""
        while True:
            await self.list(now_ms())
            await asyncio.sleep(every_s)

    async def list(self, now: int) -> list[Silence]:
        store = self._store()
        if store is None:
            found = sorted(
                (s for s in self._memory.values() if s.until_ms > now), key=lambda s: s.until_ms
            )
        else:
            try:
                # Set before the store opened: kept there now, for every process.
                for silence in list(self._memory.values()):
                    await store.add_silence(silence)
                    del self._memory[silence.id]
                found = await store.silences(now)
            except StoreError as exc:
                assert self.archive is not None
                self.archive.failed(exc.kind, str(exc))
                return list(self.cached)
        if tuple(found) != self.cached:
            self.cached = tuple(found)
            for tell in self.on_change:
                tell(self.cached)
        return found
