"""Mock services: each a small server owning its Application, runner and site.

A mock's mode is switched at run time, the classroom stand-in for stopping a
container. ``down`` really closes the listening socket and every open
connection, so a checker sees "connection refused", as with a stopped
container, and not a keep-alive connection that still answers.

A mock binds its listening sockets itself so that ``down`` can stop accepting
before it closes them: asyncio hands an accepted connection to its server one
loop turn after accepting it, and a server closed in between drops that
connection unanswered and open (CPython gh-109564; the socket leak is
gh-155934, fixed after 3.11). A check made at that moment hung until its
timeout instead of seeing the mock down.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog
from aiohttp import web
from yarl import URL

from healthmon.config import ServiceSettings, Settings
from healthmon.errors import StartupError
from healthmon.origins import page_origins

log = structlog.get_logger(__name__)

HEALTH_JSON = "application/health+json"


class Mode(StrEnum):
    UP = "up"
    DOWN = "down"
    ERROR = "error"
    SLOW = "slow"
    DEGRADED = "degraded"


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The original demo's data payloads, by service name (auth and analytics both
# serve /analytics, with different bodies).
_PAYLOADS: dict[str, Callable[[], dict[str, Any]]] = {
    "auth": lambda: {"userCount": 1234, "lastSync": _iso_now()},
    "billing": lambda: {"totalInvoices": 256, "revenue": "$12,345.67"},
    "notifications": lambda: {"pending": 42, "lastSent": _iso_now()},
    "analytics": lambda: {"activeSessions": 87, "pageViews": 1024},
}


def payload_for(name: str) -> dict[str, Any]:
    make = _PAYLOADS.get(name)
    return make() if make else {"service": name, "ok": True, "time": _iso_now()}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def served_path(url: str) -> str:
    """The path a request for ``url`` arrives with, decoded, as ``request.path`` reads it.

    The query is left out; percent-escapes and non-ASCII text compare by meaning.
    """
    return URL(url).path


def cors_middleware(origins: frozenset[str]) -> Any:
    """Answer CORS, preflight included, for the page's origins only."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in origins
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                raise web.HTTPForbidden(text="origin not allowed")
            headers = {
                "Access-Control-Allow-Origin": origin or "",
                "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", ""
                ),
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
            # Chrome asks before a public page reaches a private address.
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                headers["Access-Control-Allow-Private-Network"] = "true"
            return web.Response(status=204, headers=headers)
        response = await handler(request)
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Vary"] = "Origin"
        return response

    return middleware


