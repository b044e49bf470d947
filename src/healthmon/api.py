"""HTTP API: statuses for the page and the original's clients, and the controls
a teacher uses instead of stopping containers.

Domain errors become HTTP errors here, at the edge, always as JSON.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web

from healthmon import reports
from healthmon.alerts.service import alert_fields, current_mute, maintenance_next_ms
from healthmon.errors import StartupError
from healthmon.hub import public_info
from healthmon.keys import ARCHIVE, BOARD, CONFIG, HUB, MOCKS, MONITOR
from healthmon.mocks import Mode
from healthmon.models import now_ms
from healthmon.origins import control_origin_allowed
from healthmon.reports import WindowError, window_ms
from healthmon.sse import EVENTS
from healthmon.store import HistoryStore, StoreError

log = structlog.get_logger(__name__)

MAX_CONTROL_BODY = 4096
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Controls:
    """One lock per thing a control call switches: a component, or one mock.

    Calls that arrive together apply one at a time, in the order they arrived
    (an ``asyncio.Lock`` is fair), so the last one's state is the one left.
    A reload holds the locks of what it touches, so no call falls in its middle.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def component(self, name: str) -> asyncio.Lock:
        return self._lock(f"component:{name}")

    def mock(self, name: str) -> asyncio.Lock:
        return self._lock(f"mock:{name}")

    def locks(
        self, *, mocks: Iterable[str] = (), components: Iterable[str] = ()
    ) -> list[asyncio.Lock]:
        """Several locks, in the one order every holder of more than one takes them."""
        keys = sorted({*(f"mock:{n}" for n in mocks), *(f"component:{c}" for c in components)})
        return [self._lock(key) for key in keys]


CONTROLS = web.AppKey("controls", Controls)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def json_errors(handler: Handler) -> Handler:
    """Every API error is JSON with a message; nothing escapes as a bare 500."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.text or exc.reason)
        except Exception:
            log.exception("api.unexpected_error", path=request.path)
            return _error(500, "internal error; see the healthmon log")

    return wrapped


def is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _authorize(request: web.Request) -> None:
    """Control calls: loopback (or the configured token), JSON, from our page."""
    settings = request.app[CONFIG].settings.web
    origin = request.headers.get("Origin")
    # A page on another site could POST to localhost; our page's own origins
    # only (an app in cors_origins may read, never switch).
    if origin is not None and not control_origin_allowed(origin, settings):
        raise web.HTTPForbidden(text=f"origin {origin} may not use the control endpoints")
    token = settings.control_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if hmac.compare_digest(given.encode(), expected.encode()):
            return
    if is_loopback(request.remote):
        return
    raise web.HTTPForbidden(
        text="control endpoints answer loopback callers only"
        + ("" if token is not None else "; set web.control_token to allow others with a token")
    )


async def _json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_CONTROL_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_CONTROL_BODY, request.content_length)
    # Chunked bodies state no length: read one byte past the limit to know.
    data = await request.content.read(MAX_CONTROL_BODY + 1)
    if len(data) > MAX_CONTROL_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_CONTROL_BODY, len(data))
    try:
        body = json.loads(data or b"null")
    except RecursionError:
        raise web.HTTPBadRequest(text="body is nested too deeply") from None
    except ValueError:
        raise web.HTTPBadRequest(text="body is not valid JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def statuses(request: web.Request) -> web.Response:
    """The original's ``GET /statuses``: name → up, in config order."""
    if BOARD in request.app:
        return web.json_response(request.app[BOARD].booleans())
    current = request.app[MONITOR].current
    names = [s.name for s in request.app[CONFIG].settings.services]
    return web.json_response({n: current[n].up for n in names if n in current})


async def monitor_statuses(request: web.Request) -> web.Response:
    """A monitor's own view, for processes that re-sync from it."""
    monitor = request.app[MONITOR]
    if not monitor.running:
        # Its last observations would pass for a live monitor's word.
        raise web.HTTPServiceUnavailable(text="the monitor is switched off")
    return web.json_response(
        {
            "monitor": monitor.instance_id,
            "ts": now_ms(),
            "services": [u.model_dump(exclude_none=True) for u in monitor.snapshot()],
        }
    )


# What a service shows before the board knows it (never, once a reload is atomic).
_UNSEEN: dict[str, Any] = {
    "status": "unknown",
    "up": False,
    "latency_ms": None,
    "reason": None,
    "checked_at": None,
    "since": None,
    "checks": [],
    "history": None,
    "blocked_by": [],
}


def services_document(app: web.Application) -> dict[str, Any]:
    """The page's view, built in one step from the settings and the board's own details."""
    settings = app[CONFIG].settings
    board = app[BOARD]
    mocks = app.get(MOCKS, {})
    details = board.details()
    mute = current_mute(app)
    now = now_ms()  # one moment for every service's mark
    services = []
    for service in settings.services:
        mock = mocks.get(service.name)
        services.append(
            {
                "name": service.name,
                **public_info(service),
                "mode": mock.mode.value if mock else None,
                "depends_on": list(service.depends_on),
                **_UNSEEN,
                **details.get(service.name, {}),
                **alert_fields(app, service.name, mute, now),
            }
        )
    monitor = app.get(MONITOR)
    hub = app.get(HUB)
    events = app.get(EVENTS)
    live = app[CONFIG]
    return {
        "services": services,
        "config_error": live.error,
        # The file as the user named it (None: the built-in demo), and its
        # saved keys that wait for a restart.
        "config_file": live.file,
        "restart_needed": list(live.restart_needed),
        "history": board.history_state,
        "log": board.recent_changes(),
        # When a maintenance mark may next change: the page asks again then.
        "maintenance_next_ms": maintenance_next_ms(mute, now),
        "interval_ms": settings.monitor.interval_ms,
        "timeout_ms": settings.monitor.timeout_ms,
        "monitor": {
            "running": monitor.running if monitor else None,
            "alive": board.monitor_alive,
            "id": board.monitor_id,
            "last_seen": board.monitor_seen,
        },
        "ws": {
            "running": hub.enabled if hub else None,
            "clients": len(hub.clients) if hub else 0,
        },
        "sse": {
            "running": events.enabled if events is not None else None,
            "clients": len(events) if events is not None else 0,
        },
    }


