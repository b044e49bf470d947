"""What the public may see: the shown services, each state as a stranger reads it.

Pure functions of the settings and the board's details, shared by the page,
the badges and the public live channel, so the three can never disagree on
what is hidden. A stale state is never passed off as its last status: it
reads "stale", and counts as unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from healthmon.alerts.maintenance import next_boundary, window_active
from healthmon.alerts.settings import MaintenanceWindow
from healthmon.config import ServiceSettings, Settings
from healthmon.memo import per_object
from healthmon.models import now_ms

# Fields of a board detail the public may read; everything else (URLs,
# failing checks, monitors, sparklines) is left out.
PUBLIC_FIELDS = ("status", "up", "since", "checked_at", "stale", "age_ms", "stale_after_ms")
SHAPES = {"up": "✓", "degraded": "▲", "down": "✕", "unknown": "?"}
WORDS = {"up": "Operational", "degraded": "Degraded", "down": "Down", "unknown": "Unknown"}


@dataclass(frozen=True, slots=True)
class Shown:
    """The services the status page shows, in config order, and by name."""

    services: tuple[ServiceSettings, ...]
    by_name: Mapping[str, ServiceSettings]
    names: frozenset[str]


@per_object
def shown(settings: Settings) -> Shown:
    """What the status page shows. Asked on every change and every heartbeat, so
    worked out once per settings object (a reload makes a new one), not per call
    (at 2,000 services a scan per change took half a core)."""
    page = settings.status_page
    wanted, groups = frozenset(page.services), frozenset(page.groups)
    services = tuple(
        s
        for s in settings.services
        if (not wanted or s.name in wanted) and (not groups or s.group in groups)
    )
    return Shown(services, {s.name: s for s in services}, frozenset(s.name for s in services))


def shown_services(settings: Settings) -> tuple[ServiceSettings, ...]:
    """The services the status page shows, in config order."""
    return shown(settings).services


def display_name(service: ServiceSettings) -> str:
    return service.display_name or service.name


def public_status(detail: Mapping[str, Any] | None) -> str:
    """up, degraded, down or unknown; a stale or missing state is unknown."""
    if detail is None or detail.get("stale"):
        return "unknown"
    status = str(detail.get("status", "unknown"))
    return status if status in SHAPES else "unknown"


def state_word(detail: Mapping[str, Any] | None) -> str:
    """The word a badge or the page prints: stale says so rather than guessing."""
    if detail is not None and detail.get("stale"):
        return "stale"
    return public_status(detail)


def _covers(window: MaintenanceWindow, service: ServiceSettings) -> bool:
    return window.covers(service.name, service.group, service.tags)


def under_maintenance(
    service: ServiceSettings, windows: Sequence[MaintenanceWindow], now: int
) -> bool:
    """Whether a configured maintenance window covers ``service`` at ``now``.

    Windows only: silences are internal, and the window's description is not
    the public's to read (the page says "Under maintenance", nothing more).
    """
    return any(_covers(w, service) and window_active(w, now) for w in windows)


def maintenance_next_ms(
    services: Sequence[ServiceSettings], windows: Sequence[MaintenanceWindow], now: int
) -> int | None:
    """The next start or end of a window covering a shown service (None: none known)."""
    moments = [
        b
        for w in windows
        if any(_covers(w, s) for s in services) and (b := next_boundary(w, now)) is not None
    ]
    return min(moments, default=None)


def public_detail(
    service: ServiceSettings,
    detail: Mapping[str, Any] | None,
    settings: Settings,
    names: Iterable[str],
    now: int | None = None,
) -> dict[str, Any]:
    """One service as the public channel and ``/status`` carry it (at ``now``).

    ``names``: the shown services, so that dependencies on hidden ones are
    not named either.
    """
    page = settings.status_page
    detail = detail or {}
    shown = names if isinstance(names, frozenset) else frozenset(names)
    out: dict[str, Any] = {k: detail.get(k) for k in PUBLIC_FIELDS}
    out.update(
        name=service.name,
        display_name=display_name(service),
        group=service.group,
        up=bool(detail.get("up", False)),
        status=detail.get("status", "unknown"),
        stale=bool(detail.get("stale", False)),
        latency_ms=detail.get("latency_ms") if page.show_latency else None,
        reason=detail.get("reason") if page.show_reasons else None,
        checks=[],
        depends_on=[n for n in service.depends_on if n in shown],
        blocked_by=[b for b in detail.get("blocked_by") or [] if b.get("service") in shown],
        maintenance=under_maintenance(
            service, settings.maintenance, now if now is not None else now_ms()
        ),
    )
    return out


@dataclass(frozen=True, slots=True)
class Banner:
    """The rolled-up state at the top of the page (and of the aggregate badges)."""

    key: str  # operational, degraded, partial, major, unknown
    text: str


def banner(statuses: Sequence[str]) -> Banner:
    """All operational, degraded, partial or major outage, or unknown.

    Major: at least half of the shown services are down. Unknown wins over
    "operational" (a stale service is not known to be up) but not over a
    known problem.
    """
    if not statuses:
        return Banner("unknown", "No services shown")
    down = statuses.count("down")
    if down and 2 * down >= len(statuses):
        return Banner("major", "Major outage")
    if down:
        return Banner("partial", "Partial outage")
    if "degraded" in statuses:
        return Banner("degraded", "Degraded performance")
    if "unknown" in statuses:
        return Banner("unknown", "Status unknown")
    return Banner("operational", "All systems operational")


def groups(services: Sequence[ServiceSettings]) -> list[tuple[str | None, list[ServiceSettings]]]:
    """Services grouped by ``group``, groups in order of first appearance."""
    found: dict[str | None, list[ServiceSettings]] = {}
    for service in services:
        found.setdefault(service.group, []).append(service)
    return list(found.items())


def floor_percent(value: float | None) -> str | None:
    """99.996 → "99.99": floored, so 100 % is printed only when it is exactly true."""
    if value is None:
        return None
    floored = int(value * 100 + 1e-9) / 100
    return f"{floored:.2f}".rstrip("0").rstrip(".")


def known_share(figures: Mapping[str, Any] | None) -> float | None:
    """How much of the watched window is known, 0..1 (None: nothing watched)."""
    if not figures or not figures.get("covered_ms"):
        return None
    return min(1.0, float(figures["known_ms"]) / float(figures["covered_ms"]))
