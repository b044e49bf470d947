"""README badges: flat SVG drawn by hand, and shields.io's endpoint JSON.

Routes (``.svg`` or ``.json``)::

    /badge/{name}/status            a service's state
    /badge/{name}/uptime/{window}   24h, 7d, 30d or 90d
    /badge/{name}/latency/{window}  24h or 7d (mean)
    /badge/@group/{group}/status    the worst of a group
    /badge/@all/status              the worst of everything shown

``@`` cannot start a service name, so the aggregates never hide a service.
A badge is rendered once per state change (or summaries refresh) and path,
then served from memory with an ``ETag``; peers may cache it for
``badge_max_age_s``. Anything unknown is a grey 404 badge, never a 500.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import structlog

from healthmon.config import Settings
from healthmon.public.view import banner, floor_percent, public_status, state_word
from healthmon.public.view import shown as shown_of

log = structlog.get_logger(__name__)

# The fills of static/states.css (blue / yellow / red / grey: apart under
# colour blindness), each with the ink that reads on it.
COLOURS = {
    "up": ("1f6fbf", "fff"),
    "degraded": ("f2b705", "111827"),
    "down": ("b42318", "fff"),
    "unknown": ("6b7280", "fff"),
}
LABEL_FILL = "555"
UPTIME_WINDOWS = ("24h", "7d", "30d", "90d")
LATENCY_WINDOWS = ("24h", "7d")
MAX_LABEL = 40
# Rendered badges kept per state version; unknown paths are never kept.
CACHE_SIZE = 2048

# Verdana 11 px advance widths (as shields measures), by character class; a
# character not listed counts as a wide one, so a label never overflows.
WIDTH_CLASSES = (
    (" ", 3.9),
    ("ijlI.,:;'|!", 3.1),
    ('frt()[]{}/\\-`"', 4.7),
    ("ackszJ", 6.0),
    ("abdeghnopquvxy0123456789$?_#*+<=>^~", 7.0),
    ("ABCEFKLPRSTXYZ&%", 7.5),
    ("DGHNOQUV", 8.4),
    ("mwMW@", 10.5),
)
# The first class naming a character wins.
WIDTHS = {c: w for chars, w in reversed(WIDTH_CLASSES) for c in chars}
WIDE = 11.0


def text_width(text: str) -> float:
    return sum(WIDTHS.get(c, WIDE) for c in text)


def _xml(text: str) -> str:
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def render_svg(label: str, message: str, state: str) -> bytes:
    """A flat badge: grey label, message on the state's fill; ``role=img`` with its words."""
    fill, ink = COLOURS.get(state, COLOURS["unknown"])
    left = round(text_width(label) + 10)
    right = round(text_width(message) + 10)
    width = left + right
    words = _xml(f"{label}: {message}")
    lab, msg = _xml(label), _xml(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{words}"><title>{words}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#{LABEL_FILL}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="#{fill}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2:g}" y="15" fill="#010101" fill-opacity=".3">{lab}</text>'
        f'<text x="{left / 2:g}" y="14" fill="#fff">{lab}</text>'
        f'<text x="{left + right / 2:g}" y="14" fill="#{ink}">{msg}</text>'
        "</g></svg>"
    ).encode()


def render_json(label: str, message: str, state: str, max_age_s: int) -> bytes:
    """shields.io's endpoint badge: https://shields.io/badges/endpoint-badge."""
    return json.dumps(
        {
            "schemaVersion": 1,
            "label": label,
            "message": message,
            "color": COLOURS.get(state, COLOURS["unknown"])[0],
            # shields never caches for less than 300 s; say what we allow anyway.
            "cacheSeconds": max_age_s,
        },
        ensure_ascii=False,
    ).encode()


@dataclass(frozen=True, slots=True)
class Badge:
    """What a badge says; ``found`` is False for an unknown name or window (404)."""

    label: str
    message: str
    state: str
    found: bool = True


NOT_FOUND = Badge("healthmon", "unknown service", "unknown", found=False)


def uptime_badge(window: str, figures: Mapping[str, Any] | None) -> Badge:
    """Uptime of known time, floored; "no data" when nothing is known (never 100 %)."""
    label = f"uptime {window}"
    entry = (figures or {}).get(window) or {}
    pct = entry.get("uptime")
    if pct is None:
        return Badge(label, "no data", "unknown")
    text = f"{floor_percent(pct)}%"
    covered, known = entry.get("covered_ms") or 0, entry.get("known_ms") or 0
    if covered and known < 0.99 * covered:
        text += f" of {floor_percent(100 * known / covered)}% known"
    state = "up" if pct >= 99.5 else "degraded" if pct >= 95 else "down"
    return Badge(label, text, state)


