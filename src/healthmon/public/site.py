"""The public site: ``/status``, the badges and the filtered live channel.

Served on the main listener too, and alone on ``[status_page] port``: there
a small application of its own (``create_public_app``) shares the main
application's board, summaries and store, and routes nothing else — no
dashboard, API, metrics or controls exist on it to be reached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import WSCloseCode, web

from healthmon.config import LiveConfig, Settings
from healthmon.keys import ARCHIVE, BOARD, CONFIG, STATIC_VERSION, SUMMARIES
from healthmon.origins import LOOPBACK_HOSTS, host_name
from healthmon.page import client_file
from healthmon.paths import static_dir, templates_dir
from healthmon.public import badges
from healthmon.public.live import PublicHub, public_document
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
from healthmon.reports import service_history
from healthmon.security import PLAIN_HOST, add_preflights, guard, secure_headers
from healthmon.sse import EventStreams
from healthmon.store import StoreError
from healthmon.store.base import DAY_MS
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

# Resolved incidents the page lists, newest first, across the shown services.
RESOLVED_SHOWN = 10
BAR_DAYS = 90
LIVE = "/status/live/"


def public_origins(settings: Settings) -> frozenset[str]:
    """The public listener's own origins: loopback and configured names on its port,
    and the configured names on the default ports (behind a proxy)."""
    page = settings.status_page
    if page.port is None:
        return frozenset()
    names = {h for h in settings.web.allowed_hosts if "*" not in h}
    host = host_name(page.host or settings.web.host)
    if host not in ("", "0.0.0.0", "[::]"):
        names.add(host)
    own = {f"http://{n}:{page.port}" for n in names | set(LOOPBACK_HOSTS)}
    own |= {f"{scheme}://{n}" for n in names for scheme in ("http", "https")}
    return frozenset(own)


class PublicSite:
    """What both listeners share: the public hub and stream, the badge cache, the day bars."""

    def __init__(self, main: web.Application) -> None:
        self.main = main
        self.config: LiveConfig = main[CONFIG]
        board = main[BOARD]
        settings = self.config.settings
        self.hub = PublicHub(
            board,
            lambda: self.config.settings,
            lambda: public_origins(self.config.settings),
            heartbeat_ms=settings.monitor.heartbeat_ms,
            snapshot_wait_ms=settings.monitor.timeout_ms + settings.monitor.interval_ms + 250,
        )
        self.events = EventStreams(self.hub)
        self.badges = badges.BadgeCache()
        # Bumped by every visible change and every summaries refresh: the badge cache's key.
        self.changes = 0
        self.refreshes = 0
        board.on_change.append(self._changed)
        self._bars: tuple[int, dict[str, dict[str, Any]]] | None = None
        self._bars_lock = asyncio.Lock()

    def _changed(self, name: str, state: object) -> None:
        self.changes += 1

    def refreshed(self) -> None:
        self.refreshes += 1

    @property
    def settings(self) -> Settings:
        return self.config.settings

    def version(self) -> tuple[int, int, int]:
        return (self.changes, self.refreshes, id(self.config.settings))

    def figures(self) -> Mapping[str, Mapping[str, Any]]:
        summaries = self.main.get(SUMMARIES)
        return summaries.with_long if summaries is not None else {}

    async def bars(self) -> dict[str, dict[str, Any]]:
        """Each shown service's 90 days and incidents, read once per summaries refresh."""
        async with self._bars_lock:
            if self._bars is not None and self._bars[0] == self.refreshes:
                return self._bars[1]
            archive = self.main.get(ARCHIVE)
            store = archive.store if archive is not None else None
            found: dict[str, dict[str, Any]] = {}
            if store is not None:
                try:
                    for service in shown_services(self.settings):
                        found[service.name] = await service_history(store, service.name, "90d")
                except StoreError as exc:
                    log.warning("status_page.history_unavailable", error=str(exc))
                    found = {}
            self._bars = (self.refreshes, found)
            return found


PUBLIC = web.AppKey("public", PublicSite)
# True on the public listener: only what the status page shows exists there.
PUBLIC_ONLY = web.AppKey("public_only", bool)


# -- badges ----------------------------------------------------------------------


async def badge(request: web.Request) -> web.Response:
    """``GET /badge/...``: from the cache while the state is unchanged; 304 on a match."""
    site = request.app[PUBLIC]
    settings = site.settings
    max_age = settings.status_page.badge_max_age_s
    label = request.query.get("label")
    if label is not None:
        label = label[: badges.MAX_LABEL]
    tail = request.match_info["tail"]
    parsed = badges.split_path(tail)
    kind = parsed[1] if parsed is not None else ("json" if tail.endswith(".json") else "svg")
    public = request.app[PUBLIC_ONLY]
    key = (public, tail, label)
    rendered = site.badges.get(site.version(), key)
    if rendered is None:
        chosen = badges.NOT_FOUND
        if parsed is not None:
            details = site.main[BOARD].details()
            chosen = badges.choose(parsed[0], settings, details, site.figures(), public=public)
        rendered = badges.render(chosen, kind, label, max_age)
        site.badges.put(key, rendered)
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": f"public, max-age={max_age}",
        "Content-Type": badges.CONTENT_TYPES[kind],
    }
    if rendered.status == 200 and badges.etag_matches(
        request.headers.get("If-None-Match"), rendered.etag
    ):
        return web.Response(status=304, headers=headers)
    return web.Response(body=rendered.body, status=rendered.status, headers=headers)


