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
#: Read with them for the public status page and badges only (day buckets: cheap).
LONG_WINDOWS = ("90d",)
# How often those summaries are read again, at the most; and the longest a
# read may take of each period (a slower read waits longer before the next).
REFRESH_S = 5.0
REFRESH_SHARE = 4
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
        "mean": mean_latency(totals),
        "max": round(totals.latency_max, 1) if totals.latency_n else None,
    }


def mean_latency(totals: Totals) -> float | None:
    return round(totals.latency_sum / totals.latency_n, 1) if totals.latency_n else None


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


def incident(period: Period, now: int, watched_until: int | None = None) -> dict[str, Any]:
    """A period as the API shows it. One still open when its writer stopped
    ends where the writer's knowledge ends (``watched_until``): not ongoing."""
    end = period.end_ms
    if end is None and watched_until is not None:
        end = max(period.start_ms, watched_until)
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
        "unwatched_after": watched_until if period.end_ms is None and end is not None else None,
        "reason": period.reason,
        "checks": checks or [],
        "monitor": period.monitor,
    }


async def service_history(
    store: HistoryStore, name: str, window: str, writer_silent_ms: int = 10_000
) -> dict[str, Any]:
    """``GET /api/services/{name}/history``: figures, bars and incidents for one window.

    When the writer has not written for ``writer_silent_ms`` (healthmon is
    stopped), nothing is ongoing: open periods end at its last write.
    """
    span = window_ms(window)
    end = now_ms()
    start = end - span
    grain = GRAINS[window]
    totals, first, bars, periods, last_alive = await asyncio.gather(
        store.totals([name], start, end),
        store.first_seen(),
        store.buckets(name, grain, start // GRAIN_MS[grain] * GRAIN_MS[grain], end),
        store.periods(name, start, end, INCIDENTS * 4),
        store.last_alive(),
    )
    silent = last_alive is None or end - last_alive > writer_silent_ms
    watched_until = last_alive if silent else None
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
        "writing": not silent,
        "incidents": [
            incident(p, end, watched_until) for p in periods if p.status in ("down", "degraded")
        ][:INCIDENTS],
        "unknown_periods": [
            incident(p, end, watched_until) for p in periods if p.status == "unknown"
        ][:INCIDENTS],
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


async def export(store: HistoryStore, names: Sequence[str], window: str, fmt: str) -> str:
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
        # The same with the 90-day window too (the public status page and badges).
        self.with_long: dict[str, dict[str, dict[str, Any]]] = {}
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
        for window in (*SUMMARY_WINDOWS, *LONG_WINDOWS):
            start = end - WINDOWS[window]
            totals = await store.totals(names, start, end)
            for name in names:
                t = totals.get(name, Totals())
                found[name][window] = {
                    "uptime": uptime(t),
                    "known_ms": t.known_ms,
                    "covered_ms": covered(start, end, first.get(name)),
                    "down_ms": t.down_ms,
                    "latency_ms": mean_latency(t),
                }
        self.with_long = found
        self.by_service = {
            name: {w: figures for w, figures in windows.items() if w in SUMMARY_WINDOWS}
            for name, windows in found.items()
        }
        self.refreshed.set()
        for listener in self.on_refresh:
            listener()

    async def run(self) -> None:
        await self.archive.opened.wait()
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.refresh()
            except StoreError as exc:
                self.archive.failed(exc.kind, str(exc))
            # Reading thousands of services' months takes a while: never more
            # than a fifth of the time, whatever the store's size.
            await asyncio.sleep(max(REFRESH_S, REFRESH_SHARE * (loop.time() - started)))


SHAPES = {"up": "●", "degraded": "▲", "down": "✕", "unknown": "◌"}


def human_ms(ms: int | float | None) -> str:
    """1 d 3 h, 18 min, 42 s: the two largest units that say it."""
    if ms is None:
        return "—"
    seconds = int(ms // 1000)
    units = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for unit, size in units:
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def _clock(ts: int, with_seconds: bool = True) -> str:
    import datetime as _dt

    moment = _dt.datetime.fromtimestamp(ts / 1000, tz=_dt.UTC).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def render_text(document: dict[str, Any]) -> str:
    """``healthmon history NAME``: the API's document, for a terminal."""
    d = document
    pct = d["uptime"]
    lat = d["latency"]
    lines = [
        f"{d['service']}: last {d['window']}, "
        f"known {human_ms(d['known_ms'])} of {human_ms(d['covered_ms'])} watched",
        f"uptime {'—' if pct is None else f'{pct:.3f} %'}   up {human_ms(d['up_ms'])} · "
        f"degraded {human_ms(d['degraded_ms'])} · down {human_ms(d['down_ms'])} · "
        f"unknown {human_ms(d['unknown_ms'])}",
        f"checks {d['checks']:,} · failed {d['failures']:,} · latency p50 "
        f"{_ms(lat['p50'])} · p95 {_ms(lat['p95'])} · max {_ms(lat['max'])}",
        "",
    ]
    for bucket in d["buckets"]:
        status = bucket["status"]
        share = bucket["uptime"]
        lines.append(
            f"{_clock(bucket['start'], with_seconds=False)}  {SHAPES[status]} {status:<8} "
            f"{'' if share is None else f'{share:.2f} %'}"
        )
    lines.append("")
    lines.append("incidents" if d["incidents"] else "no incidents in this window")
    for item in d["incidents"]:
        lines.append(
            f"{_clock(item['start'])}  {SHAPES[item['status']]} {item['status']:<8} "
            f"{human_ms(item['duration_ms']):<12}"
            f"{'ongoing  ' if item['ongoing'] else ''}"
            f"{'(then healthmon stopped)  ' if item['unwatched_after'] else ''}"
            f"{item['reason'] or ''}"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g} ms"
