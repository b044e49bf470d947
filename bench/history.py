"""History: what a year of checks leaves on disk, how fast it reads back, what it costs.

- ``history_size`` drives a simulated year of 500 ms checks through the real
  ``SqliteStore.write``: one ``Batch`` per simulated hour holding every
  service's minutes (``Totals`` as the ledger makes them: 120 checks, time per
  state, a latency histogram) and the periods the flap model opens and
  closes, with ``now_ms`` advancing so roll-up and pruning run as they do in
  production. healthmon restarts once a week: the store's own ``recover``
  opens the unknown periods. The figure is the file's size per service.
- ``history_query`` builds what a year *leaves* (48 h of minutes, 90 d of
  hours, 365 d of days, a year of periods) with bulk inserts into the
  store's own schema, then times the reads: a 30-day uptime, the history
  document for 24 h and 90 d, one ``Summaries.refresh()``, one flush of the
  writer, and ``GET /api/services`` from a healthmon process whose history
  file it is.
- ``history_scale`` runs ``bench.scale`` trials with history off and on,
  alternating, and compares their lateness and the server's CPU; "on"
  writes a new file, or (full plan) one already holding a year's rows for
  every service (``fill_uniform``), history's steady state.

Every random draw comes from the run's seed.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import math
import random
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.figures import Figure
from bench.scale import LATENESS_TARGET_MS, Trial, mock_farm, trial
from bench.server import (
    BenchError,
    ServerSpec,
    Service,
    free_ports,
    remove_history,
    running_server,
    services_doc,
    wait_ready,
)
from bench.stats import summarize
from healthmon.archive import Archive
from healthmon.config import HistorySettings
from healthmon.models import FailingCheck, Status, now_ms
from healthmon.reports import Summaries, service_history
from healthmon.store import Batch, Period, Retention, Totals, retention
from healthmon.store.base import DAY_MS, HOUR_MS, MINUTE_MS, VALUE_COLUMNS
from healthmon.store.sqlite import SqliteStore

SIZE_TARGET_MIB = 1.0
# Uptime Kuma, from its users' reports: 8 GB of SQLite for 96 monitors.
UPTIME_KUMA_MIB = 8 * 1000**3 / 96 / 2**20
TOTALS_TARGET_MS = 10.0
SERVICES_DOC_TARGET_MS = 100.0
SERVICES_DOC_AT = 1000
RATIO_TARGET = 1.10
INTERVAL_MS = 500
TIMEOUT_MS = 1000
CHECKS_PER_MINUTE = MINUTE_MS // INTERVAL_MS
YEAR_DAYS = 365
# 2025-01-01T00:00Z: the simulated year starts on a day boundary.
SIM_START_MS = 1_735_689_600_000
# Bounds: healthmon answering with every summary loaded; one GET; each timed series.
SUMMARIES_TIMEOUT_S = 60.0
GET_TIMEOUT_S = 10.0
BUDGET_S = 60.0


# -- the flap model ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind:
    """One way of failing: the status shown, its reason, failing checks, answered or not."""

    status: str
    reason: str
    share: float
    answered: bool
    checks: str | None = None


def _checks(name: str, status: Status, output: str) -> str:
    return json.dumps(
        [FailingCheck(name=name, status=status, output=output).model_dump(mode="json")]
    )


KINDS = (
    Kind("down", "connection refused", 0.35, answered=False),
    Kind("down", f"no answer within {TIMEOUT_MS} ms", 0.20, answered=False),
    Kind(
        "down",
        "db: fail: connection pool exhausted (50/50 in use)",
        0.20,
        answered=True,
        checks=_checks("db", Status.DOWN, "connection pool exhausted (50/50 in use)"),
    ),
    Kind(
        "degraded",
        "payments-api: warn: p99 812 ms over 500 ms",
        0.25,
        answered=True,
        checks=_checks("payments-api", Status.DEGRADED, "p99 812 ms over 500 ms"),
    ),
)


@dataclass(frozen=True, slots=True)
class FlapModel:
    """How often a service fails and for how long; what checks cost when it answers."""

    incidents_per_day: float = 3.0  # Poisson arrivals per service
    # Incident length: lognormal (median 60 s: p90 ≈ 6 min, p99 ≈ 26 min), clipped.
    median_s: float = 60.0
    sigma: float = 1.4
    min_s: float = 1.0
    max_s: float = 6 * 3600.0
    # healthmon itself restarts (a deploy): nothing is recorded for the gap.
    restarts_per_week: float = 1.0
    restart_gap_s: float = 30.0
    # A service's median latency is lognormal across services; its checks around it.
    latency_median_ms: float = 25.0
    latency_spread: float = 0.8
    check_sigma: float = 0.35
    slow_share: float = 0.01  # checks 3-10 x slower (GC pauses, cold caches)
    degraded_factor: float = 8.0

    def describe(self) -> dict[str, object]:
        return {**asdict(self), "kinds": {k.reason: k.share for k in KINDS}}


@dataclass(frozen=True, slots=True)
class Incident:
    start_ms: int
    end_ms: int
    kind: Kind


def incidents(model: FlapModel, rng: random.Random, start_ms: int, end_ms: int) -> list[Incident]:
    """One service's incidents in [start, end): Poisson arrivals, none overlapping."""
    found: list[Incident] = []
    mean_gap_ms = DAY_MS / model.incidents_per_day
    shares = [k.share for k in KINDS]
    at = start_ms
    while True:
        at += round(rng.expovariate(1 / mean_gap_ms))
        length_s = min(
            model.max_s, max(model.min_s, rng.lognormvariate(0, model.sigma) * model.median_s)
        )
        end = at + round(length_s * 1000)
        if end >= end_ms:
            return found
        found.append(Incident(at, end, rng.choices(KINDS, shares)[0]))
        at = end + 1000


