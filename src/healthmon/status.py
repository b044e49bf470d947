"""The status board: the latest state of every service, fed by the broker.

It applies an observation only when it is newer than what the board holds
and changes the status, so two monitors, or a restarted one, never make a
service flicker; and it knows whether a monitor is alive from heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
import structlog
from pydantic import BaseModel, ValidationError

from healthmon.broker import HEARTBEAT_TOPIC, STATUS_TOPIC, Broker
from healthmon.history import ServiceHistory
from healthmon.models import (
    Heartbeat,
    MessageError,
    ServiceState,
    Status,
    StatusUpdate,
    decode,
    now_ms,
)

log = structlog.get_logger(__name__)

ChangeListener = Callable[[StatusUpdate, ServiceState], None]
LivenessListener = Callable[[bool], None]

# A monitor is alive while its last heartbeat is younger than this many periods.
STALE_AFTER_HEARTBEATS = 3


class StatusBoard:
    def __init__(self, names: Sequence[str], *, heartbeat_ms: int) -> None:
        self._states = {name: ServiceState() for name in names}
        self._history = {name: ServiceHistory() for name in names}
        self._unknown = set(self._states)
        self._stale_after = STALE_AFTER_HEARTBEATS * heartbeat_ms / 1000
        self._expiry: asyncio.TimerHandle | None = None
        self.ready = asyncio.Event()
        if not self._unknown:
            self.ready.set()
        self.monitor_id: str | None = None
        self.monitor_seen: int | None = None
        self.monitor_alive = False
        # The latest check latency of each service, from the last heartbeat.
        self.latency: dict[str, float | None] = {}
        self.on_change: list[ChangeListener] = []
        self.on_liveness: list[LivenessListener] = []

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._states)

    def set_names(self, names: Sequence[str]) -> None:
        """Follow a reload: keep known states, add new services as unknown, drop the rest."""
        self._states = {name: self._states.get(name, ServiceState()) for name in names}
        self._history = {name: self._history.get(name, ServiceHistory()) for name in names}
        self._unknown = {n for n, state in self._states.items() if state.status is Status.UNKNOWN}
        if self._unknown:
            self.ready.clear()
        else:
            self.ready.set()

    def state(self, name: str) -> ServiceState | None:
        return self._states.get(name)

    def apply(self, update: StatusUpdate) -> bool:
        """Take an observation; True when it changed what clients should see."""
        current = self._states.get(update.service)
        if current is None:
            log.debug("board.unknown_service", service=update.service)
            return False
        status = update.effective_status
        if current.checked_at is not None and update.ts <= current.checked_at:
            return False
        if status is current.status:
            return False
        state = ServiceState(
            status=status,
            latency_ms=update.latency_ms,
            reason=update.reason,
            checked_at=update.ts,
            since=update.since or update.ts,
            checks=update.checks,
        )
        self._states[update.service] = state
        self._history[update.service].change(state.since or update.ts, state.up)
        if self._unknown:
            self._unknown.discard(update.service)
            if not self._unknown:
                self.ready.set()
        for listener in self.on_change:
            listener(update, state)
        return True

    def heartbeat(self, beat: Heartbeat) -> None:
        self.latency = {n: v for n, v in beat.latency.items() if n in self._history}
        for name, latency in beat.latency.items():
            history = self._history.get(name)
            if history is not None:
                history.sample(latency)
        self.monitor_id = beat.monitor
        self.monitor_seen = now_ms()
        loop = asyncio.get_running_loop()
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = loop.call_later(self._stale_after, self._set_alive, False)
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
        if self._expiry is not None:
            self._expiry.cancel()
        self._set_alive(False)

    def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()

    def booleans(self) -> dict[str, bool]:
        """The original's snapshot: name → up, for the services observed so far."""
        return {
            name: state.up
            for name, state in self._states.items()
            if state.status is not Status.UNKNOWN
        }

    def details(self) -> dict[str, dict[str, object]]:
        now = now_ms()
        return {
            name: {
                "status": state.status.value,
                "up": state.up,
                "latency_ms": state.latency_ms,
                "reason": state.reason,
                "checked_at": state.checked_at,
                "since": state.since,
                "checks": [c.model_dump(mode="json") for c in state.checks],
                "history": self._history[name].to_wire(now),
            }
            for name, state in self._states.items()
        }


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
    """Keep ``board`` fed from ``broker`` while the context is open.

    Subscriptions are open before this yields, so nothing published after
    that is missed.
    """
    async with (
        broker.subscribe(STATUS_TOPIC) as statuses,
        broker.subscribe(HEARTBEAT_TOPIC) as heartbeats,
    ):
        tasks = [
            asyncio.create_task(_consume_statuses(board, statuses)),
            asyncio.create_task(_consume_heartbeats(board, heartbeats)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            board.close()


Snapshot = Callable[[], Awaitable[Sequence[StatusUpdate]]]


class MonitorSnapshot(BaseModel):
    """``GET /api/statuses`` of a monitor: every service as of its latest check."""

    monitor: str
    ts: int
    services: list[StatusUpdate]


class HttpSnapshot:
    """Fetch statuses from the first monitor that answers, over HTTP."""

    def __init__(self, session: aiohttp.ClientSession, urls: Sequence[str]) -> None:
        self.session = session
        self.urls = tuple(urls)

    async def __call__(self) -> Sequence[StatusUpdate]:
        errors = []
        for url in self.urls:
            try:
                async with self.session.get(
                    f"{url}/api/statuses", timeout=aiohttp.ClientTimeout(total=2)
                ) as response:
                    response.raise_for_status()
                    body = await response.read()
                return MonitorSnapshot.model_validate_json(body).services
            except (aiohttp.ClientError, TimeoutError, ValidationError) as exc:
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
        raise ConnectionError("; ".join(errors) or "no monitor URL configured")


class Resync:
    """Brings the board up to date from a monitor's snapshot when asked.

    Asked at start (a process that did not see the monitor's first results)
    and whenever the broker comes back (messages in between are lost).
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
                    updates = await self.snapshot()
                except (ConnectionError, OSError) as exc:
                    log.warning("board.resync_failed", error=str(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                changed = sum(self.board.apply(update) for update in updates)
                log.info("board.resynced", services=len(updates), changed=changed)
                break
