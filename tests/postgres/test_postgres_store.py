"""The PostgreSQL history store on a real server: the same history as the SQLite
store gives, migrations, refusals in one line, and one writer among processes."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from healthmon.store import (
    Batch,
    HistoryStore,
    Period,
    Retention,
    StoreError,
    StoreUnusable,
    Totals,
)
from healthmon.store import schema as schema_module
from healthmon.store.base import DAY_MS, GAP_REASON, GRAIN_MS, HOUR_MS, MINUTE_MS
from healthmon.store.postgres import PostgresStore, describe, error_kind
from healthmon.store.sqlite import SqliteStore
from tests.postgres.server import PostgresServer, low_port

T0 = 1_800_000_000_000 // DAY_MS * DAY_MS  # a UTC midnight
KEEP = Retention(48 * HOUR_MS, 90 * DAY_MS, 400 * DAY_MS)
WAIT_S = 15.0


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(database_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[Any]:
    """A plain connection to the test's database, to look behind the store's back."""
    db = await asyncpg.connect(database_url)
    try:
        yield db
    finally:
        await db.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds, or fail saying ``what`` did not happen in time."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what}: not within {WAIT_S:.0f} s")
        await asyncio.sleep(0.05)


def minutes_batch(writer: str, seq: int, now: int, minutes: dict[int, int]) -> Batch:
    """A batch adding ``up_ms`` (the value) to each minute (the key) of "svc"."""
    batch = Batch(writer, seq, now, first_seen={"svc": T0})
    for start, up in minutes.items():
        batch.minutes[("svc", start)] = Totals(up_ms=up, checks=1)
    return batch


async def up_ms(store: HistoryStore) -> int:
    return (await store.totals(["svc"], T0, T0 + HOUR_MS)).get("svc", Totals()).up_ms


# -- the same history as SQLite's ---------------------------------------------

START = T0 - 90 * MINUTE_MS
STOP = T0 + 150 * MINUTE_MS
# Each service changes state this far past a minute's start: no two periods of
# different services start at the same instant, so "newest first" has one order.
OFFSET = {"api": 0, "db": 10_000, "web": 20_000}
FIELD = {"up": "up_ms", "degraded": "degraded_ms", "down": "down_ms", "unknown": "unknown_ms"}


def status_at(name: str, ts: int) -> str:
    minute = (ts - START - OFFSET[name]) // MINUTE_MS
    if name == "api":
        return "up"
    if name == "db":
        return "down" if 20 <= minute < 35 or 140 <= minute < 150 else "up"
    return ("degraded", "up", "unknown", "up")[minute // 40 % 4]


def scenario() -> list[Batch]:
    """Four hours of three services across a midnight, as a writer would batch them.

    Batches end mid-minute (a minute is added to by two batches); "web" is
    first seen in the fifth; latencies are multiples of 1/4 ms, so sums of
    them are exact in any order and two databases must agree to the bit.
    """
    batches: list[Batch] = []
    open_periods: dict[str, Period] = {}
    begin = {"api": START, "db": START + OFFSET["db"]}
    lo = START
    while lo < STOP:
        hi = min(lo + 7 * MINUTE_MS + 30_000, STOP)
        batch = Batch("writer", len(batches) + 1, hi)
        if len(batches) == 4:
            begin["web"] = lo + OFFSET["web"]
        batch.first_seen = {name: at for name, at in begin.items() if lo <= at < hi}
        for name, first in begin.items():
            ts = max(lo, first)
            while ts < hi:
                mark = (ts - OFFSET[name]) // MINUTE_MS * MINUTE_MS + OFFSET[name]
                end = min(hi, ts // MINUTE_MS * MINUTE_MS + MINUTE_MS, mark + MINUTE_MS)
                status = status_at(name, ts)
                totals = batch.minutes.setdefault((name, ts // MINUTE_MS * MINUTE_MS), Totals())
                setattr(totals, FIELD[status], getattr(totals, FIELD[status]) + end - ts)
                if ts == mark and status != "unknown":
                    totals.checks += 1
                    totals.failures += status == "down"
                    totals.add_latency(5 + (ts // MINUTE_MS * 37 % 400) / 4)
                shown = open_periods.get(name)
                if shown is None or shown.status != status:
                    if shown is not None:
                        closed = dataclasses.replace(shown, end_ms=ts)
                        batch.periods[(name, shown.start_ms)] = closed
                    opened = Period(
                        name, ts, status, None, shown.status if shown else None, f"{status} seen",
                        '[{"check": "health"}]' if status == "down" else None, "monitor-1",
                    )  # fmt: skip
                    batch.periods[(name, ts)] = open_periods[name] = opened
                ts = end
        batches.append(batch)
        lo = hi
    return batches


async def observe(store: HistoryStore) -> dict[str, object]:
    """Everything a reader can ask of the scenario's history."""
    windows = [
        (START, STOP),
        (T0 - 37 * MINUTE_MS + 5_000, T0 + 61 * MINUTE_MS),
        (T0, T0 + DAY_MS),
        (T0 - DAY_MS, T0 + 3 * DAY_MS),
    ]
    names: list[Sequence[str] | None] = [None, ["db"], ["db", "web"], ["nobody"]]
    return {
        "first_seen": await store.first_seen(),
        "last_alive": await store.last_alive(),
        "totals": [await store.totals(n, lo, hi) for n in names for lo, hi in windows],
        "buckets": {
            (name, grain): await store.buckets(name, grain, T0 - DAY_MS, T0 + 3 * DAY_MS)
            for name in OFFSET
            for grain in GRAIN_MS
        },
        "periods": [
            await store.periods(None, START, STOP, 1000),
            await store.periods("db", T0, T0 + HOUR_MS, 2),
            await store.periods("web", START, STOP, 1000),
        ],
        "changes": [await store.changes(1000), await store.changes(3)],
    }


