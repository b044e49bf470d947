"""One change reaching every one of N connected clients, and memory per client.

N raw WebSocket clients are spread over ``fanout_client`` processes. Rounds
switch one mock down and up; each switch is one broadcast. Per broadcast the
figure is the time to reach ALL clients: the worst receive time minus the
broadcast's outer ``ts``, over every client. Lost counts the deliveries that
never arrived (a client missing a broadcast, or dropped by the server).

Then, in the same run and against the same server, the WebSocket clients
leave and N Server-Sent Events clients (``GET /events``) take their place for
as many rounds: the same figure for the second transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.figures import Figure
from bench.procfs import rss_kib
from bench.server import (
    REPO,
    UP,
    BenchError,
    Server,
    ServerSpec,
    child_env,
    running_server,
    services_doc,
    set_mode,
    stop_process,
    wait_ready,
    wait_until,
)
from bench.stats import summarize
from bench.watcher import watching

# Sockets per client process: well under the open-file limit, and few enough
# that one process drains its share of a broadcast quickly.
PER_PROCESS = 2500
CONNECT_TIMEOUT_S = 60.0
# After the watcher hears a change, time for every client to receive it.
SETTLE_S = 0.3
WATCH_TIMEOUT_S = 10.0
SWITCHED = "billing"
MEMORY_SETTLE_S = 2.0
# How often the client counts are polled while waiting for them.
POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class Targets:
    p99_ms: float
    median_ms: float


TARGETS = {5000: Targets(90, 60), 10000: Targets(180, 120)}
MEMORY_TARGET_KIB = 11.0


@contextlib.asynccontextmanager
async def client_processes(
    port: int, total: int, transport: str = "ws", prefix: str = "/"
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    counts = [PER_PROCESS] * (total // PER_PROCESS)
    if total % PER_PROCESS:
        counts.append(total % PER_PROCESS)
    processes: list[asyncio.subprocess.Process] = []
    try:
        for count in counts:
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.fanout_client",
                    "--port",
                    str(port),
                    "--count",
                    str(count),
                    "--transport",
                    transport,
                    "--prefix",
                    prefix,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    cwd=REPO,
                    env=child_env(),
                )
            )
        ready = await asyncio.wait_for(
            asyncio.gather(*(_read_line(p) for p in processes)), CONNECT_TIMEOUT_S
        )
        connected = sum(int(line["ready"]) for line in ready)
        if connected != total:
            raise BenchError(f"only {connected} of {total} clients connected")
        yield processes
    finally:
        await asyncio.gather(*(stop_process(p) for p in processes))


async def _read_line(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        raise BenchError(f"fan-out client {process.pid} exited early")
    message: dict[str, Any] = json.loads(line)
    return message


async def _report(process: asyncio.subprocess.Process) -> list[list[Any]]:
    assert process.stdin is not None
    process.stdin.write(b"report\n")
    await process.stdin.drain()
    rows: list[list[Any]] = (await asyncio.wait_for(_read_line(process), WATCH_TIMEOUT_S))["stats"]
    return rows


async def fanout_figures(
    session: aiohttp.ClientSession,
    spec: ServerSpec,
    loop: str,
    size: int,
    rounds: int,
    workdir: Path,
) -> list[Figure]:
    async with running_server(spec, loop, workdir) as server:
        await wait_ready(session, server)
        await wait_until(session, spec, statuses=UP)
        await asyncio.sleep(MEMORY_SETTLE_S)
        rss_before = rss_kib(server.pid)
        async with client_processes(spec.port, size) as processes:
            await wait_until(session, spec, clients=size, timeout_s=CONNECT_TIMEOUT_S)
            await asyncio.sleep(MEMORY_SETTLE_S)
            per_client_kib = (rss_kib(server.pid) - rss_before) / size
            reports = await switch_rounds(session, spec, rounds, processes)
        async with client_processes(spec.port, size, "sse") as processes:
            await _wait_streams(session, spec, server, size)
            sse_reports = await switch_rounds(session, spec, rounds, processes)
    return [
        _delivery_figure(loop, size, rounds * 2, reports),
        _delivery_figure(loop, size, rounds * 2, sse_reports, transport="SSE"),
        Figure(
            f"memory per idle WebSocket, {size} (KiB)",
            loop,
            "KiB",
            f"≤ {MEMORY_TARGET_KIB:g}",
            per_client_kib <= MEMORY_TARGET_KIB,
            value=round(per_client_kib, 2),
            detail={"clients": size, "rss_before_kib": rss_before},
        ),
    ]


async def switch_rounds(
    session: aiohttp.ClientSession,
    spec: ServerSpec,
    rounds: int,
    processes: list[asyncio.subprocess.Process],
) -> list[list[list[Any]]]:
    """Switch the mock down and up ``rounds`` times; every client process's counts."""
    async with watching(session, spec.ws_url) as watcher:
        for _ in range(rounds):
            for mode, up in (("down", False), ("up", True)):
                cursor = watcher.mark()
                await set_mode(session, spec, SWITCHED, mode)
                await watcher.wait(SWITCHED, up=up, since=cursor, timeout_s=WATCH_TIMEOUT_S)
                await asyncio.sleep(SETTLE_S)
    return list(await asyncio.gather(*(_report(p) for p in processes)))


