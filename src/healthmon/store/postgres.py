"""History in PostgreSQL, shared by several processes: asyncpg and a small pool.

Every process reads through a pool of a few connections. One writes: the
process whose store holds a session advisory lock, on a connection of its
own kept for the store's life. When that process dies its connection
closes, the server releases the lock and another monitor's next
``try_lead`` takes it. Writes go through that same connection, so a writer
whose connection dropped (the server restarted, the link broke) writes
again only once it holds the lock again, and only if no other writer wrote
in between: time is never counted by two writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from healthmon.store import schema
from healthmon.store.base import (
    GAP_REASON,
    HOUR_MS,
    MINUTE_MS,
    AlertRow,
    Batch,
    Bucket,
    Grain,
    Period,
    Retention,
    Silence,
    StoreError,
    StoreUnusable,
    Totals,
    pyramid,
)

# Session advisory lock keys (64-bit, from sha256 of "healthmon history writer"
# and "healthmon history migration"): advisory locks are per database, so two
# healthmons on two databases of one server never meet.
WRITER_KEY = 5847411354586168117
MIGRATION_KEY = 8406006350964411206
POOL_MIN, POOL_MAX = 1, 4
CONNECT_TIMEOUT_S = 5.0
# A statement running longer is cancelled and its write retried with the next batch.
COMMAND_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
_SETTINGS = {"application_name": "healthmon"}
# The server notices a writer whose host vanished in ~25 s instead of the
# kernel's default two hours, and frees the writer's lock for another monitor.
_LEAD_SETTINGS = {
    "application_name": "healthmon-writer",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
_DB_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
# SQLSTATEs worth a kind of their own; class 08 (connection exceptions) is "connection".
_KINDS = {
    "53100": "disk_full",
    "25006": "read_only",
    "57014": "timeout",
    "53300": "too_many_connections",
    "53200": "out_of_memory",
    "42501": "permission",
    "57P01": "connection",
    "57P02": "connection",
    "57P03": "connection",
}
_TABLES = ("meta", "services", "periods", *schema.TABLES.values())

_ADD_SERVICE = schema.numbered(
    "INSERT INTO services (name, first_seen) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
_UPSERT_PERIOD = schema.numbered(schema.upsert_period())
# The buckets minutes are rolled up into.
_ADD = {grain: schema.numbered(schema.add(grain)) for grain in ("minute", *schema.LATER_GRAINS)}
_ROLL_UP = {grain: schema.numbered(schema.roll_up(grain)) for grain in schema.LATER_GRAINS}
_PRUNE = [(table, schema.numbered(sql), sql.count("?")) for table, sql in schema.prune()]
_SET_META = (
    "INSERT INTO meta (key, value) VALUES ($1, $2) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def error_kind(exc: BaseException) -> str:
    """A short class name for a database error: what is logged once and counted."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):
        return "connection"
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith("08"):
            return "connection"
        if sqlstate in _KINDS:
            return _KINDS[sqlstate]
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
        return "connection"
    # The server ended the session while it was idle, and the client has read
    # the error but not yet the end of the stream.
    if isinstance(exc, asyncpg.InternalClientError) and "in progress" in str(exc):
        return "connection"
    return type(exc).__name__


def describe(url: str) -> str:
    """``user@host:port/database`` for messages: where it is, never the password."""
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    user = unquote(parts.netloc.rpartition("@")[0].partition(":")[0]) or query.get("user")
    hosts = parts.netloc.rpartition("@")[2] or query.get("host", "localhost")
    if "," not in hosts and not re.search(r":\d+$", hosts) and not hosts.startswith("/"):
        hosts += f":{query.get('port', 5432)}"
    database = unquote(parts.path.lstrip("/")) or query.get("dbname") or user or ""
    return f"{user}@{hosts}/{database}" if user else f"{hosts}/{database}"


def _password(url: str) -> str | None:
    parts = urlsplit(url)
    return parts.password or parse_qs(parts.query).get("password", [None])[0]


class _LeadLost(Exception):
    """Another writer wrote since this store's last write."""


