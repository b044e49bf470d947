"""Mock switched down → a WebSocket client hears it, with and without a hung service.

Each round waits a random fraction of the check interval (a random phase
against the checker's schedule), takes t0 just before the POST that switches
the mock, and stops the clock when the watcher reads the matching
``statusUpdate``. The mock is then switched back and its recovery awaited
before the next round.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import aiohttp

from bench.figures import Figure
from bench.server import ServerSpec, set_mode
from bench.stats import summarize
from bench.watcher import Watcher

# A round that hears nothing for this long is counted as missed.
ROUND_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Rounds:
    """Latencies in ms, and how many rounds heard nothing in time."""

    samples: list[float]
    missed: int = 0

    def note(self, elapsed: float | None) -> None:
        """One round's latency, or a miss when nothing was heard in time."""
        if elapsed is None:
            self.missed += 1
        else:
            self.samples.append(elapsed)


async def switch_and_time(
    session: aiohttp.ClientSession,
    spec: ServerSpec,
    watcher: Watcher,
    service: str,
    *,
    mode: str,
    up: bool,
) -> float | None:
    """POST ``mode`` for ``service``; ms until the watcher hears ``up``."""
    cursor = watcher.mark()
    t0 = time.perf_counter()
    await set_mode(session, spec, service, mode)
    return await told(watcher, service, up, cursor, t0)


async def told(watcher: Watcher, service: str, up: bool, cursor: int, t0: float) -> float | None:
    """Ms from ``t0`` until the watcher hears ``service`` is (not) up; None past the timeout."""
    try:
        update = await watcher.wait(service, up=up, since=cursor, timeout_s=ROUND_TIMEOUT_S)
    except TimeoutError:
        return None
    return (update.received - t0) * 1000


async def down_rounds(
    session: aiohttp.ClientSession,
    spec: ServerSpec,
    watcher: Watcher,
    service: str,
    rounds: int,
    rng: random.Random,
    *,
    mode: str = "down",
) -> Rounds:
    """``rounds`` times: switch ``service`` to ``mode`` (not up) and back, timing the first."""
    result = Rounds([])
    for _ in range(rounds):
        await random_phase(spec, rng)
        result.note(await switch_and_time(session, spec, watcher, service, mode=mode, up=False))
        await switch_and_time(session, spec, watcher, service, mode="up", up=True)
    return result


async def hung_rounds(
    session: aiohttp.ClientSession,
    spec: ServerSpec,
    watcher: Watcher,
    *,
    hung: str,
    switched: str,
    rounds: int,
    per_round: int,
    rng: random.Random,
) -> tuple[Rounds, Rounds]:
    """(hung service reported down, ``switched`` rounds while ``hung`` hangs)."""
    detection = Rounds([])
    while_hung = Rounds([])
    for _ in range(rounds):
        await random_phase(spec, rng)
        elapsed = await switch_and_time(session, spec, watcher, hung, mode="slow", up=False)
        if elapsed is None:
            detection.missed += 1
        else:
            detection.samples.append(elapsed)
        inner = await down_rounds(session, spec, watcher, switched, per_round, rng)
        while_hung.samples += inner.samples
        while_hung.missed += inner.missed
        await switch_and_time(session, spec, watcher, hung, mode="up", up=True)
    return detection, while_hung


async def random_phase(spec: ServerSpec, rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(0, spec.interval_ms / 1000))


def latency_figures(
    loop: str, spec: ServerSpec, plain: Rounds, detection: Rounds, while_hung: Rounds
) -> list[Figure]:
    interval, timeout = spec.interval_ms, spec.timeout_ms
    bound = interval + 30
    return [
        _figure(
            "down → client told (ms)",
            loop,
            plain,
            bound,
            f"p95 ≤ {bound}, median ≈ {interval // 2}",
        ),
        _figure("same, one service hung (ms)", loop, while_hung, bound, f"p95 ≤ {bound}"),
        _figure(
            "hung service reported down (ms)",
            loop,
            detection,
            interval + timeout + 50,
            f"max ≤ {interval + timeout + 50}",
            on_max=True,
        ),
    ]


def _figure(
    label: str, loop: str, rounds: Rounds, bound: float, target: str, *, on_max: bool = False
) -> Figure:
    summary = summarize(rounds.samples)
    worst = summary.max if on_max else summary.p95
    met = rounds.missed == 0 and bool(rounds.samples) and worst <= bound
    return Figure(label, loop, "ms", target, met, summary=summary, detail={"missed": rounds.missed})
