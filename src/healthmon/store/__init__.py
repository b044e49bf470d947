"""Where history is kept: SQLite by default, PostgreSQL when processes share it.

The PostgreSQL store is imported only when configured, so its driver stays
an optional extra (``pip install 'healthmon[postgres]'``).
"""

from __future__ import annotations

from pathlib import Path

from healthmon.config import HistorySettings
from healthmon.store.base import (
    Batch,
    Bucket,
    HistoryStore,
    Period,
    Retention,
    StoreError,
    StoreUnusable,
    Totals,
)

__all__ = [
    "Batch",
    "Bucket",
    "HistoryStore",
    "Period",
    "Retention",
    "StoreError",
    "StoreUnusable",
    "Totals",
    "create_store",
    "retention",
    "sqlite_path",
]


def create_store(settings: HistorySettings, base: Path) -> HistoryStore:
    """The store ``settings`` name; a relative SQLite path is taken from ``base``."""
    if settings.url is not None:
        try:
            from healthmon.store.postgres import PostgresStore
        except ImportError:
            raise StoreUnusable(
                "[history] url needs the postgres extra: pip install 'healthmon[postgres]'"
            ) from None
        return PostgresStore(settings.url.get_secret_value())
    from healthmon.store.sqlite import MEMORY, SqliteStore

    path = sqlite_path(settings, base)
    return SqliteStore(MEMORY if path is None else path)


def sqlite_path(settings: HistorySettings, base: Path) -> Path | None:
    """The SQLite file ``settings`` name (None: PostgreSQL, or in memory)."""
    if settings.url is not None or settings.path == ":memory:":
        return None
    return base / Path(settings.path).expanduser()


def retention(settings: HistorySettings) -> Retention:
    return Retention(settings.keep_minutes, settings.keep_hours, settings.keep_days)
