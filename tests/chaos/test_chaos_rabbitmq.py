"""Chaos on the split topology over a real RabbitMQ: real processes, real signals.

One ``--role mocks`` process, two ``--role monitor`` and two ``--role ws``
processes share a RabbitMQ node; third-party WebSocket clients sit on both
ws processes. Each round applies one or two random actions: mocks switched
or flapped, a monitor SIGKILLed (and restarted, or left dead), every monitor
SIGKILLed (the cards must turn stale), a ws process SIGKILLed and restarted,
RabbitMQ stopped and started; each kind comes at least once in the first
half of a run. Then it waits until the restarted processes answer and the
clients have reconnected, sleeps the quiet period (the bound under test)
and asserts every client's view.
"""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.chaos.conftest import ChaosRabbitMQ
from tests.chaos.harness import (
    READY_S,
    Crowd,
    Record,
    Timing,
    ViewClient,
    chaos_rounds,
    chaos_seed,
    check,
    mode_action,
    plan_rounds,
    wait_or_fail,
    write_config,
)
from tests.processes import HealthmonProcess, split_env
from tests.support import NAMES

ROUNDS = 12
# No round starts after this; with start-up and the last round, about 60 s.
BUDGET_S = 42.0
pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.timeout(int(chaos_rounds(ROUNDS, BUDGET_S)[1]) + 120),
]
CLIENTS_PER_WS = 3
BROKER_BOUNCES = 2
# Each kind of action's odds; a blackout (every monitor killed) comes once, by plan.
WEIGHTS = {"mode": 4, "monitor": 3, "ws": 2, "broker": 1}


class Split:
    """The README's split topology, each process restartable on its own port."""

    def __init__(
        self, rabbitmq: ChaosRabbitMQ, tmp: Path, session: aiohttp.ClientSession, timing: Timing
    ) -> None:
        self.rabbitmq = rabbitmq
        self.tmp = tmp
        self.session = session
        self.config = tmp / "config.toml"
        write_config(self.config, timing)
        self.mocks_port = unused_port()
        self.monitor_ports = [unused_port(), unused_port()]
        self.ws_ports = [unused_port(), unused_port()]
        self.mocks: HealthmonProcess | None = None
        self.monitors: list[HealthmonProcess | None] = [None, None]
        self.ws: list[HealthmonProcess | None] = [None, None]

    def _process(self, role: str, port: int, **env: str) -> HealthmonProcess:
        return HealthmonProcess(
            self.config,
            role,
            port,
            {**split_env(self.rabbitmq.url, self.monitor_ports), **env},
            self.tmp / f"{role}-{port}.log",
        )

    def ws_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.ws_ports[index]}/ws"

    @property
    def live_monitors(self) -> int:
        return sum(m is not None for m in self.monitors)

    async def start(self) -> None:
        self.mocks = self._process(
            "mocks", self.mocks_port, HEALTHMON_WEB__PORT=str(self.mocks_port)
        )
        await self.mocks.start()
        await asyncio.gather(
            *(self.start_monitor(i) for i in range(2)), *(self.start_ws(j) for j in range(2))
        )

    async def start_monitor(self, index: int) -> None:
        port = self.monitor_ports[index]
        self.monitors[index] = await self._process(
            "monitor", port, HEALTHMON_MONITOR__PORT=str(port)
        ).start()

    async def kill_monitor(self, index: int) -> None:
        process, self.monitors[index] = self.monitors[index], None
        assert process is not None
        await process.stop(signal.SIGKILL)

    async def start_ws(self, index: int) -> None:
        port = self.ws_ports[index]
        self.ws[index] = await self._process("ws", port, HEALTHMON_WEB__PORT=str(port)).start()

    async def kill_ws(self, index: int) -> None:
        process, self.ws[index] = self.ws[index], None
        assert process is not None
        await process.stop(signal.SIGKILL)

    async def set_mode(self, name: str, mode: str) -> None:
        url = f"http://127.0.0.1:{self.mocks_port}/api/mocks/{name}"
        async with self.session.post(url, json={"mode": mode}) as response:
            assert response.status == 200, f"POST mode {mode} for {name}: {await response.text()}"

    async def broker_clients(self, within: float = READY_S) -> None:
        """Until every monitor and ws process is connected to RabbitMQ again."""
        expected = self.live_monitors + sum(w is not None for w in self.ws)
        async with asyncio.timeout(within):
            # Each rabbitmqctl call takes about half a second: it paces the loop.
            while await asyncio.to_thread(self.rabbitmq.connections) != expected:
                pass

    async def close(self) -> None:
        processes = [self.mocks, *self.monitors, *self.ws]
        await asyncio.gather(*(p.stop() for p in processes if p is not None))


