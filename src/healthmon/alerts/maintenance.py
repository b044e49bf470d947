"""When alerts are held: maintenance windows from the config, silences from the API.

Checks go on during both; only what is said waits. A window is one-off
(``start``/``end``) or recurring (a ``cron`` expression for its starts, in
its IANA ``timezone``, lasting ``duration``); cron is read by ``cronsim``.
Pure: every question takes the time it is asked for.
"""

from __future__ import annotations

import asyncio
import fnmatch
import heapq
import uuid
from collections.abc import Callable, Iterator, Sequence
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


# How many cron starts ``next_boundary`` reads before it gives up (a window
# whose starts overlap, e.g. every minute for an hour, never ends).
BOUNDARY_STARTS = 1_000
# How far a wall-clock time lies from the same digits read as UTC, at most
# (offsets run from -12 to +14 hours): the margin for ordering wall times.
_OFFSET_SPAN_MS = 26 * 3_600_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def _ms(moment: datetime) -> int:
    """The first whole millisecond at or after ``moment`` (exact: no float rounding)."""
    whole, rest = divmod(moment - _EPOCH, _ONE_MS)
    return int(whole) + (1 if rest else 0)


def _naive_ms(wall: datetime) -> int:
    """A wall-clock time's digits read as UTC: an order, not an instant."""
    return _ms(wall.replace(tzinfo=UTC))


def _offset_change(zone: ZoneInfo, low: int, high: int) -> int:
    """The first millisecond in ``(low, high]`` whose UTC offset differs from ``low``'s."""
    before = datetime.fromtimestamp(low / 1000, UTC).astimezone(zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle / 1000, UTC).astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high


def _crossings(wall: datetime, zone: ZoneInfo) -> list[int]:
    """The instants where the clock in ``zone`` may reach or jump over the wall time ``wall``.

    Once a time exists (both folds, as it repeats when clocks go back), and
    the change of offset between them: the clock skips ``wall`` (forward) or
    goes back over it then.
    """
    first, second = (_ms(wall.replace(tzinfo=zone, fold=fold)) for fold in (0, 1))
    if first == second:
        return [first]
    low, high = min(first, second), max(first, second)
    return [low, _offset_change(zone, low, high), high]


def _wall_boundaries(window: MaintenanceWindow, start: datetime) -> Iterator[datetime]:
    """The wall times a recurring window starts or ends at, from ``start``, in order."""
    assert window.cron is not None
    assert window.duration is not None
    length = timedelta(milliseconds=window.duration)
    ends: list[datetime] = []
    for count, begin in enumerate(CronSim(window.cron, start)):
        if count >= BOUNDARY_STARTS:
            break
        while ends and ends[0] <= begin:
            yield heapq.heappop(ends)
        yield begin
        heapq.heappush(ends, begin + length)
    # No more starts read: ends after the last start are not known to be final.


def next_boundary(window: MaintenanceWindow, now_ms: int) -> int | None:
    """The next moment after ``now_ms`` at which ``window`` starts or ends (None: never,
    or not within its next ``BOUNDARY_STARTS`` starts).

    Cron reads wall clocks (as ``window_active`` does), so around a change of
    offset a wall time may occur twice or never: every instant where the
    clock reaches or jumps over a boundary is a candidate, and the first
    candidate at which ``window_active`` differs from now is the answer.
    """
    zone = ZoneInfo(window.timezone)
    active = window_active(window, now_ms)
    if window.start is not None and window.end is not None:
        candidates: list[int] = []
        for edge in (window.start, window.end):
            if edge.tzinfo is None:
                candidates += _crossings(edge, zone)
            else:
                candidates.append(_ms(edge))
        return next(
            (c for c in sorted(candidates) if c > now_ms and window_active(window, c) != active),
            None,
        )
    assert window.duration is not None
    local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(zone).replace(tzinfo=None)
    begin = local - timedelta(milliseconds=window.duration) - timedelta(minutes=1)
    pending: list[int] = []
    for wall in _wall_boundaries(window, begin):
        # Every boundary still to come is at or after ``wall``: candidates
        # earlier than its earliest instant are complete, and tried in order.
        safe = _naive_ms(wall) - _OFFSET_SPAN_MS
        while pending and pending[0] < safe:
            candidate = heapq.heappop(pending)
            if candidate > now_ms and window_active(window, candidate) != active:
                return candidate
        for candidate in _crossings(wall, zone):
            heapq.heappush(pending, candidate)
    return None


class Maintenance:
    """The engine's ``Mute``: windows from the config, silences as last read."""

    def __init__(self, windows: Sequence[MaintenanceWindow] = ()) -> None:
        self.windows = tuple(windows)
        self.silences: tuple[Silence, ...] = ()
        # The ends of the windows active at ``_ends_at`` (by window), for ``hold``.
        self._ends_at = -1
        self._ends: dict[int, int | None] = {}

    def _holder(self, service: ServiceInfo, now: int) -> MaintenanceWindow | Silence | None:
        for window in self.windows:
            if window.covers(service.name, service.group, service.tags) and window_active(
                window, now
            ):
                return window
        for silence in self.silences:
            if silence.until_ms > now and any(
                fnmatch.fnmatchcase(service.name, p) for p in silence.services
            ):
                return silence
        return None

    @staticmethod
    def _why(holder: MaintenanceWindow | Silence) -> str:
        if isinstance(holder, Silence):
            return f"silenced: {holder.comment or holder.id}"
        return f"maintenance: {holder.description or 'window'}"

    def reason(self, service: ServiceInfo, now: int) -> str | None:
        holder = self._holder(service, now)
        return self._why(holder) if holder is not None else None

    def hold(self, service: ServiceInfo, now: int) -> tuple[str, int | None] | None:
        """Why ``service``'s alerts are held at ``now``, and until when (None: not known)."""
        holder = self._holder(service, now)
        if holder is None:
            return None
        if isinstance(holder, Silence):
            return self._why(holder), holder.until_ms
        # Windows are few and services many: each window's end is worked out once per moment.
        if self._ends_at != now:
            self._ends_at, self._ends = now, {}
        if id(holder) not in self._ends:
            self._ends[id(holder)] = next_boundary(holder, now)
        return self._why(holder), self._ends[id(holder)]

    def next_change(self, now: int) -> int | None:
        """The next moment a window starts or ends or a silence ends (None: none known)."""
        moments = [b for w in self.windows if (b := next_boundary(w, now)) is not None]
        moments += [s.until_ms for s in self.silences if s.until_ms > now]
        return min(moments, default=None)


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
