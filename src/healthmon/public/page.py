"""``GET /status``: the public page, complete as served; its script only keeps it live.

Pure helpers turn the board's details, the summaries and the stored 90 days
into what the template shows: each day's worst state and words, uptime with
how much was known, the incidents now (from the live board) and resolved
(from the store).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from healthmon.config import Settings
from healthmon.keys import BOARD, STATIC_VERSION
from healthmon.public.live import public_document
from healthmon.public.shared import PUBLIC
from healthmon.public.view import (
    SHAPES,
    WORDS,
    banner,
    display_name,
    floor_percent,
    groups,
    known_share,
    public_detail,
    public_status,
    shown_services,
    state_word,
)
from healthmon.store.base import DAY_MS

# Resolved incidents the page lists, newest first, across the shown services.
RESOLVED_SHOWN = 10
BAR_DAYS = 90
# Where the page's live channel is (the client module's base URL).
LIVE = "/status/live/"


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def _duration(ms: int) -> str:
    minutes = ms // 60_000
    if minutes < 60:
        return f"{max(1, minutes)} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def day_bar(document: Mapping[str, Any] | None, today: int) -> list[dict[str, str]]:
    """Ninety days, oldest first: each day's worst state and its words."""
    buckets = {b["start"]: b for b in (document or {}).get("buckets", [])}
    days = []
    for start in range(today - (BAR_DAYS - 1) * DAY_MS, today + DAY_MS, DAY_MS):
        bucket = buckets.get(start)
        status = bucket["status"] if bucket else "unknown"
        if bucket is None or status == "unknown":
            text = f"{_day(start)}: no data"
        else:
            share = floor_percent(bucket["uptime"])
            parts = [f"{share}% up"]
            if bucket["down_ms"]:
                parts.append(f"down {_duration(bucket['down_ms'])}")
            if bucket["degraded_ms"]:
                parts.append(f"degraded {_duration(bucket['degraded_ms'])}")
            text = f"{_day(start)}: {WORDS[status].lower()}, " + ", ".join(parts)
        days.append({"status": status, "text": text})
    return days


def _uptimes(figures: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """24 h, 30 d and 90 d: the share of known time up, and how much was known."""
    rows = []
    for window, label in (("24h", "24 h"), ("30d", "30 d"), ("90d", "90 d")):
        entry = (figures or {}).get(window)
        pct = floor_percent(entry.get("uptime")) if entry else None
        share = known_share(entry)
        rows.append(
            {
                "label": label,
                "value": "no data" if pct is None else f"{pct} %",
                "known": None
                if share is None or share >= 0.99
                else f"{floor_percent(100 * share)} % known",
            }
        )
    return rows


def _utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def ongoing_incidents(
    details: Mapping[str, Mapping[str, Any]], settings: Settings
) -> list[dict[str, Any]]:
    """What is down or degraded now, from the live board (the store lags by a flush)."""
    show_reasons = settings.status_page.show_reasons
    found = []
    for service in shown_services(settings):
        detail = details.get(service.name)
        status = public_status(detail)
        if detail is None or status not in ("down", "degraded"):
            continue
        since = detail.get("since")
        found.append(
            {
                "service": display_name(service),
                "status": status,
                "word": WORDS[status],
                "shape": SHAPES[status],
                "since_text": _utc(since) if isinstance(since, int) else "",
                "reason": detail.get("reason") if show_reasons else None,
            }
        )
    return found


def resolved_incidents(
    bars: Mapping[str, Mapping[str, Any]], settings: Settings
) -> list[dict[str, Any]]:
    """The latest resolved incidents of the shown services, newest first."""
    show_reasons = settings.status_page.show_reasons
    resolved: list[dict[str, Any]] = []
    for service in shown_services(settings):
        for item in bars.get(service.name, {}).get("incidents", []):
            if item["ongoing"]:
                continue
            resolved.append(
                {
                    "service": display_name(service),
                    "status": item["status"],
                    "word": WORDS[item["status"]],
                    "shape": SHAPES[item["status"]],
                    "start": item["start"],
                    "start_text": _utc(item["start"]),
                    "duration": _duration(item["duration_ms"]),
                    "reason": item["reason"] if show_reasons else None,
                }
            )
    resolved.sort(key=lambda e: e["start"], reverse=True)
    return resolved[:RESOLVED_SHOWN]


def maintenance_notices(app: web.Application) -> list[dict[str, str]]:
    """Scheduled maintenance to announce: ``{title, text}`` each, shown above the services.

    None yet: the hook the alerts work fills (its maintenance windows); the
    page's section stays hidden while this is empty.
    """
    return []


async def status_page(request: web.Request) -> web.Response:
    """``GET /status``: complete without JavaScript; the script only keeps it live."""
    site = request.app[PUBLIC]
    settings = site.settings
    page = settings.status_page
    details = site.main[BOARD].details()
    figures = site.figures()
    bars = await site.bars()
    today = int(dt.datetime.now(dt.UTC).timestamp() * 1000) // DAY_MS * DAY_MS
    shown = shown_services(settings)
    names = [s.name for s in shown]
    sections = []
    for group, members in groups(shown):
        rows = []
        for service in members:
            detail = details.get(service.name)
            status = public_status(detail)
            entry = public_detail(service, detail, settings, names)
            rows.append(
                {
                    "name": service.name,
                    "display": display_name(service),
                    "status": status,
                    "word": "Stale" if state_word(detail) == "stale" else WORDS[status],
                    "shape": SHAPES[status],
                    "latency": entry["latency_ms"],
                    "reason": entry["reason"],
                    "maintenance": entry["maintenance"],
                    "uptimes": _uptimes(figures.get(service.name)),
                    "days": day_bar(bars.get(service.name), today),
                }
            )
        sections.append({"name": group, "services": rows})
    rolled = banner([public_status(details.get(n)) for n in names])
    context = {
        "title": page.title,
        "description": page.description,
        "banner": rolled,
        "sections": sections,
        "ongoing": ongoing_incidents(details, settings),
        "resolved": resolved_incidents(bars, settings),
        "history": bool(bars),
        "show_latency": page.show_latency,
        "maintenance": maintenance_notices(request.app),
        "bootstrap_json": json.dumps(public_document(settings, site.main[BOARD])),
        "live": LIVE,
        "static_version": site.main[STATIC_VERSION],
    }
    return aiohttp_jinja2.render_template("status.html", request, context)
