"""Chaos on one ``python -m healthmon`` (in-memory broker), driven only through its controls.

Each round applies one random action — a mock switched or flapped, the
monitor switched off or on, the WebSocket channel switched off and on — then
sleeps the quiet period (the bound under test) and asserts every client's
view: the truth and not stale while the monitor runs, every service stale
while it is off.
"""

from __future__ import annotations

import asyncio
import random
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.chaos.harness import (
    Crowd,
    Record,
    Timing,
    chaos_rounds,
    chaos_seed,
    check,
    mode_action,
    plan_rounds,
    wait_or_fail,
    write_config,
)
from tests.processes import HealthmonProcess
from tests.support import NAMES

ROUNDS = 8
# No round starts after this; with the quiet periods the test takes about 20 s.
BUDGET_S = 15.0
pytestmark = pytest.mark.timeout(int(chaos_rounds(ROUNDS, BUDGET_S)[1]) + 60)
CLIENTS = 4
WEIGHTS = {"mode": 5, "monitor": 2, "ws": 1}


class Single:
    """One healthmon process with every role, and its control API."""

    def __init__(self, tmp: Path, session: aiohttp.ClientSession, timing: Timing) -> None:
        config = tmp / "config.toml"
        write_config(config, timing)
        self.port = unused_port()
        self.session = session
        self.process = HealthmonProcess(
            config, "all", self.port, {"HEALTHMON_WEB__PORT": str(self.port)}, tmp / "all.log"
        )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def post(self, path: str, body: object) -> None:
        async with self.session.post(f"{self.process.base}{path}", json=body) as response:
            assert response.status == 200, f"POST {path} {body}: {await response.text()}"

    async def set_mode(self, name: str, mode: str) -> None:
        await self.post(f"/api/mocks/{name}", {"mode": mode})

    async def switch(self, component: str, running: bool) -> None:
        await self.post(f"/api/components/{component}", {"running": running})


async def test_every_view_converges_on_one_process(tmp_path: Path) -> None:
    """Under random flaps and monitor and ws switching, every view is the truth within the bound."""
    seed = chaos_seed()
    rng = random.Random(seed)
    rounds, budget_s = chaos_rounds(ROUNDS, BUDGET_S)
    timing = Timing()
    record = Record(seed)
    crowd = Crowd(record.start)
    truth = dict.fromkeys(NAMES, "up")
    monitor_on = True
    async with aiohttp.ClientSession() as session:
        single = Single(tmp_path, session, timing)
        try:
            with record.guard(crowd):
                await single.process.start()
                crowd.add(single.ws_url, CLIENTS, "ws")
                await wait_or_fail(record, crowd, crowd.connected, "first snapshots")
                await asyncio.sleep(timing.quiet_s)
                check(record, crowd, truth, live=True)
                plan = plan_rounds(rng, rounds, WEIGHTS, required=["monitor", "ws"])
                while record.round < rounds and record.elapsed() < budget_s:
                    action = plan[record.round][0]
                    record.round += 1
                    if action == "mode":
                        await mode_action(rng, record, truth, single.set_mode)
                    elif action == "monitor":
                        monitor_on = not monitor_on
                        await single.switch("monitor", monitor_on)
                        record.note(f"monitor {'on' if monitor_on else 'off'}")
                    else:
                        before = crowd.counts()
                        await single.switch("ws", False)
                        record.note("ws off")
                        if rng.random() < 0.5:
                            await mode_action(rng, record, truth, single.set_mode)
                        await single.switch("ws", True)
                        record.note("ws on")
                        await wait_or_fail(
                            record, crowd, partial(crowd.fresh, before), "clients reconnecting"
                        )
                    await asyncio.sleep(timing.quiet_s if monitor_on else timing.stale_quiet_s)
                    check(record, crowd, truth, live=monitor_on)
                if not monitor_on:
                    record.round += 1
                    await single.switch("monitor", True)
                    record.note("monitor on (end)")
                    await asyncio.sleep(timing.quiet_s)
                    check(record, crowd, truth, live=True)
                print(record.summary())
        finally:
            await crowd.close()
            await single.process.stop()
