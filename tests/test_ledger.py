"""The recorder's ledger: every millisecond goes to exactly one state, periods chain."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from healthmon.models import CheckResult, Status, StatusUpdate
from healthmon.recorder import Ledger
from healthmon.store import Batch, Totals
from healthmon.store.base import MINUTE_MS

T0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE_MS  # a minute boundary


@dataclass
class Feed:
    ledger: Ledger
    since: dict[str, int]
    shown: dict[str, Status]

    def check(self, name: str, at: int, status: Status, latency: float | None = 10.0) -> None:
        if self.shown.get(name) is not status:
            self.shown[name] = status
            self.since[name] = at
        result = CheckResult(name, status, latency, None, at)
        shown = StatusUpdate(
            service=name,
            up=status.is_up,
            ts=at,
            status=status,
            since=self.since[name],
            reason=None if status is Status.UP else "connection refused",
        )
        self.ledger.result(result, shown, at)


def feed(names: tuple[str, ...] = ("svc",), stale_after: int = 3_000, **gaps: int) -> Feed:
    return Feed(Ledger("w", dict.fromkeys(names, stale_after), T0, gaps), {}, {})


def total(batch: Batch, name: str = "svc") -> Totals:
    out = Totals()
    for (service, _), totals in batch.minutes.items():
        if service == name:
            out.add(totals)
    return out


def test_time_goes_to_the_state_shown() -> None:
    """Ten seconds up, then five down: the buckets say exactly that."""
    f = feed()
    for at in range(T0, T0 + 10_000, 500):
        f.check("svc", at, Status.UP)
    for at in range(T0 + 10_000, T0 + 15_000, 500):
        f.check("svc", at, Status.DOWN, latency=None)
    f.ledger.tick(T0 + 15_000)
    got = total(f.ledger.take(T0 + 15_000))
    assert (got.up_ms, got.down_ms, got.unknown_ms) == (10_000, 5_000, 0)
    assert (got.checks, got.failures, got.latency_n) == (30, 10, 20)


def test_a_stale_service_counts_as_unknown_and_opens_an_unknown_period() -> None:
    """A check older than the stale limit stops counting as up: the rest is unknown."""
    f = feed(stale_after=3_000)
    f.check("svc", T0, Status.UP)
    f.ledger.tick(T0 + 10_000)
    batch = f.ledger.take(T0 + 10_000)
    got = total(batch)
    assert (got.up_ms, got.unknown_ms) == (3_000, 7_000)
    periods = sorted(batch.periods.values(), key=lambda p: p.start_ms)
    assert [(p.status, p.start_ms, p.end_ms) for p in periods] == [
        ("up", T0, T0 + 3_000),
        ("unknown", T0 + 3_000, None),
    ]
    assert periods[1].reason == "no fresh check for 3 s"


def test_time_is_split_at_minute_boundaries() -> None:
    """Time across a minute boundary lands in both minutes, in the right amounts."""
    f = feed(stale_after=600_000)
    f.check("svc", T0 + 50_000, Status.UP)
    f.ledger.tick(T0 + 70_000)
    batch = f.ledger.take(T0 + 70_000)
    assert batch.minutes[("svc", T0)].unknown_ms == 50_000
    assert batch.minutes[("svc", T0)].up_ms == 10_000
    assert batch.minutes[("svc", T0 + MINUTE_MS)].up_ms == 10_000


def test_a_gap_left_by_a_stopped_writer_ends_at_the_first_check() -> None:
    """The unknown period the store opened for a restart closes when the first check arrives."""
    f = feed(svc=T0 - 20_000)
    f.check("svc", T0 + 700, Status.DOWN)
    batch = f.ledger.take(T0 + 1_000)
    periods = sorted(batch.periods.values(), key=lambda p: p.start_ms)
    assert [(p.status, p.start_ms, p.end_ms, p.previous) for p in periods] == [
        ("unknown", T0 - 20_000, T0 + 700, None),
        ("down", T0 + 700, None, "unknown"),
    ]


def test_a_period_closed_in_a_later_batch_keeps_what_it_was_opened_with() -> None:
    """A period opened in one batch and closed in the next keeps its reason and previous state."""
    f = feed(stale_after=600_000)
    f.check("svc", T0, Status.UP)
    f.check("svc", T0 + 1_000, Status.DOWN)
    first = f.ledger.take(T0 + 1_500)
    f.check("svc", T0 + 2_000, Status.UP)
    both = _merged(first, f.ledger.take(T0 + 2_500))
    down = both.periods[("svc", T0 + 1_000)]
    assert (down.reason, down.previous, down.end_ms) == ("connection refused", "up", T0 + 2_000)


def test_a_service_removed_by_a_reload_closes_its_period() -> None:
    """A service that leaves the config ends its period; a new one starts with no time."""
    f = feed(stale_after=600_000)
    f.check("svc", T0, Status.UP)
    f.ledger.set_services({"new": 3_000}, T0 + 5_000)
    batch = f.ledger.take(T0 + 5_000)
    assert batch.periods[("svc", T0)].end_ms == T0 + 5_000
    assert "new" in batch.first_seen
    assert total(batch).up_ms == 5_000


def test_percentiles_stay_within_their_bin_and_never_pass_the_maximum() -> None:
    """p50 of 1..100 ms lies in the bin holding 50 ms; p99 never exceeds the largest latency."""
    t = Totals()
    for ms in range(1, 101):
        t.add_latency(float(ms))
    p50 = t.percentile(0.5)
    p99 = t.percentile(0.99)
    assert p50 is not None
    assert 35 <= p50 <= 50
    assert p99 is not None
    assert 75 <= p99 <= 100


STATUSES = st.sampled_from([Status.UP, Status.DEGRADED, Status.DOWN])
STEPS = st.lists(
    st.tuples(st.integers(1, 90_000), st.one_of(STATUSES, st.none())), min_size=1, max_size=60
)


@settings(max_examples=150, deadline=None)
@given(steps=STEPS, stale_after=st.integers(1_000, 20_000), cut=st.integers(1, 10))
def test_every_millisecond_is_counted_once_and_periods_chain(
    steps: list[tuple[int, Status | None]], stale_after: int, cut: int
) -> None:
    """Whatever the checks and ticks, state times add up to the time elapsed, and the
    periods follow one another with no gap and no overlap."""
    f = feed(stale_after=stale_after)
    now = T0
    merged: Batch | None = None
    for index, (step, status) in enumerate(steps):
        now += step
        if status is None:
            f.ledger.tick(now)
        else:
            f.check("svc", now, status)
        if index % cut == 0:
            merged = _merged(merged, f.ledger.take(now))
    f.ledger.tick(now)
    merged = _merged(merged, f.ledger.take(now))
    got = total(merged)
    assert got.up_ms + got.degraded_ms + got.down_ms + got.unknown_ms == now - T0
    periods = sorted(merged.periods.values(), key=lambda p: p.start_ms)
    for before, after in itertools.pairwise(periods):
        assert before.end_ms == after.start_ms
        assert before.status != after.status
    assert not periods or periods[-1].end_ms is None


def _merged(earlier: Batch | None, later: Batch) -> Batch:
    """Two batches as the store would hold them after writing both."""
    if earlier is None:
        return later
    for key, totals in later.minutes.items():
        earlier.minutes.setdefault(key, Totals()).add(totals)
    for key, period in later.periods.items():
        opened = earlier.periods.get(key)
        earlier.periods[key] = (
            period if opened is None else dataclasses.replace(opened, end_ms=period.end_ms)
        )
    return earlier
