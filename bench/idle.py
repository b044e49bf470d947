"""Start → first complete snapshot, and what an idle server costs."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from bench.figures import Figure
from bench.procfs import cpu_seconds, rss_kib
from bench.server import READY_TIMEOUT_S, BenchError, Server, ServerSpec, running_server
from bench.stats import summarize

RETRY_S = 0.01
STARTUP_TARGET_S = 1.5


async def time_to_snapshot(session: aiohttp.ClientSession, server: Server) -> float:
    """Seconds from spawn until a client gets a snapshot naming every service."""
    names = set(server.spec.names)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.returncode is not None:
            raise BenchError(f"healthmon exited with {server.process.returncode}; see its log")
        try:
            async with session.ws_connect(server.spec.ws_url) as ws:
                async for msg in ws:
                    frame = json.loads(msg.data)
                    if frame["type"] == "initialSnapshot":
                        if set(frame["data"]) >= names:
                            return time.perf_counter() - server.spawned_at
                        break
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(RETRY_S)
    raise BenchError(f"no complete snapshot within {READY_TIMEOUT_S:.0f} s")


async def startup_figures(
    session: aiohttp.ClientSession, spec: ServerSpec, loop: str, runs: int, workdir: Path
) -> list[Figure]:
    samples = []
    for _ in range(runs):
        async with running_server(spec, loop, workdir) as server:
            samples.append(await time_to_snapshot(session, server))
    summary = summarize(samples)
    return [
        Figure(
            "start → first snapshot (s)",
            loop,
            "s",
            "p95 ≤ 1.5",
            summary.p95 <= 1.5,
            summary=summary,
        )
    ]


async def idle_figures(server: Server, loop: str, seconds: float) -> list[Figure]:
    """RSS and CPU share of a server nobody talks to, sampled once a second."""
    rss: list[float] = []
    cpu: list[float] = []
    before = cpu_seconds(server.pid)
    for _ in range(round(seconds)):
        await asyncio.sleep(1.0)
        now = cpu_seconds(server.pid)
        cpu.append((now - before) * 100)
        before = now
        rss.append(rss_kib(server.pid) / 1024)
    rss_summary = summarize(rss)
    cpu_share = sum(cpu) / len(cpu)
    return [
        Figure(
            "idle RSS, 4 services (MiB)",
            loop,
            "MiB",
            "≤ 60",
            rss_summary.max <= 60,
            summary=rss_summary,
        ),
        Figure(
            "idle CPU, 4 services (% of a core)",
            loop,
            "%",
            "mean ≤ 1",
            cpu_share <= 1,
            summary=summarize(cpu),
            value=round(cpu_share, 2),
            detail={"window_s": len(cpu)},
        ),
    ]
