"""The SQLite history store: sums that match what was written, migrations, bad files."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthmon.store import Batch, Period, Retention, StoreUnusable, Totals
from healthmon.store import schema as schema_module
from healthmon.store.base import DAY_MS, HOUR_MS, MINUTE_MS, pyramid
from healthmon.store.sqlite import SqliteStore

T0 = 1_800_000_000_000 // DAY_MS * DAY_MS  # a UTC midnight
KEEP = Retention(48 * HOUR_MS, 90 * DAY_MS, 400 * DAY_MS)
KEEP_ALL = Retention(400 * DAY_MS, 400 * DAY_MS, 400 * DAY_MS)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "data" / "history.sqlite3")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def minutes_batch(seq: int, now: int, minutes: dict[int, int], name: str = "svc") -> Batch:
    """A batch adding ``up_ms`` (the value) to each minute (the key)."""
    batch = Batch("w", seq, now, first_seen={name: T0})
    for start, up in minutes.items():
        batch.minutes[(name, start)] = Totals(up_ms=up, checks=1)
    return batch


async def test_a_missing_folder_is_created_and_the_file_opened_in_wal_mode(
    store: SqliteStore,
) -> None:
    """A history path in a folder that does not exist yet just works, in WAL mode."""
    assert store.path.exists()
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema_module.SCHEMA_VERSION


async def test_a_retried_batch_is_not_counted_twice(store: SqliteStore) -> None:
    """The same batch written twice (a commit that went unconfirmed) adds its time once."""
    batch = minutes_batch(1, T0 + 5 * MINUTE_MS, {T0: 60_000})
    await store.write(batch, KEEP)
    await store.write(batch, KEEP)
    totals = await store.totals(["svc"], T0, T0 + 5 * MINUTE_MS)
    assert totals["svc"].up_ms == 60_000


async def test_closed_minutes_roll_up_into_hours_and_days(store: SqliteStore) -> None:
    """After a day and a bit, the day's and the hours' buckets hold every minute's time."""
    minutes = {T0 + i * MINUTE_MS: 60_000 for i in range(0, 26 * 60, 7)}
    await store.write(minutes_batch(1, T0 + 26 * HOUR_MS, minutes), KEEP)
    days = await store.buckets("svc", "day", T0, T0 + 2 * DAY_MS)
    hours = await store.buckets("svc", "hour", T0, T0 + DAY_MS)
    in_day = sum(v for k, v in minutes.items() if k < T0 + DAY_MS)
    assert days[0].totals.up_ms == in_day
    assert sum(b.totals.up_ms for b in hours) == in_day
    assert len(hours) == 24


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.dictionaries(st.integers(0, 4 * 24 * 60 - 1), st.integers(1, 60_000), max_size=80),
    start=st.integers(0, 4 * DAY_MS),
    length=st.integers(1, 4 * DAY_MS),
    flushes=st.integers(1, 4),
)
async def test_any_window_sums_exactly_the_minutes_inside_it(
    tmp_path_factory: pytest.TempPathFactory,
    data: dict[int, int],
    start: int,
    length: int,
    flushes: int,
) -> None:
    """Whatever the window, the store's sum (days, hours and minutes at the edges) equals
    the minutes that start inside it: nothing counted twice, nothing left out."""
    store = SqliteStore(tmp_path_factory.mktemp("pyramid") / "h.sqlite3")
    await store.open()
    try:
        items = sorted((T0 + m * MINUTE_MS, up) for m, up in data.items())
        end_of_data = T0 + 4 * DAY_MS + MINUTE_MS
        # Written in several batches, each up to the next batch's first minute.
        chunks = [items[i::flushes] for i in range(flushes)]
        for seq, chunk in enumerate(chunks, start=1):
            await store.write(minutes_batch(seq, end_of_data, dict(chunk)), KEEP_ALL)
        lo, hi = T0 + start, min(T0 + start + length, end_of_data)
        got = (await store.totals(["svc"], lo, hi)).get("svc", Totals()).up_ms
        first_minute = -(-lo // MINUTE_MS) * MINUTE_MS
        assert got == sum(up for ts, up in items if first_minute <= ts < hi)
    finally:
        await store.close()


async def test_minutes_older_than_their_retention_are_pruned_but_their_hours_stay(
    store: SqliteStore,
) -> None:
    """Past keep_minutes the minutes go; the hour and day they were rolled into remain."""
    await store.write(minutes_batch(1, T0 + 2 * MINUTE_MS, {T0: 60_000}), KEEP)
    await store.write(minutes_batch(2, T0 + 3 * DAY_MS, {}), KEEP)
    assert await store.buckets("svc", "minute", T0, T0 + HOUR_MS) == []
    hours = await store.buckets("svc", "hour", T0, T0 + HOUR_MS)
    assert [b.totals.up_ms for b in hours] == [60_000]


def test_the_pyramid_covers_a_window_without_overlap() -> None:
    """The parts a window is read from touch end to start, in order of use."""
    parts = pyramid(T0 + 90 * MINUTE_MS + 5, T0 + 3 * DAY_MS + 61 * MINUTE_MS)
    spans = sorted((lo, hi) for _, lo, hi in parts)
    for (_, hi), (lo, _) in itertools.pairwise(spans):
        assert hi == lo
    assert {grain for grain, _, _ in parts} == {"minute", "hour", "day"}


async def test_recovery_closes_open_periods_at_the_last_write_and_opens_unknown_ones(
    store: SqliteStore,
) -> None:
    """After a stop, what was open ends at the last write and the gap is an unknown period."""
    batch = minutes_batch(1, T0 + 30_000, {T0: 30_000})
    batch.periods[("svc", T0)] = Period("svc", T0, "down", reason="connection refused")
    await store.write(batch, KEEP)
    gaps = await store.recover(T0 + 90_000)
    assert gaps == {"svc": T0 + 30_000}
    periods = await store.periods("svc", T0, T0 + 100_000, 10)
    assert [(p.status, p.start_ms, p.end_ms, p.reason) for p in periods] == [
        ("unknown", T0 + 30_000, None, "healthmon was not running"),
        ("down", T0, T0 + 30_000, "connection refused"),
    ]


async def test_the_event_log_lists_changes_between_known_states(store: SqliteStore) -> None:
    """Stored changes come back newest first, without first sightings or unknown stretches."""
    batch = minutes_batch(1, T0 + 60_000, {})
    for start, status, previous in (
        (T0, "up", None),
        (T0 + 1_000, "down", "up"),
        (T0 + 2_000, "unknown", "down"),
        (T0 + 3_000, "up", "unknown"),
        (T0 + 4_000, "degraded", "up"),
    ):
        batch.periods[("svc", start)] = Period("svc", start, status, previous=previous)
    await store.write(batch, KEEP)
    changes = await store.changes(10)
    assert [(p.previous, p.status) for p in changes] == [("up", "degraded"), ("up", "down")]


async def test_a_file_written_by_schema_1_is_migrated_with_its_data(tmp_path: Path) -> None:
    """A history file of the previous schema opens, is upgraded, and keeps what it held."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in schema_module.migration(0, "sqlite"):
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO services (id, name, first_seen) VALUES (1, 'svc', ?)", (T0,))
        db.execute("INSERT INTO minutes (service_id, start_ms, up_ms) VALUES (1, ?, 60000)", (T0,))
    store = SqliteStore(path)
    await store.open()
    try:
        minutes = await store.buckets("svc", "minute", T0, T0 + HOUR_MS)
        assert [(b.start_ms, b.totals.up_ms) for b in minutes] == [(T0, 60_000)]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema_module.SCHEMA_VERSION
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"periods_by_start", "periods_open"} <= indexes


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_bytes(b"this is not a database, just bytes" * 200), "not a readable"),
        (lambda p: _sqlite_with(p, "PRAGMA user_version = 99"), "newer healthmon (schema 99"),
        (lambda p: _sqlite_with(p, "CREATE TABLE notes (t TEXT)"), "of something else"),
    ],
    ids=["corrupt", "newer-schema", "foreign"],
)
async def test_a_bad_file_is_refused_in_one_line_and_left_untouched(
    tmp_path: Path, make: object, says: str
) -> None:
    """A corrupt, newer or foreign file stops history with one clear line and is not changed."""
    path = tmp_path / "history.sqlite3"
    make(path)  # type: ignore[operator]
    before = _digest(path)
    store = SqliteStore(path)
    with pytest.raises(StoreUnusable) as refused:
        await store.open()
    await store.close()
    message = str(refused.value)
    assert says in message
    assert str(path) in message
    assert "\n" not in message
    assert _digest(path) == before


def _sqlite_with(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(statement)