async def services(request: web.Request) -> web.Response:
    return web.json_response(services_document(request.app))


def _store(request: web.Request) -> HistoryStore:
    archive = request.app.get(ARCHIVE)
    if archive is None:
        raise web.HTTPNotFound(text="history is off ([history] enabled = false)")
    if archive.store is None:
        raise web.HTTPServiceUnavailable(text=f"history unavailable: {archive.problem}")
    return archive.store


def _window(request: web.Request, default: str) -> str:
    window = request.query.get("window", default)
    try:
        window_ms(window)
    except WindowError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return window


async def service_history(request: web.Request) -> web.Response:
    """One service's uptime, bars and incidents over ``?window=`` (default 24h)."""
    name = request.match_info["name"]
    if request.app[CONFIG].settings.service(name) is None:
        raise web.HTTPNotFound(text=f"no service named {name[:64]!r}")
    window = _window(request, "24h")
    store = _store(request)
    try:
        document = await reports.service_history(store, name, window)
    except StoreError as exc:
        raise web.HTTPServiceUnavailable(text=f"history unavailable: {exc}") from None
    return web.json_response(document)


EXPORT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


async def history_export(request: web.Request) -> web.Response:
    """Buckets of every service (or ``?service=``) over ``?window=``, as CSV or JSON lines."""
    settings = request.app[CONFIG].settings
    fmt = request.query.get("format", "csv")
    if fmt not in EXPORT_TYPES:
        raise web.HTTPBadRequest(text="format must be csv or jsonl")
    names = [s.name for s in settings.services]
    if "service" in request.query:
        names = [request.query["service"]]
        if settings.service(names[0]) is None:
            raise web.HTTPNotFound(text=f"no service named {names[0][:64]!r}")
    window = _window(request, "24h")
    store = _store(request)
    try:
        body = await reports.export(store, names, window, fmt)
    except StoreError as exc:
        raise web.HTTPServiceUnavailable(text=f"history unavailable: {exc}") from None
    return web.Response(
        text=body,
        content_type=EXPORT_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="healthmon-{window}.{fmt}"',
        },
    )


async def set_mock_mode(request: web.Request) -> web.Response:
    _authorize(request)
    name = request.match_info["name"]
    if name not in request.app.get(MOCKS, {}):
        raise web.HTTPNotFound(text=f"no mock service named {name!r}")
    body = await _json_body(request)
    try:
        mode = Mode(str(body.get("mode")))
    except ValueError:
        choices = "|".join(m.value for m in Mode)
        raise web.HTTPBadRequest(text=f"'mode' must be one of {choices}") from None
    async with request.app[CONTROLS].mock(name):
        # Looked up again under the lock: a reload may have removed or replaced it.
        mock = request.app.get(MOCKS, {}).get(name)
        if mock is None:
            raise web.HTTPNotFound(text=f"no mock service named {name!r}")
        try:
            await mock.set_mode(mode)
        except StartupError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        return web.json_response({"name": name, "mode": mock.mode.value})


def _components(app: web.Application) -> dict[str, Callable[[bool], Awaitable[None]]]:
    """The parts a teacher can switch off and on, in this process."""
    switches: dict[str, Callable[[bool], Awaitable[None]]] = {}
    if MONITOR in app:
        monitor = app[MONITOR]
        switches["monitor"] = lambda running: monitor.start() if running else monitor.stop()
    if HUB in app:
        switches["ws"] = app[HUB].set_enabled
    if EVENTS in app:
        switches["sse"] = app[EVENTS].set_enabled
    return switches


async def set_component(request: web.Request) -> web.Response:
    _authorize(request)
    component = request.match_info["component"]
    switch = _components(request.app).get(component)
    if switch is None:
        raise web.HTTPNotFound(text=f"no component named {component!r} here")
    body = await _json_body(request)
    running = body.get("running")
    if not isinstance(running, bool):
        raise web.HTTPBadRequest(text="'running' must be true or false")
    async with request.app[CONTROLS].component(component):
        await switch(running)
        log.info("component.switched", component=component, running=running)
    return web.json_response({"component": component, "running": running})


def setup_routes(app: web.Application, roles: frozenset[str]) -> None:
    app[CONTROLS] = Controls()
    routes: list[tuple[str, str, Handler]] = []
    if roles & {"ws", "monitor"}:
        routes.append(("GET", "/statuses", statuses))
    if "ws" in roles:
        routes.append(("GET", "/api/services", services))
        routes.append(("GET", "/api/services/{name}/history", service_history))
        routes.append(("GET", "/api/history/export", history_export))
    if "monitor" in roles:
        routes.append(("GET", "/api/statuses", monitor_statuses))
    if "mocks" in roles:
        routes.append(("POST", "/api/mocks/{name}", set_mock_mode))
    routes.append(("POST", "/api/components/{component}", set_component))
    for method, path, handler in routes:
        app.router.add_route(method, path, json_errors(handler))
