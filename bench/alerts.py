"""Alerts: a killed service → its webhook received, and a storm through one dependency.

healthmon checks ``victim`` (``bench.detect_service http``, a process of its
own) every 500 ms, and posts alerts to a receiver in this process:

- kill → webhook: ``for = 0``, no digest. t0 just before SIGKILL of
  ``victim``, after a random phase; stop when the receiver reads the POST
  saying ``victim`` is down. Target p95 ≤ 50 ms.
- storm: 100 more services on ``victim``'s port, each with
  ``depends_on = ["victim"]``, and a ``digest``. Killing ``victim`` takes
  all 101 down; the receiver must get one message naming ``victim`` as the
  root cause with the 100 listed as affected, within digest + 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.detect import VICTIM, Child
from bench.figures import Figure
from bench.latency import ROUND_TIMEOUT_S, Rounds, random_phase
from bench.scale import trial
from bench.server import (
    UP,
    BenchError,
    ServerSpec,
    Service,
    free_ports,
    running_server,
    wait_ready,
    wait_until,
)
from bench.stats import summarize

TARGET_MS = 50
STORM_SERVICES = 100
STORM_DIGEST_MS = 1000
# A hanging channel may move check lateness by less than this share.
HANG_TARGET = 0.05


@dataclass(frozen=True, slots=True)
class AlertSpec(ServerSpec):
    """Services on one victim port, ``dependents`` of them depending on it; one webhook."""

    hook_url: str = ""
    digest_ms: int = 0
    dependents: int = 0

    def toml(self) -> str:
        victim = self.services[-1].url
        lines = [ServerSpec.toml(self)]
        for index in range(self.dependents):
            lines.append(
                f'[[services]]\nname = "dep{index}"\nurl = "{victim}"\n'
                f'health_path = "/health/{index}"\ndepends_on = ["{VICTIM}"]\n'
            )
        digest = f'"{self.digest_ms}ms"' if self.digest_ms else "0"
        lines.append(
            f'[[channels]]\nname = "bench"\nkind = "webhook"\nurl = "{self.hook_url}"\n\n'
            f'[alerts]\nchannels = ["bench"]\nfor = "0s"\ndigest = {digest}\n'
        )
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Post:
    received: float
    body: dict[str, Any]

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.body["alerts"] if a["kind"] == kind]


class Receiver:
    """The webhook receiver: every POST with the moment it was read."""

    def __init__(self) -> None:
        self.posts: asyncio.Queue[Post] = asyncio.Queue()
        self.url = ""
        self.closing = asyncio.Event()
        # POSTs held open by /hang (the hanging-channel figure needs at least one).
        self.hung = 0

    async def _hang(self, request: web.Request) -> web.Response:
        self.hung += 1
        await self.closing.wait()
        return web.Response(text="late")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts.put_nowait(Post(time.perf_counter(), json.loads(body)))
        return web.Response(text="ok")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        app.router.add_post("/hang", self._hang)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        (port,) = free_ports(1)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"
        try:
            yield self
        finally:
            self.closing.set()
            await runner.cleanup()

    async def until(self, kind: str, service: str) -> Post | None:
        """The next POST with a ``kind`` item for ``service``; None past the round's timeout."""
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    post = await self.posts.get()
            except TimeoutError:
                return None
            if any(a["service"] == service for a in post.items(kind)):
                return post

    def drain(self) -> list[Post]:
        drained = []
        while not self.posts.empty():
            drained.append(self.posts.get_nowait())
        return drained


def alert_spec(hook_url: str, *, dependents: int = 0, digest_ms: int = 0) -> AlertSpec:
    web_port, victim_port = free_ports(2)
    victim = Service(VICTIM, f"http://127.0.0.1:{victim_port}")
    return AlertSpec(
        port=web_port,
        services=(victim,),
        history=False,
        hook_url=hook_url,
        digest_ms=digest_ms,
        dependents=dependents,
    )