async def play(store: HistoryStore) -> dict[str, object]:
    """The scenario written to ``store`` (one batch retried, one minute arriving after its
    roll-up), what it reads back, what recovery does, and what is left once the minutes
    are past their retention."""
    seen: dict[str, object] = {}
    batches = scenario()
    late = Batch("writer", len(batches) + 1, STOP)
    late.minutes[("db", T0 - 30 * MINUTE_MS)] = Totals(unknown_ms=500)
    batches.append(late)
    for batch in batches:
        await store.write(batch, KEEP)
        if batch.seq == 4:
            await store.write(batch, KEEP)
    seen["written"] = await observe(store)
    seen["gaps"] = await store.recover(STOP + 5 * MINUTE_MS)
    seen["recovered"] = await observe(store)
    await store.write(Batch("writer", len(batches) + 1, T0 + 3 * DAY_MS), KEEP)
    seen["pruned"] = await observe(store)
    return seen


async def test_the_same_batches_give_the_same_history_as_sqlite(
    store: PostgresStore, tmp_path: Path
) -> None:
    """Written, recovered and pruned, PostgreSQL reads back exactly what SQLite does."""
    sqlite = SqliteStore(tmp_path / "history.sqlite3")
    await sqlite.open()
    try:
        expected = await play(sqlite)
    finally:
        await sqlite.close()
    got = await play(store)
    for stage in expected:
        assert got[stage] == expected[stage], stage
    # Not just equal, but right: all the time, the retry counted once, minutes pruned.
    written: Any = got["written"]
    whole = written["totals"][0]
    assert whole["api"].up_ms == STOP - START
    assert whole["db"].down_ms == 25 * MINUTE_MS
    assert whole["db"].failures == 25
    assert whole["db"].unknown_ms == 500
    assert sum(whole["web"].row()[:4]) == STOP - START - 4 * (7 * MINUTE_MS + 30_000) - 20_000
    assert len(written["buckets"][("api", "hour")]) == 5
    assert written["changes"][0]
    assert written["periods"][1]
    assert got["gaps"] == {"api": STOP, "db": STOP, "web": STOP}
    pruned: Any = got["pruned"]
    assert pruned["buckets"][("api", "minute")] == []
    assert pruned["totals"][0]["api"].up_ms == 3 * HOUR_MS


