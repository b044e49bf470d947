"""How many services one server checks on time: lateness seen by the services.

The server checks N services served by ``mockfarm``. Lateness is measured on
the farm's side: for a service asked at a_0, a_1, …, check k is late by
a_k - (k * interval + min_j(a_j - j * interval)), i.e. against the earliest
on-time grid its arrivals fit, so a check that slipped stays late and a
missed check makes every later one a whole interval late. A false down is a
``statusUpdate`` with ``up`` false while every service answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.figures import Figure
from bench.procfs import cpu_seconds
from bench.server import (
    KNOWN,
    REPO,
    BenchError,
    ServerSpec,
    Service,
    child_env,
    free_ports,
    running_server,
    stop_process,
    wait_ready,
    wait_until,
)
from bench.stats import Summary, summarize
from bench.watcher import watching

LATENESS_TARGET_MS = 50.0
TARGET_SERVICES = 2000
WARMUP_S = 2.0
FARM_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0
# The farm's report is one JSON line of every arrival time.
REPORT_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Trial:
    services: int
    lateness: Summary
    jitter: Summary
    false_downs: int
    silent: int  # services never asked during the window
    settled: bool  # every service had a status before the window
    cpu_percent: float
    history: bool
    # Every check's lateness, for pooling trials (bench.history).
    samples: Sequence[float] = field(default=(), repr=False)

    @property
    def holds(self) -> bool:
        return (
            self.settled
            and self.lateness.p99 <= LATENESS_TARGET_MS
            and self.false_downs == 0
            and self.silent == 0
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "services": self.services,
            "lateness_ms": self.lateness.as_dict(),
            "jitter_ms": self.jitter.as_dict(),
            "false_downs": self.false_downs,
            "silent": self.silent,
            "settled": self.settled,
            "server_cpu_percent": round(self.cpu_percent, 1),
            "history": self.history,
            "holds": self.holds,
        }


@contextlib.asynccontextmanager
async def mock_farm(listeners: int) -> AsyncIterator[tuple[asyncio.subprocess.Process, list[int]]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.mockfarm",
        "--listeners",
        str(listeners),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=REPORT_LIMIT,
        cwd=REPO,
        env=child_env(),
    )
    try:
        ports = (await ask_farm(process, None))["ports"]
        assert isinstance(ports, list)
        yield process, ports
    finally:
        await stop_process(process)


async def ask_farm(process: asyncio.subprocess.Process, command: bytes | None) -> dict[str, object]:
    assert process.stdin is not None
    assert process.stdout is not None
    if command is not None:
        process.stdin.write(command + b"\n")
        await process.stdin.drain()
    line = await asyncio.wait_for(process.stdout.readline(), FARM_TIMEOUT_S)
    if not line:
        raise BenchError("the mock farm exited early")
    message: dict[str, object] = json.loads(line)
    return message


async def window_lateness(farm: asyncio.subprocess.Process, interval_s: float) -> list[float]:
    """Every check's lateness (ms) since the farm's last ``reset``."""
    arrivals = (await ask_farm(farm, b"report"))["arrivals"]
    assert isinstance(arrivals, dict)
    late: list[float] = []
    for times in arrivals.values():
        late += lateness_ms(times, interval_s)[0]
    return late


def lateness_ms(arrivals: Sequence[float], interval_s: float) -> tuple[list[float], list[float]]:
    """(lateness against the earliest fitting grid, inter-arrival jitter), in ms."""
    origin = min(a - k * interval_s for k, a in enumerate(arrivals))
    late = [(a - k * interval_s - origin) * 1000 for k, a in enumerate(arrivals)]
    jitter = [(b - a - interval_s) * 1000 for a, b in itertools.pairwise(arrivals)]
    return late, jitter


async def trial(
    session: aiohttp.ClientSession,
    loop: str,
    count: int,
    window_s: float,
    services_per_port: int,
    workdir: Path,
    *,
    history: bool = True,
    history_path: Path | None = None,
    extra_toml: str = "",
) -> Trial:
    """One window at ``count`` services. History on writes ``history_path``, or else a
    new SQLite file of its own; off is ``[history] enabled = false``."""
    async with mock_farm(-(-count // services_per_port)) as (farm, ports):
        services = tuple(
            Service(f"s{i}", f"http://127.0.0.1:{ports[i % len(ports)]}", f"/h/{i}")
            for i in range(count)
        )
        spec = ServerSpec(
            port=free_ports(1)[0],
            services=services,
            history=history,
            history_path=history_path,
            extra_toml=extra_toml,
        )
        async with running_server(spec, loop, workdir) as server:
            await wait_ready(session, server)
            # Every farm service answers: any down from the first check on is false.
            async with watching(session, spec.ws_url) as watcher:
                try:
                    await wait_until(session, spec, statuses=KNOWN, timeout_s=SETTLE_TIMEOUT_S)
                    settled = True
                except BenchError:
                    settled = False
                await asyncio.sleep(WARMUP_S)
                await tell_farm(farm, b"reset")
                cpu_before = cpu_seconds(server.pid)
                await asyncio.sleep(window_s)
                cpu_percent = (cpu_seconds(server.pid) - cpu_before) / window_s * 100
                arrivals = (await ask_farm(farm, b"report"))["arrivals"]
                false_downs = sum(1 for u in watcher.updates if not u.up)
    assert isinstance(arrivals, dict)
    interval_s = spec.interval_ms / 1000
    late: list[float] = []
    jitter: list[float] = []
    for times in arrivals.values():
        one_late, one_jitter = lateness_ms(times, interval_s)
        late += one_late
        jitter += one_jitter
    return Trial(
        services=count,
        lateness=summarize(late),
        jitter=summarize(jitter),
        false_downs=false_downs,
        silent=count - len(arrivals),
        settled=settled,
        cpu_percent=cpu_percent,
        history=history,
        samples=late,
    )


async def tell_farm(process: asyncio.subprocess.Process, command: bytes) -> None:
    assert process.stdin is not None
    process.stdin.write(command + b"\n")
    await process.stdin.drain()


async def scale_figures(
    session: aiohttp.ClientSession,
    loop: str,
    sizes: Sequence[int],
    window_s: float,
    services_per_port: int,
    workdir: Path,
) -> list[Figure]:
    """Try ``sizes`` in ascending order, stopping at the first that fails."""
    trials: list[Trial] = []
    for count in sizes:
        trials.append(await trial(session, loop, count, window_s, services_per_port, workdir))
        if not trials[-1].holds:
            break
    held = [t.services for t in trials if t.holds]
    largest = max(held, default=0)
    figures = [
        Figure(
            f"check lateness, {t.services} services (ms)",
            loop,
            "ms",
            f"p99 ≤ {LATENESS_TARGET_MS:g}, 0 false downs",
            t.holds,
            summary=t.lateness,
            detail=t.as_dict(),
        )
        for t in trials
    ]
    figures.append(
        Figure(
            "services checked on time at 500 ms",
            loop,
            "services",
            f"≥ {TARGET_SERVICES}",
            largest >= TARGET_SERVICES,
            value=largest,
            detail={
                "tried": [t.services for t in trials],
                "window_s": window_s,
                "services_per_port": services_per_port,
            },
        )
    )
    return figures
