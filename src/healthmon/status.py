"""The status board: the latest state of every service, fed by the broker.

What a page shows must never be silently wrong, so the board

- orders one monitor's observations by that monitor's own sequence number
  (a wall-clock step cannot reorder them), and observations of different
  monitors by their check times (the ``ts`` the original also sends);
- takes every monitor's heartbeat, which repeats its current observation of
  every service, and corrects itself when it holds something different and
  older (a change it never heard of, or details it missed);
- stops trusting a monitor that went silent: whatever it said last may be
  replaced by any live monitor's observation;
- marks a service **stale** when its latest check is older than
  2 * (interval + timeout), measured with monotonic clocks only: the age the
  monitor stated plus the time since the board received it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import structlog
from pydantic import BaseModel, ValidationError

from healthmon.broker import HEARTBEAT_TOPIC, STATUS_TOPIC, Broker
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.history import ServiceHistory
from healthmon.models import (
    Heartbeat,
    MessageError,
    Observation,
    ServiceState,
    Status,
    StatusUpdate,
    decode,
    monotonic_ms,
    now_ms,
)
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

# Told the service's name and its new state whenever what clients see changed.
ChangeListener = Callable[[str, ServiceState], None]
LivenessListener = Callable[[bool], None]

# A monitor is alive while its last heartbeat is younger than this many periods.
STALE_AFTER_HEARTBEATS = 3
# How often staleness and monitor liveness are looked at.
SWEEP_MS = 250
# Status changes kept for pages that open (or reload) later: the event log.
RECENT_CHANGES = 200


def stale_after_ms(service: ServiceSettings, defaults: MonitorSettings) -> int:
    """A check older than this is stale: two full check periods, each with its timeout."""
    interval = service.interval_ms or defaults.interval_ms
    timeout = service.timeout_ms or defaults.timeout_ms
    return 2 * (interval + timeout)


class StatusBoard:
    def __init__(self, services: Sequence[ServiceSettings], monitor: MonitorSettings) -> None:
        self._states: dict[str, ServiceState] = {}
        self._history: dict[str, ServiceHistory] = {}
        self._stale_after: dict[str, int] = {}
        # Each service's dependencies as configured; every service that depends
        # on one, directly or not; and the blocked_by each was last shown with.
        self._depends_on: dict[str, tuple[str, ...]] = {}
        self._dependents: dict[str, tuple[str, ...]] = {}
        self._blocked: dict[str, list[dict[str, object]]] = {}
        self._unknown: set[str] = set()
        self.ready = asyncio.Event()
        # Monitor id → when its last heartbeat arrived (monotonic ms).
        self._monitors: dict[str, float] = {}
        self.monitor_id: str | None = None
        self.monitor_seen: int | None = None
        self.monitor_alive = False
        # The latest check latency of each service, from the last heartbeat.
        self.latency: dict[str, float | None] = {}
        self.on_change: list[ChangeListener] = []
        self.on_liveness: list[LivenessListener] = []
        # Asked when the board knows it missed details (a re-sync fetches them).
        self.on_missed: list[Callable[[], None]] = []
        self.heartbeat_ms = monitor.heartbeat_ms
        # The latest status changes, oldest first: every page's event log.
        self._recent: deque[dict[str, object]] = deque(maxlen=RECENT_CHANGES)
        # Each service's stored figures by window (24h, 7d, 30d), and whether
        # history works: None while history is off.
        self.uptimes: dict[str, dict[str, dict[str, Any]]] = {}
        self.history_state: dict[str, Any] | None = None
        self.set_services(services, monitor)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._states)

    def set_services(self, services: Sequence[ServiceSettings], monitor: MonitorSettings) -> None:
        """Follow a reload: keep known states, add new services as unknown, drop the rest."""
        names = [s.name for s in services]
        self._states = {name: self._states.get(name, ServiceState()) for name in names}
        self._history = {name: self._history.get(name, ServiceHistory()) for name in names}
        self._stale_after = {s.name: stale_after_ms(s, monitor) for s in services}
        self._depends_on = {s.name: s.depends_on for s in services}
        dependents: dict[str, list[str]] = {name: [] for name in names}
        for other in names:
            for dependency in self._dependencies(other):
                dependents.setdefault(dependency, []).append(other)
        self._dependents = {name: tuple(found) for name, found in dependents.items() if found}
        self._blocked = {name: self.blocked_by(name) for name in names}
        self.heartbeat_ms = monitor.heartbeat_ms
        self._unknown = {n for n, state in self._states.items() if state.status is Status.UNKNOWN}
        if self._unknown:
            self.ready.clear()
        else:
            self.ready.set()

    def state(self, name: str) -> ServiceState | None:
        return self._states.get(name)

    # -- taking observations -----------------------------------------------

    def _alive(self, monitor: str | None) -> bool:
        return monitor is not None and monitor in self._monitors

    def _newer(
        self, current: ServiceState, monitor: str | None, seq: int | None, ts: int, digest: str
    ) -> bool:
        if current.checked_at is None:
            return True
        if monitor is not None and monitor == current.monitor:
            if seq is not None and current.seq is not None:
                # The same check again is news only when it says more.
                return seq > current.seq or (seq == current.seq and digest != current.digest)
            return ts > current.checked_at
        if current.monitor is not None and not self._alive(current.monitor):
            # What a silent monitor said last is no better than a live one's word.
            return monitor is None or self._alive(monitor)
        return ts > current.checked_at

    def apply(self, update: StatusUpdate) -> bool:
        """Take a full observation; True when it changed what clients see."""
        current = self._states.get(update.service)
        if current is None:
            log.debug("board.unknown_service", service=update.service)
            return False
        digest = update.digest
        if not self._newer(current, update.monitor, update.seq, update.ts, digest):
            return False
        status = update.effective_status
        since = update.since
        if since is None:
            since = current.since if status is current.status else update.ts
        state = dataclasses.replace(
            current,
            status=status,
            latency_ms=update.latency_ms,
            reason=update.reason,
            checks=update.checks,
            checked_at=update.ts,
            since=since,
            monitor=update.monitor,
            seq=update.seq,
            digest=digest,
            age_ms=update.age_ms or 0.0,
            received_ms=monotonic_ms(),
        )
        return self._store(update.service, current, state)

    def _observe(self, monitor: str, name: str, obs: Observation) -> None:
        """A heartbeat's observation: a confirmation, or news the board missed."""
        current = self._states.get(name)
        if current is None:
            return
        now = monotonic_ms()
        agrees = obs.status is current.status and obs.digest == current.digest
        if not self._newer(current, monitor, obs.seq, obs.ts, obs.digest):
            if agrees and obs.age_ms < (current.age_at(now) or 0.0):
                # Another live monitor confirms what is shown, more recently.
                self._confirm(name, current, obs.age_ms, now)
            return
        if agrees:
            # A confirmation: fresher, nothing else changes (the common case).
            current.checked_at = obs.ts
            current.monitor = monitor
            current.seq = obs.seq
            self._confirm(name, current, obs.age_ms, now)
            return
        # A change this board never heard of: show the state now, and fetch
        # its details (the digest says they differ; None until they arrive).
        log.info(
            "board.corrected",
            service=name,
            monitor=monitor,
            **{"from": current.status.value, "to": obs.status.value},
        )
        same = obs.status is current.status
        state = dataclasses.replace(
            current,
            status=obs.status,
            reason=current.reason if same else None,
            checks=current.checks if same else (),
            checked_at=obs.ts,
            since=obs.since,
            monitor=monitor,
            seq=obs.seq,
            digest=None,
            age_ms=obs.age_ms,
            received_ms=now,
        )
        self._store(name, current, state)
        for missed in self.on_missed:
            missed()

    def _confirm(self, name: str, state: ServiceState, age_ms: float, now: float) -> None:
        """A fresh check agrees with what is shown: freshen the entry in place."""
        state.age_ms = age_ms
        state.received_ms = now
        if state.stale and not self._is_stale(name, state, now):
            state.stale = False
            self._notify(name, state)

    def _store(self, name: str, current: ServiceState, state: ServiceState) -> bool:
        stale = self._is_stale(name, state, state.received_ms)
        state = dataclasses.replace(state, stale=stale)
        self._states[name] = state
        if state.status is not current.status:
            self._history[name].change(state.since or state.checked_at or now_ms(), state.up)
            if current.status is not Status.UNKNOWN:
                # First knowledge (unknown to anything) is no event worth a line.
                self._recent.append(
                    {
                        "ts": state.since or state.checked_at or now_ms(),
                        "service": name,
                        "from": current.status.value,
                        "to": state.status.value,
                        "reason": state.reason,
                    }
                )
            if self._unknown:
                self._unknown.discard(name)
                if not self._unknown:
                    self.ready.set()
        visible = (
            state.status is not current.status
            or state.reason != current.reason
            or state.checks != current.checks
            or state.stale is not current.stale
        )
        if visible:
            self._notify(name, state)
        return visible

    def _notify(self, name: str, state: ServiceState) -> None:
        for listener in self.on_change:
            listener(name, state)
        # A dependency that went down (or stale, or came back) changes what
        # its dependents are blocked by: they are news too, after it.
        for dependent in self._dependents.get(name, ()):
            blocked = self.blocked_by(dependent)
            if blocked != self._blocked.get(dependent):
                self._blocked[dependent] = blocked
                for listener in self.on_change:
                    listener(dependent, self._states[dependent])

    # -- dependencies --------------------------------------------------------

    def _dependencies(self, name: str) -> list[str]:
        """Every service ``name`` depends on, directly or not, depth first in config order."""
        seen: list[str] = []
        pending = list(reversed(self._depends_on.get(name, ())))
        while pending:
            dependency = pending.pop()
            if dependency in seen or dependency == name:
                continue
            seen.append(dependency)
            pending.extend(reversed(self._depends_on.get(dependency, ())))
        return seen

    def blocked_by(self, name: str) -> list[dict[str, object]]:
        """The dependencies of ``name`` (transitive) that are down or stale, with their status."""
        blocked: list[dict[str, object]] = []
        for dependency in self._dependencies(name):
            state = self._states.get(dependency)
            if state is not None and (state.status is Status.DOWN or state.stale):
                blocked.append(
                    {"service": dependency, "status": state.status.value, "stale": state.stale}
                )
        return blocked

    def _is_stale(self, name: str, state: ServiceState, now: float) -> bool:
        age = state.age_at(now)
        return age is not None and age > self._stale_after.get(name, 0)

    # -- monitors ------------------------------------------------------------

    def heartbeat(self, beat: Heartbeat) -> None:
        self.latency = {n: v for n, v in beat.latency.items() if n in self._history}
        for name, latency in beat.latency.items():
            history = self._history.get(name)
            if history is not None:
                history.sample(latency)
        self._monitors[beat.monitor] = monotonic_ms()
        self.monitor_id = beat.monitor
        self.monitor_seen = now_ms()
        for name, obs in beat.observations.items():
            self._observe(beat.monitor, name, obs)
        if not self.monitor_alive:
            self._set_alive(True)

    def monitor_answered(self, monitor: str) -> None:
        """A monitor's snapshot arrived: as good a sign of life as a heartbeat."""
        self._monitors[monitor] = monotonic_ms()
        self.monitor_id = monitor
        if not self.monitor_alive:
            self._set_alive(True)

    def _set_alive(self, alive: bool) -> None:
        if alive is self.monitor_alive:
            return
        self.monitor_alive = alive
        log.info("monitor.alive" if alive else "monitor.silent", monitor=self.monitor_id)
        for listener in self.on_liveness:
            listener(alive)

    def broker_lost(self) -> None:
        """No heartbeat can arrive now: say so at once rather than in 3 s."""
        self._monitors.clear()
        self._set_alive(False)

    def sweep(self) -> None:
        """Forget silent monitors; mark services stale (or fresh) as their checks age."""
        now = monotonic_ms()
        silent_after = STALE_AFTER_HEARTBEATS * self.heartbeat_ms
        lost = [m for m, seen in self._monitors.items() if now - seen > silent_after]
        for monitor in lost:
            del self._monitors[monitor]
            log.info("board.monitor_lost", monitor=monitor)
        if lost:
            # Its last word may be out of date: ask the live ones.
            for missed in self.on_missed:
                missed()
        if not self._monitors:
            self._set_alive(False)
        for name, state in self._states.items():
            stale = self._is_stale(name, state, now)
            if stale is not state.stale:
                state = self._states[name] = dataclasses.replace(state, stale=stale)
                if stale:
                    age = state.age_at(now) or 0.0
                    log.info("status.stale", service=name, age_ms=round(age))
                else:
                    log.info("status.fresh", service=name)
                self._notify(name, state)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_MS / 1000)
            self.sweep()

    # -- views ---------------------------------------------------------------

    def booleans(self) -> dict[str, bool]:
        """The original's snapshot: name → up, for the services observed so far."""
        return {
            name: state.up
            for name, state in self._states.items()
            if state.status is not Status.UNKNOWN
        }

    def detail(self, name: str, state: ServiceState, now: int, mono: float) -> dict[str, object]:
        age = state.age_at(mono)
        return {
            "status": state.status.value,
            "up": state.up,
            "latency_ms": state.latency_ms,
            "reason": state.reason,
            "checked_at": state.checked_at,
            "since": state.since,
            "checks": [c.model_dump(mode="json") for c in state.checks],
            "stale": state.stale,
            "age_ms": None if age is None else round(age),
            "stale_after_ms": self._stale_after.get(name),
            "history": self._history[name].to_wire(now),
            "uptime": self.uptimes.get(name),
            "depends_on": list(self._depends_on.get(name, ())),
            "blocked_by": self.blocked_by(name),
        }

    def details(self) -> dict[str, dict[str, object]]:
        now, mono = now_ms(), monotonic_ms()
        return {name: self.detail(name, state, now, mono) for name, state in self._states.items()}

    def message(self, name: str, state: ServiceState) -> dict[str, object]:
        """``statusUpdate.data`` for browsers: the original's fields first."""
        return {
            "service": name,
            "up": state.up,
            "ts": state.checked_at,
            **self.detail(name, state, now_ms(), monotonic_ms()),
        }

    def ages(self) -> dict[str, int]:
        mono = monotonic_ms()
        return {
            name: round(age)
            for name, state in self._states.items()
            if (age := state.age_at(mono)) is not None
        }

    def recent_changes(self) -> list[dict[str, object]]:
        """The latest status changes, oldest first, of services still configured."""
        return [change for change in self._recent if change["service"] in self._states]

    def seed_changes(self, older: Sequence[dict[str, object]]) -> None:
        """Put stored changes (oldest first) before those seen since start."""
        newest = {(c["service"], c["ts"]) for c in self._recent}
        merged = [c for c in older if (c["service"], c["ts"]) not in newest]
        merged += self._recent
        self._recent.clear()
        self._recent.extend(merged[-RECENT_CHANGES:])

    def stale_after(self) -> dict[str, int]:
        return dict(self._stale_after)

    def stale_names(self) -> list[str]:
        return [name for name, state in self._states.items() if state.stale]


