"""History per service: uptime over the last hour and a latency sparkline."""

from __future__ import annotations

from healthmon.history import LATENCY_SAMPLES, WINDOW_MS, ServiceHistory
from tests.support import System

T0 = 1_800_000_000_000


def test_uptime_is_weighted_by_time() -> None:
    """45 minutes up and 15 down in the last hour is 75 % uptime."""
    history = ServiceHistory()
    history.change(T0, True)
    history.change(T0 + 45 * 60_000, False)
    assert history.uptime(T0 + WINDOW_MS) == 75.0


def test_uptime_counts_only_the_last_hour() -> None:
    """A day-old outage no longer counts; the state at the window's start does."""
    history = ServiceHistory()
    history.change(T0, False)
    history.change(T0 + 60_000, True)
    history.change(T0 + 10 * WINDOW_MS, False)
    now = T0 + 10 * WINDOW_MS + 30 * 60_000
    assert history.uptime(now) == 50.0
    assert history.uptime(T0 + 5 * WINDOW_MS) == 100.0


def test_no_observation_means_no_uptime() -> None:
    """A service never observed has no uptime figure rather than a made-up one."""
    assert ServiceHistory().uptime(T0) is None


def test_latency_samples_are_bounded() -> None:
    """The sparkline keeps the most recent samples only."""
    history = ServiceHistory()
    for value in range(LATENCY_SAMPLES + 10):
        history.sample(float(value))
    assert list(history.latencies) == [float(v) for v in range(10, LATENCY_SAMPLES + 10)]


async def test_snapshot_and_api_carry_history(system: System) -> None:
    """New clients and the API get each service's uptime and recent latencies."""
    messages = await system.connected()
    await system.set_mode("billing", "down")
    await messages.update_for("billing")
    # Two heartbeats after the change carry latency samples for every service.
    for _ in range(2):
        await messages.until(lambda m: m["type"] == "heartbeat")
    late = await system.connected()
    snapshot = late.seen[-1]
    billing = snapshot["services"]["billing"]["history"]
    assert billing["uptime_1h"] < 100
    assert billing["latency"]
    auth = snapshot["services"]["auth"]["history"]
    assert auth["uptime_1h"] == 100.0
    assert all(isinstance(v, float) for v in auth["latency"])
    document = await system.get("/api/services")
    assert document["services"][1]["history"]["uptime_1h"] < 100


async def test_heartbeats_carry_fresh_latencies(system: System) -> None:
    """Between changes, heartbeats tell pages each service's latest latency."""
    messages = await system.connected()
    beat = await messages.until(lambda m: m["type"] == "heartbeat" and m["latency"])
    assert set(beat["latency"]) <= {"auth", "billing", "notifications", "analytics"}
    assert all(isinstance(v, float) for v in beat["latency"].values())