class PostgresStore:
    def __init__(self, url: str) -> None:
        self._url = url
        self.where = describe(url)
        self._password = _password(url)
        self._pool: Any = None
        # The connection that takes the writer's lock, and whether it holds it.
        self._lead: Any = None
        self._locked = False
        # The writer this store leads for; None while it does not lead.
        self._leader: str | None = None
        # The lead was lost to another writer: nothing is written until try_lead again.
        self._lost = False
        # A batch was committed since the lead was taken (the point from which
        # a batch of another writer in meta means that writer took over).
        self._written = False
        self._lead_lock = asyncio.Lock()
        self._ids: dict[str, int] = {}
        self._pruned_at = 0

    # -- errors --------------------------------------------------------------

    def _text(self, exc: BaseException) -> str:
        """The error on one line, without the password even if a driver echoes the URL."""
        if isinstance(exc, TimeoutError):
            text = "no answer in time"
        elif isinstance(exc, ConnectionRefusedError):
            text = "connection refused (is PostgreSQL listening there?)"
        elif isinstance(exc, OSError) and exc.strerror:
            text = exc.strerror
        else:
            text = " ".join(str(exc).split()) or type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except _DB_ERRORS as exc:
            raise StoreError(error_kind(exc), f"{self.where}: {self._text(exc)}") from None

    # -- connections ---------------------------------------------------------

    async def _connect(self) -> Any:
        return await asyncpg.connect(
            self._url,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=COMMAND_TIMEOUT_S,
            server_settings=_LEAD_SETTINGS,
        )

    def _pooled(self) -> Any:
        if self._pool is None:
            raise StoreError("closed", f"{self.where}: the store is not open")
        return self._pool

    async def _drop(self, db: Any) -> None:
        try:
            await db.close(timeout=CLOSE_TIMEOUT_S)
        except _DB_ERRORS:
            db.terminate()
        except asyncio.CancelledError:
            db.terminate()
            raise

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
                server_settings=_SETTINGS,
            )
        except (*_DB_ERRORS, ValueError) as exc:
            raise StoreUnusable(f"{self.where}: cannot connect: {self._text(exc)}") from None
        try:
            async with self._pool.acquire() as db:
                await self._migrate(db)
        except BaseException:
            await self.close()
            raise

    async def _migrate(self, db: Any) -> None:
        try:
            while True:
                # One transaction a step, under a lock: of several processes
                # opening at once one migrates, the others then find it done.
                async with db.transaction():
                    await db.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_KEY)
                    version = await self._version(db)
                    if version > schema.SCHEMA_VERSION:
                        raise StoreUnusable(
                            f"{self.where} was written by a newer healthmon (schema {version}; "
                            f"this one knows {schema.SCHEMA_VERSION}); it was left as it is: "
                            "upgrade healthmon"
                        )
                    if version == schema.SCHEMA_VERSION:
                        return
                    for statement in schema.migration(version, "postgres"):
                        await db.execute(statement)
                    await db.execute(_SET_META, "schema_version", str(version + 1))
        except _DB_ERRORS as exc:
            kind = error_kind(exc)
            if kind == "read_only":
                raise StoreUnusable(f"{self.where} is read-only: history is off") from None
            if kind in ("connection", "timeout"):
                raise StoreUnusable(f"{self.where}: cannot connect: {self._text(exc)}") from None
            raise StoreUnusable(
                f"{self.where}: cannot update its schema: {self._text(exc)}"
            ) from None

    async def _version(self, db: Any) -> int:
        """The schema version in meta; 0 for a database without healthmon's tables.

        ``meta`` is made by the first migration, in the same transaction that
        records its version: no meta means nothing was ever migrated here.
        """
        if await db.fetchval("SELECT to_regclass('meta')") is None:
            found = await db.fetch(
                "SELECT tablename FROM pg_tables "
                "WHERE schemaname = current_schema() AND tablename = ANY($1::text[])",
                list(_TABLES),
            )
            if found:
                names = ", ".join(sorted(row[0] for row in found))
                raise StoreUnusable(
                    f"{self.where} holds tables of something else ({names}); it was left as "
                    "it is: choose another database for [history] url"
                )
            return 0
        value = await db.fetchval("SELECT value FROM meta WHERE key = 'schema_version'")
        if value is None or not str(value).isdigit():
            raise StoreUnusable(
                f"{self.where} has a meta table without healthmon's schema_version; it was "
                "left as it is: choose another database for [history] url"
            )
        return int(value)

    async def close(self) -> None:
        lead, self._lead, self._leader, self._locked = self._lead, None, None, False
        if lead is not None:
            await self._drop(lead)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
            except _DB_ERRORS:
                pool.terminate()

    async def try_lead(self, writer: str) -> bool:
        async with self._lead_lock:
            with self._errors():
                held = await self._hold_lock()
            if held:
                if writer != self._leader:
                    self._written = False
                self._leader, self._lost = writer, False
            return held

    async def _hold_lock(self) -> bool:
        """Hold the writer's lock on the lead connection (made again if it closed)."""
        if self._lead is None or self._lead.is_closed():
            self._lead, self._locked = await self._connect(), False
        if not self._locked:
            self._locked = bool(
                await self._lead.fetchval("SELECT pg_try_advisory_lock($1)", WRITER_KEY)
            )
        return self._locked

    async def _step_down(self) -> None:
        """Stop writing; closing the lead connection frees the lock for another monitor."""
        self._leader, self._lost = None, True
        lead, self._lead, self._locked = self._lead, None, False
        if lead is not None:
            await self._drop(lead)

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[Any]:
        """The connection a write goes through: the lead's while leading, else the pool's.

        A lead connection that closed took the lock with it: it is made and
        locked again. Until the lock is free (another monitor took it, or the
        server has not yet ended the dropped session) nothing is written; once
        it is, the write itself finds out whether another writer wrote meanwhile.
        """
        async with self._lead_lock:
            if self._lost:
                raise StoreError(
                    "lead_lost", f"{self.where}: another monitor wrote history; this one stopped"
                )
            if self._leader is None:
                async with self._pooled().acquire() as db:
                    yield db
                return
            if not await self._hold_lock():
                raise StoreError(
                    "lead_lost",
                    f"{self.where}: another session holds the writer's lock since this "
                    "one's connection dropped",
                )
            lead = self._lead
            try:
                yield lead
            except BaseException as exc:
                # A connection left broken or mid-statement is not used again:
                # the next write makes a new one and takes the lock again.
                if isinstance(exc, asyncio.CancelledError) or error_kind(exc) == "connection":
                    lead.terminate()
                    self._locked = False
                raise

    # -- writing -------------------------------------------------------------

    async def recover(self, now_ms: int) -> dict[str, int]:
        with self._errors():
            async with self._writing() as db, db.transaction():
                row = await db.fetchval("SELECT value FROM meta WHERE key = 'last_alive'")
                last_alive = min(int(row), now_ms) if row is not None else None
                gaps: dict[str, int] = {}
                for name, service_id, start, status in await db.fetch(schema.OPEN_PERIODS):
                    end = max(start, last_alive if last_alive is not None else start)
                    await db.execute(
                        "UPDATE periods SET end_ms = $1 WHERE service_id = $2 AND start_ms = $3",
                        end,
                        service_id,
                        start,
                    )
                    if status != "unknown" and end < now_ms:
                        await db.execute(
                            "INSERT INTO periods (service_id, start_ms, status, previous, reason)"
                            " VALUES ($1, $2, 'unknown', $3, $4) ON CONFLICT DO NOTHING",
                            service_id,
                            end,
                            status,
                            GAP_REASON,
                        )
                        gaps[name] = end
                    elif status == "unknown":
                        # Already unknown when the last writer stopped: it lasts on.
                        await db.execute(
                            "UPDATE periods SET end_ms = NULL "
                            "WHERE service_id = $1 AND start_ms = $2",
                            service_id,
                            start,
                        )
                        gaps[name] = start
                return gaps

    async def write(self, batch: Batch, retention: Retention) -> None:
        with self._errors():
            async with self._writing() as db:
                try:
                    await self._write(db, batch, retention)
                except _LeadLost:
                    await self._step_down()
                    raise StoreError(
                        "lead_lost",
                        f"{self.where}: another monitor wrote history; this one stopped",
                    ) from None

    async def _write(self, db: Any, batch: Batch, retention: Retention) -> None:
        key = f"{batch.writer}:{batch.seq}"
        prune = batch.now_ms - self._pruned_at >= HOUR_MS
        async with db.transaction():
            # FOR UPDATE: two stores writing at once (neither leading) take turns.
            applied = await db.fetchval("SELECT value FROM meta WHERE key = 'batch' FOR UPDATE")
            if applied == key:
                return
            if (
                self._leader is not None
                and self._written
                and applied is not None
                and applied.rpartition(":")[0] != batch.writer
            ):
                raise _LeadLost
            await db.executemany(_ADD_SERVICE, list(batch.first_seen.items()))
            ids = await self._service_ids(db, schema.batch_names(batch))
            await db.executemany(_UPSERT_PERIOD, schema.period_rows(batch, ids))
            rows = schema.minute_rows(batch, ids)
            await db.executemany(_ADD["minute"], rows)
            mark = await db.fetchval("SELECT value FROM meta WHERE key = 'rolled_to'")
            rolled = None if mark is None else int(mark)
            if rolled is not None:
                for grain in schema.LATER_GRAINS:
                    await db.executemany(_ADD[grain], schema.late_rows(rows, rolled, grain))
            await self._roll_up(db, batch, rolled)
            if prune:
                for table, statement, marks in _PRUNE:
                    bound = schema.prune_before(table, batch.now_ms, retention)
                    await db.execute(statement, *(bound,) * marks)
            await _set_meta(db, last_alive=batch.now_ms, batch=key)
        # Only ids that were committed are remembered: a rolled-back insert's
        # id is never given again (sequences do not roll back).
        self._ids.update(ids)
        self._written = True
        if prune:
            self._pruned_at = batch.now_ms

    async def _service_ids(self, db: Any, names: Sequence[str]) -> dict[str, int]:
        ids = {name: self._ids[name] for name in names if name in self._ids}
        missing = [name for name in names if name not in ids]
        if missing:
            rows = await db.fetch(
                "SELECT name, id FROM services WHERE name = ANY($1::text[])", missing
            )
            ids.update((row[0], int(row[1])) for row in rows)
        return ids

    async def _roll_up(self, db: Any, batch: Batch, rolled: int | None) -> None:
        """Add every minute that is over and not yet added to its hour and day."""
        closed = batch.now_ms // MINUTE_MS * MINUTE_MS
        start = rolled
        if start is None:
            start = min(min((s for _, s in batch.minutes), default=closed), closed)
        if closed > start:
            for statement in _ROLL_UP.values():
                await db.execute(statement, start, closed)
            await _set_meta(db, rolled_to=closed)
        elif rolled is None:
            await _set_meta(db, rolled_to=start)

    # -- reading -------------------------------------------------------------

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        with self._errors():
            return list(await self._pooled().fetch(sql, *args))

    async def first_seen(self) -> dict[str, int]:
        rows = await self._fetch("SELECT name, first_seen FROM services")
        return {row[0]: int(row[1]) for row in rows}

    async def totals(
        self, names: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> dict[str, Totals]:
        parts = pyramid(start_ms, end_ms)
        if not parts:
            return {}
        sql = schema.numbered(schema.totals(parts, None if names is None else len(names)))
        rows = await self._fetch(sql, *schema.totals_args(parts, names))
        return {row[0]: Totals.from_row(list(row)[1:]) for row in rows}

    async def last_alive(self) -> int | None:
        rows = await self._fetch("SELECT value FROM meta WHERE key = 'last_alive'")
        return int(rows[0][0]) if rows else None

    async def buckets(self, name: str, grain: Grain, start_ms: int, end_ms: int) -> list[Bucket]:
        sql = schema.numbered(schema.buckets(grain))
        # One snapshot for the roll-up mark and the buckets: a write between
        # them would count the minutes it rolls up twice.
        with self._errors():
            async with (
                self._pooled().acquire() as db,
                db.transaction(isolation="repeatable_read", readonly=True),
            ):
                rolled = await db.fetchval("SELECT value FROM meta WHERE key = 'rolled_to'")
                args = schema.bucket_args(
                    grain, name, start_ms, end_ms, None if rolled is None else int(rolled)
                )
                rows = await db.fetch(sql, *args)
        return [Bucket(int(row[0]), Totals.from_row(list(row)[1:])) for row in rows]

    async def periods(
        self, name: str | None, start_ms: int, end_ms: int, limit: int
    ) -> list[Period]:
        args: tuple[object, ...] = (end_ms, start_ms, limit)
        if name is not None:
            args = (name, *args)
        rows = await self._fetch(schema.numbered(schema.periods(name is not None)), *args)
        return [Period(*row) for row in rows]

    async def changes(self, limit: int) -> list[Period]:
        rows = await self._fetch(schema.numbered(schema.changes()), limit)
        return [Period(*row) for row in rows]

    # -- alerts ----------------------------------------------------------------

    async def _execute(self, sql: str, rows: Sequence[schema.Row]) -> None:
        with self._errors():
            await self._pooled().executemany(schema.numbered(sql), rows)

    async def add_alerts(self, rows: Sequence[AlertRow]) -> None:
        await self._execute(schema.ADD_ALERT, [schema.alert_row(r) for r in rows])

    async def mark_alert(self, row: AlertRow) -> None:
        await self._execute(schema.MARK_ALERT, [schema.mark_row(row)])

    async def open_alerts(self) -> list[AlertRow]:
        return [schema.read_alert(r) for r in await self._fetch(schema.OPEN_ALERTS)]

    async def alert_log(self, limit: int, since: int) -> list[AlertRow]:
        rows = await self._fetch(schema.numbered(schema.ALERT_LOG), since, limit)
        return [schema.read_alert(r) for r in rows]

    async def add_silence(self, silence: Silence) -> None:
        await self._execute(schema.ADD_SILENCE, [schema.silence_row(silence)])

    async def remove_silence(self, silence_id: str) -> bool:
        with self._errors():
            status = await self._pooled().execute(
                schema.numbered(schema.REMOVE_SILENCE), silence_id
            )
        return str(status).rsplit(" ", 1)[-1] != "0"

    async def silences(self, now_ms: int) -> list[Silence]:
        rows = await self._fetch(schema.numbered(schema.SILENCES), now_ms)
        return [schema.read_silence(r) for r in rows]


async def _set_meta(db: Any, **values: object) -> None:
    await db.executemany(_SET_META, [(key, str(value)) for key, value in values.items()])
