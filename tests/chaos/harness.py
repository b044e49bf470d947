"""What a chaos run needs: clients keeping a view, the truth, the bound and the record.

The clients are third-party WebSocket clients (the ``websockets`` library),
written only from the wire format: a view from ``initialSnapshot``
(``services[name].status`` and ``.stale``), then each ``statusUpdate.data``
(``status``, ``stale``). A closed socket empties the view and the client
reconnects, as a page does, getting a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import unused_port
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from tests.support import NAMES

MODES = ("up", "down", "error", "slow", "degraded")
# What each mock mode must look like to a client once the monitor has seen it.
TRUTH = {"up": "up", "degraded": "degraded", "down": "down", "error": "down", "slow": "down"}
# The status of a service nobody has observed yet.
UNKNOWN = "unknown"
# A reconnecting client's backoff: what a page does, not a synchronisation.
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 0.4
# Bounds on waiting for a condition that is not the bound under test.
READY_S = 20.0
# A bad mode then another one this soon: a flap shorter than one check interval.
FLAP_S = (0.1, 0.3)


def chaos_seed() -> int:
    """``CHAOS_SEED`` from the environment, else a fresh one; printed either way."""
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1 << 32)))
    print(f"chaos seed {seed}")
    return seed


def chaos_rounds(rounds: int, budget_s: float) -> tuple[int, float]:
    """(rounds, seconds after which no round starts): CI's, or ``CHAOS_ROUNDS`` for a soak."""
    wanted = os.environ.get("CHAOS_ROUNDS")
    if wanted is None:
        return rounds, budget_s
    return int(wanted), budget_s * int(wanted) / rounds


