"""What every kind of check shares: its spec, the ``Check`` protocol, its result.

A check performs one check of one service and returns a ``CheckResult``,
never an exception (``Verdict`` is the part a check decides: status, reason,
failing checks). Its loop in ``healthmon.checker`` only schedules: it runs the
check when due, or earlier when the check's ``Wake`` says there is news.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.fields import Kind, Method
from healthmon.health import Verdict
from healthmon.models import CheckResult, Status, now_ms

__all__ = ["Check", "CheckResult", "CheckSpec", "Reason", "Verdict", "Wake", "result_of"]

_T = TypeVar("_T")
#: Why a loop's wait ended: the check was due, or news came (a recheck, a push).
Reason = Literal["due", "recheck", "push"]


def pick(own: _T | None, default: _T) -> _T:
    return default if own is None else own


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """How one service is checked: its own knobs over ``[monitor]``'s defaults.

    ``url`` is what is checked: the health URL (http), ``tcp://host:port`` or
    ``grpc://host:port`` (``grpcs://`` with TLS).
    """

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
    kind: Kind = "http"
    grpc_service: str = ""

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
            kind=service.kind,
            grpc_service=service.grpc_service,
        )


class Wake:
    """News for a check's loop before the check is due; the check sets it, the loop waits on it.

    ``recheck()``: something suggests the service changed (its idle connection
    was closed); the loop checks again at once, but such early checks are
    spaced, so a service that closes every connection cannot cause a storm.
    ``push()``: the check already holds a newer result (a gRPC Watch message),
    so no request is needed and the loop takes it at once.

    One future and one timer per wait, as ``asyncio.sleep`` costs: an
    ``asyncio.Event`` raced against a timeout would add a task to every check.
    """

    __slots__ = ("_pushed", "_recheck", "_waiter")

    def __init__(self) -> None:
        self._recheck = False
        self._pushed = False
        self._waiter: asyncio.Future[bool] | None = None

    def recheck(self) -> None:
        self._recheck = True
        self._notify()

    def push(self) -> None:
        self._pushed = True
        self._notify()

    async def until(self, due: float, recheck_from: float) -> Reason:
        """Wait until ``due`` (loop time) or news, and say which came first.

        A recheck wakes no sooner than ``recheck_from``; pushed news at once.
        Either way the news is taken: the check that follows answers it, even
        when it is the one that was due.
        """
        loop = asyncio.get_running_loop()
        reason: Reason = "due"
        while True:
            now = loop.time()
            if now >= due:
                break
            if self._recheck and now >= recheck_from:
                reason = "recheck"
                break
            if self._pushed:
                reason = "push"
                break
            deadline = min(due, recheck_from) if self._recheck else due
            if not await self._sleep(loop, deadline):
                if deadline >= due:
                    break
                # The spacing has passed (a timer may fire a clock tick early).
                recheck_from = now
        self._recheck = self._pushed = False
        return reason

    async def _sleep(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bool:
        """False when ``deadline`` came, True when notified first."""
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = loop.call_at(deadline, _settle, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _notify(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)


def _settle(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Check(Protocol):
    """One service's way of being checked, owned by its loop (one check in flight)."""

    spec: CheckSpec
    wake: Wake

    async def run(self) -> CheckResult:
        """Check once; every failure is a result (DOWN with the reason), never an exception."""
        ...

    async def aclose(self) -> None:
        """Release connections and background work; the loop calls it when it ends."""
        ...


def result_of(spec: CheckSpec, verdict: Verdict, latency_ms: float | None) -> CheckResult:
    """The check's result; an up answer slower than ``degraded_after_ms`` is degraded."""
    limit = spec.degraded_after_ms
    if (
        verdict.status is Status.UP
        and limit is not None
        and latency_ms is not None
        and latency_ms > limit
    ):
        verdict = Verdict(Status.DEGRADED, f"slow answer: {latency_ms:.0f} ms (over {limit} ms)")
    return CheckResult(
        service=spec.name,
        status=verdict.status,
        latency_ms=latency_ms if verdict.answered else None,
        reason=verdict.reason,
        checked_at=now_ms(),
        checks=verdict.checks,
    )
