"""The outbox in the history store: messages kept while the store was opening are never
missing from the log, and reach the store once it opens."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from healthmon.alerts.outbox import StoreOutbox
from healthmon.archive import Archive
from healthmon.config import HistorySettings
from healthmon.store.base import AlertRow


def row(key: str, at: int, state: str = "pending") -> AlertRow:
    return AlertRow(key, "hook", at, state, 0, at, at, f'{{"key":"{key}"}}')


async def test_messages_kept_while_the_store_opens_are_logged_and_then_stored(
    tmp_path: Path,
) -> None:
    """A message sent before history opened is in the log at once when it opens, as it stands
    (sent), and is written to the store without waiting for another message."""
    archive = Archive(HistorySettings(path=str(tmp_path / "history.sqlite3")), tmp_path)
    outbox = StoreOutbox(archive)
    early = row("early", 1_000)
    await outbox.add([early])
    await outbox.mark(dataclasses.replace(early, state="sent", attempts=1, updated_ms=2_000))
    writing = asyncio.create_task(outbox.store_unstored())
    opening = asyncio.create_task(archive.run())
    try:
        await asyncio.wait_for(archive.opened.wait(), 30)
        logged = await outbox.log(10, 0)
        assert [(r.key, r.state) for r in logged] == [("early", "sent")]
        await asyncio.wait_for(writing, 30)
        assert archive.store is not None
        stored = await archive.store.alert_log(10, 0)
        assert [(r.key, r.state) for r in stored] == [("early", "sent")]
    finally:
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        if archive.store is not None:
            await archive.store.close()