async def test_a_retried_batch_is_not_counted_twice(store: PostgresStore) -> None:
    """The same batch written twice (a commit that went unconfirmed) adds its time once."""
    batch = minutes_batch("w", 1, T0 + 5 * MINUTE_MS, {T0: 60_000})
    await store.write(batch, KEEP)
    await store.write(batch, KEEP)
    assert await up_ms(store) == 60_000
    await store.write(minutes_batch("w", 2, T0 + 6 * MINUTE_MS, {T0: 1_000}), KEEP)
    assert await up_ms(store) == 61_000


async def test_recovery_closes_open_periods_at_the_last_write_and_opens_unknown_ones(
    store: PostgresStore,
) -> None:
    """After a stop, what was open ends at the last write and the gap is an unknown
    period; a service already unknown stays unknown from when it became so."""
    batch = minutes_batch("w", 1, T0 + 30_000, {T0: 30_000})
    batch.first_seen["quiet"] = T0
    batch.periods[("svc", T0)] = Period("svc", T0, "down", reason="connection refused")
    batch.periods[("quiet", T0 + 5_000)] = Period("quiet", T0 + 5_000, "unknown")
    await store.write(batch, KEEP)
    assert await store.recover(T0 + 90_000) == {"svc": T0 + 30_000, "quiet": T0 + 5_000}
    periods = await store.periods(None, T0, T0 + 100_000, 10)
    assert [(p.service, p.status, p.start_ms, p.end_ms, p.reason) for p in periods] == [
        ("svc", "unknown", T0 + 30_000, None, GAP_REASON),
        ("quiet", "unknown", T0 + 5_000, None, None),
        ("svc", "down", T0, T0 + 30_000, "connection refused"),
    ]
    assert await store.last_alive() == T0 + 30_000


# -- the schema -----------------------------------------------------------------


async def schema_version(admin: Any) -> int:
    return int(await admin.fetchval("SELECT value FROM meta WHERE key = 'schema_version'"))


async def tables(admin: Any) -> set[str]:
    rows = await admin.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


async def test_an_empty_database_gets_the_current_schema_once(
    database_url: str, admin: Any
) -> None:
    """Three stores opening one empty database at once leave it at the current schema."""
    stores = [PostgresStore(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
    finally:
        for s in stores:
            await s.close()
    assert await schema_version(admin) == schema_module.SCHEMA_VERSION
    assert await tables(admin) == {
        *("meta", "services", "periods", "minutes", "hours", "days"),
        *("alerts", "silences"),
    }


async def test_a_database_of_schema_1_is_migrated_with_its_data(
    database_url: str, admin: Any
) -> None:
    """A database the first schema wrote opens, is upgraded, and keeps what it held."""
    async with admin.transaction():
        for statement in schema_module.migration(0, "postgres"):
            await admin.execute(statement)
        await admin.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    service_id = await admin.fetchval(
        "INSERT INTO services (name, first_seen) VALUES ('svc', $1) RETURNING id", T0
    )
    await admin.execute(
        schema_module.numbered(schema_module.add("minute")),
        service_id,
        T0,
        *Totals(up_ms=60_000, checks=2).row(),
    )
    await admin.execute(
        schema_module.numbered(schema_module.upsert_period()),
        *(service_id, T0, None, "up", None, "first check", None, "monitor-1"),
    )
    store = PostgresStore(database_url)
    await store.open()
    try:
        # Read from the minute itself: nothing rolled it up into its hour.
        assert (await store.totals(["svc"], T0, T0 + MINUTE_MS))["svc"].up_ms == 60_000
        assert (await store.buckets("svc", "minute", T0, T0 + 1))[0].totals.checks == 2
        assert await store.periods("svc", T0, T0 + 1, 5) == [
            Period("svc", T0, "up", reason="first check", monitor="monitor-1")
        ]
    finally:
        await store.close()
    assert await schema_version(admin) == schema_module.SCHEMA_VERSION
    indexes = {row[0] for row in await admin.fetch("SELECT indexname FROM pg_indexes")}
    assert {"periods_by_start", "periods_open"} <= indexes


async def contents(admin: Any) -> tuple[set[str], list[Any]]:
    """The tables, and what meta holds if there is one."""
    found = await tables(admin)
    return found, (await admin.fetch("SELECT * FROM meta ORDER BY key")) if "meta" in found else []


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (
            [
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                f"INSERT INTO meta VALUES ('schema_version', '{schema_module.SCHEMA_VERSION + 1}')",
            ],
            f"newer healthmon (schema {schema_module.SCHEMA_VERSION + 1}",
        ),
        (["CREATE TABLE services (id INTEGER, owner TEXT)"], "tables of something else"),
        (
            ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"],
            "without healthmon's schema_version",
        ),
    ],
    ids=["newer-schema", "foreign-tables", "foreign-meta"],
)
async def test_a_database_it_does_not_know_is_refused_in_one_line_and_left_as_it_is(
    database_url: str, admin: Any, setup: list[str], says: str
) -> None:
    """A newer schema or another program's tables stop history with one line, untouched."""
    for statement in setup:
        await admin.execute(statement)
    before = await contents(admin)
    store = PostgresStore(database_url)
    with pytest.raises(StoreUnusable) as refused:
        await store.open()
    await store.close()
    message = str(refused.value)
    assert says in message
    assert "left as it is" in message
    assert store.where in message
    assert "\n" not in message
    assert await contents(admin) == before


