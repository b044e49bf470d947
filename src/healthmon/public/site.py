"""The public site's routes, on either listener, and the public listener's application.

Served on the main listener too, and alone on ``[status_page] port``: there
a small application of its own (``create_public_app``) shares the main
application's board, summaries and store, and routes nothing else — no
dashboard, API, metrics or controls exist on it to be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, web

from healthmon.config import Settings
from healthmon.keys import BOARD, CONFIG, SUMMARIES
from healthmon.page import client_file
from healthmon.paths import static_dir, templates_dir
from healthmon.public import badges
from healthmon.public.live import public_document
from healthmon.public.page import LIVE, status_page
from healthmon.public.shared import PUBLIC, PUBLIC_ONLY, PublicSite
from healthmon.security import PLAIN_HOST, add_preflights, guard, secure_headers
from healthmon.supervise import supervise


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
