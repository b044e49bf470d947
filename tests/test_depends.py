"""depends_on: validated in the config, published, and blocked_by following the dependencies."""

from __future__ import annotations

from typing import Any

import pytest

from healthmon.config import ConfigError, Settings, parse_settings
from tests.support import System, make_settings

SERVICES = """
[[services]]
name = "billing"
url = "http://127.0.0.1:3002"
depends_on = {billing}

[[services]]
name = "db"
url = "http://127.0.0.1:3005"
depends_on = {db}
"""


@pytest.mark.parametrize(
    ("billing", "db", "message"),
    [
        ('["db"]', '["dbx"]', "10: services[1] \"db\".depends_on: unknown service 'dbx'"),
        (
            '["db"]',
            '["billing"]',
            '5: services[0] "billing".depends_on: cycle billing → db → billing',
        ),
        ("[]", '["db"]', '10: services[1] "db".depends_on: cycle db → db'),
        ('["db", "nope"]', "[]", "5: services[0] \"billing\".depends_on: unknown service 'nope'"),
    ],
)
def test_unknown_names_and_cycles_are_config_errors(billing: str, db: str, message: str) -> None:
    """An unknown dependency or a cycle stops the start with the file, the field and the path."""
    with pytest.raises(ConfigError) as error:
        parse_settings(SERVICES.format(billing=billing, db=db), "config.toml")
    assert str(error.value) == f"config.toml:{message}"


def test_a_dependency_chain_is_valid() -> None:
    """Dependencies that form no cycle are accepted as written."""
    settings = parse_settings(SERVICES.format(billing='["db"]', db="[]"), "config.toml")
    assert [s.depends_on for s in settings.services] == [("db",), ()]


@pytest.fixture
def settings() -> Settings:
    """The four mocks, billing depending on auth and analytics on billing (so on auth too)."""
    base = make_settings()
    needs = {"billing": ("auth",), "analytics": ("billing",)}
    services = tuple(
        s.model_copy(update={"depends_on": needs.get(s.name, ())}) for s in base.services
    )
    return base.model_copy(update={"services": services})


def blocked(message: dict[str, Any]) -> list[str]:
    return [entry["service"] for entry in message["data"]["blocked_by"]]


async def test_depends_on_is_published_everywhere(system: System) -> None:
    """The snapshot, each statusUpdate and /api/services carry depends_on and blocked_by."""
    messages = await system.connected()
    snapshot = messages.seen[-1]["services"]
    assert snapshot["billing"]["depends_on"] == ["auth"]
    assert snapshot["analytics"]["depends_on"] == ["billing"]
    assert snapshot["auth"]["depends_on"] == []
    assert all(s["blocked_by"] == [] for s in snapshot.values())
    document = await system.get("/api/services")
    services = {s["name"]: s for s in document["services"]}
    assert (services["billing"]["depends_on"], services["billing"]["blocked_by"]) == (["auth"], [])
    await system.set_mode("notifications", "down")
    update = await messages.update_for("notifications")
    assert (update["depends_on"], update["blocked_by"]) == ([], [])


async def test_blocked_by_follows_a_dependency_down_and_up(system: System) -> None:
    """A dependency going down sends its dependents a statusUpdate blocked by it, and back up."""
    messages = await system.connected()
    await system.set_mode("auth", "down")
    updates = [await messages.until(lambda m: m["type"] == "statusUpdate") for _ in range(3)]
    assert [u["data"]["service"] for u in updates] == ["auth", "billing", "analytics"]
    assert [blocked(u) for u in updates] == [[], ["auth"], ["auth"]]
    billing = updates[1]["data"]
    assert (billing["status"], billing["up"]) == ("up", True)
    assert billing["blocked_by"] == [{"service": "auth", "status": "down", "stale": False}]
    document = await system.get("/api/services")
    services = {s["name"]: s for s in document["services"]}
    assert services["analytics"]["blocked_by"][0]["service"] == "auth"
    await system.set_mode("billing", "down")
    update = await messages.update_for("analytics")
    assert blocked({"data": update}) == ["billing", "auth"]
    await system.set_mode("auth", "up")
    await system.set_mode("billing", "up")
    await messages.until(
        lambda m: (
            m["type"] == "statusUpdate"
            and m["data"]["service"] == "analytics"
            and m["data"]["blocked_by"] == []
        )
    )
    statuses = await system.get("/api/services")
    assert all(s["blocked_by"] == [] for s in statuses["services"])


async def test_a_stale_dependency_blocks(system: System) -> None:
    """When the monitor stops, a dependent is blocked by its dependency's staleness."""
    messages = await system.connected()
    await system.post("/api/components/monitor", {"running": False})
    update = await messages.until(
        lambda m: (
            m["type"] == "statusUpdate"
            and m["data"]["service"] == "billing"
            and bool(m["data"]["blocked_by"])
        ),
        within=10,
    )
    assert update["data"]["blocked_by"] == [{"service": "auth", "status": "up", "stale": True}]