class ServiceModel:
    """One service's year: its incidents, and its checks' latencies minute by minute."""

    TEMPLATES = 32

    def __init__(
        self, name: str, model: FlapModel, rng: random.Random, start_ms: int, end_ms: int
    ) -> None:
        self.name = name
        self.model = model
        self.rng = rng
        self.median_ms = model.latency_median_ms * rng.lognormvariate(0, model.latency_spread)
        # Checks run at a fixed phase within each interval.
        self.phase_ms = rng.randrange(INTERVAL_MS)
        self.incidents = incidents(model, rng, start_ms, end_ms)
        self.times = [start_ms]
        self.states: list[Incident | None] = [None]
        for incident in self.incidents:
            self.times += [incident.start_ms, incident.end_ms]
            self.states += [incident, None]
        # Whole minutes all up draw their latencies from a few premade ones.
        self.templates = [self._up_minute() for _ in range(self.TEMPLATES)]

    def latency(self, degraded: bool = False) -> float:
        m = self.model
        value = self.median_ms * self.rng.lognormvariate(0, m.check_sigma)
        if self.rng.random() < m.slow_share:
            value *= self.rng.uniform(3, 10)
        return value * (m.degraded_factor if degraded else 1.0)

    def _up_minute(self) -> Totals:
        totals = Totals(up_ms=MINUTE_MS, checks=CHECKS_PER_MINUTE)
        for _ in range(CHECKS_PER_MINUTE):
            totals.add_latency(self.latency())
        return totals

    def state_at(self, ts: int) -> Incident | None:
        return self.states[bisect.bisect_right(self.times, ts) - 1]

    def changes(self, lo: int, hi: int) -> list[tuple[int, Incident | None]]:
        """Status changes in [lo, hi)."""
        # The first entry is where the model starts, not a change.
        first = max(1, bisect.bisect_left(self.times, lo))
        last = bisect.bisect_left(self.times, hi)
        return list(zip(self.times[first:last], self.states[first:last], strict=True))

    def minutes(self, lo: int, hi: int) -> list[Totals]:
        """Every minute overlapping [lo, hi), as the ledger records its part of it."""
        first = lo // MINUTE_MS * MINUTE_MS
        calm = self.state_at(lo) is None and not self.changes(lo, hi)
        out: list[Totals] = []
        for minute in range(first, hi, MINUTE_MS):
            a, b = max(lo, minute), min(hi, minute + MINUTE_MS)
            whole = a == minute and b == minute + MINUTE_MS
            out.append(self._up_template() if calm and whole else self.minute(minute, a, b))
        return out

    def _up_template(self) -> Totals:
        t = self.templates[self.rng.randrange(self.TEMPLATES)]
        # Not Totals.copy() (dataclasses.replace): a year calls this millions of times.
        return Totals(
            t.up_ms, 0, 0, 0, t.checks, 0, t.latency_n, t.latency_sum, t.latency_max, list(t.bins)
        )  # fmt: skip

    def minute(self, minute_ms: int, lo: int, hi: int) -> Totals:
        """The minute starting at ``minute_ms`` as the ledger records [lo, hi) of it."""
        if lo == minute_ms and hi == minute_ms + MINUTE_MS:
            index = bisect.bisect_right(self.times, minute_ms) - 1
            calm = index + 1 >= len(self.times) or self.times[index + 1] >= hi
            if calm and self.states[index] is None:
                return self._up_template()
        totals = Totals()
        # Time per state, split exactly at each change.
        bounds = [lo, *(t for t, _ in self.changes(lo + 1, hi)), hi]
        for a, b in itertools.pairwise(bounds):
            incident = self.state_at(a)
            status = "up" if incident is None else incident.kind.status
            setattr(totals, f"{status}_ms", getattr(totals, f"{status}_ms") + b - a)
        # One check per interval, at the service's phase.
        first = minute_ms + self.phase_ms
        for ts in range(first, minute_ms + MINUTE_MS, INTERVAL_MS):
            if not lo <= ts < hi:
                continue
            incident = self.state_at(ts)
            totals.checks += 1
            if incident is None:
                totals.add_latency(self.latency())
                continue
            if incident.kind.status == "down":
                totals.failures += 1
            if incident.kind.answered:
                totals.add_latency(self.latency(incident.kind.status == "degraded"))
        return totals


# -- a year through the store ---------------------------------------------------


@dataclass(slots=True)
class _Open:
    """The period open now for one service, as the ledger tracks it."""

    status: str
    start_ms: int