# -- connecting -------------------------------------------------------------------


@pytest.mark.parametrize("what", ["no-server", "no-database"])
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://healthmon:s3cret-pw@127.0.0.1:{port}/nothing_here",
        "postgresql://healthmon@127.0.0.1:{port}/nothing_here?password=s3cret-pw",
    ],
    ids=["password-in-netloc", "password-in-query"],
)
async def test_a_server_it_cannot_reach_is_refused_in_one_line_without_the_password(
    postgres: PostgresServer, what: str, url: str
) -> None:
    """Nothing listening, or no such database: one line naming where, never the password."""
    port = low_port() if what == "no-server" else postgres.port
    store = PostgresStore(url.format(port=port))
    with pytest.raises(StoreUnusable) as refused:
        await store.open()
    await store.close()
    message = str(refused.value)
    assert message.startswith(f"healthmon@127.0.0.1:{port}/nothing_here: cannot connect: ")
    assert "s3cret-pw" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("postgresql://hm:pw@db.example:6543/history", "hm@db.example:6543/history"),
        ("postgresql://hm@db.example/history", "hm@db.example:5432/history"),
        ("postgres://hm:p%40ss@[::1]:5433/h?sslmode=require", "hm@[::1]:5433/h"),
        ("postgresql://h1:5432,h2:5433/h", "h1:5432,h2:5433/h"),
        ("postgresql:///h?host=/run/postgresql&user=hm&password=pw", "hm@/run/postgresql/h"),
        ("postgresql://hm:pw@localhost", "hm@localhost:5432/hm"),
    ],
)
def test_where_names_user_host_port_and_database_never_the_password(url: str, where: str) -> None:
    """What messages call the store never carries the password, wherever the URL put it."""
    assert describe(url) == where
    assert PostgresStore(url).where == where


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "connection"),
        (TimeoutError(), "timeout"),
        (asyncpg.ConnectionDoesNotExistError("closed in the middle"), "connection"),
        (asyncpg.AdminShutdownError("terminating connection"), "connection"),
        (asyncpg.InterfaceError("cannot perform operation: connection is closed"), "connection"),
        (asyncpg.DiskFullError("could not extend file"), "disk_full"),
        (asyncpg.ReadOnlySQLTransactionError("read-only transaction"), "read_only"),
        (asyncpg.QueryCanceledError("statement timeout"), "timeout"),
        (asyncpg.TooManyConnectionsError("too many clients"), "too_many_connections"),
        (asyncpg.UndefinedTableError('relation "x" does not exist'), "UndefinedTableError"),
    ],
)
def test_each_failure_has_a_short_kind(error: BaseException, kind: str) -> None:
    """Failures are counted and logged by a short kind, the class name when nothing fits."""
    assert error_kind(error) == kind


# -- one writer -------------------------------------------------------------------


_LOCK_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def writer_pid(admin: Any) -> int:
    """The server process of the connection holding the writer's lock."""
    pid = await admin.fetchval(_LOCK_HOLDER)
    assert pid is not None, "nobody holds the writer's lock"
    return int(pid)


