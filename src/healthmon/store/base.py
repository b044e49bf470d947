"""What history is made of, and the protocol every store implements.

History never stores a row per check (at 500 ms that is 172,800 rows a
service a day). It keeps:

- **periods**: one row per stretch of one status (an incident when the
  status is down or degraded), with its start, end, reason, failing checks
  and the monitor that saw it; "unknown" periods cover time nobody checked;
- **buckets** of a minute, an hour and a day: time spent up, degraded, down
  and unknown, check and failure counts, and a latency histogram with fixed
  edges, so hours are sums of minutes and days sums of hours, and
  percentiles stay honest after merging.

Time nothing recorded (healthmon stopped) is in no bucket: readers count it
as unknown, never as up.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# The alert log keeps finished messages this long (the hourly prune removes older ones).
ALERT_LOG_KEEP_MS = 30 * DAY_MS

Grain = Literal["minute", "hour", "day"]
GRAIN_MS: dict[Grain, int] = {"minute": MINUTE_MS, "hour": HOUR_MS, "day": DAY_MS}

#: Upper edges (ms) of the latency histogram's bins; the last bin is open.
LATENCY_EDGES: tuple[float, ...] = (
    5, 10, 20, 35, 50, 75, 100, 150, 250, 400, 600, 1000, 1600, 2500, 5000,
)  # fmt: skip
BINS = len(LATENCY_EDGES) + 1


def latency_bin(latency_ms: float) -> int:
    return bisect.bisect_left(LATENCY_EDGES, latency_ms)


@dataclass(slots=True)
class Totals:
    """What one bucket (or a sum of buckets) holds; every field adds up."""

    up_ms: int = 0
    degraded_ms: int = 0
    down_ms: int = 0
    unknown_ms: int = 0
    checks: int = 0
    failures: int = 0
    latency_n: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    bins: list[int] = field(default_factory=lambda: [0] * BINS)

    @property
    def known_ms(self) -> int:
        return self.up_ms + self.degraded_ms + self.down_ms

    def add(self, other: Totals) -> None:
        self.up_ms += other.up_ms
        self.degraded_ms += other.degraded_ms
        self.down_ms += other.down_ms
        self.unknown_ms += other.unknown_ms
        self.checks += other.checks
        self.failures += other.failures
        self.latency_n += other.latency_n
        self.latency_sum += other.latency_sum
        self.latency_max = max(self.latency_max, other.latency_max)
        self.bins = [a + b for a, b in zip(self.bins, other.bins, strict=True)]

    def add_latency(self, latency_ms: float) -> None:
        self.latency_n += 1
        self.latency_sum += latency_ms
        if latency_ms > self.latency_max:
            self.latency_max = latency_ms
        self.bins[bisect.bisect_left(LATENCY_EDGES, latency_ms)] += 1

    def percentile(self, q: float) -> float | None:
        """The latency below which ``q`` of the samples fell, to within its bin.

        Interpolated inside the bin; never above the largest latency seen.
        """
        if self.latency_n == 0:
            return None
        rank = q * self.latency_n
        seen = 0
        for index, count in enumerate(self.bins):
            if count and seen + count >= rank:
                low = LATENCY_EDGES[index - 1] if index else 0.0
                high = LATENCY_EDGES[index] if index < len(LATENCY_EDGES) else self.latency_max
                share = (rank - seen) / count
                return round(min(low + share * (high - low), self.latency_max), 1)
            seen += count
        return round(self.latency_max, 1)

    def row(self) -> tuple[int | float, ...]:
        """The values in column order (``VALUE_COLUMNS``)."""
        return (
            self.up_ms,
            self.degraded_ms,
            self.down_ms,
            self.unknown_ms,
            self.checks,
            self.failures,
            self.latency_n,
            self.latency_sum,
            self.latency_max,
            *self.bins,
        )

    @classmethod
    def from_row(cls, values: Sequence[int | float | None]) -> Totals:
        v = [0 if x is None else x for x in values]
        return cls(
            int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5]), int(v[6]),
            float(v[7]), float(v[8]), [int(x) for x in v[9:]],
        )  # fmt: skip

    def copy(self) -> Totals:
        return dataclasses.replace(self, bins=list(self.bins))


#: Bucket value columns, in ``Totals.row()`` order.
TIME_COLUMNS = ("up_ms", "degraded_ms", "down_ms", "unknown_ms")
VALUE_COLUMNS: tuple[str, ...] = (
    *TIME_COLUMNS,
    "checks",
    "failures",
    "latency_n",
    "latency_sum",
    "latency_max",
    *(f"h{i}" for i in range(BINS)),
)


@dataclass(frozen=True, slots=True)
class Bucket:
    start_ms: int
    totals: Totals


@dataclass(frozen=True, slots=True)
class Period:
    """A stretch of one status of one service; ``end_ms`` is None while it lasts."""

    service: str
    start_ms: int
    status: str
    end_ms: int | None = None
    previous: str | None = None
    reason: str | None = None
    # The failing checks as JSON text, as the API sends them.
    checks: str | None = None
    monitor: str | None = None


@dataclass(slots=True)
class Batch:
    """What a writer gathered since its last write: applied whole or not at all.

    ``writer``/``seq`` make a retry of a batch whose commit went unconfirmed
    a no-op instead of counting its time twice (a failed batch is retried
    alone, with the same number).
    """

    writer: str
    seq: int
    now_ms: int
    # Names seen for the first time, with when.
    first_seen: dict[str, int] = field(default_factory=dict)
    # Opened or closed periods, keyed by (service, start): the latest wins.
    periods: dict[tuple[str, int], Period] = field(default_factory=dict)
    # Additions to minute buckets, keyed by (service, minute start).
    minutes: dict[tuple[str, int], Totals] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.periods) + len(self.minutes)


@dataclass(frozen=True, slots=True)
class Retention:
    minutes_ms: int
    hours_ms: int
    days_ms: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert message in the outbox: its key, where it goes, and how far it got.

    ``state`` is "pending" (not tried yet), "retrying", "sent", "failed" (gave
    up after ``max_age``) or "held" (a maintenance window or silence held it).
    ``body`` is the message as JSON; ``answer`` the receiver's last answer.
    """

    key: str
    channel: str
    created_ms: int
    state: str
    attempts: int
    next_ms: int
    updated_ms: int
    body: str
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    """Alerts of ``services`` (names or globs) held until ``until_ms``."""

    id: str
    services: tuple[str, ...]
    until_ms: int
    comment: str | None
    created_ms: int


