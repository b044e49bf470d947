"""Scheduling checks: ``Monitor`` runs one loop per service and publishes what changes.

A check itself (``healthmon.checks``: http, tcp, grpc) is one step that returns
its result as data; the loop only decides when. Each service has its own loop,
so a hung service delays nobody else; a loop never has two checks of its
service in flight; a change of the shown state (or of its details) is
published, and a heartbeat says the monitor is alive.

A loop checks every interval, and earlier when its check has news: the
service closed its idle connection (a crashed process's sockets close at
once), or a gRPC Watch stream pushed a change. Early checks after a closed
connection are spaced by a quarter interval, so a service that closes every
connection costs at most a few extra checks per interval.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiohttp
import structlog

from healthmon.broker import HEARTBEAT_TOPIC, STATUS_TOPIC, Broker, BrokerUnavailable
from healthmon.checks import Check, CheckSpec, check_for
from healthmon.checks.http import USER_AGENT
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.models import (
    CheckResult,
    Heartbeat,
    Observation,
    Status,
    StatusUpdate,
    monotonic_ms,
    now_ms,
    rounded,
)
from healthmon.supervise import supervise

__all__ = ["CheckSpec", "Debounce", "Monitor"]

log = structlog.get_logger(__name__)

#: Early checks after a lost connection: at least this share of an interval apart.
RECHECK_SPACING = 0.25


@dataclass(slots=True)
class Debounce:
    """Consecutive results needed before the shown state changes (as in Kubernetes probes).

    ``failure_threshold`` results that are not up turn an up service to
    their status; ``success_threshold`` up results turn it back. The first
    result is shown at once.
    """

    failure_threshold: int
    success_threshold: int
    shown: Status | None = None
    _candidate: Status | None = None
    _streak: int = 0

    def feed(self, status: Status) -> bool:
        """Take one result; True when the shown state changes."""
        if self.shown is None or status is self.shown:
            changed = self.shown is None
            self.shown, self._candidate, self._streak = status, None, 0
            return changed
        if status is self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = status, 1
        needed = self.success_threshold if status is Status.UP else self.failure_threshold
        if self._streak < needed:
            return False
        self.shown, self._candidate, self._streak = status, None, 0
        return True


class Monitor:
    """Runs one check loop per service and a heartbeat, publishing to a broker.

    Every observation gets the next number of this monitor's own sequence, so
    boards order its observations without trusting its wall clock. A change of
    the shown state or of its details (reason, failing checks) is published at
    once; every heartbeat repeats every service's current observation, so a
    board that missed a message corrects itself within one heartbeat.
    """

    def __init__(
        self,
        services: Iterable[ServiceSettings],
        settings: MonitorSettings,
        broker: Broker,
        instance_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.broker = broker
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self.specs = {s.name: CheckSpec.resolve(s, settings) for s in services}
        # The latest check of each service with its sequence number, and the
        # shown state (its details follow the latest check of that state).
        self.latest: dict[str, tuple[CheckResult, int]] = {}
        self.current: dict[str, StatusUpdate] = {}
        self._sequence = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        # Start and stop calls apply one at a time, in the order they came.
        self._switching = asyncio.Lock()
        # Told of every result (metrics); must be quick and must not raise.
        self.observers: list[Callable[[CheckResult], None]] = []
        # Told of every result with the state it leaves shown (history); the same rules.
        self.recorders: list[Callable[[CheckResult, StatusUpdate], None]] = []

    @property
    def running(self) -> bool:
        return self._heartbeat is not None

    async def start(self) -> None:
        async with self._switching:
            if self.running:
                return
            self.latest.clear()
            self.current.clear()
            self._session = aiohttp.ClientSession(
                # No pool limits: each service's loop has at most one check in
                # flight, so connections are already bounded by the services, and
                # hundreds of services behind one gateway must not queue for a few.
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=60),
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": USER_AGENT},
            )
            count = len(self.specs)
            for index, spec in enumerate(self.specs.values()):
                # Spread first checks over one interval so they do not all fire
                # on the same millisecond.
                self._watch(spec, offset=spec.interval_ms / 1000 * index / count)
            self._heartbeat = supervise("monitor.heartbeat", self._heartbeats)
            log.info("monitor.started", monitor=self.instance_id, services=count)

    async def stop(self) -> None:
        async with self._switching:
            tasks = [*self._watches.values(), *([self._heartbeat] if self._heartbeat else [])]
            self._watches.clear()
            self._heartbeat = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._session is not None:
                await self._session.close()
                self._session = None
            if tasks:
                log.info("monitor.stopped", monitor=self.instance_id)

    async def set_services(
        self, services: Iterable[ServiceSettings], settings: MonitorSettings
    ) -> None:
        """Check these services from now on; unchanged ones keep their loop and state.

        The switch itself happens before the first ``await``: a caller that
        swaps other parts in the same step sees all of them change together.
        """
        specs = {s.name: CheckSpec.resolve(s, settings) for s in services}
        self.settings = settings
        stale = [name for name, spec in self.specs.items() if specs.get(name) != spec]
        tasks = [self._watches.pop(name) for name in stale if name in self._watches]
        for task in tasks:
            task.cancel()
        for name in stale:
            self.latest.pop(name, None)
            self.current.pop(name, None)
        added = [spec for name, spec in specs.items() if self.specs.get(name) != spec]
        self.specs = specs
        if self.running:
            for spec in added:
                self._watch(spec, offset=0.0)
        await asyncio.gather(*tasks, return_exceptions=True)

    def _watch(self, spec: CheckSpec, offset: float) -> None:
        first = [offset]

        def run() -> Awaitable[None]:
            # A restarted loop checks at once: its service waited long enough.
            start, first[0] = first[0], 0.0
            return self._loop(spec, start)

        self._watches[spec.name] = supervise(f"check:{spec.name}", run)

    async def _loop(self, spec: CheckSpec, offset: float) -> None:
        assert self._session is not None
        # The loop owns its service's check and so its connections: cancelling
        # the loop (stop, or the service changed or removed) closes them.
        check = check_for(spec, self._session)
        try:
            await self._checks(check, offset)
        finally:
            await check.aclose()

    async def _checks(self, check: Check, offset: float) -> None:
        loop = asyncio.get_running_loop()
        spec = check.spec
        interval = spec.interval_ms / 1000
        debounce = Debounce(spec.failure_threshold, spec.success_threshold)
        unpublished = False
        due = loop.time() + offset
        recheck_from = loop.time()
        while True:
            woken = await check.wake.until(due, recheck_from)
            result = await check.run()
            unpublished |= self.record(result, debounce)
            if unpublished:
                # A failed publish is retried after the next check.
                unpublished = not await self._publish(self.current[spec.name])
            # An early check leaves the schedule as it was; after a recheck
            # (a request to the service) the next one waits a while.
            if woken == "recheck":
                recheck_from = loop.time() + interval * RECHECK_SPACING
            elif woken == "due":
                # Fixed rate; a check that overran its slot is followed at once,
                # never by a burst of catch-up checks.
                due = max(due + interval, loop.time())

    def record(self, result: CheckResult, debounce: Debounce) -> bool:
        """Take one check's result; True when the shown state or its details changed."""
        name = result.service
        seq = next(self._sequence)
        self.latest[name] = (result, seq)
        for observe in self.observers:
            observe(result)
        changed = self._shown(result, debounce, seq)
        shown = self.current.get(name)
        if shown is not None:
            for record in self.recorders:
                record(result, shown)
        return changed

    def _shown(self, result: CheckResult, debounce: Debounce, seq: int) -> bool:
        name = result.service
        previous = self.current.get(name)
        if debounce.feed(result.status):
            _log_change(result, previous)
            self.current[name] = StatusUpdate.from_result(result, self.instance_id, seq)
            return True
        if previous is None or result.status is not debounce.shown:
            return False
        # The common case, every check of a steady service: nothing to build.
        if result.reason == previous.reason and result.checks == previous.checks:
            return False
        update = StatusUpdate.from_result(result, self.instance_id, seq, since=previous.since)
        if update.digest == previous.digest:
            return False
        # Same state, another why (connection refused, then a 503 "db gone").
        log.debug("status.details_changed", service=name, reason=result.reason)
        self.current[name] = update
        return True

    def observations(self) -> dict[str, Observation]:
        """Every observed service's shown state as of its latest check."""
        now = monotonic_ms()
        found = {}
        for name, update in self.current.items():
            result, seq = self.latest[name]
            found[name] = Observation(
                seq=seq,
                status=update.effective_status,
                since=update.since or update.ts,
                ts=result.checked_at,
                age_ms=round(max(0.0, now - result.finished_ms), 1),
                digest=update.digest,
            )
        return found

    def snapshot(self) -> list[StatusUpdate]:
        """Every observed service as of its latest check, ``since`` its last change."""
        now = monotonic_ms()
        updates = []
        for name, update in self.current.items():
            result, seq = self.latest[name]
            updates.append(
                update.model_copy(
                    update={
                        "ts": result.checked_at,
                        "latency_ms": rounded(result.latency_ms),
                        "seq": seq,
                        "age_ms": round(max(0.0, now - result.finished_ms), 1),
                    }
                )
            )
        return updates

    async def _publish(self, update: StatusUpdate) -> bool:
        try:
            await self.broker.publish(
                STATUS_TOPIC, update.model_dump_json(exclude_none=True).encode()
            )
        except BrokerUnavailable as exc:
            log.warning("monitor.publish_failed", service=update.service, error=str(exc))
            return False
        return True

    async def _heartbeats(self) -> None:
        while True:
            # Read every beat: a reload may change the period.
            settings = self.settings
            beat = Heartbeat(
                monitor=self.instance_id,
                ts=now_ms(),
                interval_ms=settings.interval_ms,
                heartbeat_ms=settings.heartbeat_ms,
                latency={n: rounded(r.latency_ms) for n, (r, _) in self.latest.items()},
                observations=self.observations(),
            )
            try:
                await self.broker.publish(HEARTBEAT_TOPIC, beat.model_dump_json().encode())
            except BrokerUnavailable as exc:
                log.warning("monitor.heartbeat_failed", error=str(exc))
            await asyncio.sleep(settings.heartbeat_ms / 1000)


def _log_change(result: CheckResult, previous: StatusUpdate | None) -> None:
    log.info(
        "status.changed",
        service=result.service,
        reason=result.reason,
        latency_ms=rounded(result.latency_ms),
        **{
            "from": previous.effective_status.value if previous else None,
            "to": result.status.value,
        },
    )
