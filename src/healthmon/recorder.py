"""Turning every check into history: the ledger (pure) and the writer (its loop).

The ledger takes each check's result and the state it left shown, and
gathers, in memory, what a batch writes: time per state in minute buckets,
check counts, a latency histogram, and periods as they open and close.
Time is accounted exactly at each change; a service whose latest check is
older than its stale limit is counted **unknown** from that limit on, and an
unknown period opens. Nothing is guessed: time nobody accounted for (the
process stopped) is in no bucket at all.

The recorder runs where the checks run (the monitor role). Of several
monitors sharing a store one writes: the store's lock (a lock file beside
the SQLite file, a PostgreSQL advisory lock) chooses it, so every change is
stored once and no time is counted twice; the others take over when it
stops, with the time in between recorded as unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from healthmon.archive import Archive
from healthmon.config import HistorySettings
from healthmon.models import CheckResult, Status, StatusUpdate, now_ms
from healthmon.store import Batch, HistoryStore, Period, StoreError, Totals, retention
from healthmon.store.base import MINUTE_MS

log = structlog.get_logger(__name__)

UNKNOWN = Status.UNKNOWN
# The kind of store error that says another process writes now.
LEAD_LOST = "lead_lost"
# A non-writer asks for the writer's lock this often.
LEAD_RETRY_S = 2.0
# What a batch that cannot be written may hold before its oldest minutes go.
MAX_PENDING = 200_000
# A final write on shutdown waits at most this long.
FINAL_WRITE_S = 2.0


@dataclass(slots=True)
class _Track:
    stale_after: int
    cursor: int
    # The shown status (None before the first check) and when the latest check arrived.
    status: Status | None = None
    last_check: int | None = None
    # The period open now: its status and start (None: no period open).
    period: Status | None = None
    period_start: int = 0
    # The batch's bucket for the minute starting at ``minute``: most checks land in it.
    minute: int = -1
    totals: Totals | None = None

    def fresh_until(self) -> int | None:
        return None if self.last_check is None else self.last_check + self.stale_after


class Ledger:
    """What happened since the last batch, gathered without I/O."""

    def __init__(
        self,
        writer: str,
        stale_after: Mapping[str, int],
        now: int,
        gaps: Mapping[str, int] | None = None,
    ) -> None:
        self.writer = writer
        self._seq = 0
        self._tracks: dict[str, _Track] = {}
        self._batch = self._new_batch(now)
        gaps = gaps or {}
        for name, limit in stale_after.items():
            self._add(name, limit, now, gaps.get(name))

    def _new_batch(self, now: int) -> Batch:
        self._seq += 1
        return Batch(self.writer, self._seq, now)

    def _add(self, name: str, stale_after: int, now: int, gap: int | None) -> None:
        track = self._tracks[name] = _Track(stale_after=stale_after, cursor=now)
        if gap is not None:
            # The store opened an unknown period for the time nobody was looking.
            track.period, track.period_start = UNKNOWN, gap
        self._batch.first_seen.setdefault(name, now)

    def set_services(self, stale_after: Mapping[str, int], now: int) -> None:
        """Follow a reload: new services start, removed ones close their period."""
        for name in list(self._tracks):
            if name not in stale_after:
                self._account(name, self._tracks[name], now)
                self._close(name, self._tracks.pop(name), now)
        for name, limit in stale_after.items():
            if name in self._tracks:
                self._tracks[name].stale_after = limit
            else:
                self._add(name, limit, now, None)

    # -- time ----------------------------------------------------------------

    def _minute(self, name: str, track: _Track, ts: int) -> Totals:
        start = ts - ts % MINUTE_MS
        if start == track.minute and track.totals is not None:
            return track.totals
        key = (name, start)
        totals = self._batch.minutes.get(key)
        if totals is None:
            totals = self._batch.minutes[key] = Totals()
        track.minute, track.totals = start, totals
        return totals

    def _spend(self, name: str, track: _Track, start: int, end: int, status: Status | None) -> None:
        """Add [start, end) to ``status``'s time (unknown for None), minute by minute."""
        while start < end:
            stop = min(end, start - start % MINUTE_MS + MINUTE_MS)
            totals = self._minute(name, track, start)
            if status is Status.UP:
                totals.up_ms += stop - start
            elif status is Status.DOWN:
                totals.down_ms += stop - start
            elif status is Status.DEGRADED:
                totals.degraded_ms += stop - start
            else:
                totals.unknown_ms += stop - start
            start = stop

    def _account(self, name: str, track: _Track, until: int) -> None:
        """Spend the time from the track's cursor to ``until``: fresh, then unknown."""
        if until <= track.cursor:
            return
        fresh_until = track.fresh_until()
        split = track.cursor if fresh_until is None else max(track.cursor, min(until, fresh_until))
        self._spend(name, track, track.cursor, split, track.status)
        self._spend(name, track, split, until, None)
        track.cursor = until

    # -- periods -------------------------------------------------------------

    def _close(self, name: str, track: _Track, at: int) -> None:
        if track.period is None:
            return
        key = (name, track.period_start)
        # Opened in an earlier batch, the store needs only its end.
        opened = self._batch.periods.get(key) or Period(
            name, track.period_start, track.period.value
        )
        self._batch.periods[key] = dataclasses.replace(opened, end_ms=max(at, track.period_start))
        track.period = None

    def _open(
        self,
        name: str,
        track: _Track,
        at: int,
        status: Status,
        reason: str | None,
        checks: str | None = None,
        monitor: str | None = None,
    ) -> None:
        previous = track.period
        self._close(name, track, at)
        at = max(at, track.period_start)
        track.period, track.period_start = status, at
        self._batch.periods[(name, at)] = Period(
            name, at, status.value, None, previous and previous.value, reason, checks, monitor
        )

    # -- what the monitor tells ------------------------------------------------

    def result(self, result: CheckResult, shown: StatusUpdate, now: int) -> None:
        """One check's result, and the state it left shown (after thresholds).

        The common case (the same state, checked in time) only counts the
        check: its time is accounted at the next tick, all of it fresh.
        """
        name = result.service
        track = self._tracks.get(name)
        if track is None:
            return
        status = shown.effective_status
        if (
            status is not track.status
            or track.period is not status
            or track.last_check is None
            or now > track.last_check + track.stale_after
        ):
            at = max(track.cursor, min(now, shown.since or now))
            self._account(name, track, at)
            track.status = status
            if track.period is not status:
                checks = (
                    json.dumps([c.model_dump(mode="json") for c in shown.checks])
                    if shown.checks
                    else None
                )
                self._open(name, track, at, status, shown.reason, checks, shown.monitor)
        track.last_check = now
        totals = self._minute(name, track, now)
        totals.checks += 1
        if result.status is Status.DOWN:
            totals.failures += 1
        if result.latency_ms is not None:
            totals.add_latency(result.latency_ms)

    def tick(self, now: int) -> None:
        """Account every service up to ``now``; open unknown periods for stale ones."""
        for name, track in self._tracks.items():
            fresh_until = track.fresh_until()
            if (
                fresh_until is not None
                and fresh_until < now
                and track.period not in (None, UNKNOWN)
            ):
                self._account(name, track, fresh_until)
                seconds = round(track.stale_after / 1000, 1)
                self._open(name, track, fresh_until, UNKNOWN, f"no fresh check for {seconds:g} s")
            self._account(name, track, now)

    def bound(self, rows: int) -> None:
        """While writes fail, the batch being gathered keeps at most ``rows`` minute
        rows: the oldest go first, said once per cut."""
        excess = len(self._batch.minutes) - rows
        if excess > 0:
            for key in sorted(self._batch.minutes, key=lambda k: k[1])[:excess]:
                del self._batch.minutes[key]
            for track in self._tracks.values():
                track.totals = None
            log.warning("history.dropped", minutes=excess)

    def take(self, now: int) -> Batch:
        """Everything gathered so far, as one batch; the ledger starts a new one."""
        batch, self._batch = self._batch, self._new_batch(now)
        batch.now_ms = now
        for track in self._tracks.values():
            track.totals = None
        return batch


