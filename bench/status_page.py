"""The public status page under load: badges served from cache, and live pages fanned out.

**Badges.** A server checks ``farm`` services served by ``mockfarm`` and
serves its public listener. Check lateness (as ``bench.scale`` measures it,
at the services) is taken for a window with no load, then for a window in
which a ``badge_client`` process sends keep-alive GETs of a mix of badges
(status, uptime, latency, group and all; SVG and JSON) as fast as the
server answers. Figures: requests per second, their latency, and how much
later the checks came while serving them.

**Live pages.** ``size`` raw WebSocket clients (then as many event streams)
on the public channel ``/status/live/``, as that many open status pages
would hold; a mock switched down and up on the main port, and per broadcast
the time until every page has it (``bench.fanout``'s measure).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bench.fanout import client_processes, switch_rounds, worst_per_broadcast
from bench.figures import Figure
from bench.scale import REPORT_LIMIT, mock_farm, tell_farm, window_lateness
from bench.server import (
    KNOWN,
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

THROUGHPUT_TARGET = 2000.0
BADGE_P99_TARGET_MS = 20.0
# Checks may come later under badge load by at most this share of the interval (p99).
LATENESS_SHARE = 0.05
LIVE_P95_TARGET_MS = 1000.0
CONNECTIONS = 16
WARMUP_S = 2.0
SETTLE_S = 2.0
CLIENT_TIMEOUT_S = 60.0


def badge_paths(names: list[str]) -> list[str]:
    """What README badges ask for: each kind, as SVG and as shields JSON."""
    paths = []
    for name in names:
        for tail in ("status", "uptime/24h", "uptime/30d", "latency/24h"):
            paths += [f"/badge/{name}/{tail}.svg", f"/badge/{name}/{tail}.json"]
    return [*paths, "/badge/@all/status.svg", "/badge/@all/status.json"]


async def _load(port: int, paths: list[str], seconds: float) -> dict[str, Any]:
    args = [f"--path={p}" for p in paths]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.badge_client",
        "--port",
        str(port),
        "--seconds",
        str(seconds),
        "--connections",
        str(CONNECTIONS),
        *args,
        stdout=asyncio.subprocess.PIPE,
        # One line with every request's latency.
        limit=REPORT_LIMIT,
        cwd=REPO,
        env=child_env(),
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), seconds + CLIENT_TIMEOUT_S)
    finally:
        await stop_process(process)
    if not line:
        raise BenchError("the badge client exited without a report")
    result: dict[str, Any] = json.loads(line)
    return result


async def badge_figures(
    session: aiohttp.ClientSession, loop: str, services: int, window_s: float, workdir: Path
) -> list[Figure]:
    async with mock_farm(services) as (farm, ports):
        web, public = free_ports(2)
        spec = ServerSpec(
            port=web,
            services=tuple(
                Service(f"s{i}", f"http://127.0.0.1:{ports[i]}", f"/h/{i}") for i in range(services)
            ),
            public_port=public,
        )
        interval_s = spec.interval_ms / 1000
        async with running_server(spec, loop, workdir) as server:
            await wait_ready(session, server)
            await wait_until(session, spec, statuses=KNOWN)
            await asyncio.sleep(WARMUP_S)
            await tell_farm(farm, b"reset")
            await asyncio.sleep(window_s)
            quiet = await window_lateness(farm, interval_s)
            await tell_farm(farm, b"reset")
            load = await _load(public, badge_paths([f"s{i}" for i in range(10)]), window_s)
            loaded = await window_lateness(farm, interval_s)
    rate = load["requests"] / load["seconds"]
    latency = summarize(load["latencies_ms"])
    quiet_s, loaded_s = summarize(quiet), summarize(loaded)
    allowed = quiet_s.p99 + LATENESS_SHARE * spec.interval_ms
    ok = load["statuses"].get("200", 0) == load["requests"]
    detail = {"statuses": load["statuses"], "services": services, "connections": CONNECTIONS}
    return [
        Figure(
            f"badges served, {services} services (req/s)",
            loop,
            "req/s",
            f"≥ {THROUGHPUT_TARGET:g}",
            ok and rate >= THROUGHPUT_TARGET,
            value=round(rate),
            detail=detail,
        ),
        Figure(
            "badge latency under that load (ms)",
            loop,
            "ms",
            f"p99 ≤ {BADGE_P99_TARGET_MS:g}",
            latency.p99 <= BADGE_P99_TARGET_MS,
            summary=latency,
        ),
        Figure(
            f"check lateness while serving badges, {services} services (ms)",
            loop,
            "ms",
            f"p99 ≤ quiet p99 + {LATENESS_SHARE:.0%} of the interval",
            loaded_s.p99 <= allowed,
            summary=loaded_s,
            detail={"quiet_ms": quiet_s.as_dict(), "allowed_p99_ms": round(allowed, 2)},
        ),
    ]


async def live_page_figures(
    session: aiohttp.ClientSession, loop: str, size: int, rounds: int, workdir: Path
) -> list[Figure]:
    spec = default_spec()
    public = free_ports(1)[0]
    spec = ServerSpec(port=spec.port, services=spec.services, public_port=public)
    figures = []
    async with running_server(spec, loop, workdir) as server:
        await wait_ready(session, server)
        await wait_until(session, spec, statuses=UP)
        for transport, words in (("ws", "WebSocket"), ("sse", "SSE")):
            async with client_processes(public, size, transport, "/status/live/") as processes:
                # The public hub registers a client after its snapshot: let them all land.
                await asyncio.sleep(SETTLE_S)
                reports = await switch_rounds(session, spec, rounds, processes)
            worst, first, lost = worst_per_broadcast(size, rounds * 2, reports)
            summary = summarize(worst)
            figures.append(
                Figure(
                    f"one change reaching all {size} live status pages, {words} (ms)",
                    loop,
                    "ms",
                    f"p95 ≤ {LIVE_P95_TARGET_MS:g}, 0 lost",
                    lost == 0 and summary.p95 <= LIVE_P95_TARGET_MS,
                    summary=summary,
                    detail={"lost": lost, "first_client_ms": summarize(first).as_dict()},
                )
            )
    return figures
