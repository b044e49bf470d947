"""The RabbitMQ broker against a real RabbitMQ node on loopback."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from structlog.testing import capture_logs
from structlog.typing import EventDict

from healthmon.broker import STATUS_TOPIC, BrokerUnavailable
from healthmon.broker.rabbitmq import RabbitMQBroker
from healthmon.errors import StartupError
from tests.rabbitmq.server import RabbitMQServer, free_port

WAIT_S = 5.0
# The original system's exact message.
ORIGINAL_BODY = b'{"service":"billing","up":false,"ts":1764222000123}'


def topic() -> str:
    """A topic of its own for each test, so tests never see each other's messages."""
    return f"test.{uuid.uuid4().hex[:12]}"


async def receive(messages: AsyncIterator[bytes]) -> bytes:
    return await asyncio.wait_for(anext(messages), WAIT_S)


async def test_publish_reaches_subscriber(broker: RabbitMQBroker) -> None:
    """A message published on a topic reaches a subscriber of that topic unchanged."""
    name = topic()
    async with broker.subscribe(name) as messages:
        await broker.publish(name, b'{"n":1}')
        await broker.publish(name, b'{"n":2}')
        assert await receive(messages) == b'{"n":1}'
        assert await receive(messages) == b'{"n":2}'


async def test_every_subscriber_gets_every_message(rabbitmq: RabbitMQServer) -> None:
    """Two processes' subscriptions (two brokers) each receive every message."""
    name = topic()
    first = await RabbitMQBroker.connect(rabbitmq.url)
    second = await RabbitMQBroker.connect(rabbitmq.url)
    try:
        async with first.subscribe(name) as one, second.subscribe(name) as two:
            for n in range(3):
                await first.publish(name, f'{{"n":{n}}}'.encode())
            expected = [f'{{"n":{n}}}'.encode() for n in range(3)]
            assert [await receive(one) for _ in range(3)] == expected
            assert [await receive(two) for _ in range(3)] == expected
    finally:
        await first.close()
        await second.close()


async def test_topics_are_separate(broker: RabbitMQBroker) -> None:
    """A subscriber of one topic never receives another topic's messages."""
    status, heartbeat = topic(), topic()
    async with broker.subscribe(status) as statuses, broker.subscribe(heartbeat) as beats:
        await broker.publish(status, b"s1")
        await broker.publish(heartbeat, b"h1")
        await broker.publish(status, b"s2")
        assert [await receive(statuses), await receive(statuses)] == [b"s1", b"s2"]
        assert await receive(beats) == b"h1"


