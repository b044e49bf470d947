"""RabbitMQ broker: a topic is a fanout exchange, a subscription a server-named queue.

Wire-compatible with the original system: exchange ``services.status`` (and
``services.heartbeat``), fanout, routing key ``""``, JSON bodies, one
exclusive, auto-delete, server-named queue per consumer.

aio-pika's ``RobustConnection`` keeps the connection up; the topology on it
(exchanges, queues, bindings, consumers) is declared here on plain aiormq
channels, and declared again after every reconnection. aio-pika's robust
queues are never server-named: a robust channel names an unnamed queue
``amq_<uuid>`` itself so it can re-declare that name later, and that
re-declaration fails with RESOURCE_LOCKED for as long as the broker still
holds the lost connection's exclusive queue. A fresh server-named queue per
connection has no such wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiormq
import aiormq.abc
import structlog
from aio_pika import RobustConnection
from aio_pika.connection import make_url
from aiormq import spec
from yarl import URL

from healthmon.broker.base import BrokerUnavailable
from healthmon.errors import StartupError

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 5.0
RECONNECT_INTERVAL_S = 1.0
PUBLISH_TIMEOUT_S = 1.0
# AMQP heartbeat unless the URL sets one: a silently dead broker (host gone,
# network cut) is noticed within a few of these instead of RabbitMQ's 60 s.
HEARTBEAT_S = 10
SUBSCRIBE_TIMEOUT_S = 5.0
UNSUBSCRIBE_TIMEOUT_S = 1.0
BUFFER_SIZE = 4096

# What a lost or refusing broker raises through aiormq and aio-pika; aiormq
# raises RuntimeError for a channel opened on a closed connection.
_AMQP_ERRORS = (aiormq.exceptions.AMQPError, ConnectionError, OSError, RuntimeError)

# Transient messages: a status superseded by the next one is not worth a disk write.
_PROPERTIES = spec.Basic.Properties(content_type="application/json", delivery_mode=1)

_END = object()


class BrokerUnreachable(BrokerUnavailable, StartupError):
    """The first connection to RabbitMQ could not be made: healthmon cannot start."""


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "<invalid URL>"
    return str(parsed.with_password("***")) if parsed.password else str(parsed)


def _describe(exc: BaseException, secret: str | None) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.replace(secret, "***") if secret else text


class _Subscription:
    """One subscriber's queue on the broker and its bounded buffer here."""

    def __init__(self, topic: str, buffer_size: int) -> None:
        self.topic = topic
        self.buffer: asyncio.Queue[object] = asyncio.Queue(buffer_size)
        self.lock = asyncio.Lock()
        self.channel: aiormq.abc.AbstractChannel | None = None
        self.queue_name: str | None = None
        self.consumer_tag: str | None = None
        self.dropped = 0
        self.ended = False

    @property
    def attached(self) -> bool:
        return self.channel is not None and not self.channel.is_closed

    async def on_message(self, message: aiormq.abc.DeliveredMessage) -> None:
        if self.buffer.full():
            # A stuck reader must not stall the connection's reader; it loses
            # its oldest message, which a newer one for the topic supersedes.
            self.buffer.get_nowait()
            self.dropped += 1
            log.warning("rabbitmq.overflow", topic=self.topic, dropped=self.dropped)
        self.buffer.put_nowait(message.body)

    def end(self) -> None:
        if self.buffer.full():
            self.buffer.get_nowait()
        self.buffer.put_nowait(_END)

    # An iterator object rather than an async generator: a reader that gives
    # up waiting (``wait_for(anext(...))``) cancels one wait, not the subscription.
    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> bytes:
        if self.ended:
            raise StopAsyncIteration
        item = await self.buffer.get()
        if item is _END:
            self.ended = True
            raise StopAsyncIteration
        assert isinstance(item, bytes)
        return item


