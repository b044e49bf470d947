"""What flows between the parts: check results, broker messages, board entries.

Broker bodies stay wire-compatible with the original Node.js monitor: a status
change is ``{"service", "up", "ts"}`` (``ts`` in epoch milliseconds) and every
other field is additive, so either side understands the other.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rounded(latency_ms: float | None) -> float | None:
    return None if latency_ms is None else round(latency_ms, 1)


def monotonic_ms() -> float:
    """For ages and order within one process: a wall-clock step does not move it."""
    return time.monotonic() * 1000


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
    # When the check ended, on this process's monotonic clock: ages are
    # measured with it, never with the wall clock.
    finished_ms: float = field(default_factory=monotonic_ms)


@functools.lru_cache(maxsize=4096)
def details_digest(reason: str | None, checks: tuple[FailingCheck, ...]) -> str:
    """A short fingerprint of the *why* of a state, so heartbeats can carry it cheaply.

    Remembered: every heartbeat repeats each service's, and the whys in play are few.
    """
    payload = json.dumps(
        [reason, [c.model_dump(mode="json") for c in checks]], separators=(",", ":")
    )
    return hashlib.blake2b(payload.encode(), digest_size=6).hexdigest()


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
    # The monitor's own sequence number of this observation: which of two
    # observations from one monitor is newer, whatever its wall clock did.
    seq: int | None = Field(default=None, ge=0)
    # How old the check was when this was sent (the monitor's monotonic clock).
    age_ms: float | None = Field(default=None, ge=0)

    @property
    def digest(self) -> str:
        return details_digest(self.reason, self.checks)

    @property
    def effective_status(self) -> Status:
        """The original sends only ``up``; map it onto our states."""
        if self.status is not None and self.status is not Status.UNKNOWN:
            return self.status
        return Status.UP if self.up else Status.DOWN

    @classmethod
    def from_result(
        cls, result: CheckResult, monitor: str, seq: int, since: int | None = None
    ) -> StatusUpdate:
        return cls(
            service=result.service,
            up=result.status.is_up,
            ts=result.checked_at,
            status=result.status,
            latency_ms=rounded(result.latency_ms),
            reason=result.reason,
            monitor=monitor,
            since=result.checked_at if since is None else since,
            checks=result.checks,
            seq=seq,
        )


class Observation(_Wire):
    """A monitor's current view of one service, as every heartbeat repeats it.

    Publishing only changes is right for traffic, but a board must not depend
    on having heard every change from every monitor: this lets it notice what
    it missed (another status, or another ``digest`` of the reason).
    """

    seq: int = Field(ge=0)
    status: Status
    since: int
    ts: int
    age_ms: float = Field(ge=0)
    digest: str


class Heartbeat(_Wire):
    """A monitor saying it is alive, on ``services.heartbeat``."""

    type: Literal["heartbeat"] = "heartbeat"
    monitor: str
    ts: int
    interval_ms: int | None = None
    heartbeat_ms: int | None = None
    # The latest check's latency per service: the latency history's samples.
    latency: dict[str, float | None] = {}
    # Every service's current observation: how boards converge.
    observations: dict[str, Observation] = {}


_M = TypeVar("_M", bound=_Wire)


def decode(model: type[_M], body: bytes) -> _M:
    """Parse a broker body or raise ``MessageError`` saying why."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise MessageError(f"{where}: {first['msg']}") from None


@dataclass(slots=True)
class ServiceState:
    """What the board knows about one service, and where it learnt it.

    A change of state or details replaces the whole entry; a heartbeat that
    only confirms it updates its freshness (check time, source, age) in place,
    which for thousands of services a second costs a fifth of a replacement.
    """

    status: Status = Status.UNKNOWN
    latency_ms: float | None = None
    reason: str | None = None
    checked_at: int | None = None
    since: int | None = None
    checks: tuple[FailingCheck, ...] = ()
    # The observation shown: which monitor made it, its sequence number, and
    # the digest of its details (None: details known to be out of date).
    monitor: str | None = None
    seq: int | None = None
    digest: str | None = None
    # The check's age when it arrived, and when it arrived (monotonic ms).
    age_ms: float = 0.0
    received_ms: float = 0.0
    stale: bool = False

    @property
    def up(self) -> bool:
        return self.status.is_up

    def age_at(self, now_ms: float) -> float | None:
        """How old the latest check is now; None when there was none."""
        if self.checked_at is None:
            return None
        return self.age_ms + max(0.0, now_ms - self.received_ms)