# The reason of the unknown period that fills the time healthmon was stopped.
GAP_REASON = "healthmon was not running"


class StoreUnusable(Exception):
    """The store cannot be used as it is (corrupt, newer, read-only); the message says how."""


class StoreError(Exception):
    """A read or write failed; ``kind`` names the class of failure (logged once per kind)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class HistoryStore(Protocol):
    """Durable history. Every call runs off the event loop; failures raise ``StoreError``."""

    #: Where it is, for messages (never with a password).
    where: str

    async def open(self) -> None:
        """Create or migrate; raise ``StoreUnusable`` if the store must be left as it is."""

    async def close(self) -> None: ...

    async def try_lead(self, writer: str) -> bool:
        """Become the one writer (True), or learn another process writes (False)."""

    async def recover(self, now_ms: int) -> dict[str, int]:
        """Close periods the last writer left open at its last write, and open an
        unknown period from there for each: nobody knows what happened since.

        Returns each such service with the start of its unknown period.
        """

    async def write(self, batch: Batch, retention: Retention) -> None:
        """Apply ``batch`` in one transaction, roll closed minutes up, prune."""

    async def first_seen(self) -> dict[str, int]: ...

    async def last_alive(self) -> int | None:
        """When the writer last wrote (None: never): open periods are known up to then."""

    async def totals(
        self, names: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> dict[str, Totals]:
        """Each service's sum over [start, end), from the coarsest buckets that fit."""

    async def buckets(self, name: str, grain: Grain, start_ms: int, end_ms: int) -> list[Bucket]:
        """One service's buckets of ``grain`` starting in [start, end), oldest first."""

    async def periods(
        self, name: str | None, start_ms: int, end_ms: int, limit: int
    ) -> list[Period]:
        """Periods overlapping [start, end), newest first, at most ``limit``."""

    async def changes(self, limit: int) -> list[Period]:
        """The latest status changes across all services (the event log), newest first."""

    # -- alerts: the outbox every message goes through, and silences --------------

    async def add_alerts(self, rows: Sequence[AlertRow]) -> None:
        """Keep new messages (a key already kept is left as it is)."""

    async def mark_alert(self, row: AlertRow) -> None:
        """Save how far a message got (its state, attempts, next try, answer)."""

    async def open_alerts(self) -> list[AlertRow]:
        """Messages not yet sent nor given up, oldest first: what a new deliverer resumes."""

    async def alert_log(self, limit: int, since: int) -> list[AlertRow]:
        """The latest messages, newest first: open ones, and finished ones updated since
        ``since``. A read only: old rows go with the writer's hourly prune."""

    async def add_silence(self, silence: Silence) -> None: ...

    async def remove_silence(self, silence_id: str) -> bool:
        """True when there was such a silence."""

    async def silences(self, now_ms: int) -> list[Silence]:
        """Silences still in force at ``now_ms``."""


def pyramid(start_ms: int, end_ms: int) -> list[tuple[Grain, int, int]]:
    """Cover [start, end) with whole days, then whole hours, then minutes at the edges.

    A day or hour is used only once it is over (rolled up from all its
    minutes); the edges come from finer buckets. A leading edge older than
    the finer buckets' retention is simply not found: less known time, never
    a guess.
    """

    def ceil(ts: int, step: int) -> int:
        return -(-ts // step) * step

    parts: list[tuple[Grain, int, int]] = []
    m0 = ceil(start_ms, MINUTE_MS)
    h0, h1 = ceil(start_ms, HOUR_MS), end_ms // HOUR_MS * HOUR_MS
    d0, d1 = ceil(start_ms, DAY_MS), end_ms // DAY_MS * DAY_MS
    if h0 >= h1:
        return [("minute", m0, end_ms)] if m0 < end_ms else []
    if d0 < d1:
        parts.append(("day", d0, d1))
        parts += [("hour", a, b) for a, b in ((h0, d0), (d1, h1)) if a < b]
    else:
        parts.append(("hour", h0, h1))
    parts += [("minute", a, b) for a, b in ((m0, h0), (h1, end_ms)) if a < b]
    return parts