# -- the page ----------------------------------------------------------------------


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


async def live_services(request: web.Request) -> web.Response:
    """The polling form of the public channel (no-store: it is always the latest)."""
    site = request.app[PUBLIC]
    return web.json_response(
        public_document(site.settings, site.main[BOARD]), headers={"Cache-Control": "no-store"}
    )


# Files the page shares with the dashboard, at public paths (the public
# listener serves no /static/): the state palette, the icon and its drawing.
SHARED_FILES = {
    "/status/states.css": ("states.css", "text/css"),
    "/status/favicon.svg": ("favicon.svg", "image/svg+xml"),
    "/status/favicon.js": ("dashboard/favicon.js", "text/javascript"),
}


async def shared_file(request: web.Request) -> web.FileResponse:
    name, content_type = SHARED_FILES[request.path]
    return web.FileResponse(static_dir() / name, headers={"Content-Type": content_type})


def add_public_routes(app: web.Application) -> None:
    """The public routes, on either listener (``app[PUBLIC]`` set before)."""
    site = app[PUBLIC]
    app.router.add_get("/status", status_page)
    app.router.add_get("/badge/{tail:.+}", badge)
    app.router.add_get(LIVE + "ws", site.hub.handle)
    app.router.add_get(LIVE + "events", site.events.handle, allow_head=False)
    app.router.add_get(LIVE + "api/services", live_services)
    for path in SHARED_FILES:
        app.router.add_get(path, shared_file)
    app.router.add_static("/status/static/", static_dir() / "status")


async def _run_public(app: web.Application) -> AsyncIterator[None]:
    """The public hub's heartbeats and the stream's keep-alives, for as long as the main app."""
    site = app[PUBLIC]
    summaries = app.get(SUMMARIES)
    if summaries is not None:
        summaries.on_refresh.append(site.refreshed)
    tasks = [
        supervise("public.heartbeats", site.hub.heartbeats),
        supervise("public.keepalive", site.events.keepalive),
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _close_public(app: web.Application) -> None:
    site = app[PUBLIC]
    site.events.close_all()
    await site.hub.close_all(WSCloseCode.GOING_AWAY, "server shutdown")


def setup_public(app: web.Application) -> None:
    """The status page and badges on the main listener (the ws role, status page enabled).

    Added after the history context, so the summaries exist when it starts.
    """
    app[PUBLIC] = PublicSite(app)
    app[PUBLIC_ONLY] = False
    app.cleanup_ctx.append(_run_public)
    app.on_shutdown.append(_close_public)
    # Before the main page's policy, which names the services' hosts.
    app.on_response_prepare.insert(0, public_policy_header)
    add_public_routes(app)


def public_policy(settings: Settings, host: str) -> str:
    """The public page's CSP: its own server only (no service hosts to reveal)."""
    page = settings.status_page
    ancestors = page.frame_ancestors or settings.web.frame_ancestors
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}" if host else "connect-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            f"frame-ancestors {' '.join(ancestors) or chr(39) + 'none' + chr(39)}",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


PUBLIC_PREFIXES = ("/status", "/badge/")


async def public_policy_header(request: web.Request, response: web.StreamResponse) -> None:
    """The public CSP on the public paths, before the usual headers (which keep it)."""
    if request.path.startswith(PUBLIC_PREFIXES):
        host = request.host if PLAIN_HOST.fullmatch(request.host) else ""
        policy = public_policy(request.app[CONFIG].settings, host)
        response.headers.setdefault("Content-Security-Policy", policy)


def create_public_app(main: web.Application) -> web.Application:
    """The public listener's application: ``/status``, badges, ``/client.js`` and the
    read-only live channel; anything else is 404.
    """
    app = web.Application(client_max_size=4096, middlewares=[guard])
    app.on_response_prepare.append(public_policy_header)
    app.on_response_prepare.append(secure_headers)
    app[CONFIG] = main[CONFIG]
    app[PUBLIC] = main[PUBLIC]
    app[PUBLIC_ONLY] = True
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=jinja2.select_autoescape(default=True),
    )
    # Its sockets and streams are the shared hub's: closed with whichever listener stops first.
    app.on_shutdown.append(_close_public)
    app.router.add_get("/client.js", client_file)
    add_public_routes(app)
    add_preflights(app)
    return app