class Recorder:
    """Writes the ledger's batches every ``flush_ms`` while this process is the writer."""

    def __init__(
        self, archive: Archive, settings: HistorySettings, stale_after: Mapping[str, int]
    ) -> None:
        self.archive = archive
        self.settings = settings
        self.stale_after = dict(stale_after)
        self.writer = uuid.uuid4().hex[:12]
        self.ledger: Ledger | None = None
        self._pending: Batch | None = None
        self.writes = 0

    @property
    def leading(self) -> bool:
        return self.ledger is not None

    def observe(self, result: CheckResult, shown: StatusUpdate) -> None:
        if self.ledger is not None:
            self.ledger.result(result, shown, now_ms())

    def set_services(self, settings: HistorySettings, stale_after: Mapping[str, int]) -> None:
        self.settings = settings
        self.stale_after = dict(stale_after)
        if self.ledger is not None:
            self.ledger.set_services(self.stale_after, now_ms())

    async def run(self) -> None:
        await self.archive.opened.wait()
        store = self.archive.store
        assert store is not None
        while True:
            if self.ledger is None:
                await self._lead(store)
            await asyncio.sleep(self.settings.flush_ms / 1000)
            await self.flush()

    async def _lead(self, store: HistoryStore) -> None:
        """Wait to become the writer; then close what the last one left open."""
        while True:
            try:
                if await store.try_lead(self.writer):
                    now = now_ms()
                    gaps = await store.recover(now)
                    self.ledger = Ledger(self.writer, self.stale_after, now, gaps)
                    log.info("history.writing", where=store.where, writer=self.writer)
                    return
            except StoreError as exc:
                self.archive.failed(exc.kind, str(exc))
            await asyncio.sleep(LEAD_RETRY_S)

    async def flush(self) -> bool:
        """Write what was gathered; True when written.

        A batch that failed is retried alone, with its own number, before
        anything newer is taken: if its commit did go through, the store
        knows the number and applies it once. Meanwhile the ledger keeps
        gathering, minute by minute, into the next batch.
        """
        store = self.archive.store
        if self.ledger is None or store is None:
            return False
        now = now_ms()
        self.ledger.tick(now)
        if self._pending is None:
            self._pending = self.ledger.take(now)
        try:
            await store.write(self._pending, retention(self.settings))
        except StoreError as exc:
            self.archive.failed(exc.kind, str(exc))
            if exc.kind == LEAD_LOST:
                # Another monitor writes now: what this one gathered is not needed.
                self.ledger = self._pending = None
            else:
                self.ledger.bound(MAX_PENDING)
            return False
        self._pending = None
        self.writes += 1
        self.archive.succeeded()
        return True

    async def stop(self) -> None:
        """A last write, so a clean stop loses nothing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), FINAL_WRITE_S)