@dataclass(slots=True)
class YearResult:
    services: int
    file_bytes: int
    page_size: int
    page_count: int
    freelist_count: int
    vacuumed_bytes: int
    tables: dict[str, int]
    rows: dict[str, int]
    growth: list[dict[str, int]]
    write_ms: list[float]
    recover_ms: list[float]
    simulated_s: float
    restarts: int

    @property
    def per_service_mib(self) -> float:
        return self.file_bytes / self.services / 2**20


class YearSimulation:
    """A year of ``services`` through ``SqliteStore.write``, a batch per ``batch_minutes``."""

    def __init__(
        self,
        path: Path,
        names: Sequence[str],
        model: FlapModel,
        rng: random.Random,
        batch_minutes: int,
        keep: Retention,
        days: int = YEAR_DAYS,
    ) -> None:
        self.path = path
        self.model = model
        self.rng = rng
        self.step_ms = batch_minutes * MINUTE_MS
        self.keep = keep
        self.start_ms = SIM_START_MS
        self.end_ms = SIM_START_MS + days * DAY_MS
        self.services = [
            ServiceModel(name, model, rng, self.start_ms, self.end_ms) for name in names
        ]
        # Restarts begin on a batch boundary: the last batch before one ends there.
        weeks = days / 7 * model.restarts_per_week
        count = round(weeks)
        steps = (self.end_ms - self.start_ms) // self.step_ms
        self.restarts = sorted(
            self.start_ms + self.step_ms * s for s in rng.sample(range(1, steps), count)
        )
        self.open: dict[str, _Open] = {}
        self.writers = 1
        self.writer = "sim-1"
        self.monitor = "a1b2c3d4e5f6"
        self.seq = 0

    async def run(self) -> YearResult:
        remove_history(self.path)
        store = SqliteStore(self.path)
        await store.open()
        write_ms: list[float] = []
        recover_ms: list[float] = []
        growth: list[dict[str, int]] = []
        started = time.perf_counter()
        try:
            at = self.start_ms
            restarts = list(self.restarts)
            batch = self._batch(at)
            for service in self.services:
                batch.first_seen[service.name] = at
                self._open_period(batch, service, at, None, None)
            while at < self.end_ms:
                # Batches end on the step's grid, also the first after a restart.
                end = at - (at - self.start_ms) % self.step_ms + self.step_ms
                self._fill(batch, at, end)
                batch.now_ms = end
                t0 = time.perf_counter()
                await store.write(batch, self.keep)
                write_ms.append((time.perf_counter() - t0) * 1000)
                if end % (30 * DAY_MS) == SIM_START_MS % (30 * DAY_MS):
                    growth.append({"day": (end - self.start_ms) // DAY_MS, **_pages(self.path)})
                at = end
                if restarts and restarts[0] == at:
                    restarts.pop(0)
                    at += round(self.model.restart_gap_s * 1000)
                    t0 = time.perf_counter()
                    gaps = await store.recover(at)
                    recover_ms.append((time.perf_counter() - t0) * 1000)
                    batch = self._restarted(at, gaps)
                else:
                    batch = self._batch(at)
        finally:
            await store.close()
        simulated_s = time.perf_counter() - started
        return await asyncio.to_thread(self._measure, write_ms, recover_ms, growth, simulated_s)

    def _batch(self, now: int) -> Batch:
        self.seq += 1
        return Batch(self.writer, self.seq, now)

    def _restarted(self, at: int, gaps: dict[str, int]) -> Batch:
        """A new writer after ``recover``: each service's unknown period ends at its first check."""
        self.writers += 1
        self.writer, self.seq = f"sim-{self.writers}", 0
        self.monitor = f"{self.rng.getrandbits(48):012x}"
        batch = self._batch(at)
        for service in self.services:
            self.open[service.name] = _Open("unknown", gaps.get(service.name, at))
            self._open_period(batch, service, at, service.state_at(at), "unknown")
        return batch

    def _open_period(
        self,
        batch: Batch,
        service: ServiceModel,
        at: int,
        incident: Incident | None,
        previous: str | None,
    ) -> None:
        name = service.name
        current = self.open.get(name)
        if current is not None:
            key = (name, current.start_ms)
            opened = batch.periods.get(key) or Period(name, current.start_ms, current.status)
            batch.periods[key] = Period(
                name,
                opened.start_ms,
                opened.status,
                max(at, opened.start_ms),
                opened.previous,
                opened.reason,
                opened.checks,
                opened.monitor,
            )
        status = "up" if incident is None else incident.kind.status
        reason = None if incident is None else incident.kind.reason
        checks = None if incident is None else incident.kind.checks
        self.open[name] = _Open(status, at)
        batch.periods[(name, at)] = Period(
            name, at, status, None, previous, reason, checks, self.monitor
        )

    def _fill(self, batch: Batch, lo: int, hi: int) -> None:
        """Every service's minutes and period changes in [lo, hi), minute by minute."""
        first = lo // MINUTE_MS * MINUTE_MS
        starts = range(first, hi, MINUTE_MS)
        made = [service.minutes(lo, hi) for service in self.services]
        # Minute by minute across services, in the order the ledger fills a batch.
        for k, minute in enumerate(starts):
            for service, minutes in zip(self.services, made, strict=True):
                batch.minutes[(service.name, minute)] = minutes[k]
        for service in self.services:
            for ts, incident in service.changes(lo, hi):
                previous = self.open[service.name].status
                self._open_period(batch, service, ts, incident, previous)

    def _measure(
        self,
        write_ms: list[float],
        recover_ms: list[float],
        growth: list[dict[str, int]],
        simulated_s: float,
    ) -> YearResult:
        """Sizes after the store closed (its last connection checkpoints the WAL)."""
        db = sqlite3.connect(self.path)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = _pages(self.path)
            tables: dict[str, int] = {}
            for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                tables[name] = int(size)
            rows = {
                t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                for t in ("services", "periods", "minutes", "hours", "days")
            }
            compact = self.path.with_suffix(".vacuumed")
            compact.unlink(missing_ok=True)
            db.execute("VACUUM INTO ?", (str(compact),))
            vacuumed = compact.stat().st_size
            compact.unlink()
        finally:
            db.close()
        return YearResult(
            services=len(self.services),
            file_bytes=self.path.stat().st_size,
            page_size=pages["page_size"],
            page_count=pages["page_count"],
            freelist_count=pages["freelist_count"],
            vacuumed_bytes=vacuumed,
            tables=dict(sorted(tables.items(), key=lambda kv: -kv[1])),
            rows=rows,
            growth=growth,
            write_ms=write_ms,
            recover_ms=recover_ms,
            simulated_s=simulated_s,
            restarts=len(self.restarts),
        )


def _pages(path: Path) -> dict[str, int]:
    """Page figures as a reader sees them (WAL included)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            key: int(db.execute(f"PRAGMA {key}").fetchone()[0])
            for key in ("page_size", "page_count", "freelist_count")
        }
    finally:
        db.close()


async def size_figures(
    services: int, batch_minutes: int, workdir: Path, rng: random.Random
) -> list[Figure]:
    model = FlapModel()
    names = [f"svc-{i:04d}" for i in range(services)]
    sim = YearSimulation(
        workdir / "history-year.sqlite3",
        names,
        model,
        rng,
        batch_minutes,
        retention(HistorySettings()),
    )
    result = await sim.run()
    periods_per_service = [2 * len(s.incidents) for s in sim.services]
    detail: dict[str, object] = {
        "services": services,
        "file_bytes": result.file_bytes,
        "page_size": result.page_size,
        "page_count": result.page_count,
        "freelist_pages": result.freelist_count,
        "vacuumed_bytes": result.vacuumed_bytes,
        "vacuumed_mib_per_service": round(result.vacuumed_bytes / services / 2**20, 3),
        "bytes_by_table": result.tables,
        "rows": result.rows,
        "incident_periods_per_service": summarize(periods_per_service).as_dict(),
        "restarts": result.restarts,
        "growth_every_30_days": result.growth,
        "batch_minutes": batch_minutes,
        "batches": len(result.write_ms),
        "recover_ms": summarize(result.recover_ms).as_dict(),
        "simulated_s": round(result.simulated_s, 1),
        "uptime_kuma_mib_per_monitor": round(UPTIME_KUMA_MIB, 1),
        "model": model.describe(),
    }
    per_service = result.per_service_mib
    return [
        Figure(
            "history file per service-year (MiB)",
            "—",
            "MiB",
            f"≤ {SIZE_TARGET_MIB:g}",
            per_service <= SIZE_TARGET_MIB,
            value=round(per_service, 3),
            detail=detail,
        ),
        Figure(
            f"a year of {services} services through the store (s)",
            "—",
            "s",
            "—",
            None,
            value=round(result.simulated_s, 1),
            detail={"batches": len(result.write_ms)},
        ),
        Figure(
            f"history write, {batch_minutes} min of {services} services (ms)",
            "—",
            "ms",
            "—",
            None,
            summary=summarize(result.write_ms),
        ),
    ]


# -- what a year leaves, in bulk -------------------------------------------------


def _scaled(template: Totals, span_ms: int) -> Totals:
    """An all-up bucket of ``span_ms`` from a minute template (its histogram scaled)."""
    k = span_ms // MINUTE_MS
    return Totals(
        up_ms=span_ms,
        checks=template.checks * k,
        latency_n=template.latency_n * k,
        latency_sum=template.latency_sum * k,
        latency_max=template.latency_max,
        bins=[b * k for b in template.bins],
    )


def _apply(
    buckets: dict[int, Totals], base: Totals, step: int, incident: Incident, lo: int, hi: int
) -> None:
    """Move the incident's time in [lo, hi) from up to its status, bucket by bucket."""
    start, end = max(lo, incident.start_ms), min(hi, incident.end_ms)
    field_name = f"{incident.kind.status}_ms"
    bucket = start // step * step
    while bucket < end:
        totals = buckets.get(bucket)
        if totals is None:
            totals = buckets[bucket] = base.copy()
        overlap = min(end, bucket + step) - max(start, bucket)
        moved = min(overlap, totals.up_ms)
        totals.up_ms -= moved
        setattr(totals, field_name, getattr(totals, field_name) + moved)
        if incident.kind.status == "down":
            totals.failures += overlap // INTERVAL_MS
        bucket += step


@dataclass(slots=True)
class BuiltStore:
    path: Path
    names: list[str]
    now_ms: int
    build_s: float
    rows: dict[str, int] = field(default_factory=dict)
    file_bytes: int = 0


async def build_year_store(
    path: Path, services: int, rng: random.Random, keep: Retention
) -> BuiltStore:
    """The rows a year leaves under ``keep``, up to now, inserted in bulk.

    The store creates the schema; rows go in service by service (key order,
    so pages are fuller than a year of writes leaves them).
    """
    started = time.perf_counter()
    remove_history(path)
    store = SqliteStore(path)
    await store.open()
    await store.close()
    now = now_ms()
    names = [f"s{i}" for i in range(services)]
    rows = await asyncio.to_thread(_insert_year, path, names, rng, keep, now)
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    return BuiltStore(path, names, now, time.perf_counter() - started, rows, size)


def _insert_year(
    path: Path, names: Sequence[str], rng: random.Random, keep: Retention, now: int
) -> dict[str, int]:
    model = FlapModel(restarts_per_week=0)
    minute_now = now // MINUTE_MS * MINUTE_MS
    hour_now = now // HOUR_MS * HOUR_MS
    day_now = now // DAY_MS * DAY_MS
    year_start = day_now - YEAR_DAYS * DAY_MS
    marks = ", ".join("?" for _ in range(len(VALUE_COLUMNS) + 2))
    columns = ", ".join(VALUE_COLUMNS)
    insert = {
        t: f"INSERT INTO {t} (service_id, start_ms, {columns}) VALUES ({marks})"
        for t in ("minutes", "hours", "days")
    }
    rows = {"minutes": 0, "hours": 0, "days": 0, "periods": 0}
    db = sqlite3.connect(path, isolation_level=None)
    try:
        _bulk_mode(db)
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO services (id, name, first_seen) VALUES (?, ?, ?)",
            [(i + 1, name, year_start) for i, name in enumerate(names)],
        )
        for index, name in enumerate(names):
            service_id = index + 1
            svc = ServiceModel(name, model, rng, year_start, now)
            minutes_from = max(minute_now - keep.minutes_ms, year_start)
            minutes = dict(
                zip(
                    range(minutes_from, minute_now, MINUTE_MS),
                    svc.minutes(minutes_from, minute_now),
                    strict=True,
                )
            )
            hours_from = max(hour_now - keep.hours_ms, year_start)
            hour, day = _scaled(svc.templates[0], HOUR_MS), _scaled(svc.templates[0], DAY_MS)
            # Buckets an incident touched; every other one is all up, like ``hour``/``day``.
            hours: dict[int, Totals] = {}
            days: dict[int, Totals] = {}
            for incident in svc.incidents:
                _apply(hours, hour, HOUR_MS, incident, hours_from, hour_now)
                _apply(days, day, DAY_MS, incident, year_start, day_now)
            # The hour and day in progress hold the minutes rolled up so far.
            hours[hour_now] = _sum(t for m, t in minutes.items() if m >= hour_now)
            days[day_now] = _sum(
                hours.get(h, hour) for h in range(day_now, hour_now + HOUR_MS, HOUR_MS)
            )
            for table, lo, step, base, buckets in (
                ("minutes", minutes_from, MINUTE_MS, None, minutes),
                ("hours", hours_from, HOUR_MS, hour, hours),
                ("days", year_start, DAY_MS, day, days),
            ):
                base_row = None if base is None else base.row()
                made = [
                    (service_id, s, *(buckets[s].row() if s in buckets else base_row or ()))
                    for s in range(lo, max(buckets) + 1, step)
                ]
                db.executemany(insert[table], made)
                rows[table] += len(made)
            periods = _periods(service_id, svc, year_start)
            db.executemany(
                "INSERT INTO periods (service_id, start_ms, end_ms, status, previous, reason, "
                "checks, monitor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                periods,
            )
            rows["periods"] += len(periods)
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [("last_alive", str(now)), ("rolled_to", str(minute_now)), ("batch", "bulk:0")],
        )
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode = WAL")
    finally:
        db.close()
    return rows


