"""The split topology on PostgreSQL: two monitors and two ws processes share one history.

Real processes (mocks, two monitors, two ws) on a real RabbitMQ and a real
PostgreSQL: every change is stored once, time is never counted twice, and
when the writing monitor is killed the other takes over.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.processes import HealthmonProcess
from tests.rabbitmq.server import RabbitMQServer
from tests.rabbitmq.test_topology import Topology, until_status
from tests.support import poll

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def topology(
    rabbitmq: RabbitMQServer,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Topology]:
    # Every process of the topology writes to and reads from the one database.
    monkeypatch.setenv("HEALTHMON_HISTORY__URL", database_url)
    monkeypatch.setenv("HEALTHMON_HISTORY__FLUSH_MS", "300")
    async with aiohttp.ClientSession() as session:
        running = Topology(rabbitmq, tmp_path, session)
        try:
            yield running
        finally:
            await running.close()


async def found(value: Any) -> Any:
    return value


async def history(topology: Topology, ws: HealthmonProcess, name: str) -> Any:
    url = f"{ws.base}/api/services/{name}/history?window=1h"
    async with topology.session.get(url) as response:
        return await response.json()


def writer_of(monitors: list[HealthmonProcess]) -> HealthmonProcess | None:
    writing = [m for m in monitors if '"history.writing"' in m.log.read_text()]
    assert len(writing) <= 1, "two monitors wrote at once"
    return writing[0] if writing else None


@pytest.mark.timeout(120)
async def test_two_monitors_store_each_change_once_and_count_time_once(
    topology: Topology, database_url: str
) -> None:
    """With two monitors and two ws processes on one PostgreSQL, a down-and-up of one
    service is one incident, its time adds up once, and a killed writer is replaced."""
    await topology.mocks()
    monitors = [await topology.monitor(0).start(), await topology.monitor(1).start()]
    first_ws, second_ws = await topology.ws().start(), await topology.ws().start()
    messages, _ = await topology.client(first_ws)
    await poll(lambda: found(writer_of(monitors)), lambda w: w is not None)

    await topology.set_mode("billing", "down")
    await until_status(messages, "billing", up=False)
    await topology.set_mode("billing", "up")
    await until_status(messages, "billing", up=True)
    # Read through the other ws process: the store is shared.
    document = await poll(
        lambda: history(topology, second_ws, "billing"),
        lambda d: bool(d.get("incidents")) and not d["incidents"][0]["ongoing"],
    )
    assert len(document["incidents"]) == 1
    assert document["incidents"][0]["reason"] == "connection refused"

    db = await asyncpg.connect(database_url)
    try:
        rows = await db.fetch(
            "SELECT p.status FROM periods p JOIN services s ON s.id = p.service_id "
            "WHERE s.name = 'billing' ORDER BY p.start_ms"
        )
        assert [r["status"] for r in rows] == ["up", "down", "up"]
    finally:
        await db.close()
    # One monitor's checks at 200 ms, not two monitors' worth; known time within what elapsed.
    auth = await history(topology, second_ws, "auth")
    assert 0 < auth["known_ms"] <= auth["covered_ms"] + 500
    assert auth["checks"] <= auth["known_ms"] / 200 * 1.3 + 5

    writer = writer_of(monitors)
    assert writer is not None
    other = monitors[1 - monitors.index(writer)]
    await writer.stop(signal.SIGKILL)
    await poll(lambda: found(writer_of([other])), lambda w: w is other)
    before = auth["known_ms"]
    after = await poll(
        lambda: history(topology, first_ws, "auth"),
        lambda d: d.get("writing") and d["known_ms"] > before + 1_000,
    )
    assert after["covered_ms"] >= after["known_ms"]