def plan_rounds(
    rng: random.Random,
    rounds: int,
    weights: Mapping[str, int],
    required: Iterable[str],
    per_round: tuple[int, ...] = (1,),
) -> list[list[str]]:
    """Each round's kinds of action, drawn by weight; each ``required`` kind in the first half.

    So every run, whatever its seed, exercises every kind of failure.
    """
    kinds, odds = list(weights), list(weights.values())
    plan = [rng.choices(kinds, odds, k=rng.choice(per_round)) for _ in range(rounds)]
    early = max(1, rounds // 2)
    for kind in required:
        if not any(kind in actions for actions in plan[:early]):
            plan[rng.randrange(early)].append(kind)
    return plan


@dataclass(frozen=True, slots=True)
class Timing:
    """The ``[monitor]`` periods the config is written with, and the bounds they give."""

    interval_ms: int = 500
    timeout_ms: int = 1000
    heartbeat_ms: int = 1000

    @property
    def quiet_s(self) -> float:
        """The promise: a change is on every page within a check and a heartbeat."""
        return (self.interval_ms + self.timeout_ms + self.heartbeat_ms) / 1000

    @property
    def stale_quiet_s(self) -> float:
        """With no observation at all: stale after 2 * (interval + timeout), seen by a heartbeat."""
        return (2 * (self.interval_ms + self.timeout_ms) + self.heartbeat_ms) / 1000

    def toml(self) -> str:
        return (
            "[monitor]\n"
            f"interval_ms = {self.interval_ms}\n"
            f"timeout_ms = {self.timeout_ms}\n"
            f"heartbeat_ms = {self.heartbeat_ms}\n"
        )


def write_config(path: Path, timing: Timing, names: Iterable[str] = NAMES) -> None:
    """A config file: the periods, and one mock service per name on a free port."""
    services = "".join(
        f'\n[[services]]\nname = "{name}"\nurl = "http://127.0.0.1:{unused_port()}"\n'
        'data_endpoint = "/data"\nmock = true\n'
        for name in names
    )
    path.write_text(timing.toml() + services)


class ViewClient:
    """One page's view of every service, kept from the wire alone."""

    def __init__(self, name: str, url: str, changed: Callable[[], None], start: float) -> None:
        self.name = name
        self.url = url
        self.view: dict[str, tuple[str, bool]] = {}
        self.connected = False
        self.snapshots = 0
        self.monitor_alive: bool | None = None
        self.events: deque[str] = deque(maxlen=16)
        self._changed = changed
        self._start = start

    def _note(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self._start:6.2f}s {text}")

    async def run(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            reason = "closed"
            try:
                async with connect(self.url, open_timeout=3, close_timeout=1) as ws:
                    async for raw in ws:
                        self._receive(json.loads(raw))
                        delay = RECONNECT_MIN_S
                    reason = f"closed {ws.close_code}"
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if self.connected:
                self._note(f"lost ({reason})")
            self.connected = False
            self.view = {}
            self._changed()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "initialSnapshot":
            services: dict[str, dict[str, Any]] = message.get("services") or {}
            self.view = {name: _seen(info) for name, info in services.items()}
            self.connected = True
            self.snapshots += 1
            self._note(f"snapshot {_show(self.view)}")
        elif kind == "statusUpdate":
            data: dict[str, Any] = message["data"]
            self.view[data["service"]] = _seen(data)
            self._note(f"update {data['service']}={_show_one(self.view[data['service']])}")
        elif kind == "heartbeat":
            alive = bool(message.get("monitor", {}).get("alive"))
            if alive is not self.monitor_alive:
                self._note(f"heartbeat monitor alive={alive}")
            self.monitor_alive = alive
        else:
            return
        self._changed()


def _seen(info: Mapping[str, Any]) -> tuple[str, bool]:
    """(status, stale) as a page reads them; a server without ``stale`` means not stale."""
    status = info.get("status")
    if status is None:
        status = "up" if info.get("up") else "down"
    return str(status), bool(info.get("stale", False))


def _show_one(seen: tuple[str, bool]) -> str:
    return seen[0] + ("(stale)" if seen[1] else "")


def _show(view: Mapping[str, tuple[str, bool]]) -> str:
    return ", ".join(f"{name}={_show_one(seen)}" for name, seen in sorted(view.items()))


@dataclass
class Crowd:
    """Clients on several ws servers, and waiting for what they show."""

    start: float
    clients: list[ViewClient] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, url: str, count: int, label: str) -> list[ViewClient]:
        added = [
            ViewClient(f"{label}#{i}", url, self._changed.set, self.start) for i in range(count)
        ]
        self.clients += added
        self._tasks += [asyncio.create_task(client.run()) for client in added]
        return added

    async def until(self, predicate: Callable[[], bool], within: float) -> None:
        """Wait until ``predicate`` holds, re-checked on every message any client reads."""
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def counts(self, clients: Iterable[ViewClient] | None = None) -> dict[str, int]:
        """Snapshots so far per client (of ``clients``, else of all)."""
        return {c.name: c.snapshots for c in (self.clients if clients is None else clients)}

    async def fresh(self, since: Mapping[str, int], within: float = READY_S) -> None:
        """Every client named in ``since`` connected with a newer snapshot than it had."""
        await self.until(
            lambda: all(
                c.connected and c.snapshots > since[c.name] for c in self.clients if c.name in since
            ),
            within,
        )

    async def connected(self, within: float = READY_S) -> None:
        await self.until(lambda: all(c.connected for c in self.clients), within)

    def problems(self, truth: Mapping[str, str], live: bool) -> list[str]:
        """How each client's view differs from what it must show now.

        ``live``: a monitor is running, so every service shows its truth, not
        stale. Otherwise every service must be marked stale (any status), or
        be ``unknown``: a ws process started while no monitor runs has never
        had an observation, so it claims nothing that could be out of date.
        """
        found = []
        for client in self.clients:
            if not client.connected:
                found.append(f"{client.name}: not connected")
                continue
            for name, mode in truth.items():
                seen = client.view.get(name)
                if seen is None:
                    found.append(f"{client.name}: {name} missing")
                elif live and seen != (TRUTH[mode], False):
                    found.append(
                        f"{client.name}: {name} shows {_show_one(seen)}, "
                        f"truth {TRUTH[mode]} (mode {mode})"
                    )
                elif not live and not seen[1] and seen[0] != UNKNOWN:
                    found.append(f"{client.name}: {name} shows {_show_one(seen)}, not stale")
        return found

    def views(self) -> str:
        lines = []
        for client in self.clients:
            state = "connected" if client.connected else "DISCONNECTED"
            lines.append(
                f"  {client.name} [{state}, {client.snapshots} snapshots, "
                f"monitor alive={client.monitor_alive}]: {_show(client.view)}"
            )
            lines += [f"      {event}" for event in client.events]
        return "\n".join(lines)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Record:
    """The seed, the round and every action so far: what a failure must print."""

    seed: int
    start: float = field(default_factory=time.monotonic)
    round: int = 0
    history: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.history.append(f"{time.monotonic() - self.start:6.2f}s round {self.round}: {text}")

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def summary(self) -> str:
        return "\n".join(
            [
                f"chaos seed {self.seed}: {self.round} rounds in {self.elapsed():.1f} s",
                *(f"  {h}" for h in self.history),
            ]
        )

    @contextlib.contextmanager
    def guard(self, crowd: Crowd) -> Iterator[None]:
        """Any other failure inside (a process not starting, a refused POST) told with the seed."""
        try:
            yield
        except (AssertionError, TimeoutError) as exc:
            if "chaos seed" in str(exc):
                raise
            raise AssertionError(self.failure(crowd, f"{type(exc).__name__}: {exc}", [])) from exc

    def failure(self, crowd: Crowd, what: str, problems: list[str]) -> str:
        return "\n".join(
            [
                f"chaos seed {self.seed} (rerun with CHAOS_SEED={self.seed}), round {self.round}: "
                f"{what}",
                *(f"  {p}" for p in problems[:40]),
                "actions:",
                *(f"  {h}" for h in self.history),
                "client views:",
                crowd.views(),
            ]
        )


def check(record: Record, crowd: Crowd, truth: Mapping[str, str], *, live: bool) -> None:
    """Assert every client's view is the truth (``live``) or all stale; the record if not."""
    problems = crowd.problems(truth, live)
    what = "views differ from the truth" if live else "no monitor alive, views not all stale"
    record.note(f"check {'truth' if live else 'stale'}: {'ok' if not problems else 'FAILED'}")
    assert not problems, record.failure(crowd, what, problems)


async def wait_or_fail(
    record: Record, crowd: Crowd, waiting: Callable[[], Awaitable[None]], what: str
) -> None:
    """Await ``waiting()``; on timeout, fail with the seed and the record."""
    try:
        await waiting()
    except TimeoutError:
        raise AssertionError(record.failure(crowd, f"timed out: {what}", [])) from None


SetMode = Callable[[str, str], Awaitable[None]]


async def mode_action(
    rng: random.Random, record: Record, truth: dict[str, str], set_mode: SetMode
) -> None:
    """Switch one mock to another mode, or flap it: a bad mode, then another 100 to 300 ms later."""
    name = rng.choice(sorted(truth))
    current = truth[name]
    first = rng.choice([m for m in MODES if m != current])
    await set_mode(name, first)
    truth[name] = first
    if rng.random() < 0.5:
        record.note(f"{name}: {current} → {first}")
        return
    # Mostly back to where it was, sometimes somewhere else: shorter than an interval.
    then = current if rng.random() < 0.6 else rng.choice([m for m in MODES if m != first])
    pause = rng.uniform(*FLAP_S)
    await asyncio.sleep(pause)
    await set_mode(name, then)
    truth[name] = then
    record.note(f"{name}: flap {current} → {first} → {then} after {pause * 1000:.0f} ms")
