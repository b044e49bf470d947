"""Convergence under chaos: from a control call changing the truth to the LAST client agreeing.

One healthmon process (its own mocks, in-memory broker) and ``CLIENTS``
WebSocket clients in the benchmark process, each keeping a view from the
wire alone: ``initialSnapshot`` (``services[name].status``, ``.stale``),
then ``statusUpdate.data`` (``status``, ``stale``); a closed socket empties
the view and the client reconnects (a fresh snapshot).

The actions come in a seeded random order, each after a random phase
against the check interval:

- **truth change**: a mock switched to a mode whose truth differs (up→up,
  degraded→degraded, down/error/slow→down), half the time as a flap (a
  first mode, then the final one 100 to 300 ms later, shorter than an
  interval). t0 is taken just before the POST that sets the final mode.
- **monitor off, then on**: ``POST /api/components/monitor``; off is timed
  until every client shows every service stale, a mock is switched while
  it is off, and on is timed until every client shows the truth, not stale.
- **ws off, then on**: ``POST /api/components/ws``; a mock is switched while
  the clients are away; on is timed until every client has reconnected and
  shows the truth (includes the clients' own reconnect delay, ≤ 50 ms).

A sample is the time from t0 until the last client's view of the services
concerned last changed into agreement (0 for a client that already agreed),
read once every client agrees and has kept agreeing for a settle window of
interval + heartbeat, so a late flip moves the sample rather than hiding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.figures import Figure
from bench.server import BenchError, ServerSpec, default_spec, running_server, set_mode, wait_ready
from bench.server import wait_until as wait_server
from bench.stats import Summary, summarize

CLIENTS = 8
MODES = ("up", "down", "error", "slow", "degraded")
TRUTH = {"up": "up", "degraded": "degraded", "down": "down", "error": "down", "slow": "down"}
# healthmon's default heartbeat period (the spec writes interval and timeout only).
HEARTBEAT_MS = 1000
# Waiting for agreement longer than this counts the action as missed.
AGREE_TIMEOUT_S = 10.0
RECONNECT_S = 0.05
FLAP_S = (0.1, 0.3)

Seen = tuple[str, bool]


class ViewClient:
    """One page's view, and when each service's shown value last changed."""

    def __init__(self, session: aiohttp.ClientSession, url: str, changed: asyncio.Event) -> None:
        self.session = session
        self.url = url
        self.view: dict[str, Seen] = {}
        self.changed_at: dict[str, float] = {}
        self.connected = False
        self.snapshots = 0
        self._changed = changed

    async def run(self) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with self.session.ws_connect(
                    self.url, timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
                ) as ws:
                    async for msg in ws:
                        if msg.type is aiohttp.WSMsgType.TEXT:
                            self._receive(json.loads(msg.data), time.perf_counter())
            self.connected = False
            self.view = {}
            self._changed.set()
            # A reconnecting page's delay, not a synchronisation.
            await asyncio.sleep(RECONNECT_S)

    def _show(self, name: str, seen: Seen, now: float) -> None:
        if self.view.get(name) != seen:
            self.view[name] = seen
            self.changed_at[name] = now

    def _receive(self, frame: dict[str, Any], now: float) -> None:
        if frame.get("type") == "initialSnapshot":
            for name, info in (frame.get("services") or {}).items():
                self._show(name, _seen(info), now)
            self.connected = True
            self.snapshots += 1
        elif frame.get("type") == "statusUpdate":
            data = frame["data"]
            self._show(data["service"], _seen(data), now)
        else:
            return
        self._changed.set()


def _seen(info: Mapping[str, Any]) -> Seen:
    """(status, stale) as a page reads them; no ``stale`` field means not stale."""
    status = info.get("status") or ("up" if info.get("up") else "down")
    return str(status), bool(info.get("stale", False))


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)
    missed: int = 0


@dataclass
class Convergence:
    truth: Samples = field(default_factory=Samples)
    monitor_back: Samples = field(default_factory=Samples)
    stale: Samples = field(default_factory=Samples)
    ws_back: Samples = field(default_factory=Samples)
    # Agreement lost during a settle window: a late flip.
    flips: int = 0


class Chaos:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        spec: ServerSpec,
        clients: list[ViewClient],
        changed: asyncio.Event,
        rng: random.Random,
    ) -> None:
        self.session = session
        self.spec = spec
        self.clients = clients
        self.changed = changed
        self.rng = rng
        self.modes = dict.fromkeys(spec.names, "up")
        self.result = Convergence()
        self.settle_s = (spec.interval_ms + HEARTBEAT_MS) / 1000

    # -- what clients must show ---------------------------------------------

    def _expected(self, live: bool) -> Callable[[str, Seen], bool]:
        if live:
            return lambda name, seen: seen == (TRUTH[self.modes[name]], False)
        return lambda _name, seen: seen[1]

    def _agree(self, names: Iterable[str], ok: Callable[[str, Seen], bool]) -> bool:
        names = tuple(names)
        for client in self.clients:
            if not client.connected:
                return False
            for name in names:
                seen = client.view.get(name)
                if seen is None or not ok(name, seen):
                    return False
        return True

    async def until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not predicate():
                    self.changed.clear()
                    await self.changed.wait()
                return True
        return False

    async def converged(
        self, t0: float, names: Iterable[str], *, live: bool, samples: Samples
    ) -> None:
        """Wait for agreement, hold it for the settle window, then take the sample."""
        names = tuple(names)
        ok = self._expected(live)
        deadline = t0 + AGREE_TIMEOUT_S
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not await self.until(lambda: self._agree(names, ok), remaining):
                samples.missed += 1
                return
            # Held for the whole settle window, or a late flip: then wait for agreement again.
            if not await self.until(lambda: not self._agree(names, ok), self.settle_s):
                break
            self.result.flips += 1
        last = max(max((c.changed_at.get(n, t0) for n in names), default=t0) for c in self.clients)
        samples.values.append(max(last - t0, 0.0) * 1000)

    # -- actions -------------------------------------------------------------

    async def _phase(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.spec.interval_ms / 1000))

    async def _switch(self, name: str, mode: str) -> float:
        t0 = time.perf_counter()
        await set_mode(self.session, self.spec, name, mode)
        self.modes[name] = mode
        return t0

    async def _component(self, component: str, running: bool) -> float:
        t0 = time.perf_counter()
        url = f"{self.spec.base_url}/api/components/{component}"
        async with self.session.post(url, json={"running": running}) as response:
            if response.status != 200:
                raise BenchError(f"POST {component} running={running}: HTTP {response.status}")
        return t0

    async def _change_truth(self) -> tuple[str, float]:
        """Switch one mock (maybe as a flap) so its truth changes; (name, t0 of the last POST)."""
        name = self.rng.choice(self.spec.names)
        before = TRUTH[self.modes[name]]
        final = self.rng.choice([m for m in MODES if TRUTH[m] != before])
        if self.rng.random() < 0.5:
            await self._switch(name, self.rng.choice([m for m in MODES if m != self.modes[name]]))
            await asyncio.sleep(self.rng.uniform(*FLAP_S))
        return name, await self._switch(name, final)

    async def truth_change(self) -> None:
        await self._phase()
        name, t0 = await self._change_truth()
        await self.converged(t0, [name], live=True, samples=self.result.truth)

    async def monitor_cycle(self) -> None:
        await self._phase()
        t0 = await self._component("monitor", False)
        await self.converged(t0, self.spec.names, live=False, samples=self.result.stale)
        await self._change_truth()
        await self._phase()
        t0 = await self._component("monitor", True)
        await self.converged(t0, self.spec.names, live=True, samples=self.result.monitor_back)

    async def ws_cycle(self) -> None:
        await self._phase()
        await self._component("ws", False)
        await self._change_truth()
        t0 = await self._component("ws", True)
        await self.converged(t0, self.spec.names, live=True, samples=self.result.ws_back)


@contextlib.asynccontextmanager
async def crowd(
    session: aiohttp.ClientSession, url: str, count: int
) -> AsyncIterator[tuple[list[ViewClient], asyncio.Event]]:
    changed = asyncio.Event()
    clients = [ViewClient(session, url, changed) for _ in range(count)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    try:
        yield clients, changed
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def convergence_figures(
    session: aiohttp.ClientSession,
    loop: str,
    rounds: int,
    cycles: int,
    workdir: Path,
    rng: random.Random,
) -> list[Figure]:
    spec = default_spec()
    actions = ["truth"] * rounds + ["monitor"] * cycles + ["ws"] * cycles
    rng.shuffle(actions)
    async with running_server(spec, loop, workdir) as server:
        await wait_ready(session, server)
        await wait_server(session, spec, statuses=frozenset({"up"}))
        async with crowd(session, spec.ws_url, CLIENTS) as (clients, changed):
            chaos = Chaos(session, spec, clients, changed, rng)
            if not await chaos.until(lambda: all(c.connected for c in clients), 30):
                raise BenchError(f"{CLIENTS} clients did not all get a snapshot within 30 s")
            steps = {
                "truth": chaos.truth_change,
                "monitor": chaos.monitor_cycle,
                "ws": chaos.ws_cycle,
            }
            for action in actions:
                await steps[action]()
    return _figures(loop, spec, chaos.result)


def _figures(loop: str, spec: ServerSpec, result: Convergence) -> list[Figure]:
    interval, timeout = spec.interval_ms, spec.timeout_ms
    bound = interval + HEARTBEAT_MS + 100
    stale_bound = 2 * (interval + timeout) + HEARTBEAT_MS
    detail: dict[str, object] = {"clients": CLIENTS, "flips": result.flips}
    return [
        _figure(
            f"truth change → last of {CLIENTS} clients (ms)",
            loop,
            result.truth,
            f"p99 ≤ {bound}",
            lambda s: s.p99 <= bound,
            detail,
        ),
        _figure(
            "monitor back on → last client (ms)",
            loop,
            result.monitor_back,
            f"p99 ≤ {bound}",
            lambda s: s.p99 <= bound,
            detail,
        ),
        _figure(
            "monitor off → last client sees stale (ms)",
            loop,
            result.stale,
            f"max ≤ {stale_bound}",
            lambda s: s.max <= stale_bound,
            detail,
        ),
        _figure("ws back on → last client (ms)", loop, result.ws_back, "—", None, detail),
    ]


def _figure(
    label: str,
    loop: str,
    samples: Samples,
    target: str,
    holds: Callable[[Summary], bool] | None,
    detail: dict[str, object],
) -> Figure:
    summary = summarize(samples.values)
    met: bool | None = None
    if holds is not None:
        met = samples.missed == 0 and bool(samples.values) and holds(summary)
    return Figure(
        label, loop, "ms", target, met, summary=summary, detail={**detail, "missed": samples.missed}
    )
