"""What every response goes through: the Host allow-list and the security headers.

``guard`` is the application's one middleware. It refuses a request whose
``Host`` is not one of this server's names (421, before any handler runs:
the defence against DNS rebinding, as Starlette's TrustedHostMiddleware).
It is a plain function, not a coroutine: every request passes straight to
its handler's coroutine, so a long-lived socket or stream holds no
middleware frame.

``secure_headers`` adds a Content-Security-Policy, ``nosniff`` and
``Referrer-Policy`` to every answer, as aiohttp sends its headers
(``on_response_prepare``): pages, errors, 404s, event streams and the
WebSocket's 101 alike, whatever the request carries.

Cross-origin reading (CORS) is allowed on the read-only routes in
``SHARED_PATHS`` for the origins ``origin_allowed`` names: the page's own and
``[web] cors_origins``. The Host allow-list still applies first, so an app on
another origin reaches healthmon by one of its names.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from healthmon.config import Settings
from healthmon.keys import CONFIG
from healthmon.origins import allowed_hosts, host_allowed, origin_allowed

log = structlog.get_logger(__name__)

# Read-only routes that a page on a listed origin may read (CORS). /ws is not
# here: a WebSocket is not subject to CORS, its handler checks the Origin.
SHARED_PATHS = frozenset(
    {
        "/client.js",
        "/client.d.ts",
        "/events",
        "/statuses",
        "/api/services",
        # The public status page's channel, for embeds on listed origins.
        "/status/live/events",
        "/status/live/api/services",
    }
)
# What a preflight allows: reads, with the header an event-stream reader resumes with.
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Allow-Headers": "Last-Event-ID, Cache-Control",
    "Access-Control-Max-Age": "600",
}

# A Host value that may appear in a CSP source expression as it is.
PLAIN_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")


def service_sources(settings: Settings) -> list[str]:
    """Every HTTP service's host, any port, in config order: the page polls them itself.

    Any port, because a page keeps the policy it was loaded with: a service that
    a reload adds on a known host (a new mock, say) is reachable without a page
    reload; one on a new host is once the page is reloaded.
    """
    sources: list[str] = []
    for service in settings.services:
        if service.kind != "http":
            continue  # a browser cannot reach tcp:// or grpc:// itself
        parts = urlsplit(service.url)
        host = parts.netloc.rpartition(":")[0] if parts.port else parts.netloc
        source = f"{parts.scheme}://{host.lower()}:*"
        if source not in sources:
            sources.append(source)
    return sources


def content_security_policy(settings: Settings, host: str) -> str:
    """No inline script or style; connections to this server and the services only."""
    connect = ["'self'"]
    if PLAIN_HOST.fullmatch(host):
        # 'self' covers ws: in CSP3, not in every browser yet: name the socket too.
        connect += [f"ws://{host}", f"wss://{host}"]
    connect += service_sources(settings)
    ancestors = " ".join(settings.web.frame_ancestors) or "'none'"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src {' '.join(connect)}",
            "img-src 'self' data:",
            "object-src 'none'",
            f"frame-ancestors {ancestors}",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer gets the headers just before they are sent."""
    add_headers(response, request)


def add_headers(response: web.StreamResponse, request: web.Request) -> None:
    """The security headers, and CORS on a shared route; a handler's own values are kept."""
    headers = response.headers
    settings = request.app[CONFIG].settings
    if "Content-Security-Policy" not in headers:
        # Built only when needed: it walks every service (the badges set their own).
        headers["Content-Security-Policy"] = content_security_policy(settings, request.host)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/static/"):
        # ES modules import each other by plain names: make browsers revalidate
        # (a cheap 304 by ETag) so an upgrade never mixes old and new modules.
        headers.setdefault("Cache-Control", "no-cache")
    if request.path in SHARED_PATHS:
        # The answer depends on the Origin: a cache must not hand one origin's to another.
        if "Origin" not in headers.getall("Vary", []):
            headers.add("Vary", "Origin")
        origin = request.headers.get("Origin")
        if origin is not None and origin_allowed(origin, None, settings.web):
            headers["Access-Control-Allow-Origin"] = origin


async def preflight(request: web.Request) -> web.Response:
    """``OPTIONS`` on a shared route: allowed for a listed origin, 403 for another."""
    origin = request.headers.get("Origin")
    if origin is None:
        return web.Response(status=204, headers={"Allow": "GET, HEAD, OPTIONS"})
    if not origin_allowed(origin, None, request.app[CONFIG].settings.web):
        raise web.HTTPForbidden(text=f"origin {origin} is not in [web] cors_origins")
    return web.Response(status=204, headers=PREFLIGHT_HEADERS)


def add_preflights(app: web.Application) -> None:
    """Answer ``OPTIONS`` on each shared route this application serves."""
    paths = {resource.canonical for resource in app.router.resources()}
    for path in sorted(paths & SHARED_PATHS):
        app.router.add_route("OPTIONS", path, preflight)


def _refuse(exc: web.HTTPException) -> web.HTTPException:
    exc.headers["X-Content-Type-Options"] = "nosniff"
    exc.headers["Content-Security-Policy"] = "default-src 'none'"
    return exc


@web.middleware
def guard(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Refuse a Host that is not ours (421); hand every other request on, frameless."""
    host = request.headers.get("Host")
    if not host:
        raise _refuse(web.HTTPBadRequest(text="a Host header is required"))
    settings = request.app[CONFIG].settings
    if not host_allowed(host, allowed_hosts(settings.web, settings.monitor)):
        log.warning("http.host_refused", host=host, path=request.path)
        raise _refuse(
            web.HTTPMisdirectedRequest(
                text="this server does not answer to that host name; "
                "add it to [web] allowed_hosts to allow it"
            )
        )
    return handler(request)
