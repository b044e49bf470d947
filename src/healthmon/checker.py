"""Checks: ``check_once`` is one pure step; ``Monitor`` only schedules them.

Each service has its own loop, so a hung service delays nobody else; a loop
never has two checks of its service in flight; a change of the shown state
(and only that) is published, and a heartbeat says the monitor is alive.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
import structlog
import yarl

from healthmon.broker import HEARTBEAT_TOPIC, STATUS_TOPIC, Broker, BrokerUnavailable
from healthmon.config import Method, MonitorSettings, ServiceSettings
from healthmon.health import MAX_BODY as BODY_LIMIT
from healthmon.health import Verdict, read_answer
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
from healthmon.probe import MAX_HEAD_BYTES, MAX_HEADERS, Answer, Probe, ProbeError
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

ACCEPT = "application/health+json, application/json;q=0.9, */*;q=0.1"
USER_AGENT = "healthmon"
# The health body limit (64 KiB, healthmon.health.MAX_BODY). Checks read one
# byte more, so a longer body shows as one: DOWN "health body over 64 KiB".
MAX_BODY = BODY_LIMIT

_T = TypeVar("_T")


def pick(own: _T | None, default: _T) -> _T:
    return default if own is None else own


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """How one service is checked: its own knobs over ``[monitor]``'s defaults."""

    name: str
    url: str
    method: Method
    expected_status: tuple[tuple[int, int], ...]
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    verify_tls: bool
    interval_ms: int
    timeout_ms: int
    degraded_after_ms: int | None
    failure_threshold: int
    success_threshold: int

    @classmethod
    def resolve(cls, service: ServiceSettings, defaults: MonitorSettings) -> CheckSpec:
        return cls(
            name=service.name,
            url=service.health_url,
            method=pick(service.method, defaults.method),
            expected_status=pick(service.expected_status, defaults.expected_status),
            headers=tuple((k, v.get_secret_value()) for k, v in service.headers.items()),
            verify_tls=pick(service.verify_tls, defaults.verify_tls),
            interval_ms=pick(service.interval_ms, defaults.interval_ms),
            timeout_ms=pick(service.timeout_ms, defaults.timeout_ms),
            degraded_after_ms=pick(service.degraded_after_ms, defaults.degraded_after_ms),
            failure_threshold=pick(service.failure_threshold, defaults.failure_threshold),
            success_threshold=pick(service.success_threshold, defaults.success_threshold),
        )


def probe_for(spec: CheckSpec) -> Probe | None:
    """The keep-alive probe that checks this service, or None where aiohttp does.

    aiohttp keeps TLS (certificates, ``verify_tls``); plain ``http://`` goes
    through the much cheaper ``Probe`` (the config refuses credentials in URLs).
    """
    if yarl.URL(spec.url).scheme != "http":
        return None
    headers = (("User-Agent", USER_AGENT), ("Accept", ACCEPT), *spec.headers)
    return Probe(spec.url, spec.method, headers, MAX_BODY + 1)


async def check_once(
    session: aiohttp.ClientSession, spec: CheckSpec, probe: Probe | None = None
) -> CheckResult:
    """Check one service's health URL; the result is data, never an exception.

    ``probe`` is the service's kept-alive connection (see ``probe_for``);
    without one a plain-http check opens a connection for this check only.
    """
    one_shot = probe_for(spec) if probe is None else None
    # perf_counter, not loop.time(): uvloop's clock has millisecond steps.
    started = time.perf_counter()
    try:
        verdict = await _ask(session, spec, probe or one_shot)
        latency_ms = (time.perf_counter() - started) * 1000
    finally:
        if one_shot is not None:
            await one_shot.aclose()
    limit = spec.degraded_after_ms
    if verdict.status is Status.UP and limit is not None and latency_ms > limit:
        verdict = Verdict(Status.DEGRADED, f"slow answer: {latency_ms:.0f} ms (over {limit} ms)")
    return CheckResult(
        service=spec.name,
        status=verdict.status,
        latency_ms=latency_ms,
        reason=verdict.reason,
        checked_at=now_ms(),
        checks=verdict.checks,
    )


