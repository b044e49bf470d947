"""The one place where the parts are wired, and the process that serves them.

Data flows config → mocks → checker (``Monitor``) → broker → board → hub →
browsers. Each part is a cleanup context: created before ``yield``, stopped
after, in reverse order of start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import aiohttp
import structlog
from aiohttp import WSCloseCode, web

from healthmon.alerts.api import setup_alert_routes
from healthmon.alerts.service import ALERTER, alerts_context
from healthmon.api import setup_routes
from healthmon.archive import Archive
from healthmon.broker import create_broker
from healthmon.checker import Monitor
from healthmon.config import DEFAULT_CONFIG, LiveConfig, Settings
from healthmon.errors import StartupError
from healthmon.hub import Hub
from healthmon.keys import (
    ARCHIVE,
    BOARD,
    BROKER,
    CONFIG,
    HUB,
    METRICS,
    MOCKS,
    MONITOR,
    PROCESS_ROLES,
    RECORDER,
    SUMMARIES,
)
from healthmon.metrics import Metrics
from healthmon.mocks import mock_for
from healthmon.models import now_ms
from healthmon.page import setup_page
from healthmon.public.site import create_public_app, setup_public
from healthmon.recorder import Recorder
from healthmon.reload import RELOADER, reloader_context
from healthmon.reports import Summaries
from healthmon.security import add_preflights, guard, secure_headers
from healthmon.sse import EVENTS, setup_events
from healthmon.status import (
    RECENT_CHANGES,
    HttpSnapshot,
    MonitorSnapshot,
    Resync,
    Snapshot,
    StatusBoard,
    feed,
    stale_after_ms,
)
from healthmon.store import StoreError
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

MONITOR_ROLE = "monitor"
ROLES = frozenset({"mocks", MONITOR_ROLE, "ws"})
# How long a stop may take before the remaining handlers are cut off.
SHUTDOWN_TIMEOUT_S = 3.0


async def _broker(app: web.Application) -> AsyncIterator[None]:
    app[BROKER] = await create_broker(app[CONFIG].settings.broker)
    yield
    await app[BROKER].close()


async def _mocks(app: web.Application) -> AsyncIterator[None]:
    settings = app[CONFIG].settings
    # A dict that reloads add to and remove from.
    mocks = app[MOCKS] = {s.name: mock_for(s, settings) for s in settings.services if s.mock}
    try:
        for mock in mocks.values():
            await mock.start()
        yield
    finally:
        await asyncio.gather(*(mock.stop() for mock in mocks.values()))


async def _board(app: web.Application) -> AsyncIterator[None]:
    settings = app[CONFIG].settings
    broker = app[BROKER]
    board = app[BOARD]
    async with contextlib.AsyncExitStack() as stack:
        snapshot: Snapshot
        if MONITOR_ROLE in app[PROCESS_ROLES]:
            # Created after the board; looked up when a re-sync is wanted.
            async def snapshot() -> Sequence[MonitorSnapshot]:
                monitor = app[MONITOR]
                if not monitor.running:
                    return []
                return [
                    MonitorSnapshot(
                        monitor=monitor.instance_id, ts=now_ms(), services=monitor.snapshot()
                    )
                ]
        else:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            snapshot = HttpSnapshot(session, settings.monitor.snapshot_urls)
        # With no monitor in this process, its first results were missed:
        # fetch them, and do so again whenever the broker comes back.
        resync = Resync(board, snapshot, at_start=MONITOR_ROLE not in app[PROCESS_ROLES])
        broker.on_reconnect.append(resync.trigger)
        broker.on_disconnect.append(board.broker_lost)
        board.on_missed.append(resync.trigger)
        await stack.enter_async_context(feed(board, broker))
        task = supervise("board.resync", resync.run)
        stack.push_async_callback(_cancel, task)
        yield


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _heartbeats(app: web.Application) -> AsyncIterator[None]:
    beats = supervise("hub.heartbeats", app[HUB].heartbeats)
    yield
    await _cancel(beats)


async def _close_websockets(app: web.Application) -> None:
    await app[HUB].close_all(WSCloseCode.GOING_AWAY, "server shutdown")


def _history_base(app: web.Application) -> Path:
    """A relative [history] path is taken from the config file's folder."""
    path = app[CONFIG].path
    return path.resolve().parent if path is not None else Path.cwd()