async def _rounds(
    session: aiohttp.ClientSession,
    spec: AlertSpec,
    receiver: Receiver,
    loop: str,
    rounds: int,
    rng: random.Random,
    workdir: Path,
) -> tuple[Rounds, list[int]]:
    """Kill rounds: ms from SIGKILL to the POST, and how many messages told the downs."""
    victim_port = int(spec.services[-1].url.rpartition(":")[2])
    result, messages = Rounds([]), []
    victim = Child("http", victim_port, workdir)
    await victim.start()
    try:
        async with running_server(spec, loop, workdir) as server:
            await wait_ready(session, server)
            await wait_until(session, spec, statuses=UP)
            for _ in range(rounds):
                receiver.drain()
                await random_phase(spec, rng)
                t0 = time.perf_counter()
                victim.kill()
                post = await receiver.until("down", VICTIM)
                result.note(None if post is None else (post.received - t0) * 1000)
                if post is not None and spec.dependents:
                    (item,) = post.items("down")
                    if len(item["affected"]) != spec.dependents:
                        raise BenchError(f"the storm's message lists {len(item['affected'])}")
                await victim.stop()
                await victim.start()
                if await receiver.until("recovered", VICTIM) is None:
                    raise BenchError("the restarted victim's recovery was never posted")
                messages.append(
                    1 + sum(bool(p.items("down")) for p in receiver.drain())
                    if post is not None
                    else 0
                )
    finally:
        await victim.stop()
    return result, messages


async def alert_figures(
    session: aiohttp.ClientSession, loop: str, rounds: int, workdir: Path, rng: random.Random
) -> list[Figure]:
    async with Receiver().running() as receiver:
        single, _ = await _rounds(
            session, alert_spec(receiver.url), receiver, loop, rounds, rng, workdir
        )
        storm_spec = alert_spec(receiver.url, dependents=STORM_SERVICES, digest_ms=STORM_DIGEST_MS)
        storm, messages = await _rounds(
            session, storm_spec, receiver, loop, max(3, rounds // 4), rng, workdir
        )
    single_summary = summarize(single.samples)
    storm_summary = summarize(storm.samples)
    storm_bound = STORM_DIGEST_MS + TARGET_MS
    return [
        Figure(
            "kill -9 → webhook received (ms)",
            loop,
            "ms",
            f"p95 ≤ {TARGET_MS}",
            single.missed == 0 and bool(single.samples) and single_summary.p95 <= TARGET_MS,
            summary=single_summary,
            detail={"missed": single.missed},
        ),
        Figure(
            f"storm of {STORM_SERVICES + 1} → one message (ms)",
            loop,
            "ms",
            f"max ≤ {storm_bound} (digest {STORM_DIGEST_MS})",
            storm.missed == 0
            and bool(storm.samples)
            and storm_summary.max <= storm_bound
            and set(messages) == {1},
            summary=storm_summary,
            detail={"missed": storm.missed, "messages_per_round": messages},
        ),
    ]


def hanging_channel_toml(hang_url: str, gone_port: int) -> str:
    """A service down from its first check, whose alert goes to a receiver that hangs."""
    return (
        f'[[services]]\nname = "gone"\nurl = "http://127.0.0.1:{gone_port}"\n\n'
        f'[[channels]]\nname = "stuck"\nkind = "webhook"\nurl = "{hang_url}"\n'
        'timeout = "60s"\n\n[alerts]\nchannels = ["stuck"]\n'
    )


async def hang_figures(
    session: aiohttp.ClientSession,
    loop: str,
    count: int,
    window_s: float,
    services_per_port: int,
    workdir: Path,
) -> list[Figure]:
    """Check lateness at ``count`` services without alerts, then with one channel hanging."""
    async with Receiver().running() as receiver:
        hang_url = receiver.url.replace("/hook", "/hang")
        (gone_port,) = free_ports(1)
        quiet = await trial(
            session, loop, count, window_s, services_per_port, workdir, history=False
        )
        hanging = await trial(
            session, loop, count, window_s, services_per_port, workdir, history=False,
            extra_toml=hanging_channel_toml(hang_url, gone_port),
        )  # fmt: skip
        hung = receiver.hung
    ratio = hanging.lateness.p99 / quiet.lateness.p99 if quiet.lateness.p99 > 0 else float("inf")
    return [
        Figure(
            f"check lateness p99, {count} services, a channel hanging / none",
            loop,
            "ratio",
            f"< {1 + HANG_TARGET:.2f}",
            ratio < 1 + HANG_TARGET and hung > 0,
            value=round(ratio, 3),
            detail={
                "posts_hanging": hung,
                "p99_quiet_ms": round(quiet.lateness.p99, 2),
                "p99_hanging_ms": round(hanging.lateness.p99, 2),
                "median_quiet_ms": round(quiet.lateness.median, 2),
                "median_hanging_ms": round(hanging.lateness.median, 2),
                "window_s": window_s,
            },
        )
    ]
