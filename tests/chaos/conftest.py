"""A RabbitMQ node of the chaos tests' own: they stop and start it, so it is theirs alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rabbitmq.server import RabbitMQServer, running_node


class ChaosRabbitMQ(RabbitMQServer):
    """The suite's test node, which also says how many AMQP clients are connected."""

    def connections(self) -> int:
        output = self._ctl_run("list_connections", "pid", "--no-table-headers", "--quiet")
        return sum(1 for line in output.splitlines() if line.strip())


@pytest.fixture(scope="module")
def chaos_rabbitmq() -> Iterator[ChaosRabbitMQ]:
    with running_node(ChaosRabbitMQ) as server:
        yield server
