"""A real RabbitMQ node for the session, and brokers connected to it.

The node is started once (a cold start takes seconds) and is never skipped:
without a RabbitMQ server the fixture fails with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from healthmon.broker.rabbitmq import RabbitMQBroker
from tests.rabbitmq.server import RabbitMQServer, running_node

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.rabbitmq)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQServer]:
    with running_node(RabbitMQServer) as server:
        yield server


@pytest.fixture
async def broker(rabbitmq: RabbitMQServer) -> AsyncIterator[RabbitMQBroker]:
    connected = await RabbitMQBroker.connect(rabbitmq.url)
    try:
        yield connected
    finally:
        await connected.close()
