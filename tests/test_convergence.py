"""The board converges on what a live monitor observes, and says when it cannot know."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.history import ServiceHistory
from healthmon.keys import BOARD, MONITOR
from healthmon.models import Heartbeat, Observation, ServiceState, Status, StatusUpdate
from healthmon.status import StatusBoard
from tests.support import System, make_settings

SERVICE = ServiceSettings(name="billing", url="http://127.0.0.1:3002")
# Stale after 2 * (50 + 50) = 200 ms.
FAST = MonitorSettings(interval_ms=50, timeout_ms=50, heartbeat_ms=100)


def board(monitor: MonitorSettings = FAST) -> tuple[StatusBoard, list[tuple[str, ServiceState]]]:
    seen: list[tuple[str, ServiceState]] = []
    b = StatusBoard([SERVICE], monitor)
    b.on_change.append(lambda name, state: seen.append((name, state)))
    return b, seen


def update(
    monitor: str, seq: int, ts: int, status: Status, reason: str | None = None
) -> StatusUpdate:
    return StatusUpdate(
        service="billing",
        up=status.is_up,
        ts=ts,
        status=status,
        reason=reason,
        monitor=monitor,
        since=ts,
        seq=seq,
        age_ms=0,
    )


def beat(
    monitor: str,
    seq: int,
    ts: int,
    status: Status,
    *,
    reason: str | None = None,
    age_ms: float = 0.0,
    since: int | None = None,
) -> Heartbeat:
    digest = update(monitor, seq, ts, status, reason).digest
    return Heartbeat(
        monitor=monitor,
        ts=ts,
        observations={
            "billing": Observation(
                seq=seq, status=status, since=since or ts, ts=ts, age_ms=age_ms, digest=digest
            )
        },
    )


async def test_a_flap_one_monitor_missed_is_corrected_by_its_heartbeat() -> None:
    """Monitor A published "up" and died; B, which never saw that up, corrects the board."""
    b, seen = board()
    b.heartbeat(beat("A", 1, 1_000, Status.DOWN))
    b.heartbeat(beat("B", 1, 1_100, Status.DOWN))
    b.apply(update("A", 2, 1_200, Status.UP))
    assert b.state("billing").status is Status.UP  # type: ignore[union-attr]
    # B checked after A's brief "up" and still sees it down; it never publishes.
    b.heartbeat(beat("B", 2, 1_300, Status.DOWN, since=1_100))
    state = b.state("billing")
    assert state is not None
    assert state.status is Status.DOWN
    assert seen[-1][1].status is Status.DOWN


async def test_one_monitors_order_survives_a_wall_clock_step_back() -> None:
    """A later observation of the same monitor wins even when its clock went back an hour."""
    b, _ = board()
    b.apply(update("A", 10, 5_000_000, Status.UP))
    assert b.apply(update("A", 11, 5_000_000 - 3_600_000, Status.DOWN, "connection refused"))
    assert b.state("billing").status is Status.DOWN  # type: ignore[union-attr]
    # And an older observation of A, whatever its time, is not.
    assert not b.apply(update("A", 9, 9_999_999, Status.UP))
    assert b.state("billing").status is Status.DOWN  # type: ignore[union-attr]


async def test_a_silent_monitors_last_word_yields_to_a_live_monitor() -> None:
    """Once A is silent, B's observation replaces A's even if B's clock is behind."""
    b, _ = board()
    b.heartbeat(beat("A", 1, 10_000, Status.UP))
    # B's clock runs a minute behind A's: its check looks older.
    b.heartbeat(beat("B", 1, 10_000 - 60_000, Status.DOWN))
    assert b.state("billing").status is Status.UP  # type: ignore[union-attr]
    b.broker_lost()  # every monitor's word is now unconfirmed
    b.heartbeat(beat("B", 2, 10_050 - 60_000, Status.DOWN))
    assert b.state("billing").status is Status.DOWN  # type: ignore[union-attr]


async def test_a_stale_observation_is_shown_stale_at_once() -> None:
    """A heartbeat saying the latest check is older than the bound makes the card stale."""
    b, seen = board()
    b.heartbeat(beat("A", 1, 1_000, Status.UP))
    assert not b.state("billing").stale  # type: ignore[union-attr]
    # The monitor is alive, but this service's loop has not checked for 5 s.
    b.heartbeat(beat("A", 1, 1_000, Status.UP, age_ms=5_000))
    state = b.state("billing")
    assert state is not None
    assert state.stale
    assert state.status is Status.UP  # the last known state stays visible
    assert seen[-1][1].stale
    assert b.details()["billing"]["stale"] is True
    assert b.stale_names() == ["billing"]


async def test_checks_that_stop_arriving_turn_stale_with_time() -> None:
    """With no new observation the board's sweep marks the service stale past the bound."""
    b, seen = board()
    stale = asyncio.Event()
    b.on_change.append(lambda name, state: stale.set() if state.stale else None)
    b.heartbeat(beat("A", 1, 1_000, Status.UP))
    sweeper = asyncio.create_task(b.run())
    try:
        async with asyncio.timeout(2):
            await stale.wait()
    finally:
        sweeper.cancel()
    assert seen[-1][1].stale
    # A fresh check clears it.
    b.heartbeat(beat("A", 2, 1_500, Status.UP))
    assert not b.state("billing").stale  # type: ignore[union-attr]


