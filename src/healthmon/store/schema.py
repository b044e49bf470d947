"""The schema as numbered migrations, and the statements both stores share.

A store at schema N applies ``MIGRATIONS[N:]`` in one transaction each; a
store whose schema is newer than ``len(MIGRATIONS)`` is left alone (it was
written by a newer healthmon). Statements use ``?`` placeholders; the
PostgreSQL store numbers them (``$1``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from healthmon.store.base import (
    ALERT_LOG_KEEP_MS,
    GRAIN_MS,
    VALUE_COLUMNS,
    AlertRow,
    Batch,
    Grain,
    Retention,
    Silence,
)

TABLES: dict[Grain, str] = {"minute": "minutes", "hour": "hours", "day": "days"}
# Integer time in epoch ms needs 64 bits; SQLite's INTEGER is, PostgreSQL's is not.
_BIG = "{big}"


def _bucket_table(name: str) -> str:
    values = ",\n  ".join(
        f"{c} DOUBLE PRECISION NOT NULL DEFAULT 0"
        if c in ("latency_sum", "latency_max")
        else f"{c} {_BIG} NOT NULL DEFAULT 0"
        for c in VALUE_COLUMNS
    )
    return (
        f"CREATE TABLE {name} (\n  service_id INTEGER NOT NULL,\n  start_ms {_BIG} NOT NULL,\n"
        f"  {values},\n  PRIMARY KEY (service_id, start_ms)\n){{without_rowid}}"
    )


# Each entry is one schema version's statements. Append, never edit: files
# written by earlier versions are opened by replaying what follows them.
MIGRATIONS: list[list[str]] = [
    # 1: services, periods and the three bucket sizes.
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE services (id {{serial}}, name TEXT NOT NULL UNIQUE, "
        f"first_seen {_BIG} NOT NULL)",
        f"CREATE TABLE periods (\n  service_id INTEGER NOT NULL,\n  start_ms {_BIG} NOT NULL,\n"
        f"  end_ms {_BIG},\n  status TEXT NOT NULL,\n  previous TEXT,\n  reason TEXT,\n"
        "  checks TEXT,\n  monitor TEXT,\n  PRIMARY KEY (service_id, start_ms)\n){without_rowid}",
        *(_bucket_table(table) for table in TABLES.values()),
    ],
    # 2: the event log reads the latest periods of every service, and recovery
    # finds the open ones: both by index rather than a scan of a year's rows.
    [
        "CREATE INDEX periods_by_start ON periods (start_ms)",
        "CREATE INDEX periods_open ON periods (end_ms) WHERE end_ms IS NULL",
    ],
    # 3: the alerts' outbox (every message before it is sent, kept as its log)
    # and the silences set through the API, shared by every process.
    [
        f"CREATE TABLE alerts (\n  key TEXT PRIMARY KEY,\n  channel TEXT NOT NULL,\n"
        f"  created_ms {_BIG} NOT NULL,\n  state TEXT NOT NULL,\n"
        f"  attempts INTEGER NOT NULL DEFAULT 0,\n  next_ms {_BIG} NOT NULL,\n"
        f"  updated_ms {_BIG} NOT NULL,\n  body TEXT NOT NULL,\n  answer TEXT\n)",
        "CREATE INDEX alerts_by_update ON alerts (updated_ms)",
        "CREATE INDEX alerts_open ON alerts (created_ms) WHERE state IN ('pending', 'retrying')",
        f"CREATE TABLE silences (\n  id TEXT PRIMARY KEY,\n  services TEXT NOT NULL,\n"
        f"  until_ms {_BIG} NOT NULL,\n  comment TEXT,\n  created_ms {_BIG} NOT NULL\n)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

DIALECTS = {
    "sqlite": {
        "big": "INTEGER",
        "serial": "INTEGER PRIMARY KEY",
        "without_rowid": " WITHOUT ROWID",
    },
    "postgres": {"big": "BIGINT", "serial": "SERIAL PRIMARY KEY", "without_rowid": ""},
}


def migration(version: int, dialect: str) -> list[str]:
    """The statements that take a store from ``version`` to ``version + 1``."""
    return [s.format(**DIALECTS[dialect]) for s in MIGRATIONS[version]]


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …``."""
    count = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


_COLUMNS = ", ".join(VALUE_COLUMNS)
_ADD = ", ".join(
    f"{c} = {{table}}.{c} + excluded.{c}"
    if c != "latency_max"
    else f"{c} = CASE WHEN excluded.{c} > {{table}}.{c} THEN excluded.{c} ELSE {{table}}.{c} END"
    for c in VALUE_COLUMNS
)


def _sums(prefix: str = "") -> str:
    """Each column's sum (its maximum for latency_max); integer sums stay integers
    (PostgreSQL's SUM of a bigint is a numeric)."""
    return ", ".join(
        f"MAX({prefix}{c})" if c == "latency_max"
        else f"SUM({prefix}{c})" if c == "latency_sum"
        else f"CAST(SUM({prefix}{c}) AS BIGINT)"
        for c in VALUE_COLUMNS
    )  # fmt: skip


