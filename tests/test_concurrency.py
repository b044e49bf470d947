"""Control calls that arrive together: the last one's state is left, every loop running."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from structlog.testing import capture_logs

from healthmon.keys import HUB, MOCKS, MONITOR
from healthmon.mocks import Mode
from healthmon.reload import RELOADER
from tests.support import Messages, System
from tests.test_reload import Reloadable, live  # noqa: F401 - the fixture

CALLS = 12


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


async def refused(system: System, url: str) -> bool:
    try:
        async with system.session.get(url):
            return False
    except aiohttp.ClientConnectorError:
        return True


async def seen_down(messages: Messages, service: str) -> None:
    """The board told the page that ``service`` is down (within five seconds)."""
    await messages.until(
        lambda m: (
            m["type"] == "statusUpdate"
            and m["data"]["service"] == service
            and m["data"]["up"] is False
        )
    )


async def test_monitor_switched_together_ends_as_the_last_call(system: System) -> None:
    """Monitor off/on calls fired at once leave the last applied state; then it really checks."""
    messages = await system.connected()
    with capture_logs() as logs:
        answers = await asyncio.gather(
            *(system.post("/api/components/monitor", {"running": i % 2 == 1}) for i in range(CALLS))
        )
    assert all(status == 200 for status, _ in answers)
    switched = events(logs, "component.switched")
    assert len(switched) == CALLS
    assert system.app[MONITOR].running is switched[-1]["running"]
    # Whatever was left, switching it on makes it check every service again.
    await system.post("/api/components/monitor", {"running": True})
    await system.set_mode("billing", "down")
    await seen_down(messages, "billing")


async def test_ws_switched_together_ends_as_the_last_call(system: System) -> None:
    """WebSocket channel off/on calls fired at once leave the state of the last one applied."""
    for _ in range(3):
        await system.connected()
    with capture_logs() as logs:
        answers = await asyncio.gather(
            *(system.post("/api/components/ws", {"running": i % 2 == 1}) for i in range(CALLS))
        )
    assert all(status == 200 for status, _ in answers)
    switched = events(logs, "component.switched")
    assert len(switched) == CALLS
    last = switched[-1]["running"]
    assert system.app[HUB].enabled is last
    async with system.session.get(f"{system.base}/ws") as response:
        # A plain GET: 503 when switched off, else 400 (not a WebSocket upgrade).
        assert (response.status == 503) is (not last)


@pytest.mark.parametrize("modes", [("down", "up"), ("up", "down"), ("error", "down", "slow")])
async def test_mock_switched_together_ends_as_the_last_call(
    system: System, modes: tuple[str, ...]
) -> None:
    """Mode calls to one mock fired at once leave the last applied mode, listening as it says."""
    messages = await system.connected()
    billing = system.settings.service("billing")
    assert billing is not None
    with capture_logs() as logs:
        answers = await asyncio.gather(
            *(
                system.post("/api/mocks/billing", {"mode": modes[i % len(modes)]})
                for i in range(CALLS)
            )
        )
    assert all(status == 200 for status, _ in answers), answers
    mock = system.app[MOCKS]["billing"]
    changes = events(logs, "mock.mode")
    assert mock.mode.value == changes[-1]["to"]
    assert mock.listening is (mock.mode is not Mode.DOWN)
    assert await refused(system, billing.health_url) is (mock.mode is Mode.DOWN)
    # The monitor checks on: a mock switched down is seen down.
    await system.set_mode("billing", "down")
    await seen_down(messages, "billing")


async def test_a_reload_and_a_mock_call_do_not_interleave(live: Reloadable) -> None:  # noqa: F811
    """A mock switched up while a reload removes it is not left listening as an orphan."""
    messages = await live.connected()
    await live.set_mode("billing", "down")
    live.write({"auth": live.ports["auth"], "search": unused_port()})
    (status, _), _ = await asyncio.gather(
        live.post("/api/mocks/billing", {"mode": "up"}), live.app[RELOADER].reload()
    )
    assert status in (200, 404)
    await messages.until(
        lambda m: m["type"] == "initialSnapshot" and "billing" not in m["services"]
    )
    assert "billing" not in live.app[MOCKS]
    assert await refused(live, f"http://127.0.0.1:{live.ports['billing']}/health")


async def test_reloads_asked_together_apply_once(live: Reloadable) -> None:  # noqa: F811
    """Reloads asked for at once run one after another: the change is applied once."""
    live.write({**live.ports, "search": unused_port()})
    with capture_logs() as logs:
        await asyncio.gather(*(live.app[RELOADER].reload() for _ in range(5)))
    assert len(events(logs, "config.applied")) == 1
    assert sorted(live.app[MOCKS].keys()) == ["auth", "billing", "search"]
