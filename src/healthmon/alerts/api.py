"""The alert log and silences over HTTP: ``/api/alerts``, ``/api/silences``.

Setting or lifting a silence is a control: the same guard as the other
controls (loopback, or ``web.control_token``, and only from our page's origin).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from healthmon.alerts.maintenance import Silences
from healthmon.alerts.service import LOG_KEEP_MS, OUTBOX, SILENCES, row_json
from healthmon.api import _authorize, _json_body, json_errors
from healthmon.keys import CONFIG
from healthmon.models import now_ms
from healthmon.store import StoreError
from healthmon.store.base import Silence

LOG_LIMIT = 200


def silence_json(silence: Silence) -> dict[str, object]:
    return {
        "id": silence.id,
        "services": list(silence.services),
        "until_ms": silence.until_ms,
        "comment": silence.comment,
        "created_ms": silence.created_ms,
    }


async def alert_log(request: web.Request) -> web.Response:
    rows = await request.app[OUTBOX].log(LOG_LIMIT, now_ms() - LOG_KEEP_MS)
    # The channels configured: none, and the page says what to add instead of an empty log.
    channels = [c.name for c in request.app[CONFIG].settings.channels]
    return web.json_response({"alerts": [row_json(r) for r in rows], "channels": channels})


async def list_silences(request: web.Request) -> web.Response:
    found = await _silences(request).list(now_ms())
    return web.json_response({"silences": [silence_json(s) for s in found]})


def _silences(request: web.Request) -> Silences:
    return request.app[SILENCES]


def _until(body: dict[str, object]) -> int:
    """``until`` (an ISO time with its offset) or ``minutes`` from now."""
    until, minutes = body.get("until"), body.get("minutes")
    if isinstance(minutes, int) and not isinstance(minutes, bool) and 0 < minutes <= 525_600:
        return now_ms() + minutes * 60_000
    if isinstance(until, str):
        try:
            moment = datetime.fromisoformat(until)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            end = round(moment.timestamp() * 1000)
            if end > now_ms():
                return end
    raise web.HTTPBadRequest(
        text="give 'until' (a future ISO time with its offset) or 'minutes' (1 to 525600)"
    )


async def add_silence(request: web.Request) -> web.Response:
    _authorize(request)
    body = await _json_body(request)
    services = body.get("services")
    if (
        not isinstance(services, list)
        or not services
        or not all(isinstance(s, str) and 0 < len(s) <= 64 for s in services)
    ):
        raise web.HTTPBadRequest(text="'services' must be a list of names or globs")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 200):
        raise web.HTTPBadRequest(text="'comment' must be text of at most 200 characters")
    try:
        silence = await _silences(request).add(services, _until(body), comment)
    except StoreError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    return web.json_response(silence_json(silence), status=201)


async def remove_silence(request: web.Request) -> web.Response:
    _authorize(request)
    silence_id = request.match_info["id"]
    try:
        gone = await _silences(request).remove(silence_id)
    except StoreError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    if not gone:
        raise web.HTTPNotFound(text=f"no silence {silence_id!r}")
    return web.json_response({"id": silence_id, "removed": True})


def setup_alert_routes(app: web.Application) -> None:
    for method, path, handler in (
        ("GET", "/api/alerts", alert_log),
        ("GET", "/api/silences", list_silences),
        ("POST", "/api/silences", add_silence),
        ("DELETE", "/api/silences/{id}", remove_silence),
    ):
        app.router.add_route(method, path, json_errors(handler))