def latency_badge(
    window: str, figures: Mapping[str, Any] | None, ok_ms: int, warn_ms: int
) -> Badge:
    label = f"latency {window}"
    entry = (figures or {}).get(window)
    mean = None if entry is None else entry.get("latency_ms")
    if mean is None:
        return Badge(label, "no data", "unknown")
    state = "up" if mean <= ok_ms else "degraded" if mean <= warn_ms else "down"
    return Badge(label, f"{mean:.0f} ms", state)


AGGREGATE_STATE = {
    "operational": "up",
    "degraded": "degraded",
    "partial": "degraded",
    "major": "down",
    "unknown": "unknown",
}


def aggregate_badge(label: str, details: list[Mapping[str, Any] | None]) -> Badge:
    rolled = banner([public_status(d) for d in details])
    words = {"operational": "operational", "unknown": "unknown"}.get(
        rolled.key, rolled.text.lower()
    )
    return Badge(label, words, AGGREGATE_STATE[rolled.key])


def choose(
    parts: tuple[str, ...],
    settings: Settings,
    details: Mapping[str, Mapping[str, Any]],
    figures: Mapping[str, Mapping[str, Any]],
    *,
    public: bool,
) -> Badge:
    """The badge a path names (its parts after /badge/, extension removed): total, never raises.

    ``public``: only services the status page shows exist (the public listener).
    """
    visible = shown_of(settings)
    shown = visible.services
    if parts == ("@all", "status"):
        return aggregate_badge("status", [details.get(s.name) for s in shown])
    if len(parts) == 3 and parts[0] == "@group" and parts[2] == "status":
        members = [s for s in shown if s.group == parts[1]]
        if not members:
            return NOT_FOUND
        return aggregate_badge(parts[1], [details.get(s.name) for s in members])
    if not parts:
        service = None
    else:
        service = visible.by_name.get(parts[0]) if public else settings.service(parts[0])
    if service is None:
        return NOT_FOUND
    label = service.display_name or service.name
    if parts[1:] == ("status",):
        detail = details.get(service.name)
        return Badge(label, state_word(detail), public_status(detail))
    page = settings.status_page
    if len(parts) == 3 and parts[1] == "uptime" and parts[2] in UPTIME_WINDOWS:
        badge = uptime_badge(parts[2], figures.get(service.name))
        return Badge(f"{label} {badge.label}", badge.message, badge.state)
    if len(parts) == 3 and parts[1] == "latency" and parts[2] in LATENCY_WINDOWS:
        badge = latency_badge(
            parts[2], figures.get(service.name), page.latency_ok_ms, page.latency_warn_ms
        )
        return Badge(f"{label} {badge.label}", badge.message, badge.state)
    return NOT_FOUND


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    etag: str
    status: int


def render(badge: Badge, kind: str, label: str | None, max_age_s: int) -> Rendered:
    shown_label = label if label is not None else badge.label
    if kind == "svg":
        body = render_svg(shown_label, badge.message, badge.state)
    else:
        body = render_json(shown_label, badge.message, badge.state, max_age_s)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return Rendered(body, etag, 200 if badge.found else 404)


def split_path(tail: str) -> tuple[tuple[str, ...], str] | None:
    """``billing/uptime/24h.svg`` → (("billing", "uptime", "24h"), "svg"); None if no such form."""
    stem, dot, kind = tail.rpartition(".")
    if not dot or kind not in ("svg", "json"):
        return None
    parts = tuple(stem.split("/"))
    if not 2 <= len(parts) <= 3 or not all(parts):
        return None
    return parts, kind


CONTENT_TYPES = {"svg": "image/svg+xml", "json": "application/json"}


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class BadgeCache:
    """Rendered badges by (scope, path, label), valid for one state version."""

    def __init__(self) -> None:
        self.version: object = None
        self.rendered: OrderedDict[tuple[bool, str, str | None], Rendered] = OrderedDict()
        self.hits = 0
        self.renders = 0

    def get(self, version: object, key: tuple[bool, str, str | None]) -> Rendered | None:
        if version != self.version:
            self.version = version
            self.rendered.clear()
            return None
        found = self.rendered.get(key)
        if found is not None:
            self.hits += 1
        return found

    def put(self, key: tuple[bool, str, str | None], rendered: Rendered) -> None:
        self.renders += 1
        if rendered.status != 200:
            return
        self.rendered[key] = rendered
        if len(self.rendered) > CACHE_SIZE:
            self.rendered.popitem(last=False)
