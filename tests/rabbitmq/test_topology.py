"""The split topology on a real RabbitMQ: mocks, monitors and ws servers as real processes.

Every test starts real ``python -m healthmon --role ...`` processes, stops
them with real signals, and watches what browsers would see through real
WebSocket clients.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from healthmon.broker import STATUS_TOPIC
from tests.processes import HealthmonProcess, split_env
from tests.rabbitmq.server import RabbitMQServer
from tests.support import NAMES, Messages

WAIT_S = 10.0
ALL_UP = dict.fromkeys(NAMES, True)


class Topology:
    """Processes sharing one config file and one RabbitMQ; clients to the ws ones."""

    def __init__(self, rabbitmq: RabbitMQServer, tmp: Path, session: aiohttp.ClientSession):
        self.rabbitmq = rabbitmq
        self.tmp = tmp
        self.session = session
        self.mock_control = unused_port()
        self.monitor_ports: list[int] = [unused_port(), unused_port()]
        self.processes: list[HealthmonProcess] = []
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.config = tmp / "config.toml"
        services = "\n".join(
            f'[[services]]\nname = "{name}"\nurl = "http://127.0.0.1:{unused_port()}"\n'
            'data_endpoint = "/data"\nmock = true\n'
            for name in NAMES
        )
        self.config.write_text(
            "[monitor]\ninterval_ms = 200\ntimeout_ms = 1000\nheartbeat_ms = 300\n\n" + services
        )

    def _spawn(self, role: str, port: int, **env: str) -> HealthmonProcess:
        name = f"{role}-{port}"
        process = HealthmonProcess(
            self.config,
            role,
            port,
            {**split_env(self.rabbitmq.url, self.monitor_ports), **env},
            self.tmp / f"{name}.log",
        )
        self.processes.append(process)
        return process

    async def mocks(self) -> HealthmonProcess:
        process = self._spawn(
            "mocks", self.mock_control, HEALTHMON_WEB__PORT=str(self.mock_control)
        )
        return await process.start()

    def monitor(self, index: int = 0) -> HealthmonProcess:
        port = self.monitor_ports[index]
        return self._spawn("monitor", port, HEALTHMON_MONITOR__PORT=str(port))

    def ws(self) -> HealthmonProcess:
        port = unused_port()
        return self._spawn("ws", port, HEALTHMON_WEB__PORT=str(port))

    async def client(self, ws: HealthmonProcess) -> tuple[Messages, dict[str, Any]]:
        """A client that has read its welcome; returns it and its snapshot."""
        socket = await self.session.ws_connect(f"{ws.base}/ws")
        self.sockets.append(socket)
        messages = Messages(socket)
        assert (await messages.next(WAIT_S))["type"] == "welcome"
        snapshot = await messages.next(WAIT_S)
        assert snapshot["type"] == "initialSnapshot"
        return messages, snapshot

    async def set_mode(self, name: str, mode: str) -> None:
        url = f"http://127.0.0.1:{self.mock_control}/api/mocks/{name}"
        async with self.session.post(url, json={"mode": mode}) as response:
            assert response.status == 200, await response.text()

    async def close(self) -> None:
        for socket in self.sockets:
            await socket.close()
        await asyncio.gather(*(p.stop() for p in self.processes))


@pytest.fixture
async def topology(rabbitmq: RabbitMQServer, tmp_path: Path) -> AsyncIterator[Topology]:
    async with aiohttp.ClientSession() as session:
        running = Topology(rabbitmq, tmp_path, session)
        try:
            yield running
        finally:
            await running.close()


async def until_status(messages: Messages, service: str, up: bool) -> dict[str, Any]:
    """The data of the next statusUpdate saying ``service`` is (not) up."""
    message = await messages.until(
        lambda m: (
            m["type"] == "statusUpdate"
            and m["data"]["service"] == service
            and m["data"]["up"] is up
        ),
        WAIT_S,
    )
    data: dict[str, Any] = message["data"]
    return data


async def test_two_ws_servers_each_deliver_every_change(topology: Topology) -> None:
    """Mocks, a monitor and two ws processes: a change reaches the clients of both."""
    await topology.mocks()
    await topology.monitor().start()
    first, second = await asyncio.gather(topology.ws().start(), topology.ws().start())
    (a, snap_a), (b, snap_b) = await topology.client(first), await topology.client(second)
    assert snap_a["data"] == ALL_UP
    assert snap_b["data"] == ALL_UP
    await topology.set_mode("billing", "down")
    assert (await until_status(a, "billing", False))["status"] == "down"
    assert (await until_status(b, "billing", False))["status"] == "down"


async def test_monitor_restarted_while_a_service_changed(topology: Topology) -> None:
    """A service that went down while the monitor was away is shown down once it is back."""
    await topology.mocks()
    monitor = await topology.monitor().start()
    ws = await topology.ws().start()
    client, _ = await topology.client(ws)
    await client.until(lambda m: m["type"] == "heartbeat" and m["monitor"]["alive"], WAIT_S)
    await monitor.stop(signal.SIGKILL)
    silent = await client.until(
        lambda m: m["type"] == "heartbeat" and not m["monitor"]["alive"], WAIT_S
    )
    assert silent["monitor"]["last_seen"] is not None
    await topology.set_mode("analytics", "down")
    await topology.monitor().start()
    await until_status(client, "analytics", False)
    await client.until(lambda m: m["type"] == "heartbeat" and m["monitor"]["alive"], WAIT_S)


@pytest.mark.parametrize("order", ["ws-first", "together", "ws-after"])
async def test_ws_started_before_during_or_after_the_monitor(
    topology: Topology, order: str
) -> None:
    """Whenever a ws process starts, new clients get a complete and correct snapshot."""
    await topology.mocks()
    await topology.set_mode("notifications", "down")
    expected = {**ALL_UP, "notifications": False}
    if order == "ws-first":
        ws = await topology.ws().start()
        await topology.monitor().start()
    elif order == "together":
        ws, _ = await asyncio.gather(topology.ws().start(), topology.monitor().start())
    else:
        monitor = await topology.monitor().start()
        # Let the monitor publish its first results before the ws process exists.
        async with topology.session.get(f"{monitor.base}/statuses") as response:
            assert response.status == 200
        ws = await topology.ws().start()
    client, snapshot = await topology.client(ws)
    if snapshot["data"] != expected:
        # Connected before the first results arrived: they follow at once.
        for name, up in expected.items():
            if snapshot["data"].get(name) is not up:
                await until_status(client, name, up)
    _, late = await topology.client(ws)
    assert late["data"] == expected
    assert late["services"]["notifications"]["reason"] == "connection refused"


async def test_rabbitmq_restart_converges(topology: Topology) -> None:
    """While RabbitMQ is down clients are told the monitor is unreachable; after, the truth."""
    await topology.mocks()
    await topology.monitor().start()
    ws = await topology.ws().start()
    client, snapshot = await topology.client(ws)
    assert snapshot["data"] == ALL_UP
    await client.until(lambda m: m["type"] == "heartbeat" and m["monitor"]["alive"], WAIT_S)
    await asyncio.to_thread(topology.rabbitmq.stop_app)
    try:
        await client.until(lambda m: m["type"] == "heartbeat" and not m["monitor"]["alive"], WAIT_S)
        await topology.set_mode("auth", "down")
    finally:
        await asyncio.to_thread(topology.rabbitmq.start_app)
    await until_status(client, "auth", False)
    await client.until(lambda m: m["type"] == "heartbeat" and m["monitor"]["alive"], 30)
    _, late = await topology.client(ws)
    assert late["data"] == {**ALL_UP, "auth": False}


async def _publish_raw(url: str, *bodies: bytes) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(STATUS_TOPIC)
        for body in bodies:
            await exchange.publish(aio_pika.Message(body), routing_key="")


async def test_garbage_on_the_exchange_is_dropped(topology: Topology) -> None:
    """Non-JSON and wrongly shaped messages are logged and dropped; clients stay and still hear."""
    await topology.mocks()
    await topology.monitor().start()
    ws = await topology.ws().start()
    client, _ = await topology.client(ws)
    await _publish_raw(
        topology.rabbitmq.url,
        b"\x00\xffnot json",
        b'{"service": 42}',
        b"[1, 2, 3]",
        b'{"service": "billing", "up": "maybe", "ts": "x"}',
    )
    await topology.set_mode("billing", "down")
    await until_status(client, "billing", False)
    assert not client.ws.closed
    assert "broker.bad_message" in ws.output()


async def test_original_monitor_message_is_understood(topology: Topology) -> None:
    """The original system's exact body on the exchange reaches our clients as a change."""
    await topology.mocks()
    await topology.monitor().start()
    ws = await topology.ws().start()
    client, _ = await topology.client(ws)
    # Newer than anything our monitor observed, as a live original monitor's would be.
    ts = 4_000_000_000_000
    await _publish_raw(
        topology.rabbitmq.url, json.dumps({"service": "billing", "up": False, "ts": ts}).encode()
    )
    update = await until_status(client, "billing", False)
    original = {"service": "billing", "up": False, "ts": ts}
    assert {k: update[k] for k in original} == original
    assert update["status"] == "down"
    assert update["reason"] is None
    assert update["checks"] == []
    assert update["stale"] is False


