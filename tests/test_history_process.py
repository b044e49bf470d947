"""History across real restarts: a stop is unknown time, a kill -9 loses at most a batch,
and a bad file stops nothing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from healthmon.models import now_ms
from healthmon.store.sqlite import SqliteStore
from tests.processes import HealthmonProcess
from tests.support import free_ports, poll

FLUSH_MS = 500
GAP = "healthmon was not running"


def write_config(folder: Path, history: str = 'path = "data/history.sqlite3"') -> Path:
    web, auth, billing = free_ports(3)
    config = folder / "config.toml"
    config.write_text(
        f"""
[web]
port = {web}

[monitor]
interval_ms = 100
timeout_ms = 500
heartbeat_ms = 200

[history]
{history}
flush_ms = {FLUSH_MS}

[[services]]
name = "auth"
url = "http://127.0.0.1:{auth}"
mock = true

[[services]]
name = "billing"
url = "http://127.0.0.1:{billing}"
mock = true
""",
        encoding="utf-8",
    )
    return config


def healthmon(config: Path, log: Path, prefix: tuple[str, ...] = ()) -> HealthmonProcess:
    port = int(config.read_text().split("port = ")[1].split()[0])
    process = HealthmonProcess(config, "all", port, {}, log, prefix=prefix)
    # The suite keeps history in memory; these tests use the config's file.
    process.env.pop("HEALTHMON_HISTORY__PATH", None)
    return process


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json()


async def set_mode(session: aiohttp.ClientSession, base: str, name: str, mode: str) -> None:
    async with session.post(f"{base}/api/mocks/{name}", json={"mode": mode}) as response:
        assert response.status == 200, await response.text()


def history_of(session: aiohttp.ClientSession, base: str, name: str) -> Callable[[], Any]:
    return lambda: get(session, f"{base}/api/services/{name}/history?window=24h")


@pytest.mark.timeout(150)
async def test_down_40_s_then_stopped_20_s_reads_as_40_s_down_and_20_s_unknown(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """A service down for 40 s, then healthmon stopped for 20 s and restarted: the 24 h
    figures say 40 s down and about 20 s unknown, never up."""
    config = write_config(tmp_path)
    process = await healthmon(config, tmp_path / "run.log").start()
    base = process.base
    await poll(lambda: get(session, f"{base}/api/services"), _all_up)
    await set_mode(session, base, "billing", "down")
    went_down = time.monotonic()
    await poll(history_of(session, base, "billing"), lambda d: d.get("incidents"))
    await asyncio.sleep(40 - (time.monotonic() - went_down))  # the scenario: 40 s down
    stopping = time.monotonic()
    assert await process.stop() == 0
    await asyncio.sleep(20 - (time.monotonic() - stopping))  # the scenario: 20 s stopped
    restarting = time.monotonic()
    await process.start()
    figures = await poll(history_of(session, base, "billing"), _gap_closed)
    restart_took = time.monotonic() - restarting
    await process.stop()
    assert 39_000 <= figures["down_ms"] <= 41_500, figures
    # Stopped for 20 s, plus the time the new process took to start and check.
    assert 19_500 <= figures["unknown_ms"] <= 20_000 + restart_took * 1000 + 1_500, figures
    gap = [p for p in figures["unknown_periods"] if p["reason"] == GAP]
    assert len(gap) == 1
    assert 19_000 <= gap[0]["duration_ms"] <= 20_000 + restart_took * 1000 + 1_500
    # Down until the stop: an incident that ended where healthmon stopped watching.
    down = figures["incidents"][-1]
    assert down["status"] == "down"
    assert down["reason"] == "connection refused"
    assert not down["ongoing"]


def _gap_closed(document: dict[str, Any]) -> bool:
    """The restarted writer has checked and written: the restart's unknown period ended."""
    gaps = [p for p in document.get("unknown_periods", []) if p["reason"] == GAP]
    return bool(document.get("writing")) and bool(gaps) and not gaps[0]["ongoing"]


def _all_up(document: dict[str, Any]) -> bool:
    return all(s["status"] == "up" for s in document["services"]) and bool(
        (document.get("history") or {}).get("available")
    )


def _meta(path: Path, key: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


@pytest.mark.timeout(90)
async def test_kill_9_while_writing_loses_at_most_a_batch_and_history_goes_on(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """After kill -9 the file is intact, everything committed is still there, the loss is
    about one batch interval, and the restarted process carries the history on."""
    config = write_config(tmp_path)
    database = tmp_path / "data" / "history.sqlite3"
    process = await healthmon(config, tmp_path / "run.log").start()
    base = process.base
    await poll(lambda: get(session, f"{base}/api/services"), _all_up)
    await set_mode(session, base, "billing", "down")
    before = await poll(
        history_of(session, base, "billing"), lambda d: d.get("down_ms", 0) >= 3_000
    )
    killed_at = now_ms()
    assert await process.stop(signal.SIGKILL) == -signal.SIGKILL
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lost = killed_at - _meta(database, "last_alive")
    assert 0 <= lost <= 2 * FLUSH_MS + 500, lost
    await process.start()
    after = await poll(history_of(session, base, "billing"), _gap_closed)
    await process.stop()
    assert after["down_ms"] >= before["down_ms"]
    assert after["incidents"][-1]["reason"] == "connection refused"


def _read_only_prefix(folder: Path) -> tuple[str, ...]:
    """Run under a read-only view of ``folder``: a bind mount for root (whom file modes do
    not stop), file modes for anyone else."""
    if os.geteuid() != 0:
        for path in folder.rglob("*"):
            path.chmod(0o444)
        folder.chmod(0o555)
        return ()
    where = shlex.quote(str(folder))
    script = f'mount --bind {where} {where} && mount -o remount,bind,ro {where} && exec "$@"'
    return ("unshare", "-m", "sh", "-c", script, "sh")


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        ("corrupt", "is not a readable SQLite file"),
        ("read-only", "read-only"),
    ],
)
@pytest.mark.timeout(60)
async def test_a_bad_history_file_stops_nothing(
    tmp_path: Path, session: aiohttp.ClientSession, spoil: str, says: str
) -> None:
    """A corrupt or read-only history file gives one clear line; the page, checks and
    pushes work on without history, the page says so, and the file is left as it was."""
    config = write_config(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    database = data / "history.sqlite3"
    prefix: tuple[str, ...] = ()
    if spoil == "corrupt":
        database.write_bytes(os.urandom(8192))
    else:
        made = SqliteStore(database)
        await made.open()
        await made.close()
        prefix = _read_only_prefix(data)
    digest = hashlib.sha256(database.read_bytes()).hexdigest()
    log = tmp_path / "run.log"
    process = await healthmon(config, log, prefix).start()
    base = process.base
    try:
        document = await poll(
            lambda: get(session, f"{base}/api/services"),
            lambda d: all(s["status"] == "up" for s in d["services"]),
        )
        assert document["history"]["available"] is False
        assert says in document["history"]["problem"]
        await set_mode(session, base, "billing", "down")
        await poll(
            lambda: get(session, f"{base}/api/services"),
            lambda d: [s["status"] for s in d["services"]] == ["up", "down"],
        )
        async with session.get(f"{base}/api/services/billing/history") as response:
            assert response.status == 503
    finally:
        await process.stop()
    lines = [line for line in log.read_text().splitlines() if says in line]
    assert len(lines) == 1, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    assert hashlib.sha256(database.read_bytes()).hexdigest() == digest
