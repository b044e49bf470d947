"""A real RabbitMQ node for the session, and brokers connected to it.

The node is started once (a cold start takes seconds) and is never skipped:
without a RabbitMQ server the fixture fails with the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from healthmon.broker.rabbitmq import RabbitMQBroker
from tests.rabbitmq.server import RabbitMQServer, RabbitMQServerError

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.rabbitmq)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQServer]:
    try:
        server = RabbitMQServer()
        server.start()
    except RabbitMQServerError as exc:
        pytest.fail(f"cannot start a RabbitMQ node for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def broker(rabbitmq: RabbitMQServer) -> AsyncIterator[RabbitMQBroker]:
    connected = await RabbitMQBroker.connect(rabbitmq.url)
    try:
        yield connected
    finally:
        await connected.close()