async def test_our_messages_suit_the_original_ws_server(topology: Topology) -> None:
    """What our monitor publishes carries the original's service, up and ts fields."""
    connection = await aio_pika.connect(topology.rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            STATUS_TOPIC, aio_pika.ExchangeType.FANOUT, durable=False
        )
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(exchange, routing_key="")
        await topology.mocks()
        await topology.monitor().start()
        async with queue.iterator() as messages:
            async with asyncio.timeout(WAIT_S):
                message = await anext(messages)
            await message.ack()
    body = json.loads(message.body)
    assert isinstance(body["service"], str)
    assert body["service"] in NAMES
    assert body["up"] is True
    assert isinstance(body["ts"], int)


async def test_two_monitors_do_not_flicker(topology: Topology) -> None:
    """With two monitors running, each change reaches clients once, and no stale one follows."""
    await topology.mocks()
    await asyncio.gather(topology.monitor(0).start(), topology.monitor(1).start())
    ws = await topology.ws().start()
    client, snapshot = await topology.client(ws)
    assert snapshot["data"] == ALL_UP
    for mode, up in (("down", False), ("up", True), ("down", False)):
        await topology.set_mode("billing", mode)
        shown = await until_status(client, "billing", up)
    # Both monitors' later observations arrive over the next rounds: none may flip it, nor
    # repeat it. Only news of the same state may follow: a mock going down resets a connect
    # still in its queue ("network error: ..."), and the next check says "connection refused".
    beats = 0
    while beats < 6:
        message = await client.next(WAIT_S)
        if message["type"] == "statusUpdate" and message["data"]["service"] == "billing":
            data = message["data"]
            assert (data["status"], data["up"]) == ("down", False), message
            assert (data["reason"], data["checks"]) != (shown["reason"], shown["checks"]), message
            shown = data
        beats += message["type"] == "heartbeat"


async def test_a_stuck_monitor_turns_every_card_stale_then_fresh(topology: Topology) -> None:
    """A monitor stopped with SIGSTOP: each service turns stale within the bound, fresh after."""
    await topology.mocks()
    monitor = await topology.monitor().start()
    ws = await topology.ws().start()
    client, snapshot = await topology.client(ws)
    assert not any(s["stale"] for s in snapshot["services"].values())
    monitor.send(signal.SIGSTOP)
    try:
        stale: set[str] = set()
        # Stale after 2 * (200 + 1000) ms; the sweep and a heartbeat more at most.
        async with asyncio.timeout(2.4 + 0.3 + 1.0):
            while stale != set(NAMES):
                message = await client.next(WAIT_S)
                if message["type"] == "statusUpdate" and message["data"]["stale"]:
                    stale.add(message["data"]["service"])
                    assert message["data"]["up"] is True  # the last known state stays
    finally:
        monitor.send(signal.SIGCONT)
    fresh: set[str] = set()
    async with asyncio.timeout(WAIT_S):
        while fresh != set(NAMES):
            message = await client.next(WAIT_S)
            if message["type"] == "statusUpdate" and message["data"]["stale"] is False:
                fresh.add(message["data"]["service"])