async def _history(app: web.Application) -> AsyncIterator[None]:
    """Open the store (retrying, never blocking the start) and run its writer and readers."""
    settings = app[CONFIG].settings
    archive = app[ARCHIVE] = Archive(settings.history, _history_base(app))
    archive.on_error.append(app[METRICS].history_error)
    tasks = [supervise("history.open", archive.run)]
    if MONITOR_ROLE in app[PROCESS_ROLES]:
        limits = {s.name: stale_after_ms(s, settings.monitor) for s in settings.services}
        recorder = app[RECORDER] = Recorder(archive, settings.history, limits)
        tasks.append(supervise("history.write", recorder.run))
    if BOARD in app:
        board, hub = app[BOARD], app[HUB]
        summaries = app[SUMMARIES] = Summaries(archive, lambda: board.names)

        def show() -> None:
            board.history_state = {"available": archive.available, "problem": archive.problem}
            hub.show_history_state()

        def take_uptimes() -> None:
            board.uptimes = summaries.by_service

        show()
        archive.on_change.append(show)
        summaries.on_refresh.append(take_uptimes)

        async def read() -> None:
            await _seed_log(archive, board)
            await summaries.run()

        tasks.append(supervise("history.read", read))
    yield
    for task in tasks:
        await _cancel(task)
    if RECORDER in app:
        await app[RECORDER].stop()
    await archive.close()


async def _seed_log(archive: Archive, board: StatusBoard) -> None:
    """The event log starts with the changes stored before this process started."""
    await archive.opened.wait()
    assert archive.store is not None
    try:
        changes = await archive.store.changes(RECENT_CHANGES)
    except StoreError as exc:
        archive.failed(exc.kind, str(exc))
        return
    board.seed_changes(
        [
            {
                "ts": p.start_ms,
                "service": p.service,
                "from": p.previous,
                "to": p.status,
                "reason": p.reason,
            }
            for p in reversed(changes)
        ]
    )


async def _monitor(app: web.Application) -> AsyncIterator[None]:
    settings = app[CONFIG].settings
    monitor = Monitor(settings.services, settings.monitor, app[BROKER])
    monitor.observers.append(app[METRICS].observe)
    if RECORDER in app:
        monitor.recorders.append(app[RECORDER].observe)
    if ALERTER in app:
        monitor.recorders.append(app[ALERTER].observe)
    app[MONITOR] = monitor
    await monitor.start()
    yield
    await monitor.stop()


async def _watch_metrics(app: web.Application) -> None:
    app[METRICS].watch(app.get(BOARD), app.get(HUB), app.get(EVENTS))


def create_app(
    settings: Settings,
    roles: Iterable[str] = ROLES,
    *,
    config_path: Path | None = None,
    demo: bool = False,
) -> web.Application:
    """The process's application: only the parts its roles name.

    With ``config_path``, edits to that file apply while it runs. ``demo``:
    the settings are the built-in demo, and ``config_path`` is only watched
    (a file saved there takes over).
    """
    roles = frozenset(roles)
    # The Host allow-list, and the security headers on every answer, /ws included.
    app = web.Application(client_max_size=64 * 1024, middlewares=[guard])
    app.on_response_prepare.append(secure_headers)
    app[CONFIG] = LiveConfig(settings, config_path, from_file=not demo)
    app[PROCESS_ROLES] = roles
    app[METRICS] = Metrics()
    if roles & {"ws", MONITOR_ROLE}:
        app.cleanup_ctx.append(_broker)
    if "mocks" in roles:
        app.cleanup_ctx.append(_mocks)
    if "ws" in roles:
        board = app[BOARD] = StatusBoard(settings.services, settings.monitor)
        hub = app[HUB] = Hub(
            board,
            web_settings=settings.web,
            heartbeat_ms=settings.monitor.heartbeat_ms,
            # A new client waits at most one full check for a complete snapshot.
            snapshot_wait_ms=settings.monitor.timeout_ms + settings.monitor.interval_ms + 250,
            services=settings.services,
            config_file=app[CONFIG].file,
        )
        # The board subscribes before the monitor starts, so no first result is missed.
        app.cleanup_ctx.append(_board)
        app.cleanup_ctx.append(_heartbeats)
        app.on_shutdown.append(_close_websockets)
        # Straight to the hub: the one middleware (security.guard) checks the
        # Host and hands the upgrade on without a frame of its own.
        app.router.add_get("/ws", hub.handle)
        # The same messages as a Server-Sent Events stream, switched separately ("sse").
        setup_events(app, hub)
        setup_page(app)
    if roles & {"ws", MONITOR_ROLE} and settings.history.enabled:
        app.cleanup_ctx.append(_history)
    if roles & {"ws", MONITOR_ROLE}:
        # After history (its outbox is the store), before the monitor (whose results it reads).
        app.cleanup_ctx.append(alerts_context)
        setup_alert_routes(app)
    if MONITOR_ROLE in roles:
        app.cleanup_ctx.append(_monitor)
    if "ws" in roles and settings.status_page.enabled:
        # After history: the public site counts the summaries' refreshes.
        setup_public(app)
    if config_path is not None:
        app.cleanup_ctx.append(reloader_context)
    app.on_startup.append(_watch_metrics)
    app.router.add_get("/metrics", app[METRICS].handle)
    setup_routes(app, roles)
    # OPTIONS on the routes other origins may read (after every route is added).
    add_preflights(app)
    return app


