"""History inside the running app: a locked database delays nothing and loses nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from healthmon.config import HistorySettings
from tests.support import System, make_settings, poll, running_system


@pytest.fixture
async def on_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    """A running app whose history is a real SQLite file, written every 200 ms."""
    monkeypatch.delenv("HEALTHMON_HISTORY__PATH")
    history = HistorySettings(path=str(tmp_path / "history.sqlite3"), flush_ms=200)
    settings = make_settings(("auth", "billing")).model_copy(update={"history": history})
    async with running_system(settings) as running:
        yield running


async def test_a_locked_database_delays_no_push_and_loses_no_time(
    on_file: System, tmp_path: Path
) -> None:
    """While another program holds the history file locked, a change still reaches the
    page at once, the page is told history is unavailable, and once the lock goes every
    second of the outage is in the history."""
    system = on_file
    services = lambda: system.get("/api/services")  # noqa: E731
    await poll(services, lambda d: d["history"]["available"] and d["services"][1]["uptime"])
    page = await system.connected()

    blocker = sqlite3.connect(tmp_path / "history.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        locked = await poll(services, lambda d: not d["history"]["available"])
        assert "locked" in locked["history"]["problem"]
        went_down = time.monotonic()
        await system.set_mode("billing", "down")
        update = await page.until(
            lambda m: m["type"] == "statusUpdate" and m["data"]["service"] == "billing", 2.0
        )
        assert update["data"]["status"] == "down"
        told_after = time.monotonic() - went_down
        told = [m for m in page.seen if m["type"] == "historyState"]
        if not told:
            told = [await page.until(lambda m: m["type"] == "historyState")]
        assert told[-1]["history"]["available"] is False
        async with system.session.get(f"{system.base}/metrics") as response:
            assert 'healthmon_history_errors_total{kind="locked"}' in await response.text()
        # Long enough for several failed writes (each waits out the busy timeout).
        await asyncio.sleep(3)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # A push is not held up by the stuck writes (they wait in the store's thread).
    assert told_after < 1.0
    recovered = await poll(services, lambda d: d["history"]["available"])
    assert recovered["history"]["problem"] is None
    figures = await poll(
        lambda: system.get("/api/services/billing/history?window=1h"),
        lambda d: d["down_ms"] >= 3_000,
    )
    # Nothing of the locked stretch went missing: known time is (nearly) all covered time.
    assert figures["covered_ms"] - figures["known_ms"] < 1_000, figures