class RabbitMQBroker:
    """The ``Broker`` protocol over RabbitMQ; build it with ``await connect(url)``."""

    def __init__(
        self,
        connection: RobustConnection,
        url: str,
        *,
        publish_timeout: float = PUBLISH_TIMEOUT_S,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        self._connection = connection
        self._url = redact(url)
        self._secret = URL(url).password or None
        self._publish_timeout = publish_timeout
        self._buffer_size = buffer_size
        self._subscriptions: set[_Subscription] = set()
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._channel_lock = asyncio.Lock()
        # Exchanges declared on the current connection; cleared when it is lost.
        self._exchanges: set[str] = set()
        self._restoring: asyncio.Task[None] | None = None
        self._closing_channels: set[asyncio.Task[None]] = set()
        self._connected = True
        self._closed = False
        self.on_reconnect: list[Callable[[], None]] = []
        self.on_disconnect: list[Callable[[], None]] = []
        connection.close_callbacks.add(self._on_connection_lost)
        connection.reconnect_callbacks.add(self._on_connection_back)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        reconnect_interval: float = RECONNECT_INTERVAL_S,
        publish_timeout: float = PUBLISH_TIMEOUT_S,
        buffer_size: int = BUFFER_SIZE,
    ) -> RabbitMQBroker:
        """Connect, or raise ``BrokerUnreachable`` within ``connect_timeout``.

        Only the first connection must succeed; after that, a lost connection
        is retried every ``reconnect_interval`` seconds for as long as it takes.
        """
        safe = redact(url)
        secret = URL(url).password or None
        try:
            # What connect_robust does, split so that a connection whose first
            # attempt failed or timed out can be closed: its reconnect task
            # must not outlive the failure.
            target = make_url(url)
            if target.scheme not in ("amqp", "amqps") or not target.host:
                raise ValueError("expected amqp://user:password@host:port/vhost")
            if "heartbeat" not in target.query:
                target = target.update_query(heartbeat=HEARTBEAT_S)
            connection = RobustConnection(target, reconnect_interval=reconnect_interval)
        except (TypeError, ValueError) as exc:
            raise BrokerUnreachable(
                f"invalid RabbitMQ URL {safe}: {_describe(exc, secret)}"
            ) from None
        try:
            async with asyncio.timeout(connect_timeout):
                await connection.connect(timeout=connect_timeout)
        except (TimeoutError, *_AMQP_ERRORS) as exc:
            await connection.close()
            reason = (
                f"no answer within {connect_timeout:g} s"
                if isinstance(exc, TimeoutError)
                else _describe(exc, secret)
            )
            raise BrokerUnreachable(f"cannot connect to RabbitMQ at {safe}: {reason}") from None
        broker = cls(connection, url, publish_timeout=publish_timeout, buffer_size=buffer_size)
        log.info("rabbitmq.connected", url=safe)
        return broker

    @property
    def connected(self) -> bool:
        """False from the loss of the connection until it is back and subscriptions consume."""
        return self._connected

    async def publish(self, topic: str, body: bytes) -> None:
        if self._closed:
            raise BrokerUnavailable("the RabbitMQ broker is closed")
        try:
            async with asyncio.timeout(self._publish_timeout):
                channel = await self._publish_channel()
                await self._declare_exchange(channel.connection, topic)
                confirmation = await channel.basic_publish(
                    body, exchange=topic, routing_key="", properties=_PROPERTIES
                )
        except TimeoutError:
            self._exchanges.discard(topic)
            raise BrokerUnavailable(
                f"RabbitMQ at {self._url} did not take the message within "
                f"{self._publish_timeout:g} s"
            ) from None
        except _AMQP_ERRORS as exc:
            # The exchange may be what failed (deleted under us): declare it anew next time.
            self._exchanges.discard(topic)
            raise BrokerUnavailable(
                f"RabbitMQ at {self._url}: {_describe(exc, self._secret)}"
            ) from None
        if not isinstance(confirmation, spec.Basic.Ack):
            raise BrokerUnavailable(f"RabbitMQ at {self._url} refused the message: {confirmation}")

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Consume ``topic`` through a queue of our own, re-made after each reconnection.

        Opened while RabbitMQ is down, the subscription starts consuming when
        the connection is back.
        """
        subscription = _Subscription(topic, self._buffer_size)
        self._subscriptions.add(subscription)
        try:
            if self._transport_up():
                try:
                    async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                        await self._attach(subscription)
                except (TimeoutError, *_AMQP_ERRORS) as exc:
                    raise BrokerUnavailable(
                        f"cannot subscribe to {topic} on RabbitMQ at {self._url}: "
                        f"{_describe(exc, self._secret)}"
                    ) from None
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            await self._detach(subscription)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._connected = False
        tasks = [*self._closing_channels, *([self._restoring] if self._restoring else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for subscription in self._subscriptions:
            subscription.end()
        # Closing the connection closes every channel on it; exclusive queues
        # go with it on the broker's side.
        await self._connection.close()
        log.info("rabbitmq.closed", url=self._url)

    # -- connection events (aio-pika callbacks, run on the event loop) --------

    def _on_connection_lost(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self._closed:
            return
        self._channel = None
        self._exchanges.clear()
        if not self._connected:
            return
        self._connected = False
        log.warning(
            "rabbitmq.lost",
            url=self._url,
            error=_describe(exc, self._secret) if exc is not None else None,
        )
        _run(self.on_disconnect, "on_disconnect")

    def _on_connection_back(self, _sender: Any) -> None:
        if not self._closed:
            self._restore_soon()

    def _restore_soon(self) -> None:
        if self._restoring is None or self._restoring.done():
            self._restoring = asyncio.create_task(self._restore())

    async def _restore(self) -> None:
        """Re-attach every subscription that lost its queue, retrying while connected."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while self._transport_up():
            try:
                for subscription in tuple(self._subscriptions):
                    async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                        await self._attach(subscription)
            except (TimeoutError, *_AMQP_ERRORS) as exc:
                log.warning(
                    "rabbitmq.restore_failed",
                    url=self._url,
                    error=_describe(exc, self._secret),
                    retry_in_s=self._connection.reconnect_interval,
                )
                await asyncio.sleep(self._connection.reconnect_interval)
                continue
            if not self._connected:
                self._connected = True
                log.info(
                    "rabbitmq.reconnected",
                    url=self._url,
                    subscriptions=len(self._subscriptions),
                    restore_ms=round((loop.time() - started) * 1000, 1),
                )
                _run(self.on_reconnect, "on_reconnect")
            return

    # -- topology ---------------------------------------------------------------

    def _transport_up(self) -> bool:
        transport = self._connection.transport
        return (
            not self._closed
            and self._connection.connected.is_set()
            and transport is not None
            and not transport.connection.is_closed
        )

    def _amqp(self) -> aiormq.abc.AbstractConnection:
        transport = self._connection.transport
        if not self._transport_up() or transport is None:
            raise ConnectionError("not connected, reconnecting")
        return transport.connection

    async def _publish_channel(self) -> aiormq.abc.AbstractChannel:
        async with self._channel_lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._amqp().channel(publisher_confirms=True)
            return self._channel

    async def _declare_exchange(self, connection: aiormq.abc.AbstractConnection, name: str) -> None:
        if name in self._exchanges:
            return
        # On a channel of its own: a declaration that conflicts with the
        # exchange's existing flags closes the channel it was made on.
        probe = await connection.channel(publisher_confirms=False)
        try:
            try:
                await probe.exchange_declare(name, exchange_type="fanout", durable=False)
            except aiormq.exceptions.ChannelPreconditionFailed as exc:
                # Declared first by someone else (the original system, an
                # operator) with other flags: use it as it is.
                probe = await connection.channel(publisher_confirms=False)
                await probe.exchange_declare(name, passive=True)
                log.info(
                    "rabbitmq.exchange_passive",
                    exchange=name,
                    reason=_describe(exc, self._secret),
                )
        finally:
            if not probe.is_closed:
                await probe.close()
        self._exchanges.add(name)

    async def _attach(self, subscription: _Subscription) -> None:
        async with subscription.lock:
            if subscription.attached or subscription not in self._subscriptions:
                return
            connection = self._amqp()
            await self._declare_exchange(connection, subscription.topic)
            channel = await connection.channel(publisher_confirms=False)
            try:
                declared = await channel.queue_declare("", exclusive=True, auto_delete=True)
                queue = declared.queue
                assert queue is not None
                await channel.queue_bind(queue, subscription.topic, routing_key="")
                consuming = await channel.basic_consume(queue, subscription.on_message, no_ack=True)
            except BaseException:
                await _close_quietly(channel)
                raise
            channel.on_consumer_cancel_callbacks.add(self._on_consumer_cancelled)
            channel.closing.add_done_callback(self._on_channel_closed)
            subscription.channel = channel
            subscription.queue_name = queue
            subscription.consumer_tag = consuming.consumer_tag
            log.debug("rabbitmq.subscribed", topic=subscription.topic, queue=queue)

    async def _detach(self, subscription: _Subscription) -> None:
        channel, subscription.channel = subscription.channel, None
        if channel is None or channel.is_closed:
            return
        # Best effort: with the broker gone there is nothing left to undo, and
        # an exclusive queue goes with its connection anyway.
        with contextlib.suppress(TimeoutError, *_AMQP_ERRORS):
            async with asyncio.timeout(UNSUBSCRIBE_TIMEOUT_S):
                if subscription.consumer_tag is not None:
                    await channel.basic_cancel(subscription.consumer_tag)
                if subscription.queue_name is not None:
                    await channel.queue_delete(subscription.queue_name)
        await _close_quietly(channel)

    def _on_consumer_cancelled(self, frame: spec.Basic.Cancel) -> None:
        # The broker dropped a consumer (its queue was deleted): make a new queue.
        for subscription in self._subscriptions:
            if subscription.consumer_tag == frame.consumer_tag and subscription.channel:
                log.warning(
                    "rabbitmq.consumer_cancelled",
                    topic=subscription.topic,
                    queue=subscription.queue_name,
                )
                channel, subscription.channel = subscription.channel, None
                task = asyncio.create_task(_close_quietly(channel))
                self._closing_channels.add(task)
                task.add_done_callback(self._closing_channels.discard)
        if not self._closed:
            self._restore_soon()

    def _on_channel_closed(self, _closing: asyncio.Future[Any]) -> None:
        # A subscription's channel closed without the connection (a channel
        # error): re-attach. When the connection went, reconnection does it.
        if self._transport_up() and any(not s.attached for s in self._subscriptions):
            self._restore_soon()


async def _close_quietly(channel: aiormq.abc.AbstractChannel) -> None:
    with contextlib.suppress(TimeoutError, *_AMQP_ERRORS):
        async with asyncio.timeout(UNSUBSCRIBE_TIMEOUT_S):
            await channel.close()


def _run(callbacks: list[Callable[[], None]], name: str) -> None:
    for callback in tuple(callbacks):
        try:
            callback()
        except Exception:
            log.exception("rabbitmq.callback_failed", callbacks=name, callback=repr(callback))
