"""Shared fixtures: a real healthmon app on free loopback ports, and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from healthmon.config import Settings
from tests.rabbitmq.server import RabbitMQServer, running_node
from tests.support import System, make_settings, running_system


@pytest.fixture(autouse=True)
def _history_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test leaves a history file in the working folder: tests that want one say where."""
    monkeypatch.setenv("HEALTHMON_HISTORY__PATH", ":memory:")


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQServer]:
    """A real RabbitMQ node for the session (broker and history-topology tests).

    Started once (a cold start takes seconds) and never skipped: without a
    RabbitMQ server the fixture fails with the reason.
    """
    with running_node(RabbitMQServer) as server:
        yield server


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def system(settings: Settings) -> AsyncIterator[System]:
    async with running_system(settings) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session, closed after the test."""
    async with aiohttp.ClientSession() as client:
        yield client