def _bulk_mode(db: sqlite3.Connection) -> None:
    """A new file filled in one go: no journal (the WAL would hold it all twice), no syncs.

    The file is left in WAL mode again, as the store keeps it."""
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")


def _sum(parts: Any) -> Totals:
    total = Totals()
    for part in parts:
        total.add(part)
    return total


def _periods(service_id: int, svc: ServiceModel, start: int) -> list[tuple[object, ...]]:
    monitor = "a1b2c3d4e5f6"
    out: list[tuple[object, ...]] = []
    opened: tuple[int, str, str | None, str | None, str | None] = (start, "up", None, None, None)
    for incident in svc.incidents:
        kind = incident.kind
        for at, status, reason, checks in (
            (incident.start_ms, kind.status, kind.reason, kind.checks),
            (incident.end_ms, "up", None, None),
        ):
            begun, was, previous, why, failing = opened
            out.append((service_id, begun, at, was, previous, why, failing, monitor))
            opened = (at, status, was, reason, checks)
    begun, was, previous, why, failing = opened
    out.append((service_id, begun, None, was, previous, why, failing, monitor))
    return out


# -- reading a year ---------------------------------------------------------------


async def _timed(runs: int, call: Callable[[int], Coroutine[Any, Any, object]]) -> list[float]:
    """``runs`` calls' times (ms), one after another, stopping early after ``BUDGET_S``."""
    samples: list[float] = []
    deadline = time.monotonic() + BUDGET_S
    for index in range(runs):
        t0 = time.perf_counter()
        await call(index)
        samples.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() > deadline:
            break
    return samples