async def test_missed_details_are_noticed_and_fetched() -> None:
    """A heartbeat whose digest differs asks for a re-sync; the full observation then applies."""
    b, _ = board()
    missed: list[bool] = []
    b.on_missed.append(lambda: missed.append(True))
    b.apply(update("A", 1, 1_000, Status.DOWN, "connection refused"))
    b.heartbeat(beat("A", 2, 1_100, Status.DOWN, reason="HTTP 503: db gone", since=1_000))
    assert missed
    assert b.apply(update("A", 2, 1_100, Status.DOWN, "HTTP 503: db gone"))
    state = b.state("billing")
    assert state is not None
    assert state.reason == "HTTP 503: db gone"


@pytest.fixture
def settings() -> Any:
    return make_settings(("auth", "billing"), interval_ms=100, timeout_ms=200, heartbeat_ms=100)


async def test_a_reason_change_reaches_api_socket_and_monitor(system: System) -> None:
    """Down with "connection refused", then down with HTTP 503: the new reason is shown."""
    messages = await system.connected()
    await system.set_mode("billing", "down")
    first = await messages.until(
        lambda m: m["type"] == "statusUpdate" and m["data"]["status"] == "down", within=5
    )
    assert "refused" in first["data"]["reason"]
    await system.set_mode("billing", "error")
    second = await messages.until(
        lambda m: m["type"] == "statusUpdate" and "503" in (m["data"]["reason"] or ""), within=5
    )
    assert second["data"]["status"] == "down"
    assert second["data"]["since"] == first["data"]["since"]
    doc = await system.get("/api/services")
    billing = next(s for s in doc["services"] if s["name"] == "billing")
    assert "503" in billing["reason"]
    own = {u.service: u for u in system.app[MONITOR].snapshot()}
    assert "503" in (own["billing"].reason or "")


async def test_monitor_switched_off_makes_every_card_stale(system: System) -> None:
    """With no checks, every service turns stale within the bound, on the socket and the API."""
    messages = await system.connected()
    status, _ = await system.post("/api/components/monitor", {"running": False})
    assert status == 200
    # 2 * (100 + 200) ms, plus the sweep: well within 3 s.
    stale: set[str] = set()
    async with asyncio.timeout(3):
        while stale != {"auth", "billing"}:
            message = await messages.next()
            if message["type"] == "statusUpdate" and message["data"]["stale"]:
                stale.add(message["data"]["service"])
                assert message["data"]["status"] == "up"  # last known, still shown
    doc = await system.get("/api/services")
    assert all(s["stale"] for s in doc["services"])
    await system.post("/api/components/monitor", {"running": True})
    fresh = await messages.until(
        lambda m: m["type"] == "statusUpdate" and m["data"]["stale"] is False, within=3
    )
    assert fresh["data"]["status"] == "up"


async def test_a_crashed_check_loop_is_logged_and_restarted(system: System) -> None:
    """An exception in a check loop is one task.crashed event, and checks go on."""
    crashes = {"left": 1}

    def explode(result: object) -> None:
        if crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("observer bug")

    system.app[MONITOR].observers.append(explode)
    with structlog.testing.capture_logs() as logs:
        messages = await system.connected()
        await system.set_mode("billing", "down")
        await messages.until(
            lambda m: (
                m["type"] == "statusUpdate"
                and m["data"]["service"] == "billing"
                and m["data"]["status"] == "down"
            ),
            within=5,
        )
    crash = next(e for e in logs if e["event"] == "task.crashed")
    assert crash["task"].startswith("check:")
    assert crash["exc_info"] is True
    assert system.app[BOARD].state("billing").status is Status.DOWN  # type: ignore[union-attr]


async def test_a_switched_off_monitor_does_not_pass_for_a_live_one(system: System) -> None:
    """A stopped monitor's /api/statuses answers 503, so no re-sync takes its old word."""
    await system.get("/api/statuses")
    await system.post("/api/components/monitor", {"running": False})
    async with system.session.get(f"{system.base}/api/statuses") as response:
        assert response.status == 503
        assert "switched off" in (await response.json())["error"]


def test_uptime_says_which_window_it_covers() -> None:
    """A board ten minutes old reports its uptime over ten minutes, not the hour."""
    history = ServiceHistory()
    history.change(1_000_000, True)
    history.change(1_000_000 + 300_000, False)
    wire = history.to_wire(1_000_000 + 600_000)
    assert wire["known_ms"] == 600_000
    assert wire["uptime_1h"] == 50.0


async def test_the_board_keeps_recent_changes_for_later_pages() -> None:
    """Status changes (not first knowledge) are kept, oldest first, for new pages' event logs."""
    b, _ = board()
    b.apply(update("A", 1, 1_000, Status.UP))
    b.apply(update("A", 2, 2_000, Status.DOWN, "connection refused"))
    b.apply(update("A", 3, 3_000, Status.UP))
    changes = b.recent_changes()
    assert [(c["from"], c["to"]) for c in changes] == [("up", "down"), ("down", "up")]
    assert changes[0]["reason"] == "connection refused"
    assert changes[0]["ts"] == 2_000


async def test_a_new_page_gets_the_recent_changes(system: System) -> None:
    """A client connecting after a change finds it in its snapshot's log, as the API has it."""
    first = await system.connected()
    await system.set_mode("billing", "down")
    await first.until(
        lambda m: m["type"] == "statusUpdate" and m["data"]["status"] == "down", within=5
    )
    late = await system.connect()
    assert (await late.next())["type"] == "welcome"
    snapshot = await late.next()
    assert [(c["service"], c["from"], c["to"]) for c in snapshot["log"]] == [
        ("billing", "up", "down")
    ]
    assert (await system.get("/api/services"))["log"] == snapshot["log"]