_SUMS = _sums()


def add(grain: Grain = "minute") -> str:
    """Add one row of figures to a bucket (creating it)."""
    table = TABLES[grain]
    marks = ", ".join("?" for _ in range(len(VALUE_COLUMNS) + 2))
    return (
        f"INSERT INTO {table} (service_id, start_ms, {_COLUMNS}) VALUES ({marks}) "
        f"ON CONFLICT (service_id, start_ms) DO UPDATE SET {_ADD.format(table=table)}"
    )


def roll_up(grain: Grain) -> str:
    """Add the minutes in [?, ?) to their hour or day buckets.

    ``service_id IN (…)`` lets the key (service, start) bound the read to the
    minutes wanted, rather than a scan of two days of every service's minutes.
    """
    table = TABLES[grain]
    step = GRAIN_MS[grain]
    return (
        f"INSERT INTO {table} (service_id, start_ms, {_COLUMNS}) "
        f"SELECT service_id, start_ms / {step} * {step}, {_SUMS} FROM minutes "
        "WHERE service_id IN (SELECT id FROM services) AND start_ms >= ? AND start_ms < ? "
        "GROUP BY 1, 2 "
        f"ON CONFLICT (service_id, start_ms) DO UPDATE SET {_ADD.format(table=table)}"
    )


def upsert_period() -> str:
    return (
        "INSERT INTO periods (service_id, start_ms, end_ms, status, previous, reason, checks, "
        "monitor) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service_id, start_ms) "
        "DO UPDATE SET end_ms = excluded.end_ms"
    )


def totals(parts: list[tuple[Grain, int, int]], names: int | None) -> str:
    """Sum each service's buckets over the ``pyramid`` parts (arguments: ``totals_args``).

    The services come first and each part is joined on the whole key
    (service, start), so a read costs what it reads, not the size of the store.
    """
    wanted = "SELECT id, name FROM services"
    if names is not None:
        wanted += f" WHERE name IN ({', '.join('?' for _ in range(names))})"
    union = " UNION ALL ".join(
        f"SELECT w.name, {', '.join('b.' + c for c in VALUE_COLUMNS)} FROM wanted w "
        f"JOIN {TABLES[grain]} b ON b.service_id = w.id AND b.start_ms >= ? AND b.start_ms < ?"
        for grain, _, _ in parts
    )
    return (
        f"WITH wanted AS ({wanted}) SELECT b.name, {_sums('b.')} FROM ({union}) AS b "
        "GROUP BY b.name"
    )


def totals_args(parts: list[tuple[Grain, int, int]], names: Sequence[str] | None) -> list[object]:
    return [*(names or ()), *(bound for _, lo, hi in parts for bound in (lo, hi))]


def buckets(grain: Grain) -> str:
    """One service's buckets in [?, ?); an hour or day still in progress includes
    the minutes not yet rolled up into it (those from ``?``, the roll-up mark, on)."""
    service = "service_id = (SELECT id FROM services WHERE name = ?)"
    if grain == "minute":
        return (
            f"SELECT start_ms, {_COLUMNS} FROM minutes "
            f"WHERE {service} AND start_ms >= ? AND start_ms < ? ORDER BY start_ms"
        )
    step = GRAIN_MS[grain]
    return (
        f"SELECT b.start_ms, {_sums('b.')} FROM ("
        f"SELECT start_ms, {_COLUMNS} FROM {TABLES[grain]} "
        f"WHERE {service} AND start_ms >= ? AND start_ms < ? UNION ALL "
        f"SELECT start_ms / {step} * {step}, {_COLUMNS} FROM minutes "
        f"WHERE {service} AND start_ms >= ? AND start_ms < ?"
        ") AS b GROUP BY b.start_ms ORDER BY b.start_ms"
    )


def bucket_args(
    grain: Grain, name: str, start_ms: int, end_ms: int, rolled_to: int | None
) -> tuple[object, ...]:
    if grain == "minute":
        return (name, start_ms, end_ms)
    unrolled = end_ms if rolled_to is None else max(start_ms, rolled_to)
    return (name, start_ms, end_ms, name, unrolled, end_ms)


_PERIOD = (
    "SELECT s.name, p.start_ms, p.status, p.end_ms, p.previous, p.reason, p.checks, p.monitor "
    "FROM periods p JOIN services s ON s.id = p.service_id"
)


def periods(by_name: bool) -> str:
    name = "s.name = ? AND " if by_name else ""
    return (
        f"{_PERIOD} WHERE {name}p.start_ms < ? AND (p.end_ms IS NULL OR p.end_ms > ?) "
        "ORDER BY p.start_ms DESC, s.name LIMIT ?"
    )


def changes() -> str:
    """Periods that began with a change from a known status: what the event log lists."""
    return (
        f"{_PERIOD} WHERE p.previous IS NOT NULL AND p.previous <> 'unknown' "
        "AND p.status <> 'unknown' ORDER BY p.start_ms DESC, s.name LIMIT ?"
    )


