"""Reading history: uptime figures, bucket bars, incidents and exports.

Every figure says how much of its window is known. A window is *covered*
from its start or from when the service was first seen, whichever is later;
of that, the time in up, degraded or down buckets is *known*, and the rest
(healthmon stopped, or the service stale) is *unknown*. Uptime is the share
of known time spent up or degraded, and is None when nothing is known.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from healthmon.archive import Archive
from healthmon.models import now_ms
from healthmon.store import Bucket, HistoryStore, Period, StoreError, Totals
from healthmon.store.base import DAY_MS, GRAIN_MS, HOUR_MS, Grain

log = structlog.get_logger(__name__)

WINDOWS: dict[str, int] = {
    "1h": HOUR_MS,
    "24h": DAY_MS,
    "7d": 7 * DAY_MS,
    "30d": 30 * DAY_MS,
    "90d": 90 * DAY_MS,
}
# The bars a window is drawn with: about 24 to 90 of them.
GRAINS: dict[str, Grain] = {"1h": "minute", "24h": "hour", "7d": "hour", "30d": "day", "90d": "day"}
#: The windows every service's summary carries (snapshot, /api/services, cards).
SUMMARY_WINDOWS = ("24h", "7d", "30d")
# How often those summaries are read again.
REFRESH_S = 5.0
INCIDENTS = 100
CHANGES = 200


class WindowError(ValueError):
    pass


def window_ms(window: str) -> int:
    try:
        return WINDOWS[window]
    except KeyError:
        raise WindowError(
            f"window must be one of {', '.join(WINDOWS)} (got {window[:20]!r})"
        ) from None


def worst(totals: Totals) -> str:
    """A bucket's worst state: down, then degraded, then up; unknown if nothing is known."""
    for field, status in (("down_ms", "down"), ("degraded_ms", "degraded"), ("up_ms", "up")):
        if getattr(totals, field) > 0:
            return status
    return "unknown"


def uptime(totals: Totals) -> float | None:
    known = totals.known_ms
    if known == 0:
        return None
    return round(100 * (totals.up_ms + totals.degraded_ms) / known, 3)


def figures(totals: Totals, covered_ms: int) -> dict[str, Any]:
    """One window's figures for one service."""
    return {
        "uptime": uptime(totals),
        "known_ms": totals.known_ms,
        "unknown_ms": max(0, covered_ms - totals.known_ms),
        "covered_ms": covered_ms,
        "up_ms": totals.up_ms,
        "degraded_ms": totals.degraded_ms,
        "down_ms": totals.down_ms,
        "checks": totals.checks,
        "failures": totals.failures,
        "latency": latency(totals),
    }


def latency(totals: Totals) -> dict[str, float | None]:
    return {
        "p50": totals.percentile(0.5),
        "p95": totals.percentile(0.95),
        "p99": totals.percentile(0.99),
        "mean": round(totals.latency_sum / totals.latency_n, 1) if totals.latency_n else None,
        "max": round(totals.latency_max, 1) if totals.latency_n else None,
    }


def covered(start: int, end: int, first_seen: int | None) -> int:
    if first_seen is None:
        return 0
    return max(0, end - max(start, first_seen))


def bucket_row(bucket: Bucket, grain: Grain) -> dict[str, Any]:
    t = bucket.totals
    return {
        "start": bucket.start_ms,
        "end": bucket.start_ms + GRAIN_MS[grain],
        "status": worst(t),
        "uptime": uptime(t),
        "known_ms": t.known_ms,
        "up_ms": t.up_ms,
        "degraded_ms": t.degraded_ms,
        "down_ms": t.down_ms,
        "unknown_ms": t.unknown_ms,
        "checks": t.checks,
        "failures": t.failures,
        "p50_ms": t.percentile(0.5),
        "p95_ms": t.percentile(0.95),
    }


def incident(period: Period, now: int) -> dict[str, Any]:
    end = period.end_ms
    checks: Any = None
    if period.checks:
        try:
            checks = json.loads(period.checks)
        except ValueError:
            checks = None
    return {
        "status": period.status,
        "start": period.start_ms,
        "end": end,
        "duration_ms": (end if end is not None else now) - period.start_ms,
        "ongoing": end is None,
        "reason": period.reason,
        "checks": checks or [],
        "monitor": period.monitor,
    }