class QueryBench:
    """One year-store per run, built at first use and read by every loop's server."""

    def __init__(self, services: int, workdir: Path, rng: random.Random) -> None:
        self.services = services
        self.workdir = workdir
        self.rng = rng
        self.built: BuiltStore | None = None

    async def figures(
        self,
        session: aiohttp.ClientSession,
        loop: str,
        *,
        runs: int,
        report_runs: int,
        refresh_runs: int,
        http_runs: int,
        write_rounds: int,
    ) -> list[Figure]:
        figures: list[Figure] = []
        if self.built is None:
            keep = retention(HistorySettings())
            self.built = await build_year_store(
                self.workdir / "history-query.sqlite3", self.services, self.rng, keep
            )
            figures += await self._reads(runs, report_runs, refresh_runs)
            figures.append(await self._services_doc(session, loop, http_runs))
            figures += await self._writes(write_rounds, keep)
            return figures
        return [await self._services_doc(session, loop, http_runs)]

    def remove(self) -> None:
        """The store is hundreds of MB at 1,000 services: gone once the run is over."""
        if self.built is not None:
            remove_history(self.built.path)

    def _detail(self) -> dict[str, object]:
        assert self.built is not None
        b = self.built
        return {
            "services": len(b.names),
            "rows": b.rows,
            "file_bytes": b.file_bytes,
            "build_s": round(b.build_s, 1),
            "content": "bulk: 48 h of minutes, 90 d of hours, 365 d of days, a year of periods",
        }

    async def _reads(self, runs: int, report_runs: int, refresh_runs: int) -> list[Figure]:
        assert self.built is not None
        names = self.built.names
        picks = [self.rng.choice(names) for _ in range(max(runs, report_runs))]
        n = len(names)
        store = SqliteStore(self.built.path)
        await store.open()
        try:
            # One untimed read of each kind, so the first sample pays no page-cache misses.
            await store.totals([picks[0]], now_ms() - 30 * DAY_MS, now_ms())
            totals = await _timed(
                runs, lambda i: store.totals([picks[i]], now_ms() - 30 * DAY_MS, now_ms())
            )
            day = await _timed(report_runs, lambda i: service_history(store, picks[i], "24h"))
            quarter = await _timed(report_runs, lambda i: service_history(store, picks[i], "90d"))
            archive = Archive(HistorySettings(path=str(self.built.path)), self.workdir)
            archive.store = store
            summaries = Summaries(archive, lambda: names)
            refresh = await _timed(refresh_runs, lambda _: summaries.refresh())
        finally:
            await store.close()
        detail = self._detail()
        t = summarize(totals)
        return [
            Figure(
                f"30-day uptime, 1 of {n} services (ms)",
                "—",
                "ms",
                f"p95 ≤ {TOTALS_TARGET_MS:g}",
                t.p95 <= TOTALS_TARGET_MS,
                summary=t,
                detail=detail,
            ),
            Figure(
                f"history document 24h, 1 of {n} (ms)", "—", "ms", "—", None, summary=summarize(day)
            ),
            Figure(
                f"history document 90d, 1 of {n} (ms)",
                "—",
                "ms",
                "—",
                None,
                summary=summarize(quarter),
            ),
            Figure(
                f"Summaries.refresh, {n} services (ms)",
                "—",
                "ms",
                "— (every 5 s, off the loop)",
                None,
                summary=summarize(refresh),
            ),
        ]

    async def _writes(self, rounds: int, keep: Retention) -> list[Figure]:
        """The writer's flushes on a year store: 1 s of every service, and the one closing a minute.

        Simulated time runs on, a minute per round, from the last write (the
        server's, which rolled up to its own now): every closing flush rolls up.
        """
        assert self.built is not None
        names = self.built.names
        store = SqliteStore(self.built.path)
        await store.open()
        last = await store.last_alive()
        start = max(last or 0, self.built.now_ms) // MINUTE_MS * MINUTE_MS + MINUTE_MS
        second = Totals(up_ms=1000, checks=2)
        second.add_latency(20.0)
        second.add_latency(31.0)
        plain: list[float] = []
        closing: list[float] = []
        try:
            seq = 0

            async def flush(at: int, minute: int) -> float:
                nonlocal seq
                seq += 1
                batch = Batch("bench-write", seq, at)
                batch.minutes = {(name, minute): second.copy() for name in names}
                t0 = time.perf_counter()
                await store.write(batch, keep)
                return (time.perf_counter() - t0) * 1000

            # The first write also prunes (hourly): timed apart.
            first = await flush(start + 30_000, start)
            for r in range(rounds):
                minute = start + r * MINUTE_MS
                plain.append(await flush(minute + 30_000 + 1000, minute))
                closing.append(await flush(minute + MINUTE_MS + 200, minute))
        finally:
            await store.close()
        n = len(names)
        return [
            Figure(
                f"history flush, 1 s of {n} services (ms)",
                "—",
                "ms",
                "—",
                None,
                summary=summarize(plain),
                detail={"first_with_prune_ms": round(first, 1)},
            ),
            Figure(
                f"history flush closing a minute, {n} services (ms)",
                "—",
                "ms",
                "—",
                None,
                summary=summarize(closing),
            ),
        ]

    async def _services_doc(self, session: aiohttp.ClientSession, loop: str, runs: int) -> Figure:
        """``GET /api/services`` from a server checking every service, its history this store."""
        assert self.built is not None
        names = self.built.names
        async with mock_farm(len(names)) as (_farm, ports):
            services = tuple(
                Service(name, f"http://127.0.0.1:{ports[i]}", f"/h/{i}")
                for i, name in enumerate(names)
            )
            spec = ServerSpec(
                port=free_ports(1)[0], services=services, history_path=self.built.path
            )
            async with running_server(spec, loop, self.workdir) as server:
                await wait_ready(session, server)
                waited = await _summaries_loaded(session, spec)
                url = f"{spec.base_url}/api/services"
                timeout = aiohttp.ClientTimeout(total=GET_TIMEOUT_S)
                sizes: list[int] = []

                async def get(_: int) -> None:
                    async with session.get(url, timeout=timeout) as response:
                        response.raise_for_status()
                        sizes.append(len(await response.read()))

                await get(0)
                samples = await _timed(runs, get)
        s = summarize(samples)
        n = len(names)
        met = s.p95 <= SERVICES_DOC_TARGET_MS if n >= SERVICES_DOC_AT else None
        return Figure(
            f"GET /api/services, {n} services, a year of history (ms)",
            loop,
            "ms",
            f"p95 ≤ {SERVICES_DOC_TARGET_MS:g} at {SERVICES_DOC_AT}",
            met,
            summary=s,
            detail={"body_bytes": max(sizes), "summaries_loaded_after_s": round(waited, 1)},
        )


