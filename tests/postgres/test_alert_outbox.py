"""The alerts' outbox and silences (schema v3) behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from healthmon.store import HistoryStore
from healthmon.store.base import ALERT_LOG_KEEP_MS, DAY_MS, AlertRow, Batch, Retention, Silence
from healthmon.store.postgres import PostgresStore
from healthmon.store.sqlite import SqliteStore


@contextlib.asynccontextmanager
async def opened(store: HistoryStore) -> AsyncIterator[HistoryStore]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    async with opened(SqliteStore(tmp_path / "history.sqlite3")) as store:
        yield store


@pytest.fixture
async def postgres_store(database_url: str) -> AsyncIterator[HistoryStore]:
    async with opened(PostgresStore(database_url)) as store:
        yield store


def row(key: str, created: int, state: str = "pending") -> AlertRow:
    return AlertRow(key, "hook", created, state, 0, created, created, f'{{"key":"{key}"}}')


async def check_outbox(store: HistoryStore) -> None:
    """A message is kept once per key; what is not sent comes back oldest first, and the
    log lists every state newest first."""
    await store.add_alerts([row("a", 1_000), row("b", 2_000), row("c", 3_000)])
    await store.add_alerts([dataclasses.replace(row("a", 1_000), body="other")])
    sent = dataclasses.replace(row("b", 2_000), state="sent", attempts=1, updated_ms=5_000)
    await store.mark_alert(sent)
    retrying = dataclasses.replace(
        row("c", 3_000), state="retrying", attempts=2, next_ms=9_000, updated_ms=4_000,
        answer="500 boom",
    )  # fmt: skip
    await store.mark_alert(retrying)
    open_rows = await store.open_alerts()
    assert [(r.key, r.state) for r in open_rows] == [("a", "pending"), ("c", "retrying")]
    assert open_rows[0].body == '{"key":"a"}'
    assert open_rows[1] == retrying
    log = await store.alert_log(10, 0)
    assert [r.key for r in log] == ["b", "c", "a"]
    # Finished messages past the log's keep go; open ones stay whatever their age.
    assert [r.key for r in await store.alert_log(10, 6_000)] == ["c", "a"]
    # Reading deletes nothing; the writer's prune does, once they are older than the keep.
    assert [r.key for r in await store.alert_log(10, 0)] == ["b", "c", "a"]
    later = 5_000 + ALERT_LOG_KEEP_MS + 1
    await store.write(Batch("w", 1, later), Retention(2 * DAY_MS, 90 * DAY_MS, 400 * DAY_MS))
    assert [r.key for r in await store.alert_log(10, 0)] == ["c", "a"]


async def check_silences(store: HistoryStore) -> None:
    """A silence is listed while it lasts, and removing it twice says so the second time."""
    await store.add_silence(Silence("s1", ("pay*", "db"), 10_000, "deploy", 1_000))
    await store.add_silence(Silence("s2", ("auth",), 5_000, None, 1_000))
    assert [s.id for s in await store.silences(4_000)] == ["s2", "s1"]
    assert [s.services for s in await store.silences(6_000)] == [("pay*", "db")]
    assert await store.remove_silence("s1")
    assert not await store.remove_silence("s1")
    assert await store.silences(0) == [Silence("s2", ("auth",), 5_000, None, 1_000)]


async def test_outbox_on_sqlite(sqlite: HistoryStore) -> None:
    """SQLite: each key kept once, open messages resumed oldest first, the log newest first."""
    await check_outbox(sqlite)


async def test_outbox_on_postgres(postgres_store: HistoryStore) -> None:
    """PostgreSQL: each key kept once, open messages resumed oldest first, the log newest first."""
    await check_outbox(postgres_store)


async def test_silences_on_sqlite(sqlite: HistoryStore) -> None:
    """SQLite: silences listed while they last, removed once."""
    await check_silences(sqlite)


async def test_silences_on_postgres(postgres_store: HistoryStore) -> None:
    """PostgreSQL: silences listed while they last, removed once."""
    await check_silences(postgres_store)
