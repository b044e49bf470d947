"""Connection-aware detection: kill -9 of a service's process, and a gRPC Watch change.

healthmon checks the four default mocks, ``victim`` (a plain HTTP service in
a process of its own, ``bench.detect_service http``) and ``grpc`` (grpcio's
health servicer in another, ``bench.detect_service grpc``), every 500 ms.
Each round waits a random fraction of the interval (a random phase against
the schedule), takes t0 just before the change and stops when a WebSocket
client reads the matching ``statusUpdate``:

- kill -9: t0 before SIGKILL of ``victim``; then it is started again on the
  same port and its recovery awaited;
- gRPC Watch: t0 before the line that sets NOT_SERVING (and, timed the same
  way, SERVING again);
- error (503): t0 before ``POST /api/mocks/billing {"mode":"error"}``. The
  connection stays open, so only the next check can see it: the
  interval-based figure, for comparison in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.figures import Figure
from bench.latency import ROUND_TIMEOUT_S, Rounds, down_rounds, random_phase, told
from bench.server import (
    REPO,
    UP,
    BenchError,
    ServerSpec,
    Service,
    child_env,
    default_spec,
    free_ports,
    running_server,
    stop_process,
    wait_ready,
    wait_until,
)
from bench.stats import summarize
from bench.watcher import Watcher, watching

VICTIM, GRPC, SWITCHED = "victim", "grpc", "billing"
TARGET_MS = 30
# The child services' own bound on their lives, should the benchmark vanish.
CHILD_MAX_S = 900


@dataclass(frozen=True, slots=True)
class DetectSpec(ServerSpec):
    """The default server plus a grpc service, which ``ServerSpec`` cannot write."""

    grpc_port: int = 0

    def toml(self) -> str:
        return ServerSpec.toml(self) + (
            f'[[services]]\nname = "{GRPC}"\nurl = "grpc://127.0.0.1:{self.grpc_port}"\n'
            'kind = "grpc"\n'
        )


class Child:
    """One ``bench.detect_service`` process; its stdin is its life line."""

    def __init__(self, kind: str, port: int, workdir: Path) -> None:
        self.kind, self.port, self.workdir = kind, port, workdir
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = self.workdir / f"detect-{self.kind}-{self.port}.log"
        with log.open("ab") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.detect_service",
                self.kind,
                str(self.port),
                "--max-seconds",
                str(CHILD_MAX_S),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=REPO,
                env=child_env(),
            )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), ROUND_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            raise BenchError(f"detect_service {self.kind} did not start; see {log}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    async def say(self, line: str) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def stop(self) -> None:
        if self.process is not None:
            await stop_process(self.process)


@contextlib.asynccontextmanager
async def children(
    workdir: Path, victim_port: int, grpc_port: int
) -> AsyncIterator[tuple[Child, Child]]:
    victim, grpc = Child("http", victim_port, workdir), Child("grpc", grpc_port, workdir)
    try:
        await victim.start()
        await grpc.start()
        yield victim, grpc
    finally:
        await victim.stop()
        await grpc.stop()


def detect_spec() -> DetectSpec:
    base = default_spec()
    victim_port, grpc_port = free_ports(2)
    victim = Service(VICTIM, f"http://127.0.0.1:{victim_port}")
    return DetectSpec(port=base.port, services=(*base.services, victim), grpc_port=grpc_port)


async def detect_figures(
    session: aiohttp.ClientSession, loop: str, rounds: int, workdir: Path, rng: random.Random
) -> list[Figure]:
    spec = detect_spec()
    victim_port = int(spec.services[-1].url.rpartition(":")[2])
    async with (
        children(workdir, victim_port, spec.grpc_port) as (victim, grpc),
        running_server(spec, loop, workdir) as server,
    ):
        await wait_ready(session, server)
        await wait_until(session, spec, statuses=UP)
        async with watching(session, spec.ws_url) as watcher:
            killed = await kill_rounds(spec, watcher, victim, rounds, rng)
            watched = await grpc_rounds(spec, watcher, grpc, rounds, rng)
            errors = await down_rounds(session, spec, watcher, SWITCHED, rounds, rng, mode="error")
    return [
        _figure("kill -9 → client told (ms)", loop, killed, f"p95 ≤ {TARGET_MS}"),
        _figure("gRPC Watch change → client told (ms)", loop, watched, f"p95 ≤ {TARGET_MS}"),
        _figure(
            "error (503) → client told (ms)",
            loop,
            errors,
            f"p95 ≤ {spec.interval_ms + 30}, median ≈ {spec.interval_ms // 2}",
            bound=spec.interval_ms + 30,
        ),
    ]


async def kill_rounds(
    spec: ServerSpec, watcher: Watcher, victim: Child, rounds: int, rng: random.Random
) -> Rounds:
    result = Rounds([])
    for _ in range(rounds):
        await random_phase(spec, rng)
        cursor = watcher.mark()
        t0 = time.perf_counter()
        victim.kill()
        elapsed = await told(watcher, VICTIM, False, cursor, t0)
        result.note(elapsed)
        await victim.stop()
        cursor = watcher.mark()
        await victim.start()
        if await told(watcher, VICTIM, True, cursor, time.perf_counter()) is None:
            raise BenchError("the restarted victim was never reported up")
    return result


async def grpc_rounds(
    spec: ServerSpec, watcher: Watcher, grpc: Child, rounds: int, rng: random.Random
) -> Rounds:
    """Both directions are Watch changes: each round times NOT_SERVING, then SERVING."""
    result = Rounds([])
    for _ in range(rounds):
        for line, up in (("not_serving", False), ("serving", True)):
            await random_phase(spec, rng)
            cursor = watcher.mark()
            t0 = time.perf_counter()
            await grpc.say(line)
            result.note(await told(watcher, GRPC, up, cursor, t0))
    return result


def _figure(
    label: str, loop: str, rounds: Rounds, target: str, *, bound: float = TARGET_MS
) -> Figure:
    summary = summarize(rounds.samples)
    met = rounds.missed == 0 and bool(rounds.samples) and summary.p95 <= bound
    return Figure(label, loop, "ms", target, met, summary=summary, detail={"missed": rounds.missed})