async def _summaries_loaded(session: aiohttp.ClientSession, spec: ServerSpec) -> float:
    """Seconds until every service's 30-day figure is in ``/api/services``."""
    started = time.monotonic()
    while time.monotonic() - started < SUMMARIES_TIMEOUT_S:
        services = (await services_doc(session, spec))["services"]
        assert isinstance(services, list)
        if all((s.get("uptime") or {}).get("30d", {}).get("known_ms") for s in services):
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise BenchError(f"summaries not loaded within {SUMMARIES_TIMEOUT_S:.0f} s")


# -- a year's rows in bulk, all up -----------------------------------------------

_DEFAULT_MODEL = FlapModel()


async def fill_uniform(
    path: Path, services: int, rng: random.Random, keep: Retention
) -> BuiltStore:
    """A new store holding the rows a year leaves for ``services`` (``s0``…), generated in SQL.

    Every bucket is all up (the same values: a read or a roll-up costs by rows,
    not by what they hold) and every 4 hours a period opens, down and up in
    turn, about the flap model's 3 incidents a day. Seconds for thousands of
    services, where ``build_year_store`` takes minutes.
    """
    started = time.perf_counter()
    remove_history(path)
    store = SqliteStore(path)
    await store.open()
    await store.close()
    now = now_ms()
    template = ServiceModel("template", _DEFAULT_MODEL, rng, now - DAY_MS, now).templates[0]
    await asyncio.to_thread(_fill_uniform, path, services, template, keep, now)
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    rows = await asyncio.to_thread(_count_rows, path)
    names = [f"s{i}" for i in range(services)]
    return BuiltStore(path, names, now, time.perf_counter() - started, rows, size)