def check_roles(settings: Settings, roles: frozenset[str]) -> None:
    """A monitor and a hub in different processes need a broker between them."""
    split = len(roles & {"ws", MONITOR_ROLE}) == 1
    if split and settings.broker.kind == "memory":
        raise StartupError(
            f"--role {','.join(sorted(roles))} needs a broker shared between processes: "
            'set [broker] kind = "rabbitmq" (the in-memory broker lives in one process)'
        )


def listen_addresses(settings: Settings, roles: Iterable[str]) -> list[tuple[str, int]]:
    """The web port for pages and controls; a monitor alone serves on its own port."""
    roles = frozenset(roles)
    addresses = []
    if roles & {"ws", "mocks"}:
        addresses.append((settings.web.host, settings.web.port))
    if MONITOR_ROLE in roles and "ws" not in roles:
        addresses.append((settings.web.host, settings.monitor.port))
    return addresses


def public_address(settings: Settings, roles: Iterable[str]) -> tuple[str, int] | None:
    """The public status page's own listener, when ``[status_page] port`` names one."""
    page = settings.status_page
    if "ws" not in frozenset(roles) or not page.enabled or page.port is None:
        return None
    return (page.host or settings.web.host, page.port)


async def _listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host:port``, as ``loop.create_server`` makes them, open now.

    Bound before anything starts: a port that is taken stops the start
    before a mock, a check or a log line says anything ran.
    """
    loop = asyncio.get_running_loop()
    sockets: list[socket.socket] = []
    try:
        found = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # As asyncio does: "::" is IPv6 only, 0.0.0.0 has its own socket.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


async def serve(
    settings: Settings, roles: Iterable[str] = ROLES, *, config_path: Path | None = None
) -> None:
    """Run until SIGINT or SIGTERM, then stop within ``SHUTDOWN_TIMEOUT_S``.

    SIGHUP reloads the configuration file. Without ``config_path`` the
    settings are the built-in demo, and ``./config.toml`` takes over once saved.
    """
    roles = frozenset(roles)
    check_roles(settings, roles)
    app = create_app(
        settings, roles, config_path=config_path or DEFAULT_CONFIG, demo=config_path is None
    )
    # The listening sockets first; then every part (mocks, broker, monitor...);
    # then serving on the sockets, which have queued any early connection.
    sockets: list[socket.socket] = []
    public_sockets: list[socket.socket] = []
    try:
        for host, port in listen_addresses(settings, roles):
            sockets += await _listen(host, port)
        if (public := public_address(settings, roles)) is not None:
            public_sockets += await _listen(*public)
    except StartupError:
        for sock in sockets + public_sockets:
            sock.close()
        raise
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    # Only /status, the badges and the filtered live channel: nothing else is routed there.
    public_runner = (
        web.AppRunner(create_public_app(app), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        if public_sockets
        else None
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        if public_runner is not None:
            await public_runner.setup()
            for sock in public_sockets:
                await web.SockSite(public_runner, sock).start()
        loop.add_signal_handler(signal.SIGHUP, app[RELOADER].request)
        # Everything allocated so far lives as long as the process: keep it
        # out of the collector's way, so its pauses stay short under load.
        gc.collect()
        gc.freeze()
        _log_started(settings, roles)
        await stop.wait()
        log.info("healthmon.stopping")
    finally:
        # 1. stop accepting; 2. close WebSockets with 1001 (on_shutdown);
        # 3. give requests in flight SHUTDOWN_TIMEOUT_S; 4. stop the monitor,
        # hub, board, mocks and broker, in reverse order of start. The public
        # listener first: it only reads what the main application owns.
        if public_runner is not None:
            await public_runner.cleanup()
        await runner.cleanup()
        for sock in sockets + public_sockets:
            sock.close()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _log_started(settings: Settings, roles: frozenset[str]) -> None:
    host = settings.web.host
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    web_base = f"http://{shown}:{settings.web.port}"
    urls: dict[str, object] = {}
    if "ws" in roles:
        urls.update(
            page=f"{web_base}/",
            websocket=f"ws://{shown}:{settings.web.port}/ws",
            api=f"{web_base}/api/services",
        )
    if "mocks" in roles:
        urls["mocks"] = {s.name: s.data_url for s in settings.services if s.mock}
    if MONITOR_ROLE in roles and "ws" not in roles:
        urls["monitor"] = f"http://{shown}:{settings.monitor.port}/api/statuses"
    if (public := public_address(settings, roles)) is not None:
        public_host = "localhost" if public[0] in ("127.0.0.1", "0.0.0.0", "::") else public[0]
        urls["status_page"] = f"http://{public_host}:{public[1]}/status"
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    log.info(
        "healthmon.started",
        roles=sorted(roles),
        broker=settings.broker.kind,
        loop=loop,
        **urls,
    )