async def _consume_statuses(board: StatusBoard, messages: AsyncIterator[bytes]) -> None:
    async for body in messages:
        try:
            update = decode(StatusUpdate, body)
        except MessageError as exc:
            log.warning("broker.bad_message", topic=STATUS_TOPIC, error=str(exc), body=body[:200])
            continue
        board.apply(update)


async def _consume_heartbeats(board: StatusBoard, messages: AsyncIterator[bytes]) -> None:
    async for body in messages:
        try:
            beat = decode(Heartbeat, body)
        except MessageError as exc:
            log.warning(
                "broker.bad_message", topic=HEARTBEAT_TOPIC, error=str(exc), body=body[:200]
            )
            continue
        board.heartbeat(beat)


@contextlib.asynccontextmanager
async def feed(board: StatusBoard, broker: Broker) -> AsyncIterator[None]:
    """Keep ``board`` fed from ``broker``, and its staleness swept, while open.

    Subscriptions are open before this yields, so nothing published after
    that is missed.
    """
    async with (
        broker.subscribe(STATUS_TOPIC) as statuses,
        broker.subscribe(HEARTBEAT_TOPIC) as heartbeats,
    ):
        tasks = [
            supervise("board.statuses", lambda: _consume_statuses(board, statuses)),
            supervise("board.heartbeats", lambda: _consume_heartbeats(board, heartbeats)),
            supervise("board.sweep", board.run),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


Snapshot = Callable[[], Awaitable[Sequence["MonitorSnapshot"]]]


class MonitorSnapshot(BaseModel):
    """``GET /api/statuses`` of a monitor: every service as of its latest check."""

    monitor: str
    ts: int
    services: list[StatusUpdate]


class HttpSnapshot:
    """Fetch statuses from every monitor that answers, over HTTP.

    All of them, not the first: the board keeps the newest observation of
    each service, whichever monitor made it.
    """

    def __init__(self, session: aiohttp.ClientSession, urls: Sequence[str]) -> None:
        self.session = session
        self.urls = tuple(urls)

    async def _one(self, url: str) -> MonitorSnapshot:
        async with self.session.get(
            f"{url}/api/statuses", timeout=aiohttp.ClientTimeout(total=2)
        ) as response:
            response.raise_for_status()
            body = await response.read()
        return MonitorSnapshot.model_validate_json(body)

    async def __call__(self) -> Sequence[MonitorSnapshot]:
        results = await asyncio.gather(
            *(self._one(url) for url in self.urls), return_exceptions=True
        )
        found = [r for r in results if isinstance(r, MonitorSnapshot)]
        if found:
            return found
        errors = []
        for url, result in zip(self.urls, results, strict=True):
            expected = aiohttp.ClientError | TimeoutError | ValidationError | OSError
            if isinstance(result, BaseException) and not isinstance(result, expected):
                raise result
            errors.append(f"{url}: {type(result).__name__}: {result}")
        raise ConnectionError("; ".join(errors) or "no monitor URL configured")


class Resync:
    """Brings the board up to date from the monitors' snapshots when asked.

    Asked at start (a process that did not see the monitors' first results),
    whenever the broker comes back (messages in between are lost), when a
    monitor goes silent and when a heartbeat shows details the board missed.
    Retries with bounded backoff until a snapshot arrives.
    """

    def __init__(self, board: StatusBoard, snapshot: Snapshot, *, at_start: bool) -> None:
        self.board = board
        self.snapshot = snapshot
        self._wanted = asyncio.Event()
        if at_start:
            self._wanted.set()

    def trigger(self) -> None:
        self._wanted.set()

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            delay = 0.2
            while True:
                try:
                    snapshots = await self.snapshot()
                except (ConnectionError, OSError) as exc:
                    log.warning("board.resync_failed", error=str(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                changed = 0
                for snapshot in snapshots:
                    self.board.monitor_answered(snapshot.monitor)
                    changed += sum(self.board.apply(update) for update in snapshot.services)
                log.info("board.resynced", monitors=len(snapshots), changed=changed)
                break