def prune() -> list[tuple[str, str]]:
    """(table, statement) pairs deleting what is past its retention; every placeholder
    takes the same bound (``prune_before``), and the key bounds each delete."""
    every = "service_id IN (SELECT id FROM services) AND start_ms < ?"
    out = [(t, f"DELETE FROM {t} WHERE {every}") for t in TABLES.values()]
    out.append(("periods", f"DELETE FROM periods WHERE {every} AND end_ms < ?"))
    out.append(("alerts", PRUNE_ALERTS))
    return out


OPEN_PERIODS = (
    "SELECT s.name, p.service_id, p.start_ms, p.status FROM periods p "
    "JOIN services s ON s.id = p.service_id WHERE p.end_ms IS NULL"
)


# -- a batch's rows, shaped once for both stores -------------------------------

Row = tuple[object, ...]
#: The buckets minutes are rolled up into.
LATER_GRAINS: tuple[Grain, ...] = ("hour", "day")


def batch_names(batch: Batch) -> list[str]:
    """Every service a batch has rows for (their ids are needed first)."""
    names = {p.service for p in batch.periods.values()}
    names.update(name for name, _ in batch.minutes)
    return sorted(names)


def period_rows(batch: Batch, ids: Mapping[str, int]) -> list[Row]:
    return [
        (ids[p.service], p.start_ms, p.end_ms, p.status, p.previous, p.reason, p.checks, p.monitor)
        for p in batch.periods.values()
        if p.service in ids
    ]


def minute_rows(batch: Batch, ids: Mapping[str, int]) -> list[Row]:
    return [
        (ids[name], start, *totals.row())
        for (name, start), totals in batch.minutes.items()
        if name in ids
    ]


def late_rows(rows: list[Row], rolled: int, grain: Grain) -> list[Row]:
    """Minute rows older than the roll-up mark (a clock stepped back), as ``grain`` rows:
    their minute was already added to its hour and day, so they are added there too."""
    step = GRAIN_MS[grain]
    late = []
    for service_id, start, *values in rows:
        assert isinstance(start, int)
        if start < rolled:
            late.append((service_id, start // step * step, *values))
    return late


def prune_before(table: str, now_ms: int, retention: Retention) -> int:
    """Rows of ``table`` starting (periods: ending) before this are past their retention."""
    keep = {
        "minutes": retention.minutes_ms,
        "hours": retention.hours_ms,
        "alerts": ALERT_LOG_KEEP_MS,
    }
    return now_ms - keep.get(table, retention.days_ms)


# -- the alerts' outbox and silences -------------------------------------------

_ALERT = "key, channel, created_ms, state, attempts, next_ms, updated_ms, body, answer"
ADD_ALERT = (
    f"INSERT INTO alerts ({_ALERT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)
MARK_ALERT = (
    "UPDATE alerts SET state = ?, attempts = ?, next_ms = ?, updated_ms = ?, answer = ? "
    "WHERE key = ?"
)
OPEN_ALERTS = (
    f"SELECT {_ALERT} FROM alerts WHERE state IN ('pending', 'retrying') ORDER BY created_ms"
)
ALERT_LOG = (
    f"SELECT {_ALERT} FROM alerts WHERE state IN ('pending', 'retrying') OR updated_ms >= ? "
    "ORDER BY updated_ms DESC, key LIMIT ?"
)
# Finished alerts older than the bound go (with the hourly prune: ``prune``).
PRUNE_ALERTS = "DELETE FROM alerts WHERE state IN ('sent', 'failed', 'held') AND updated_ms < ?"
ADD_SILENCE = (
    "INSERT INTO silences (id, services, until_ms, comment, created_ms) VALUES (?, ?, ?, ?, ?)"
)
REMOVE_SILENCE = "DELETE FROM silences WHERE id = ?"
SILENCES = (
    "SELECT id, services, until_ms, comment, created_ms FROM silences "
    "WHERE until_ms > ? ORDER BY until_ms"
)


def alert_row(row: AlertRow) -> Row:
    return (
        row.key, row.channel, row.created_ms, row.state, row.attempts, row.next_ms,
        row.updated_ms, row.body, row.answer,
    )  # fmt: skip


def mark_row(row: AlertRow) -> Row:
    return (row.state, row.attempts, row.next_ms, row.updated_ms, row.answer, row.key)


def silence_row(silence: Silence) -> Row:
    return (
        silence.id, json.dumps(list(silence.services)), silence.until_ms, silence.comment,
        silence.created_ms,
    )  # fmt: skip


def read_alert(values: Sequence[object]) -> AlertRow:
    key, channel, created, state, attempts, next_ms, updated, body, answer = values
    return AlertRow(
        str(key), str(channel), int(created), str(state), int(attempts), int(next_ms),  # type: ignore[call-overload]
        int(updated), str(body), None if answer is None else str(answer),  # type: ignore[call-overload]
    )  # fmt: skip


def read_silence(values: Sequence[object]) -> Silence:
    id_, services, until, comment, created = values
    return Silence(
        str(id_), tuple(json.loads(str(services))), int(until),  # type: ignore[call-overload]
        None if comment is None else str(comment), int(created),  # type: ignore[call-overload]
    )  # fmt: skip
