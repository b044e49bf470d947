"""Brokers behind one protocol, chosen by ``broker.kind``.

Implementations are imported lazily so the optional RabbitMQ extra stays
optional: without aio-pika, only choosing ``rabbitmq`` fails.
"""

from __future__ import annotations

from healthmon.broker.base import HEARTBEAT_TOPIC, STATUS_TOPIC, Broker, BrokerUnavailable
from healthmon.config import BrokerSettings
from healthmon.errors import StartupError

__all__ = ["HEARTBEAT_TOPIC", "STATUS_TOPIC", "Broker", "BrokerUnavailable", "create_broker"]


class BrokerExtraMissing(StartupError):
    """``broker.kind = "rabbitmq"`` without the ``rabbitmq`` extra installed."""


async def create_broker(settings: BrokerSettings) -> Broker:
    if settings.kind == "memory":
        from healthmon.broker.memory import MemoryBroker

        return MemoryBroker()
    try:
        from healthmon.broker.rabbitmq import RabbitMQBroker
    except ImportError as exc:
        raise BrokerExtraMissing(
            "broker.kind = 'rabbitmq' needs the rabbitmq extra: "
            "pip install 'healthmon[rabbitmq]'"
            f" ({exc})"
        ) from None
    return await RabbitMQBroker.connect(settings.url)
