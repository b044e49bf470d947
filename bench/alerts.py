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

A hanging channel (``hang_figures``): one webhook channel for every service,
to a receiver that either answers or holds every POST open (``timeout =
"60s"``), switched between windows of one server run, in ABBA order so drift
weighs on both sides alike. Alerts flow all the time (a service that flaps
every second; in the fan-out, every switch of the mock). Target: the channel
hanging moves the p99 check lateness and the median time for one change to
reach every client by less than 5 %.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.detect import VICTIM, Child
from bench.fanout import CONNECT_TIMEOUT_S, client_processes, switch_rounds, worst_per_broadcast
from bench.figures import Figure
from bench.latency import ROUND_TIMEOUT_S, Rounds, random_phase
from bench.plan import Plan
from bench.scale import WARMUP_S, mock_farm, tell_farm, window_lateness
from bench.server import (
    UP,
    BenchError,
    ServerSpec,
    Service,
    default_spec,
    free_ports,
    running_server,
    wait_ready,
    wait_until,
)
from bench.stats import Summary, percentile, summarize

TARGET_MS = 50
STORM_SERVICES = 100
STORM_DIGEST_MS = 1000
# A hanging channel may move check lateness and the fan-out by less than this share.
HANG_TARGET = 0.05
# The flapping service turns every this long: two alerts a second to the channel.
FLAP_S = 1.0
# After the channel starts or stops hanging, before the next window.
SWITCH_SETTLE_S = 0.5
BOOTSTRAP_DRAWS = 200


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
    """The webhook receiver: every POST with the moment it was read.

    While ``hanging`` it holds every POST open instead (until ``hang(False)`` or
    its end); ``/flap`` is a health endpoint the benchmark turns up and down.
    """

    def __init__(self) -> None:
        self.posts: asyncio.Queue[Post] = asyncio.Queue()
        self.url = ""
        self.hanging = False
        self._release = asyncio.Event()
        # POSTs held open while hanging (a hanging figure needs some).
        self.hung = 0
        self.flap_up = True

    def hang(self, on: bool) -> None:
        """Hold POSTs open from now on, or answer them again (and release the held)."""
        if on and not self.hanging:
            self._release = asyncio.Event()
        elif not on:
            self._release.set()
        self.hanging = on

    async def _handle(self, request: web.Request) -> web.Response:
        if self.hanging:
            self.hung += 1
            await self._release.wait()
            return web.Response(text="late")
        body = await request.read()
        self.posts.put_nowait(Post(time.perf_counter(), json.loads(body)))
        return web.Response(text="ok")

    async def _flap(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.flap_up else 503, text="flap")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        app.router.add_get("/flap", self._flap)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        (port,) = free_ports(1)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"
        try:
            yield self
        finally:
            self.hang(False)
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


# -- a hanging channel --------------------------------------------------------


def channel_toml(hook_url: str) -> str:
    """One webhook channel for every service, each change at once; a try may hang 60 s."""
    return (
        f'[[channels]]\nname = "hook"\nkind = "webhook"\nurl = "{hook_url}"\n'
        'timeout = "60s"\n\n[alerts]\nchannels = ["hook"]\nfor = "0s"\ndigest = 0\n'
    )


def alternating(pairs: int) -> list[bool]:
    """Answering (False) and hanging (True) windows, ABBA: drift weighs on both alike."""
    order: list[bool] = []
    for pair in range(pairs):
        order += [False, True] if pair % 2 == 0 else [True, False]
    return order


@contextlib.asynccontextmanager
async def flapping(receiver: Receiver, every_s: float) -> AsyncIterator[None]:
    """Turn ``/flap`` down and up every ``every_s``: a steady stream of alerts."""

    async def flap() -> None:
        while True:
            await asyncio.sleep(every_s)
            receiver.flap_up = not receiver.flap_up

    task = asyncio.create_task(flap())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _switch_to(receiver: Receiver, hanging: bool) -> None:
    receiver.hang(hanging)
    receiver.drain()
    # Released tries finish (and retried ones go out) before the window opens.
    await asyncio.sleep(SWITCH_SETTLE_S)


@dataclass(frozen=True)
class Paired:
    """The windows (or blocks) of each side pooled, and hanging / answering at one percentile."""

    answering: Summary
    hanging: Summary
    ratio: float
    interval: tuple[float, float]  # 95 %, by pair_bootstrap


def paired(blocks: dict[bool, list[list[float]]], q: float, rng: random.Random) -> Paired:
    answering = [x for block in blocks[False] for x in block]
    hanging = [x for block in blocks[True] for x in block]
    low = percentile(answering, q)
    ratio = round(percentile(hanging, q) / low, 3) if low > 0 else math.inf
    return Paired(summarize(answering), summarize(hanging), ratio, pair_bootstrap(blocks, q, rng))


