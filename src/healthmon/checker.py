"""Checks: ``check_once`` is one pure step; ``Monitor`` only schedules them.

Each service has its own loop, so a hung service delays nobody else; a loop
never has two checks of its service in flight; a change (and only a change)
is published, and a heartbeat says the monitor is alive.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence

import aiohttp
import structlog

from healthmon.broker import HEARTBEAT_TOPIC, STATUS_TOPIC, Broker, BrokerUnavailable
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.models import CheckResult, Heartbeat, Status, StatusUpdate, now_ms, rounded

log = structlog.get_logger(__name__)

ACCEPT = "application/health+json, application/json;q=0.9, */*;q=0.1"
MAX_BODY = 64 * 1024

_PASS = {"pass", "ok", "up"}
_WARN = {"warn", "warning", "degraded"}
_FAIL = {"fail", "error", "down"}


def classify(http_status: int, body: bytes) -> tuple[Status, str | None]:
    """Status and reason from an HTTP answer: 2xx and health+json decide."""
    if not 200 <= http_status < 300:
        reason = f"HTTP {http_status}"
        detail = _output(body)
        return Status.DOWN, f"{reason}: {detail}" if detail else reason
    verdict = _verdict(body)
    if verdict in _WARN:
        return Status.DEGRADED, _output(body) or "health status: warn"
    if verdict in _FAIL:
        return Status.DOWN, _output(body) or f"health status: {verdict}"
    return Status.UP, None


def _document(body: bytes) -> dict[str, object] | None:
    if not body or body.lstrip()[:1] != b"{":
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _verdict(body: bytes) -> str | None:
    doc = _document(body)
    status = doc.get("status") if doc else None
    return status.strip().lower() if isinstance(status, str) else None


def _output(body: bytes) -> str | None:
    doc = _document(body)
    output = doc.get("output") if doc else None
    return output[:200] if isinstance(output, str) and output else None


async def check_once(
    session: aiohttp.ClientSession, service: ServiceSettings, timeout_ms: int
) -> CheckResult:
    """Check one service's health URL; the result is data, never an exception."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, reason = Status.DOWN, None
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            try:
                http_status, body = await _fetch(session, service.health_url)
            except aiohttp.ServerDisconnectedError:
                # A kept-alive connection the server had already closed:
                # that says nothing about the service, so ask once more.
                http_status, body = await _fetch(session, service.health_url)
        status, reason = classify(http_status, body)
    except TimeoutError:
        reason = f"no answer within {timeout_ms} ms"
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        reason = "connection refused" if refused else f"cannot connect: {exc.os_error}"
    except aiohttp.ClientError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except OSError as exc:
        reason = f"network error: {exc.strerror or exc}"
    latency_ms = (loop.time() - started) * 1000
    return CheckResult(
        service=service.name,
        status=status,
        latency_ms=latency_ms,
        reason=reason,
        checked_at=now_ms(),
    )


async def _fetch(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url, headers={"Accept": ACCEPT}) as response:
        return response.status, await response.content.read(MAX_BODY)


class Monitor:
    """Runs one check loop per service and a heartbeat, publishing to a broker."""

    def __init__(
        self,
        services: Sequence[ServiceSettings],
        settings: MonitorSettings,
        broker: Broker,
        instance_id: str | None = None,
    ) -> None:
        self.services = tuple(services)
        self.settings = settings
        self.broker = broker
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        # The latest check of each service, and what was last shown (its change).
        self.latest: dict[str, CheckResult] = {}
        self.current: dict[str, StatusUpdate] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    async def start(self) -> None:
        if self._tasks:
            return
        self.latest.clear()
        self.current.clear()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=4, ttl_dns_cache=60),
            timeout=aiohttp.ClientTimeout(total=None),
            headers={"User-Agent": "healthmon"},
        )
        count = len(self.services)
        for index, service in enumerate(self.services):
            # Spread first checks over one interval so they do not all fire
            # on the same millisecond.
            offset = self.settings.interval_ms / 1000 * index / max(count, 1)
            self._tasks.append(asyncio.create_task(self._watch(service, offset)))
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        log.info("monitor.started", monitor=self.instance_id, services=count)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if tasks:
            log.info("monitor.stopped", monitor=self.instance_id)

    async def _watch(self, service: ServiceSettings, offset: float) -> None:
        assert self._session is not None
        session = self._session
        loop = asyncio.get_running_loop()
        interval = self.settings.interval_ms / 1000
        unpublished = False
        due = loop.time() + offset
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            result = await check_once(session, service, self.settings.timeout_ms)
            previous = self.latest.get(service.name)
            self.latest[service.name] = result
            shown = self.current.get(service.name)
            if shown is None or shown.effective_status is not result.status:
                _log_change(result, previous)
                self.current[service.name] = StatusUpdate.from_result(result, self.instance_id)
                unpublished = True
            if unpublished:
                # A failed publish is retried after the next check.
                unpublished = not await self._publish(self.current[service.name])
            # Fixed rate; a check that overran its slot is followed at once,
            # never by a burst of catch-up checks.
            due = max(due + interval, loop.time())

    def snapshot(self) -> list[StatusUpdate]:
        """Every observed service as of its latest check, ``since`` its last change."""
        return [
            update.model_copy(
                update={
                    "ts": self.latest[name].checked_at,
                    "latency_ms": rounded(self.latest[name].latency_ms),
                }
            )
            for name, update in self.current.items()
        ]

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
        period = self.settings.heartbeat_ms / 1000
        while True:
            beat = Heartbeat(
                monitor=self.instance_id, ts=now_ms(), interval_ms=self.settings.interval_ms
            )
            try:
                await self.broker.publish(HEARTBEAT_TOPIC, beat.model_dump_json().encode())
            except BrokerUnavailable as exc:
                log.warning("monitor.heartbeat_failed", error=str(exc))
            await asyncio.sleep(period)


def _log_change(result: CheckResult, previous: CheckResult | None) -> None:
    log.info(
        "status.changed",
        service=result.service,
        reason=result.reason,
        latency_ms=rounded(result.latency_ms),
        **{"from": previous.status.value if previous else None, "to": result.status.value},
    )