def _fill_uniform(path: Path, services: int, template: Totals, keep: Retention, now: int) -> None:
    minute_now = now // MINUTE_MS * MINUTE_MS
    day_now = now // DAY_MS * DAY_MS
    year_start = day_now - YEAR_DAYS * DAY_MS
    period_ms = 4 * HOUR_MS
    checks = KINDS[2].checks
    columns = ", ".join(VALUE_COLUMNS)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        _bulk_mode(db)
        db.execute("BEGIN")
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
            "INSERT INTO services (id, name, first_seen) SELECT i + 1, 's' || i, ? FROM n",
            (services, year_start),
        )
        for table, step, first in (
            ("minutes", MINUTE_MS, minute_now - keep.minutes_ms),
            ("hours", HOUR_MS, now // HOUR_MS * HOUR_MS - keep.hours_ms),
            ("days", DAY_MS, year_start),
        ):
            values = _scaled(template, step).row() if step > MINUTE_MS else template.row()
            marks = ", ".join("?" for _ in values)
            # Service by service, in key order; the last bucket is the one in progress.
            db.execute(
                f"WITH RECURSIVE t(x) AS (SELECT ? UNION ALL SELECT x + ? FROM t WHERE x + ? <= ?) "
                f"INSERT INTO {table} (service_id, start_ms, {columns}) "
                f"SELECT s.id, t.x, {marks} FROM services s CROSS JOIN t ORDER BY s.id, t.x",
                (
                    first,
                    step,
                    step,
                    now // step * step - (step if step == MINUTE_MS else 0),
                    *values,
                ),
            )
        db.execute(
            "WITH RECURSIVE t(x) AS (SELECT ? UNION ALL SELECT x + ? FROM t WHERE x + ? < ?) "
            "INSERT INTO periods (service_id, start_ms, end_ms, status, previous, reason, checks, "
            "monitor) SELECT s.id, t.x, CASE WHEN t.x + ? < ? THEN t.x + ? END, "
            "CASE WHEN (t.x / ?) % 2 THEN 'down' ELSE 'up' END, "
            "CASE WHEN t.x = ? THEN NULL WHEN (t.x / ?) % 2 THEN 'up' ELSE 'down' END, "
            "CASE WHEN (t.x / ?) % 2 THEN ? END, CASE WHEN (t.x / ?) % 2 THEN ? END, "
            "'a1b2c3d4e5f6' FROM services s CROSS JOIN t ORDER BY s.id, t.x",
            (
                year_start, period_ms, period_ms, now,
                period_ms, now, period_ms,
                period_ms,
                year_start, period_ms,
                period_ms, KINDS[2].reason, period_ms, checks,
            ),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [("last_alive", str(now)), ("rolled_to", str(minute_now)), ("batch", "bulk:0")],
        )
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode = WAL")
    finally:
        db.close()


def _count_rows(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {
            t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
            for t in ("minutes", "hours", "days", "periods")
        }
    finally:
        db.close()


# -- lateness with history off and on ------------------------------------------


class ScaleBench:
    """Lateness with history off and on, alternating; "on" writes a store that already
    holds a year (``fill_uniform``, built at first use) or, with ``year`` false, a new one."""

    def __init__(self, workdir: Path, rng: random.Random, *, year: bool) -> None:
        self.workdir = workdir
        self.rng = rng
        self.year = year
        self.built: BuiltStore | None = None

    async def figures(
        self,
        session: aiohttp.ClientSession,
        loop: str,
        count: int,
        pairs: int,
        window_s: float,
        services_per_port: int,
    ) -> list[Figure]:
        """Trials off, on, off, on…: each side's lateness, and the ratio of their p99s."""
        if self.year and (self.built is None or len(self.built.names) != count):
            self.built = await fill_uniform(
                self.workdir / "history-scale.sqlite3",
                count,
                self.rng,
                retention(HistorySettings()),
            )
        path = self.built.path if self.year and self.built else None
        trials: dict[bool, list[Trial]] = {False: [], True: []}
        for _ in range(pairs):
            for history in (False, True):
                trials[history].append(
                    await trial(
                        session,
                        loop,
                        count,
                        window_s,
                        services_per_port,
                        self.workdir,
                        history=history,
                        history_path=path,
                    )
                )
        return self._figures(loop, count, pairs, window_s, trials)

    def remove(self) -> None:
        """The store is GBs at 3,000 services: gone once the run is over."""
        if self.built is not None:
            remove_history(self.built.path)

    def _figures(
        self, loop: str, count: int, pairs: int, window_s: float, trials: dict[bool, list[Trial]]
    ) -> list[Figure]:
        pooled = {h: summarize([x for t in ts for x in t.samples]) for h, ts in trials.items()}
        ratio = pooled[True].p99 / pooled[False].p99 if pooled[False].p99 > 0 else math.inf
        per_pair = [
            round(on.lateness.p99 / off.lateness.p99, 3) if off.lateness.p99 > 0 else None
            for off, on in zip(trials[False], trials[True], strict=True)
        ]
        store: dict[str, object] = {"store": "new, empty"}
        if self.year and self.built is not None:
            store = {
                "store": "a year's rows, all up (fill_uniform)",
                "rows": self.built.rows,
                "file_bytes": self.built.file_bytes,
                "build_s": round(self.built.build_s, 1),
            }
        history = "on, a year in store" if self.year else "on, new store"
        figures = [
            Figure(
                f"check lateness, {count} services, history {history if h else 'off'} (ms)",
                loop,
                "ms",
                f"p99 ≤ {LATENESS_TARGET_MS:g}, 0 false downs",
                all(t.holds for t in ts),
                summary=pooled[h],
                detail={"trials": [t.as_dict() for t in ts], **(store if h else {})},
            )
            for h, ts in trials.items()
        ]
        cpu = {h: sum(t.cpu_percent for t in ts) / len(ts) for h, ts in trials.items()}
        figures.append(
            Figure(
                f"server CPU, {count} services, history on / off",
                loop,
                "ratio",
                "—",
                None,
                value=round(cpu[True] / cpu[False], 3) if cpu[False] > 0 else None,
                detail={
                    "cpu_percent_off": round(cpu[False], 1),
                    "cpu_percent_on": round(cpu[True], 1),
                },
            )
        )
        figures.append(
            Figure(
                f"p99 lateness, history on / off, {count} services",
                loop,
                "ratio",
                f"≤ {RATIO_TARGET:.2f}",
                ratio <= RATIO_TARGET,
                value=round(ratio, 3),
                detail={
                    "pairs": pairs,
                    "order": "off, on, off, on…",
                    "per_pair_ratio": per_pair,
                    "p99_off_ms": round(pooled[False].p99, 2),
                    "p99_on_ms": round(pooled[True].p99, 2),
                    "window_s": window_s,
                    **store,
                },
            )
        )
        return figures
