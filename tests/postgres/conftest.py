"""A real PostgreSQL cluster for the session, and a database of its own for each test.

The cluster is made once (initdb and a start take seconds) and is never
skipped: without PostgreSQL's binaries the fixture fails with the reason.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.postgres.server import PostgresServer, running_cluster

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_cluster() as server:
        yield server


@pytest.fixture
async def database_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """The URL of an empty database made for this test, dropped after it."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield postgres.url(name)
    admin = await asyncpg.connect(postgres.url())
    try:
        # FORCE: a connection a failed test left open does not keep the database.
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