class Chaos:
    """The random actions, each noted in the record before the round's check."""

    def __init__(
        self, split: Split, crowd: Crowd, record: Record, rng: random.Random, truth: dict[str, str]
    ) -> None:
        self.split = split
        self.crowd = crowd
        self.record = record
        self.rng = rng
        self.truth = truth
        self.by_ws: list[list[ViewClient]] = []
        self.broker_bounces = 0

    async def maybe_modes(self, chance: float = 0.5) -> None:
        if self.rng.random() < chance:
            await mode_action(self.rng, self.record, self.truth, self.split.set_mode)

    async def monitor(self) -> None:
        split, rng, note = self.split, self.rng, self.record.note
        dead = [i for i, m in enumerate(split.monitors) if m is None]
        alive = [i for i, m in enumerate(split.monitors) if m is not None]
        if dead and (not alive or rng.random() < 0.6):
            index = rng.choice(dead)
            await self.maybe_modes()
            await split.start_monitor(index)
            note(f"monitor {index} started")
            return
        index = rng.choice(alive)
        await split.kill_monitor(index)
        note(f"monitor {index} SIGKILLed")
        await self.maybe_modes()
        if rng.random() < 0.5:
            await split.start_monitor(index)
            note(f"monitor {index} started")

    async def ws(self) -> None:
        index = self.rng.randrange(2)
        before = self.crowd.counts(self.by_ws[index])
        await self.split.kill_ws(index)
        self.record.note(f"ws {index} SIGKILLed")
        await self.maybe_modes()
        await self.split.start_ws(index)
        self.record.note(f"ws {index} started")
        await wait_or_fail(
            self.record, self.crowd, lambda: self.crowd.fresh(before), "clients reconnecting"
        )

    async def broker(self) -> None:
        self.broker_bounces += 1
        await asyncio.to_thread(self.split.rabbitmq.stop_app)
        self.record.note("rabbitmq stopped")
        await self.maybe_modes(0.7)
        await asyncio.to_thread(self.split.rabbitmq.start_app)
        self.record.note("rabbitmq started")
        await wait_or_fail(
            self.record, self.crowd, self.split.broker_clients, "processes reconnecting to RabbitMQ"
        )
        self.record.note("every process reconnected")

    async def blackout(self) -> None:
        """Every monitor SIGKILLed: cards must turn stale, then recover when one returns."""
        for index, process in enumerate(self.split.monitors):
            if process is not None:
                await self.split.kill_monitor(index)
                self.record.note(f"monitor {index} SIGKILLed (blackout)")
        await self.maybe_modes()

    async def round(self, kinds: list[str]) -> None:
        for kind in kinds:
            if kind == "mode":
                await self.maybe_modes(1.0)
            elif kind == "monitor":
                await self.monitor()
            elif kind == "blackout":
                await self.blackout()
            elif kind == "ws":
                await self.ws()
            elif kind == "broker" and self.broker_bounces < BROKER_BOUNCES:
                await self.broker()


async def test_every_view_converges_across_processes(
    chaos_rabbitmq: ChaosRabbitMQ, tmp_path: Path
) -> None:
    """Whatever is killed, flapped or restarted, every client shows the truth within the bound."""
    seed = chaos_seed()
    rng = random.Random(seed)
    rounds, budget_s = chaos_rounds(ROUNDS, BUDGET_S)
    timing = Timing()
    record = Record(seed)
    crowd = Crowd(record.start)
    truth = dict.fromkeys(NAMES, "up")
    async with aiohttp.ClientSession() as session:
        split = Split(chaos_rabbitmq, tmp_path, session, timing)
        chaos = Chaos(split, crowd, record, rng, truth)
        try:
            with record.guard(crowd):
                await split.start()
                record.note("started: mocks, 2 monitors, 2 ws")
                chaos.by_ws = [
                    crowd.add(split.ws_url(j), CLIENTS_PER_WS, f"ws{j}") for j in range(2)
                ]
                await wait_or_fail(record, crowd, crowd.connected, "first snapshots")
                await asyncio.sleep(timing.quiet_s)
                check(record, crowd, truth, live=True)
                plan = plan_rounds(
                    rng,
                    rounds,
                    WEIGHTS,
                    required=["monitor", "ws", "broker", "blackout"],
                    per_round=(1, 1, 2),
                )
                while record.round < rounds and record.elapsed() < budget_s:
                    kinds = plan[record.round]
                    record.round += 1
                    await chaos.round(kinds)
                    live = split.live_monitors > 0
                    await asyncio.sleep(timing.quiet_s if live else timing.stale_quiet_s)
                    check(record, crowd, truth, live=live)
                dead = [i for i, m in enumerate(split.monitors) if m is None]
                if dead:
                    record.round += 1
                    await asyncio.gather(*(split.start_monitor(i) for i in dead))
                    record.note(f"monitors {dead} started (end)")
                    await asyncio.sleep(timing.quiet_s)
                    check(record, crowd, truth, live=True)
                print(record.summary())
        finally:
            await crowd.close()
            await split.close()