async def _ask(session: aiohttp.ClientSession, spec: CheckSpec, probe: Probe | None) -> Verdict:
    """The verdict of one check; every exception but cancellation becomes a DOWN verdict."""
    try:
        async with asyncio.timeout(spec.timeout_ms / 1000):
            if probe is not None:
                answer = await probe.fetch()
            else:
                try:
                    answer = await _fetch(session, spec)
                except aiohttp.ServerDisconnectedError:
                    # A kept-alive connection the server had already closed:
                    # that says nothing about the service, so ask once more.
                    answer = await _fetch(session, spec)
    except TimeoutError:
        return Verdict(Status.DOWN, f"no answer within {spec.timeout_ms} ms")
    except ProbeError as exc:
        return Verdict(Status.DOWN, str(exc))
    except aiohttp.ClientConnectorCertificateError as exc:
        return Verdict(Status.DOWN, f"TLS certificate not trusted: {exc.certificate_error}")
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        return Verdict(
            Status.DOWN, "connection refused" if refused else f"cannot connect: {exc.os_error}"
        )
    except aiohttp.ClientResponseError as exc:
        if isinstance(exc.__cause__, aiohttp.http_exceptions.HttpProcessingError):
            # aiohttp could not parse the answer (its status 400 is its own, not the service's).
            return Verdict(Status.DOWN, _invalid_http(exc.message))
        return Verdict(Status.DOWN, _describe(exc))
    except aiohttp.ClientError as exc:
        return Verdict(Status.DOWN, _describe(exc))
    except OSError as exc:
        return Verdict(Status.DOWN, f"network error: {exc.strerror or exc}")
    except Exception as exc:  # CancelledError is no Exception: cancelling still cancels
        log.error("check.failed", service=spec.name, exc_info=True)
        return Verdict(Status.DOWN, f"check failed: {_describe(exc)}")
    try:
        return read_answer(answer.status, answer.body, spec.expected_status, answer.content_type)
    except Exception as exc:
        # read_answer is total; should a body still break it, the card says so.
        log.error("check.unreadable_body", service=spec.name, exc_info=True)
        return Verdict(Status.DOWN, f"unreadable health body: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:200]


def _invalid_http(message: str) -> str:
    """aiohttp's parser message, first clause only (it goes on to quote the bytes)."""
    first = message.partition(":")[0].strip()
    if first.startswith("Got more than "):
        # aiohttp's max_line_size / max_field_size (8190 bytes by default).
        size = first.removeprefix("Got more than ").partition(" ")[0]
        return f"invalid HTTP response: a status or header line over {size} bytes"
    return f"invalid HTTP response: {first[:100]}"


async def _fetch(session: aiohttp.ClientSession, spec: CheckSpec) -> Answer:
    headers = {"Accept": ACCEPT, **dict(spec.headers)}
    async with session.request(
        # A redirect is an answer: a health URL that redirects (to a login
        # page, say) is misconfigured, and expected_status may ask for 3xx.
        spec.method,
        spec.url,
        headers=headers,
        ssl=spec.verify_tls,
        allow_redirects=False,
    ) as response:
        # The Probe's head limits, on what aiohttp (within its own) accepted.
        if len(response.raw_headers) > MAX_HEADERS:
            raise ProbeError(f"more than {MAX_HEADERS} response headers")
        if sum(len(k) + len(v) for k, v in response.raw_headers) > MAX_HEAD_BYTES:
            raise ProbeError(f"response headers over {MAX_HEAD_BYTES // 1024} KiB")
        chunks: list[bytes] = []
        size = 0
        # content.read(n) returns what has arrived, so read until the end or one
        # byte over the limit (which shows the body is over it).
        while spec.method != "HEAD" and size <= MAX_BODY:
            chunk = await response.content.read(MAX_BODY + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return Answer(response.status, b"".join(chunks), response.headers.get("Content-Type", ""))


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
        # The loop owns its service's connection: cancelling the loop (stop, or
        # the service changed or removed) closes it.
        probe = probe_for(spec)
        try:
            await self._checks(self._session, spec, probe, offset)
        finally:
            if probe is not None:
                await probe.aclose()

    async def _checks(
        self,
        session: aiohttp.ClientSession,
        spec: CheckSpec,
        probe: Probe | None,
        offset: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        interval = spec.interval_ms / 1000
        debounce = Debounce(spec.failure_threshold, spec.success_threshold)
        unpublished = False
        due = loop.time() + offset
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            result = await check_once(session, spec, probe)
            unpublished |= self.record(result, debounce)
            if unpublished:
                # A failed publish is retried after the next check.
                unpublished = not await self._publish(self.current[spec.name])
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
        previous = self.current.get(name)
        if debounce.feed(result.status):
            _log_change(result, previous)
            self.current[name] = StatusUpdate.from_result(result, self.instance_id, seq)
            return True
        if previous is None or result.status is not debounce.shown:
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