async def _wait_streams(
    session: aiohttp.ClientSession, spec: ServerSpec, server: Server, size: int
) -> None:
    """Until ``size`` event streams and no WebSocket are open, within ``CONNECT_TIMEOUT_S``."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.returncode is not None:
            raise BenchError(f"healthmon exited with {server.process.returncode}; see its log")
        doc = await services_doc(session, spec)
        ws, sse = doc["ws"], doc["sse"]
        assert isinstance(ws, dict)
        assert isinstance(sse, dict)
        if sse["clients"] == size and ws["clients"] == 0:
            return
        await asyncio.sleep(POLL_S)
    raise BenchError(f"{size} event streams were not open within {CONNECT_TIMEOUT_S:.0f} s")


def worst_per_broadcast(
    size: int, broadcasts: int, reports: list[list[list[Any]]]
) -> tuple[list[float], list[float], int]:
    """Per broadcast of the switched service: the worst and the first receive time over
    all clients, and how many deliveries never arrived."""
    received: dict[tuple[object, ...], int] = {}
    first: dict[tuple[object, ...], float] = {}
    worst: dict[tuple[object, ...], float] = {}
    for rows in reports:
        for *key_parts, count, one_first, one_worst in rows:
            key = tuple(key_parts)
            if key_parts[0] != SWITCHED:
                continue
            received[key] = received.get(key, 0) + count
            first[key] = min(first.get(key, math.inf), float(one_first))
            worst[key] = max(worst.get(key, 0.0), float(one_worst))
    lost = sum(size - n for n in received.values()) + (broadcasts - len(received)) * size
    return list(worst.values()), list(first.values()), lost


def _delivery_figure(
    loop: str,
    size: int,
    broadcasts: int,
    reports: list[list[list[Any]]],
    transport: str = "",
) -> Figure:
    worst, first, lost = worst_per_broadcast(size, broadcasts, reports)
    summary = summarize(worst)
    # The targets are the socket's; the second transport is measured beside it.
    target = None if transport else TARGETS.get(size)
    met = None
    if target is not None:
        met = lost == 0 and summary.p99 <= target.p99_ms and summary.median <= target.median_ms
    clients = f"{transport} clients" if transport else "clients"
    return Figure(
        f"one change reaching all {size} {clients} (ms)",
        loop,
        "ms",
        f"p99 ≤ {target.p99_ms:g}, median ≤ {target.median_ms:g}, 0 lost" if target else "—",
        met,
        summary=summary,
        detail={
            "clients": size,
            "broadcasts": broadcasts,
            "lost": lost,
            # When the first client heard it: what the server took before writing.
            "first_client_ms": summarize(first).as_dict(),
        },
    )
