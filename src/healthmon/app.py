"""The one place where the parts are wired, and the process that serves them.

Data flows config → mocks → checker (``Monitor``) → broker → board → hub →
browsers. Each part is a cleanup context: created before ``yield``, stopped
after, in reverse order of start.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterable

import structlog
from aiohttp import WSCloseCode, web

from healthmon.api import json_errors, setup_routes
from healthmon.broker import create_broker
from healthmon.checker import Monitor
from healthmon.config import Settings
from healthmon.errors import StartupError
from healthmon.hub import Hub
from healthmon.keys import BOARD, BROKER, HUB, MOCKS, MONITOR, SETTINGS
from healthmon.mocks import MockService
from healthmon.origins import page_origins
from healthmon.page import setup_page
from healthmon.status import StatusBoard, feed

log = structlog.get_logger(__name__)

ROLES = frozenset({"mocks", "monitor", "ws"})
# How long a stop may take before the remaining handlers are cut off.
SHUTDOWN_TIMEOUT_S = 3.0


async def _broker(app: web.Application) -> AsyncIterator[None]:
    app[BROKER] = await create_broker(app[SETTINGS].broker)
    yield
    await app[BROKER].close()


async def _mocks(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # Slow answers must outlast the check timeout, or "slow" would look "up".
    slow_ms = settings.monitor.timeout_ms + 2000
    origins = page_origins(settings.web)
    mocks = {
        s.name: MockService(s, cors_origins=origins, slow_ms=slow_ms)
        for s in settings.services
        if s.mock
    }
    app[MOCKS] = mocks
    started: list[MockService] = []
    try:
        for mock in mocks.values():
            await mock.start()
            started.append(mock)
        yield
    finally:
        await asyncio.gather(*(mock.stop() for mock in started))


async def _board(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    board = StatusBoard(
        [s.name for s in settings.services], heartbeat_ms=settings.monitor.heartbeat_ms
    )
    app[BOARD] = board
    async with feed(board, app[BROKER]):
        yield


async def _hub(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hub = Hub(
        app[BOARD],
        allowed_origins=page_origins(settings.web),
        heartbeat_ms=settings.monitor.heartbeat_ms,
        # A new client waits at most one full check for a complete snapshot.
        snapshot_wait_ms=settings.monitor.timeout_ms + settings.monitor.interval_ms + 250,
        service_info={
            s.name: {"url": s.url, "health_path": s.health_path, "data_endpoint": s.data_endpoint}
            for s in settings.services
        },
    )
    app[HUB] = hub
    beats = asyncio.create_task(hub.heartbeats())
    yield
    beats.cancel()
    await asyncio.gather(beats, return_exceptions=True)


async def _close_websockets(app: web.Application) -> None:
    await app[HUB].close_all(WSCloseCode.GOING_AWAY, "server shutdown")


async def _monitor(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    monitor = Monitor(settings.services, settings.monitor, app[BROKER])
    app[MONITOR] = monitor
    await monitor.start()
    yield
    await monitor.stop()


async def _websocket(request: web.Request) -> web.StreamResponse:
    return await request.app[HUB].handle(request)


def create_app(settings: Settings, roles: Iterable[str] = ROLES) -> web.Application:
    roles = frozenset(roles)
    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_broker)
    if "mocks" in roles:
        app.cleanup_ctx.append(_mocks)
    # The board subscribes before the monitor starts, so no first result is missed.
    app.cleanup_ctx.append(_board)
    if "ws" in roles:
        app.cleanup_ctx.append(_hub)
        app.on_shutdown.append(_close_websockets)
        app.router.add_get("/ws", _websocket)
        setup_page(app)
    if "monitor" in roles:
        app.cleanup_ctx.append(_monitor)
    setup_routes(app)
    return app


async def serve(settings: Settings, roles: Iterable[str] = ROLES) -> None:
    """Run until SIGINT or SIGTERM, then stop within ``SHUTDOWN_TIMEOUT_S``."""
    app = create_app(settings, roles)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host, port = settings.web.host, settings.web.port
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        _log_started(settings, roles)
        await stop.wait()
        log.info("healthmon.stopping")
    finally:
        # 1. stop accepting; 2. close WebSockets with 1001 (on_shutdown);
        # 3. give requests in flight SHUTDOWN_TIMEOUT_S; 4. stop the monitor,
        # hub, board, mocks and broker, in reverse order of start.
        await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _log_started(settings: Settings, roles: Iterable[str]) -> None:
    shown = (
        "localhost" if settings.web.host in ("127.0.0.1", "0.0.0.0", "::") else settings.web.host
    )
    base = f"http://{shown}:{settings.web.port}"
    urls: dict[str, object] = {"api": f"{base}/api/services", "statuses": f"{base}/statuses"}
    if "ws" in roles:
        urls.update(page=f"{base}/", websocket=f"ws://{shown}:{settings.web.port}/ws")
    if "mocks" in roles:
        urls["mocks"] = {s.name: s.data_url for s in settings.services if s.mock}
    log.info("healthmon.started", roles=sorted(roles), broker=settings.broker.kind, **urls)
