"""Who delivers in the split topology: two monitors and two ws processes sharing a
SQLite store on RabbitMQ.

A ws process never delivers; only the monitor holding the store's writer lead
does, so one change is one webhook; when that monitor is killed (kill -9) mid-delivery, the other
takes the lead and sends the message again with the same key, and does not
announce the down a second time.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.alerts.sink import Sink
from tests.postgres.test_history_topology import found, writer_of
from tests.rabbitmq.server import RabbitMQServer
from tests.rabbitmq.test_topology import Topology
from tests.support import poll

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


@pytest.fixture
async def topology(
    rabbitmq: RabbitMQServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink: Sink
) -> AsyncIterator[Topology]:
    monkeypatch.setenv("HEALTHMON_HISTORY__PATH", str(tmp_path / "history.sqlite3"))
    monkeypatch.setenv("HEALTHMON_HISTORY__FLUSH_MS", "300")
    async with aiohttp.ClientSession() as session:
        running = Topology(rabbitmq, tmp_path, session)
        with running.config.open("a") as config:
            config.write(
                '\n[[channels]]\nname = "hook"\nkind = "webhook"\n'
                f'url = "{sink.url("hangfirst")}"\ntimeout = "60s"\n\n'
                '[alerts]\nchannels = ["hook"]\n'
            )
        try:
            yield running
        finally:
            await running.close()


async def alert_log(topology: Topology, base: str) -> Any:
    async with topology.session.get(f"{base}/api/alerts") as response:
        return await response.json()


@pytest.mark.timeout(120)
async def test_one_change_one_delivery_and_a_killed_deliverer_is_replaced(
    topology: Topology, sink: Sink
) -> None:
    """Two monitors and two ws processes, one change: one message; kill -9 the sender
    mid-send, the other sends it again with the same key; the recovery is then told once,
    and both ws processes show the same alert log."""
    await topology.mocks()
    monitors = [await topology.monitor(0).start(), await topology.monitor(1).start()]
    ws, ws2 = await asyncio.gather(topology.ws().start(), topology.ws().start())
    writer = await poll(lambda: found(writer_of(monitors)), lambda w: w is not None)
    await topology.set_mode("billing", "down")
    first = await sink.next(within=20)
    assert [(a["service"], a["kind"]) for a in first.json["alerts"]] == [("billing", "down")]
    # The leader's post hangs at the receiver: kill it mid-delivery.
    await writer.stop(signal.SIGKILL)
    other = monitors[1 - monitors.index(writer)]
    again = await sink.next(within=30)
    assert again.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]
    assert again.body == first.body
    log = await poll(
        lambda: alert_log(topology, ws.base),
        lambda b: [a["state"] for a in b["alerts"]] == ["sent"],
    )
    assert log["alerts"][0]["key"] == first.headers["Idempotency-Key"]
    assert '"alert.leading"' in other.log.read_text()

    await topology.set_mode("billing", "up")
    recovered = await sink.next(within=20)
    assert [(a["service"], a["kind"]) for a in recovered.json["alerts"]] == [
        ("billing", "recovered")
    ]
    await poll(
        lambda: alert_log(topology, ws.base),
        lambda b: [a["state"] for a in b["alerts"]] == ["sent", "sent"],
    )
    both = await poll(
        lambda: alert_log(topology, ws2.base),
        lambda b: [a["state"] for a in b["alerts"]] == ["sent", "sent"],
    )
    assert [a["key"] for a in both["alerts"]] == [
        a["key"] for a in (await alert_log(topology, ws.base))["alerts"]
    ]
    kinds = [a["kind"] for r in sink.received for a in r.json["alerts"]]
    assert kinds.count("down") == 2  # one message, sent twice with one key
    assert len({r.headers["Idempotency-Key"] for r in sink.received}) == 2