class MockService:
    """One mock: ``GET <health_path>`` and ``GET <data_endpoint>``, with a mode."""

    def __init__(
        self,
        service: ServiceSettings,
        *,
        cors_origins: Iterable[str],
        slow_ms: int,
        mode: Mode = Mode.UP,
    ) -> None:
        self.service = service
        self.mode = mode
        self._origins = frozenset(cors_origins)
        # How long "slow" answers take; a reload may change it.
        self.slow_ms = slow_ms
        self._runner: web.AppRunner | None = None
        self._sockets: list[socket.socket] = []
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def listening(self) -> bool:
        return self._runner is not None

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[cors_middleware(self._origins)])
        # Every path to one handler that compares it with the configured ones:
        # a configured path is never read as a router pattern ("{", ":", regex
        # characters), and a query belongs to the request, not to the route.
        routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}
        if self.service.data_url is not None:
            routes[served_path(self.service.data_url)] = self._data
        # The health answer wins where both are the same path.
        routes[served_path(self.service.health_url)] = self._health

        async def route(request: web.Request) -> web.StreamResponse:
            handler = routes.get(request.path)
            if handler is None:
                raise web.HTTPNotFound()
            return await handler(request)

        app.router.add_get("/{path:.*}", route)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        mode = self.mode
        if mode is Mode.SLOW:
            await asyncio.sleep(self.slow_ms / 1000)
        body: dict[str, Any] = {"status": "pass", "serviceId": self.name, "time": _iso_now()}
        status = 200
        if mode is Mode.ERROR:
            body.update(status="fail", output=f"{self.name} was switched to error")
            status = 503
        elif mode is Mode.DEGRADED:
            body.update(status="warn", output=f"{self.name} was switched to degraded")
        return web.json_response(body, status=status, content_type=HEALTH_JSON)

    async def _data(self, request: web.Request) -> web.Response:
        if self.mode is Mode.SLOW:
            await asyncio.sleep(self.slow_ms / 1000)
        if self.mode is Mode.ERROR:
            return web.json_response({"error": f"{self.name} is failing (mode: error)"}, status=503)
        body = payload_for(self.name)
        if request.query:
            body["query"] = dict(request.query)
        return web.json_response(body)

    async def start(self) -> None:
        """Listen, unless the mode is ``down``."""
        async with self._lock:
            if self.mode is not Mode.DOWN:
                await self._listen()

    async def stop(self) -> None:
        async with self._lock:
            await self._close()

    async def set_mode(self, mode: Mode) -> None:
        """Switch to ``mode``; calls made together apply one by one, in call order.

        ``StartupError`` when it cannot listen: the mock then stays as it was.
        """
        # asyncio.Lock is fair: waiters acquire it in the order they asked.
        async with self._lock:
            previous, self.mode = self.mode, mode
            try:
                if mode is Mode.DOWN:
                    await self._close()
                elif self._runner is None:
                    await self._listen()
            except BaseException:
                # The mode must say whether it listens: "up" with nothing
                # listening would be a lie.
                listening = self._runner is not None
                if listening is (previous is not Mode.DOWN):
                    self.mode = previous
                elif not listening:
                    self.mode = Mode.DOWN
                raise
        if previous is not mode:
            log.info("mock.mode", service=self.name, **{"from": previous.value, "to": mode.value})

    async def _listen(self) -> None:
        # A fresh app per start: an aiohttp Application is not restartable.
        runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        sockets: list[socket.socket] = []
        try:
            sockets = await _bind(self.service.host, self.service.port)
            for sock in sockets:
                await web.SockSite(runner, sock).start()
        except BaseException as exc:
            # Nothing half-started stays behind, whatever went wrong.
            await runner.cleanup()
            for sock in sockets:
                sock.close()
            if isinstance(exc, OSError):
                raise StartupError(
                    f"mock {self.name!r} cannot listen on {self.service.host}:"
                    f"{self.service.port}: {exc.strerror or exc}"
                ) from None
            raise
        self._runner, self._sockets = runner, sockets

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        sockets, self._sockets = self._sockets, []
        if runner is None:
            return
        loop = asyncio.get_running_loop()
        if isinstance(loop, asyncio.SelectorEventLoop):
            # Accept nothing more, then one turn for what was accepted to reach
            # the server, which closes it with the rest (see the module's note).
            for sock in sockets:
                loop.remove_reader(sock)
            await asyncio.sleep(0)
        # Closes the listening sockets and every open connection.
        await runner.cleanup()


async def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address of ``host``, bound as ``loop.create_server`` binds."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, address in dict.fromkeys((info[0], info[4]) for info in infos):
            # SO_REUSEADDR, and IPv6 only on an IPv6 address, as create_server does.
            sockets.append(socket.create_server(address, family=family))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def slow_ms_for(service: ServiceSettings, settings: Settings) -> int:
    """Slow answers must outlast the check timeout, or "slow" would look "up"."""
    return (service.timeout_ms or settings.monitor.timeout_ms) + 2000


def mock_for(service: ServiceSettings, settings: Settings, *, mode: Mode = Mode.UP) -> MockService:
    """The mock of ``service``, answering CORS for the page's origins."""
    return MockService(
        service,
        cors_origins=page_origins(settings.web),
        slow_ms=slow_ms_for(service, settings),
        mode=mode,
    )