async def hang_lateness(
    session: aiohttp.ClientSession,
    receiver: Receiver,
    loop: str,
    count: int,
    window_s: float,
    pairs: int,
    workdir: Path,
    rng: random.Random,
) -> Figure:
    """Check lateness at ``count`` services plus one that flaps, windows alternating
    between the channel answering and hanging, in one server run."""
    async with mock_farm(count) as (farm, ports):
        services = tuple(
            Service(f"s{i}", f"http://127.0.0.1:{ports[i]}", f"/h/{i}") for i in range(count)
        )
        flapper = Service("flap", receiver.url.removesuffix("/hook"), "/flap")
        spec = ServerSpec(
            port=free_ports(1)[0],
            services=(*services, flapper),
            history=False,
            extra_toml=channel_toml(receiver.url),
        )
        interval_s = spec.interval_ms / 1000
        windows: dict[bool, list[list[float]]] = {False: [], True: []}
        async with running_server(spec, loop, workdir) as server, flapping(receiver, FLAP_S):
            await wait_ready(session, server)
            await asyncio.sleep(WARMUP_S)
            # One window not counted: the first after the start runs slow.
            await tell_farm(farm, b"reset")
            await asyncio.sleep(window_s)
            await window_lateness(farm, interval_s)
            for hanging in alternating(pairs):
                await _switch_to(receiver, hanging)
                await tell_farm(farm, b"reset")
                await asyncio.sleep(window_s)
                windows[hanging].append(await window_lateness(farm, interval_s))
        hung = receiver.hung
    per_window = {h: [round(summarize(w).p99, 1) for w in ws] for h, ws in windows.items()}
    both = paired(windows, 99, rng)
    return Figure(
        f"check lateness p99, {count} services, the channel hanging / answering",
        loop,
        "ratio",
        f"< {1 + HANG_TARGET:.2f}",
        both.ratio < 1 + HANG_TARGET and hung > 0,
        value=both.ratio,
        detail={
            "windows": f"{pairs} pairs of {window_s:g} s, ABBA",
            "ratio_95ci": list(both.interval),
            "posts_held_open": hung,
            "p99_answering_ms": round(both.answering.p99, 2),
            "p99_hanging_ms": round(both.hanging.p99, 2),
            "median_answering_ms": round(both.answering.median, 2),
            "median_hanging_ms": round(both.hanging.median, 2),
            "p99_per_window_answering_ms": per_window[False],
            "p99_per_window_hanging_ms": per_window[True],
        },
    )


def pair_bootstrap(
    windows: dict[bool, list[list[float]]], q: float, rng: random.Random
) -> tuple[float, float]:
    """A 95 % interval for the ratio of the pooled ``q``-th percentiles (hanging /
    answering), drawing whole pairs of windows with replacement."""
    pairs = list(zip(windows[False], windows[True], strict=True))
    ratios = []
    for _ in range(BOOTSTRAP_DRAWS):
        drawn = rng.choices(pairs, k=len(pairs))
        answering = percentile([x for a, _ in drawn for x in a], q)
        hanging = percentile([x for _, h in drawn for x in h], q)
        ratios.append(hanging / answering if answering > 0 else math.inf)
    return round(percentile(ratios, 2.5), 3), round(percentile(ratios, 97.5), 3)


def _new_broadcasts(
    reports: list[list[list[Any]]], seen: set[tuple[object, ...]]
) -> list[list[list[Any]]]:
    """Only the rows of broadcasts not in ``seen`` (the clients' counts add up)."""
    keys = {tuple(row[:-3]) for rows in reports for row in rows}
    fresh = keys - seen
    seen |= fresh
    return [[row for row in rows if tuple(row[:-3]) in fresh] for rows in reports]


async def hang_fanout(
    session: aiohttp.ClientSession,
    receiver: Receiver,
    loop: str,
    size: int,
    rounds: int,
    pairs: int,
    workdir: Path,
    rng: random.Random,
) -> Figure:
    """One change reaching ``size`` clients, blocks of rounds alternating between the
    channel answering and hanging; every switch is an alert to it."""
    base = default_spec()
    spec = replace(base, history=False, extra_toml=channel_toml(receiver.url))
    worst: dict[bool, list[list[float]]] = {False: [], True: []}
    lost = {False: 0, True: 0}
    seen: set[tuple[object, ...]] = set()
    async with running_server(spec, loop, workdir) as server:
        await wait_ready(session, server)
        await wait_until(session, spec, statuses=UP)
        async with client_processes(spec.port, size) as processes:
            await wait_until(session, spec, clients=size, timeout_s=CONNECT_TIMEOUT_S)
            for hanging in alternating(pairs):
                await _switch_to(receiver, hanging)
                reports = await switch_rounds(session, spec, rounds, processes)
                block, _, block_lost = worst_per_broadcast(
                    size, rounds * 2, _new_broadcasts(reports, seen)
                )
                worst[hanging].append(block)
                lost[hanging] += block_lost
    hung = receiver.hung
    both = paired(worst, 50, rng)
    return Figure(
        f"median time to all {size} clients, the channel hanging / answering",
        loop,
        "ratio",
        f"< {1 + HANG_TARGET:.2f}, 0 lost",
        both.ratio < 1 + HANG_TARGET and hung > 0 and lost == {False: 0, True: 0},
        value=both.ratio,
        detail={
            "blocks": f"{pairs} pairs of {rounds * 2} broadcasts, ABBA",
            "ratio_95ci": list(both.interval),
            "posts_held_open": hung,
            "answering_ms": both.answering.as_dict(),
            "hanging_ms": both.hanging.as_dict(),
            "lost_answering": lost[False],
            "lost_hanging": lost[True],
        },
    )


async def hang_figures(
    session: aiohttp.ClientSession,
    loop: str,
    plan: Plan,
    workdir: Path,
    rng: random.Random,
) -> list[Figure]:
    """What a channel that hangs costs the checks and the pushes."""
    async with Receiver().running() as receiver:
        lateness = await hang_lateness(
            session,
            receiver,
            loop,
            plan.hang_services,
            plan.hang_window_s,
            plan.hang_pairs,
            workdir,
            rng,
        )
        fanout = await hang_fanout(
            session,
            receiver,
            loop,
            plan.hang_fanout_size,
            plan.hang_fanout_rounds,
            plan.hang_pairs,
            workdir,
            rng,
        )
    return [lateness, fanout]
