"""History in one SQLite file (the default): WAL mode, every call off the event loop.

Each connection lives on a thread of its own and a whole write (its
transaction, roll-up and pruning) runs there as one function, so the loop
waits for nothing but the result. A file can be read by other processes
while it is written; one process writes at a time (a lock file beside it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

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

_T = TypeVar("_T")
MEMORY = ":memory:"
# A writer that finds the file busy waits this long before it is an error.
BUSY_TIMEOUT_S = 2.0


def error_kind(exc: BaseException) -> str:
    """A short class name for a database error: what is logged once and counted."""
    text = str(exc).lower()
    for needle, kind in (
        ("locked", "locked"),
        ("busy", "locked"),
        ("readonly", "read_only"),
        ("read-only", "read_only"),
        ("disk is full", "disk_full"),
        ("malformed", "corrupt"),
        ("not a database", "corrupt"),
        ("disk i/o", "io"),
        ("unable to open", "cannot_open"),
    ):
        if needle in text:
            return kind
    return type(exc).__name__


class SqliteStore:
    def __init__(self, path: Path | str) -> None:
        self.memory = str(path) == MEMORY
        self.path = Path(path)
        self.where = MEMORY if self.memory else str(self.path)
        # The writer's and the readers' connections, each on its own thread (one
        # for both in memory, where a second connection would be another database).
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="history-write")
        self._read_pool = (
            self._write_pool
            if self.memory
            else ThreadPoolExecutor(1, thread_name_prefix="history-read")
        )
        self._write_db: sqlite3.Connection | None = None
        self._read_db: sqlite3.Connection | None = None
        self._ids: dict[str, int] = {}
        self._lock_fd: int | None = None
        self._pruned_at = 0

    # -- threads -------------------------------------------------------------

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, fn)
        except sqlite3.Error as exc:
            raise StoreError(error_kind(exc), f"{self.where}: {exc}") from None

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        if self.memory:
            db = sqlite3.connect(MEMORY, isolation_level=None)
        else:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        if read_only:
            db.execute("PRAGMA query_only = ON")
        return db

    def _writer(self) -> sqlite3.Connection:
        if self._write_db is None:
            self._write_db = self._connect(read_only=False)
        return self._write_db

    def _reader(self) -> sqlite3.Connection:
        if self.memory:
            return self._writer()
        if self._read_db is None:
            self._read_db = self._connect(read_only=True)
        return self._read_db

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        if not self.memory:
            self._check_file()
        await self._run(self._write_pool, self._migrate)

    def _check_file(self) -> None:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnusable(f"cannot create the folder {folder}: {exc.strerror}") from None
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise StoreUnusable(
                f"{self.path} is read-only: history is off until it is writable (chmod u+w)"
            )
        if not os.access(folder, os.W_OK):
            raise StoreUnusable(
                f"the folder {folder} is read-only: history is off until it is writable"
            )

    def _migrate(self) -> None:
        db = self._writer()
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreUnusable(
                f"{self.where} is not a readable SQLite file ({exc}); it was left as it is: "
                "move it away to start a new history"
            ) from None
        if version > schema.SCHEMA_VERSION:
            raise StoreUnusable(
                f"{self.where} was written by a newer healthmon (schema {version}; this one "
                f"knows {schema.SCHEMA_VERSION}); it was left as it is: upgrade healthmon"
            )
        if version == 0 and tables:
            raise StoreUnusable(
                f"{self.where} is an SQLite file of something else; it was left as it is: "
                "choose another [history] path"
            )
        try:
            if not self.memory:
                # Only now that the file is known to be ours. WAL: readers never
                # block the writer; NORMAL: a commit survives the process being
                # killed (only a power cut can undo the last one).
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            for step in range(version, schema.SCHEMA_VERSION):
                db.execute("BEGIN IMMEDIATE")
                for statement in schema.migration(step, "sqlite"):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {step + 1}")
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            kind = error_kind(exc)
            if kind == "read_only":
                raise StoreUnusable(f"{self.where} is read-only: history is off") from None
            raise StoreUnusable(f"{self.where}: cannot update its schema: {exc}") from None

    async def close(self) -> None:
        def close() -> None:
            for db in (self._write_db, self._read_db):
                if db is not None:
                    db.close()

        with contextlib.suppress(Exception):
            if self._read_pool is not self._write_pool and self._read_db is not None:
                await asyncio.get_running_loop().run_in_executor(
                    self._read_pool, self._read_db.close
                )
                self._read_db = None
            await asyncio.get_running_loop().run_in_executor(self._write_pool, close)
        self._write_pool.shutdown(wait=False)
        self._read_pool.shutdown(wait=False)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def try_lead(self, writer: str) -> bool:
        if self.memory or self._lock_fd is not None:
            return True
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    # -- writing -------------------------------------------------------------

    def _service_ids(self, db: sqlite3.Connection, names: Sequence[str]) -> dict[str, int]:
        """Ids of ``names``; those read now are kept only once the transaction commits."""
        missing = [n for n in names if n not in self._ids]
        if not missing:
            return self._ids
        marks = ", ".join("?" for _ in missing)
        rows = db.execute(f"SELECT name, id FROM services WHERE name IN ({marks})", missing)
        return {**self._ids, **dict(rows.fetchall())}

    async def recover(self, now_ms: int) -> dict[str, int]:
        def recover() -> dict[str, int]:
            db = self._writer()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'last_alive'").fetchone()
                last_alive = min(int(row[0]), now_ms) if row else None
                gaps: dict[str, int] = {}
                open_periods = db.execute(schema.OPEN_PERIODS).fetchall()
                for name, service_id, start, status in open_periods:
                    end = max(start, last_alive if last_alive is not None else start)
                    db.execute(
                        "UPDATE periods SET end_ms = ? WHERE service_id = ? AND start_ms = ?",
                        (end, service_id, start),
                    )
                    if status != "unknown" and end < now_ms:
                        db.execute(
                            "INSERT INTO periods (service_id, start_ms, status, previous, reason)"
                            " VALUES (?, ?, 'unknown', ?, ?) ON CONFLICT DO NOTHING",
                            (service_id, end, status, GAP_REASON),
                        )
                        gaps[name] = end
                    elif status == "unknown":
                        # Already unknown when the last writer stopped: it lasts on.
                        db.execute(
                            "UPDATE periods SET end_ms = NULL "
                            "WHERE service_id = ? AND start_ms = ?",
                            (service_id, start),
                        )
                        gaps[name] = start
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return gaps

        return await self._run(self._write_pool, recover)

    async def write(self, batch: Batch, retention: Retention) -> None:
        await self._run(self._write_pool, lambda: self._write(batch, retention))

    def _write(self, batch: Batch, retention: Retention) -> None:
        db = self._writer()
        db.execute("BEGIN IMMEDIATE")
        try:
            applied = db.execute("SELECT value FROM meta WHERE key = 'batch'").fetchone()
            if applied and applied[0] == f"{batch.writer}:{batch.seq}":
                db.execute("ROLLBACK")
                return
            db.executemany(
                "INSERT INTO services (name, first_seen) VALUES (?, ?) ON CONFLICT DO NOTHING",
                batch.first_seen.items(),
            )
            ids = self._service_ids(db, schema.batch_names(batch))
            db.executemany(schema.upsert_period(), schema.period_rows(batch, ids))
            rows = schema.minute_rows(batch, ids)
            db.executemany(schema.add("minute"), rows)
            rolled = _meta(db, "rolled_to")
            if rolled is not None:
                for grain in schema.LATER_GRAINS:
                    db.executemany(schema.add(grain), schema.late_rows(rows, rolled, grain))
            self._roll_up(db, batch, rolled)
            if batch.now_ms - self._pruned_at >= HOUR_MS:
                for table, statement in schema.prune():
                    bound = schema.prune_before(table, batch.now_ms, retention)
                    db.execute(statement, (bound,) * statement.count("?"))
            _set_meta(db, last_alive=batch.now_ms, batch=f"{batch.writer}:{batch.seq}")
            db.execute("COMMIT")
            self._ids = ids
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        if batch.now_ms - self._pruned_at >= HOUR_MS:
            self._pruned_at = batch.now_ms

    def _roll_up(self, db: sqlite3.Connection, batch: Batch, rolled: int | None) -> None:
        """Add every minute that is over and not yet added to its hour and day."""
        closed = batch.now_ms // MINUTE_MS * MINUTE_MS
        start = rolled
        if start is None:
            start = min(min((s for _, s in batch.minutes), default=closed), closed)
        if closed > start:
            for grain in schema.LATER_GRAINS:
                db.execute(schema.roll_up(grain), (start, closed))
            _set_meta(db, rolled_to=closed)
        elif rolled is None:
            _set_meta(db, rolled_to=start)

    # -- reading -------------------------------------------------------------

    async def last_alive(self) -> int | None:
        return await self._run(self._read_pool, lambda: _meta(self._reader(), "last_alive"))

    async def first_seen(self) -> dict[str, int]:
        def read() -> dict[str, int]:
            return dict(self._reader().execute("SELECT name, first_seen FROM services"))

        return await self._run(self._read_pool, read)

    async def totals(
        self, names: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> dict[str, Totals]:
        parts = pyramid(start_ms, end_ms)
        if not parts:
            return {}
        sql = schema.totals(parts, None if names is None else len(names))
        args = schema.totals_args(parts, names)

        def read() -> dict[str, Totals]:
            rows = self._reader().execute(sql, args).fetchall()
            return {row[0]: Totals.from_row(row[1:]) for row in rows}

        return await self._run(self._read_pool, read)

    async def buckets(self, name: str, grain: Grain, start_ms: int, end_ms: int) -> list[Bucket]:
        def read() -> list[Bucket]:
            db = self._reader()
            # One snapshot: a roll-up between the two reads would count minutes twice.
            db.execute("BEGIN")
            try:
                rolled = _meta(db, "rolled_to")
                args = schema.bucket_args(grain, name, start_ms, end_ms, rolled)
                rows = db.execute(schema.buckets(grain), args).fetchall()
            finally:
                db.execute("COMMIT")
            return [Bucket(int(row[0]), Totals.from_row(row[1:])) for row in rows]

        return await self._run(self._read_pool, read)

    async def periods(
        self, name: str | None, start_ms: int, end_ms: int, limit: int
    ) -> list[Period]:
        args: tuple[object, ...] = (end_ms, start_ms, limit)
        if name is not None:
            args = (name, *args)

        def read() -> list[Period]:
            rows = self._reader().execute(schema.periods(name is not None), args)
            return [Period(*row) for row in rows]

        return await self._run(self._read_pool, read)

    async def changes(self, limit: int) -> list[Period]:
        def read() -> list[Period]:
            return [Period(*row) for row in self._reader().execute(schema.changes(), (limit,))]

        return await self._run(self._read_pool, read)

    # -- alerts ----------------------------------------------------------------

    def _commit(self, sql: str, rows: Sequence[schema.Row]) -> int:
        db = self._writer()
        db.execute("BEGIN IMMEDIATE")
        try:
            changed = db.executemany(sql, rows).rowcount
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        return changed

    async def add_alerts(self, rows: Sequence[AlertRow]) -> None:
        values = [schema.alert_row(r) for r in rows]
        await self._run(self._write_pool, lambda: self._commit(schema.ADD_ALERT, values))

    async def mark_alert(self, row: AlertRow) -> None:
        values = [schema.mark_row(row)]
        await self._run(self._write_pool, lambda: self._commit(schema.MARK_ALERT, values))

    async def open_alerts(self) -> list[AlertRow]:
        def read() -> list[AlertRow]:
            return [schema.read_alert(r) for r in self._writer().execute(schema.OPEN_ALERTS)]

        return await self._run(self._write_pool, read)

    async def alert_log(self, limit: int, since: int) -> list[AlertRow]:
        def read() -> list[AlertRow]:
            rows = self._writer().execute(schema.ALERT_LOG, (since, limit))
            return [schema.read_alert(r) for r in rows]

        return await self._run(self._write_pool, read)

    async def add_silence(self, silence: Silence) -> None:
        values = [schema.silence_row(silence)]
        await self._run(self._write_pool, lambda: self._commit(schema.ADD_SILENCE, values))

    async def remove_silence(self, silence_id: str) -> bool:
        gone = await self._run(
            self._write_pool, lambda: self._commit(schema.REMOVE_SILENCE, [(silence_id,)])
        )
        return gone > 0

    async def silences(self, now_ms: int) -> list[Silence]:
        def read() -> list[Silence]:
            rows = self._writer().execute(schema.SILENCES, (now_ms,))
            return [schema.read_silence(r) for r in rows]

        return await self._run(self._write_pool, read)


def _meta(db: sqlite3.Connection, key: str) -> int | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else int(row[0])


def _set_meta(db: sqlite3.Connection, **values: object) -> None:
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [(key, str(value)) for key, value in values.items()],
    )
