"""What flows between the parts: check results, broker messages, board entries.

Broker bodies stay wire-compatible with the original Node.js monitor: a status
change is ``{"service", "up", "ts"}`` (``ts`` in epoch milliseconds) and every
other field is additive, so either side understands the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rounded(latency_ms: float | None) -> float | None:
    return None if latency_ms is None else round(latency_ms, 1)


class Status(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"

    @property
    def is_up(self) -> bool:
        """The original's boolean: a degraded service still answers."""
        return self in (Status.UP, Status.DEGRADED)


class FailingCheck(BaseModel):
    """One of a service's own checks that is not passing: the *why* of a state."""

    model_config = ConfigDict(frozen=True)

    name: str
    status: Status
    output: str | None = None
    observed: str | None = None

    @property
    def status_word(self) -> str:
        return "fail" if self.status is Status.DOWN else "warn"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check, always data, never an exception."""

    service: str
    status: Status
    latency_ms: float | None
    reason: str | None
    checked_at: int
    checks: tuple[FailingCheck, ...] = ()


class MessageError(ValueError):
    """A broker body that is not a message we understand."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StatusUpdate(_Wire):
    """A status change as published on ``services.status``."""

    service: str = Field(min_length=1)
    up: bool
    ts: int
    status: Status | None = None
    latency_ms: float | None = None
    reason: str | None = None
    monitor: str | None = None
    # When the status began; the original sends only ``ts``.
    since: int | None = None
    # The service's own failing checks, worst first.
    checks: tuple[FailingCheck, ...] = ()

    @property
    def effective_status(self) -> Status:
        """The original sends only ``up``; map it onto our states."""
        if self.status is not None and self.status is not Status.UNKNOWN:
            return self.status
        return Status.UP if self.up else Status.DOWN

    @classmethod
    def from_result(cls, result: CheckResult, monitor: str) -> StatusUpdate:
        return cls(
            service=result.service,
            up=result.status.is_up,
            ts=result.checked_at,
            status=result.status,
            latency_ms=rounded(result.latency_ms),
            reason=result.reason,
            monitor=monitor,
            since=result.checked_at,
            checks=result.checks,
        )

    def to_wire(self) -> dict[str, object]:
        """The ``statusUpdate.data`` a browser gets: original fields first."""
        return {
            "service": self.service,
            "up": self.up,
            "ts": self.ts,
            "status": self.effective_status.value,
            "latency_ms": self.latency_ms,
            "reason": self.reason,
            "checks": [c.model_dump(mode="json") for c in self.checks],
        }


class Heartbeat(_Wire):
    """A monitor saying it is alive, on ``services.heartbeat``."""

    type: Literal["heartbeat"] = "heartbeat"
    monitor: str
    ts: int
    interval_ms: int | None = None
    # The latest check's latency per service: the latency history's samples.
    latency: dict[str, float | None] = {}


_M = TypeVar("_M", bound=_Wire)


def decode(model: type[_M], body: bytes) -> _M:
    """Parse a broker body or raise ``MessageError`` saying why."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise MessageError(f"{where}: {first['msg']}") from None


@dataclass(frozen=True, slots=True)
class ServiceState:
    """What the board knows about one service."""

    status: Status = Status.UNKNOWN
    latency_ms: float | None = None
    reason: str | None = None
    checked_at: int | None = None
    since: int | None = None
    checks: tuple[FailingCheck, ...] = ()

    @property
    def up(self) -> bool:
        return self.status.is_up
