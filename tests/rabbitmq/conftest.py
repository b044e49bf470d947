"""Brokers connected to the session's RabbitMQ node (``rabbitmq``, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from healthmon.broker.rabbitmq import RabbitMQBroker
from tests.rabbitmq.server import RabbitMQServer

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.rabbitmq)


@pytest.fixture
async def broker(rabbitmq: RabbitMQServer) -> AsyncIterator[RabbitMQBroker]:
    connected = await RabbitMQBroker.connect(rabbitmq.url)
    try:
        yield connected
    finally:
        await connected.close()