async def service_history(store: HistoryStore, name: str, window: str) -> dict[str, Any]:
    """``GET /api/services/{name}/history``: figures, bars and incidents for one window."""
    span = window_ms(window)
    end = now_ms()
    start = end - span
    grain = GRAINS[window]
    totals, first, bars, periods = await asyncio.gather(
        store.totals([name], start, end),
        store.first_seen(),
        store.buckets(name, grain, start // GRAIN_MS[grain] * GRAIN_MS[grain], end),
        store.periods(name, start, end, INCIDENTS * 4),
    )
    found = totals.get(name, Totals())
    return {
        "service": name,
        "window": window,
        "from": start,
        "to": end,
        "window_ms": span,
        "first_seen": first.get(name),
        **figures(found, covered(start, end, first.get(name))),
        "grain": grain,
        "buckets": [bucket_row(b, grain) for b in bars],
        "incidents": [
            incident(p, end) for p in periods if p.status in ("down", "degraded")
        ][:INCIDENTS],
        "unknown_periods": [incident(p, end) for p in periods if p.status == "unknown"][
            :INCIDENTS
        ],
    }


def export_rows(name: str, grain: Grain, buckets: Iterable[Bucket]) -> Iterable[dict[str, Any]]:
    for bucket in buckets:
        yield {"service": name, "grain": grain, **bucket_row(bucket, grain)}


EXPORT_COLUMNS = (
    "service", "grain", "start", "end", "status", "uptime", "known_ms", "up_ms", "degraded_ms",
    "down_ms", "unknown_ms", "checks", "failures", "p50_ms", "p95_ms",
)  # fmt: skip


def render_export(rows: Iterable[dict[str, Any]], fmt: str) -> str:
    """Bucket rows as CSV (a header, then a row each) or JSON lines."""
    if fmt == "jsonl":
        return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def export(
    store: HistoryStore, names: Sequence[str], window: str, fmt: str
) -> str:
    span = window_ms(window)
    end = now_ms()
    grain = GRAINS[window]
    start = (end - span) // GRAIN_MS[grain] * GRAIN_MS[grain]
    rows: list[dict[str, Any]] = []
    for name in names:
        rows += export_rows(name, grain, await store.buckets(name, grain, start, end))
    return render_export(rows, fmt)


class Summaries:
    """Every service's 24 h, 7 d and 30 d figures, read every ``REFRESH_S``.

    Pages and ``/api/services`` read this copy, so a page load never waits
    for the store and a slow store never delays a push.
    """

    def __init__(self, archive: Archive, names: Callable[[], Sequence[str]]) -> None:
        self.archive = archive
        self.names = names
        self.by_service: dict[str, dict[str, dict[str, Any]]] = {}
        self.refreshed = asyncio.Event()
        self.on_refresh: list[Callable[[], None]] = []

    def get(self, name: str) -> dict[str, dict[str, Any]] | None:
        return self.by_service.get(name)

    async def refresh(self) -> None:
        store = self.archive.store
        if store is None:
            return
        names = list(self.names())
        end = now_ms()
        first = await store.first_seen()
        found: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in names}
        for window in SUMMARY_WINDOWS:
            start = end - WINDOWS[window]
            totals = await store.totals(names, start, end)
            for name in names:
                t = totals.get(name, Totals())
                found[name][window] = {
                    "uptime": uptime(t),
                    "known_ms": t.known_ms,
                    "covered_ms": covered(start, end, first.get(name)),
                    "down_ms": t.down_ms,
                }
        self.by_service = found
        self.refreshed.set()
        for listener in self.on_refresh:
            listener()

    async def run(self) -> None:
        await self.archive.opened.wait()
        while True:
            try:
                await self.refresh()
            except StoreError as exc:
                self.archive.failed(exc.kind, str(exc))
            await asyncio.sleep(REFRESH_S)
