"""The page: one template rendered with the configured services, plus static files."""

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


async def index(request: web.Request) -> web.Response:
    document = services_document(request.app)
    settings = request.app[CONFIG].settings
    return aiohttp_jinja2.render_template(
        "index.html",
        request,
        {
            "services": document["services"],
            "config_error": document.get("config_error"),
            "placeholder": PLACEHOLDER,
            "placeholder_mock": {**PLACEHOLDER, "mock": True},
            "bootstrap_json": json.dumps(document),
            "interval_ms": settings.monitor.interval_ms,
            "static_version": request.app[STATIC_VERSION],
        },
    )


def setup_page(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app[STATIC_VERSION] = _static_version()
    app.router.add_get("/", index)
    app.router.add_static("/static/", static_dir())
