"""The pages (the dashboard, the example shop), the client module, and static files."""

from __future__ import annotations

import hashlib
import json

import aiohttp_jinja2
import jinja2
from aiohttp import web

from healthmon.api import services_document
from healthmon.keys import CONFIG, STATIC_VERSION
from healthmon.paths import static_dir, templates_dir


def _static_version() -> str:
    """Changes whenever a static file does, so browsers never run stale code."""
    digest = hashlib.sha256()
    for path in sorted(static_dir().rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


# What the <template> elements are rendered with: the page fills these tokens
# (HTML-escaped) when a config reload adds a service, so a card, its modal and
# its control row have one source of markup, the template's macros.
PLACEHOLDER: dict[str, object] = {
    "name": "__NAME__",
    "url": "__URL__",
    "data_endpoint": "__DATA_ENDPOINT__",
    "data_url": "__DATA_URL__",
    "status": "unknown",
    "latency_ms": None,
    "reason": None,
    "checks": [],
    "history": None,
    "mock": False,
    "mode": None,
}


def _context(request: web.Request) -> dict[str, object]:
    """What every page is rendered with: the services as the API shows them, and versions."""
    document = services_document(request.app)
    settings = request.app[CONFIG].settings
    return {
        "services": document["services"],
        "config_error": document.get("config_error"),
        # The file the server runs from, and saved keys that wait for a restart.
        "config_file": document.get("config_file"),
        "restart_needed": document.get("restart_needed") or [],
        "placeholder": PLACEHOLDER,
        "placeholder_mock": {**PLACEHOLDER, "mock": True},
        "bootstrap_json": json.dumps(document),
        "interval_ms": settings.monitor.interval_ms,
        "static_version": request.app[STATIC_VERSION],
    }


async def index(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("index.html", request, _context(request))


async def example(request: web.Request) -> web.Response:
    """A small shop whose controls are gated by healthmon's client module alone."""
    return aiohttp_jinja2.render_template("example.html", request, _context(request))


# The client module, for this page and for apps on other origins (CORS: see
# security.SHARED_PATHS); its TypeScript declarations beside it. Served like
# the other static files (ETag, Last-Modified), under a stable path.
CLIENT_FILES = {
    "/client.js": ("client.js", "text/javascript; charset=utf-8"),
    "/client.d.ts": ("client.d.ts", "application/typescript; charset=utf-8"),
}


async def favicon(request: web.Request) -> web.FileResponse:
    """The neutral icon, for what asks /favicon.ico (the pages name theirs, and the
    dashboard draws the worst state into it).
    """
    return web.FileResponse(static_dir() / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


async def client_file(request: web.Request) -> web.FileResponse:
    name, content_type = CLIENT_FILES[request.path]
    headers = {"Content-Type": content_type}
    if name == "client.js":
        # Deno and some editors fetch the declarations named here.
        headers["X-TypeScript-Types"] = "/client.d.ts"
    return web.FileResponse(static_dir() / name, headers=headers)


def setup_page(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app[STATIC_VERSION] = _static_version()
    app.router.add_get("/", index)
    app.router.add_get("/example", example)
    app.router.add_get("/favicon.ico", favicon)
    for path in CLIENT_FILES:
        app.router.add_get(path, client_file)
    app.router.add_static("/static/", static_dir())