async def test_the_lead_is_exclusive_and_passes_on_when_its_holder_closes(
    database_url: str,
) -> None:
    """Of two stores on one database one leads; when it closes the other takes over."""
    first, second = PostgresStore(database_url), PostgresStore(database_url)
    await first.open()
    await second.open()
    try:
        assert await first.try_lead("one")
        assert await first.try_lead("one")
        assert not await second.try_lead("two")
        await first.close()
        await eventually(lambda: second.try_lead("two"), "the second store takes the lead")
    finally:
        await first.close()
        await second.close()


CHILD = """
import asyncio, sys
from healthmon.store.postgres import PostgresStore

async def main() -> None:
    store = PostgresStore(sys.argv[1])
    await store.open()
    print(await store.try_lead("child"), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_the_lead_passes_to_another_process_when_the_writer_is_killed(
    store: PostgresStore, database_url: str
) -> None:
    """A writer process killed with SIGKILL frees the lead for a monitor in another process."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, database_url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), WAIT_S)
        assert line.strip() == b"True"
        assert not await store.try_lead("parent")
    finally:
        child.kill()
        await child.wait()
    await eventually(lambda: store.try_lead("parent"), "the lead passes to this process")


async def test_a_writer_whose_connection_dropped_writes_on_when_nobody_else_wrote(
    store: PostgresStore, admin: Any
) -> None:
    """The lead connection ended by the server is made again, and writing goes on."""
    assert await store.try_lead("w")
    await store.write(minutes_batch("w", 1, T0 + MINUTE_MS, {T0: 1_000}), KEEP)
    await admin.execute("SELECT pg_terminate_backend($1)", await writer_pid(admin))
    retried = minutes_batch("w", 2, T0 + 2 * MINUTE_MS, {T0 + MINUTE_MS: 2_000})
    failures: set[str] = set()

    async def written() -> bool:
        try:
            await store.write(retried, KEEP)
        except StoreError as exc:
            failures.add(exc.kind)
            return False
        return True

    await eventually(written, "a write after the connection dropped")
    # Until the server has ended the dropped session, that session holds the lock.
    assert failures <= {"connection", "lead_lost"}
    assert await up_ms(store) == 3_000
    await writer_pid(admin)


@pytest.mark.parametrize("other_still_leads", [True, False], ids=["other-leads", "other-gone"])
async def test_a_writer_replaced_by_another_writes_nothing_more(
    store: PostgresStore, database_url: str, admin: Any, other_still_leads: bool
) -> None:
    """A writer that lost its lock while another took over and wrote stops writing (no
    time counted twice), even once the other is gone, and frees the lock."""
    assert await store.try_lead("first")
    await store.write(minutes_batch("first", 1, T0 + MINUTE_MS, {T0: 1_000}), KEEP)
    await admin.execute("SELECT pg_terminate_backend($1)", await writer_pid(admin))
    other = PostgresStore(database_url)
    await other.open()
    try:
        await eventually(lambda: other.try_lead("second"), "another store takes the lead")
        await other.write(minutes_batch("second", 1, T0 + MINUTE_MS, {T0: 20_000}), KEEP)
        if not other_still_leads:
            await other.close()

            async def free() -> bool:
                return await admin.fetchval(_LOCK_HOLDER) is None

            # So the first writer gets the lock back and must see the other's batch.
            await eventually(free, "the other's lock is freed")
        late = minutes_batch("first", 2, T0 + 2 * MINUTE_MS, {T0: 300_000})
        failures: list[StoreError] = []

        async def refused() -> bool:
            try:
                await store.write(late, KEEP)
            except StoreError as exc:
                failures.append(exc)
                return exc.kind == "lead_lost"
            pytest.fail("a writer that was replaced wrote again")

        await eventually(refused, "the replaced writer is told it lost the lead")
        assert {exc.kind for exc in failures} <= {"connection", "lead_lost"}
        says = "holds the writer's lock" if other_still_leads else "another monitor wrote"
        assert says in str(failures[-1])
        assert await up_ms(store) == 21_000
        third = PostgresStore(database_url)
        await third.open()
        try:
            if other_still_leads:
                assert not await third.try_lead("third")
            else:
                await eventually(lambda: third.try_lead("third"), "the lock is free again")
        finally:
            await third.close()
    finally:
        await other.close()