async def test_original_publisher_reaches_subscriber(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """The original system's message on services.status, routing key "", reaches a subscriber."""
    async with broker.subscribe(STATUS_TOPIC) as messages:
        connection = await aio_pika.connect(rabbitmq.url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(STATUS_TOPIC)
            await exchange.publish(aio_pika.Message(ORIGINAL_BODY), routing_key="")
        body = await receive(messages)
    assert body == ORIGINAL_BODY
    assert json.loads(body) == {"service": "billing", "up": False, "ts": 1764222000123}


async def test_durable_exchange_declared_by_others_is_used(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """An exchange declared first with other flags (durable) is used as it is, not a crash."""
    name = topic()
    connection = await aio_pika.connect(rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)
        try:
            with capture_logs() as logs:
                async with broker.subscribe(name) as messages:
                    await broker.publish(name, b"through the durable exchange")
                    assert await receive(messages) == b"through the durable exchange"
        finally:
            await exchange.delete()
    assert any(entry["event"] == "rabbitmq.exchange_passive" for entry in logs)


async def test_garbage_is_delivered_and_subscription_goes_on(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """Bodies that are not JSON arrive as bytes and the messages after them still arrive."""
    name = topic()
    garbage = [b"\xff\xfe\x00not json", b"", b"{", b"null"]
    async with broker.subscribe(name) as messages:
        connection = await aio_pika.connect(rabbitmq.url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(name)
            for body in garbage:
                await exchange.publish(aio_pika.Message(body), routing_key="")
        await broker.publish(name, ORIGINAL_BODY)
        assert [await receive(messages) for _ in garbage] == garbage
        assert await receive(messages) == ORIGINAL_BODY


async def test_full_buffer_drops_oldest(rabbitmq: RabbitMQServer) -> None:
    """A subscriber that does not read keeps the newest messages; the oldest are dropped."""
    name = topic()
    dropped_three = asyncio.Event()

    def watch(_logger: object, _method: str, event: EventDict) -> EventDict:
        if event["event"] == "rabbitmq.overflow" and event["dropped"] >= 3:
            dropped_three.set()
        return event

    broker = await RabbitMQBroker.connect(rabbitmq.url, buffer_size=2)
    try:
        with capture_logs(processors=[watch]):
            async with broker.subscribe(name) as messages:
                for n in range(5):
                    await broker.publish(name, f"m{n}".encode())
                await asyncio.wait_for(dropped_three.wait(), WAIT_S)
                assert [await receive(messages), await receive(messages)] == [b"m3", b"m4"]
    finally:
        await broker.close()


async def test_queue_is_server_named_and_deleted_on_leave(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """A subscription has its own exclusive, auto-delete, server-named queue, gone when it ends."""
    before = {row[0] for row in await asyncio.to_thread(rabbitmq.queues)}
    async with broker.subscribe(topic()):
        during = await asyncio.to_thread(rabbitmq.queues)
    after = {row[0] for row in await asyncio.to_thread(rabbitmq.queues)}
    mine = [row for row in during if row[0] not in before]
    assert len(mine) == 1
    name, exclusive, auto_delete = mine[0]
    assert name.startswith("amq.gen-")
    assert exclusive
    assert auto_delete
    assert name not in after


async def test_publish_while_broker_down_fails_fast(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """With RabbitMQ stopped, publish raises BrokerUnavailable within 2 s instead of hanging."""
    name = topic()
    await broker.publish(name, b"before")
    lost = asyncio.Event()
    broker.on_disconnect.append(lost.set)
    await asyncio.to_thread(rabbitmq.stop_app)
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await broker.publish(name, b"during")
        assert time.monotonic() - started < 2.0
        await asyncio.wait_for(lost.wait(), WAIT_S)
        assert not broker.connected
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await broker.publish(name, b"during, known down")
        assert time.monotonic() - started < 0.5
    finally:
        await asyncio.to_thread(rabbitmq.start_app)


async def test_publish_to_hung_broker_times_out(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """With RabbitMQ frozen, publish gives up with BrokerUnavailable after its ~1 s bound."""
    name = topic()
    async with broker.subscribe(name) as messages:
        rabbitmq.pause()
        try:
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable, match="did not take the message"):
                await broker.publish(name, b"into the void")
            assert time.monotonic() - started < 2.0
        finally:
            rabbitmq.resume()
        await broker.publish(name, b"after")
        # The frozen node may still route the first one once it runs again.
        first = await receive(messages)
        assert first == b"after" or await receive(messages) == b"after"


async def test_subscription_survives_broker_restart(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """After a RabbitMQ outage the same subscription receives what is published after recovery."""
    name = topic()
    events: list[str] = []
    lost, back = asyncio.Event(), asyncio.Event()

    def on_disconnect() -> None:
        events.append("lost")
        lost.set()

    def on_reconnect() -> None:
        events.append("back")
        back.set()

    broker.on_disconnect.append(on_disconnect)
    broker.on_reconnect.append(on_reconnect)
    async with broker.subscribe(name) as messages:
        await broker.publish(name, b"before")
        assert await receive(messages) == b"before"

        await asyncio.to_thread(rabbitmq.stop_app)
        try:
            await asyncio.wait_for(lost.wait(), WAIT_S)
            assert not broker.connected
        finally:
            starting = time.monotonic()
            await asyncio.to_thread(rabbitmq.start_app)
            started = time.monotonic()
        await asyncio.wait_for(back.wait(), 30)
        print(
            f"\nstart_app took {started - starting:.2f} s; subscription restored "
            f"{time.monotonic() - starting:.2f} s after start_app began"
        )
        assert broker.connected

        await broker.publish(name, b"after")
        assert await receive(messages) == b"after"
    assert events == ["lost", "back"]


async def test_subscription_opened_during_outage_starts_when_broker_is_back(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """A subscription opened while RabbitMQ is down consumes once the connection is back."""
    name = topic()
    back = asyncio.Event()
    broker.on_reconnect.append(back.set)
    await asyncio.to_thread(rabbitmq.stop_app)
    stopped = True
    try:
        async with broker.subscribe(name) as messages:
            await asyncio.to_thread(rabbitmq.start_app)
            stopped = False
            await asyncio.wait_for(back.wait(), 30)
            await broker.publish(name, b"after")
            assert await receive(messages) == b"after"
    finally:
        if stopped:
            await asyncio.to_thread(rabbitmq.start_app)


async def test_subscription_survives_its_queue_being_deleted(
    broker: RabbitMQBroker, rabbitmq: RabbitMQServer
) -> None:
    """When an operator deletes a subscription's queue, it gets a new one and keeps receiving."""
    name = topic()
    before = {row[0] for row in await asyncio.to_thread(rabbitmq.queues)}
    with capture_logs() as logs:
        async with broker.subscribe(name) as messages:
            queues = await asyncio.to_thread(rabbitmq.queues)
            (queue,) = [row[0] for row in queues if row[0] not in before]
            await asyncio.to_thread(rabbitmq.delete_queue, queue)
            # Published until one arrives: the new queue only gets what follows its binding.
            body = b""
            for attempt in range(50):
                await broker.publish(name, f"after {attempt}".encode())
                try:
                    body = await asyncio.wait_for(anext(messages), 0.1)
                    break
                except TimeoutError:
                    continue
            assert body.startswith(b"after")
    assert any(entry["event"] == "rabbitmq.consumer_cancelled" for entry in logs)


async def test_connect_with_wrong_password_fails_fast(rabbitmq: RabbitMQServer) -> None:
    """Refused credentials fail connect() quickly with BrokerUnavailable, password not shown."""
    url = rabbitmq.url.replace("guest:guest", "guest:wrong-s3cret")
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught:
        await RabbitMQBroker.connect(url)
    assert time.monotonic() - started < 6.0
    assert "wrong-s3cret" not in str(caught.value)


async def test_connect_to_nothing_fails_fast() -> None:
    """connect() to a port where nothing listens fails quickly with BrokerUnavailable."""
    url = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught:
        await RabbitMQBroker.connect(url)
    assert time.monotonic() - started < 3.0
    # The CLI turns a StartupError into a clean exit with this message.
    assert isinstance(caught.value, StartupError)
    message = str(caught.value)
    assert "127.0.0.1" in message
    assert "s3cret" not in message


async def test_connect_to_silent_server_gives_up_in_time() -> None:
    """connect() to a server that accepts but never speaks AMQP fails within its timeout."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="no answer within 1 s"):
            await RabbitMQBroker.connect(f"amqp://guest:guest@127.0.0.1:{port}/", connect_timeout=1)
        assert time.monotonic() - started < 2.0
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_close_is_idempotent_and_ends_subscriptions(rabbitmq: RabbitMQServer) -> None:
    """close() twice is fine, ends open subscriptions, and refuses later publishes."""
    broker = await RabbitMQBroker.connect(rabbitmq.url)
    name = topic()
    async with broker.subscribe(name) as messages:
        await broker.close()
        await broker.close()
        with pytest.raises(StopAsyncIteration):
            await receive(messages)
    assert not broker.connected
    with pytest.raises(BrokerUnavailable):
        await broker.publish(name, b"after close")
