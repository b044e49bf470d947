"""Live config reload: a saved ``config.toml`` (or SIGHUP) applies within a second.

Only what changed is touched: added services start (mock, checks, a card
on every open page), removed ones stop and disappear, changed ones restart
with their new settings; unchanged checks and every WebSocket client carry
on. An invalid edit keeps the running config and is shown until fixed.

A reload applies to every part or to none, and no request sees half of it:
whatever awaits (reading the file, starting new mocks) happens first; then
the settings, mocks, board, hub and monitor switch in one step of the event
loop. A mock that cannot start (its port is taken) undoes the reload: the
mocks it started stop, those it stopped start again, and the error is shown
like any other config error. So does any other failure, at any step (a bug
included, logged with its traceback): the running configuration stays, every
mock as it was, the error is shown until the file is fixed, and the reloader
keeps watching instead of crashing.

Every key is either applied live or logged as needing a restart, by name
(``config.restart_needed keys=["web.port"]``); a key that needs a restart
keeps its running value until then, so the settings in force are always
the ones the process really uses. Which saved keys wait for a restart is
kept (``LiveConfig.restart_needed``) and told to every page when it changes;
a key put back to its running value is logged as ``config.applied`` with
``reverted``. Every line names the file.

The file is looked at four times a second (a stat; read and compared byte
for byte when the stat changes), in a thread, as is parsing it: for one
small file that is cheaper and more reliable than a watcher library
(editors that save by renaming, network folders, macOS and Linux alike).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from aiohttp import web
from pydantic import BaseModel

from healthmon.alerts.service import ALERTER
from healthmon.alerts.settings import AlertSettings, ChannelSettings, MaintenanceWindow
from healthmon.api import CONTROLS, Controls
from healthmon.config import (
    DEFAULT_CONFIG,
    ConfigError,
    HistorySettings,
    MonitorSettings,
    ServiceSettings,
    Settings,
    StatusPageSettings,
    WebSettings,
    load_settings,
)
from healthmon.errors import StartupError
from healthmon.keys import BOARD, CONFIG, HUB, METRICS, MOCKS, MONITOR, RECORDER
from healthmon.mocks import MockService, Mode, mock_for, slow_ms_for
from healthmon.status import stale_after_ms
from healthmon.supervise import supervise

log = structlog.get_logger(__name__)

POLL_S = 0.25

# Keys read once at start, by section: a change is logged, by key, and
# applied at the next start. Every other key applies live.
RESTART_KEYS: Mapping[str, frozenset[str]] = {
    # The listening socket, and what the page's origins (the socket's and the
    # mocks' CORS rule, built at start) are made of.
    "web": frozenset({"host", "port", "cors_origins", "allowed_hosts"}),
    # The connection to the broker.
    "broker": frozenset({"kind", "url"}),
    # Where a lone monitor listens, and where a ws process fetches snapshots from.
    "monitor": frozenset({"port", "urls"}),
    # Where history is kept and for how long: the store is opened once.
    "history": frozenset(HistorySettings.model_fields),
    # The public listener is bound once; its routes are added at start.
    "status_page": frozenset({"enabled", "host", "port"}),
}
# Keys applied live, by section (the test keeps the two lists complete).
LIVE_KEYS: Mapping[str, frozenset[str]] = {
    # Read by every request (the control calls, the security headers).
    "web": frozenset(WebSettings.model_fields) - RESTART_KEYS["web"],
    "broker": frozenset(),
    "history": frozenset(),
    # Read by every public request and every badge.
    "status_page": frozenset(StatusPageSettings.model_fields) - RESTART_KEYS["status_page"],
    # Check knobs restart the loops they change; heartbeat_ms is read every beat.
    "monitor": frozenset(MonitorSettings.model_fields) - RESTART_KEYS["monitor"],
    # Every service key: the service's loop, mock and card follow it.
    "services": frozenset(ServiceSettings.model_fields),
    # Alerts: the engine, channels and windows take the new tables at once.
    "channels": frozenset(ChannelSettings.model_fields),
    "alerts": frozenset(AlertSettings.model_fields),
    "maintenance": frozenset(MaintenanceWindow.model_fields),
}


def _changed(old: BaseModel, new: BaseModel, keys: frozenset[str]) -> list[str]:
    return [key for key in sorted(keys) if getattr(old, key) != getattr(new, key)]


def restart_keys(old: Settings, new: Settings) -> list[str]:
    """The keys (``section.key``, sorted) ``new`` changes that apply only at the next start."""
    return sorted(
        f"{section}.{key}"
        for section, keys in RESTART_KEYS.items()
        for key in _changed(getattr(old, section), getattr(new, section), keys)
    )


def live_keys(old: Settings, new: Settings) -> list[str]:
    """The section keys (not services) ``new`` changes that apply now."""
    return [
        f"{section}.{key}"
        for section in ("web", "broker", "monitor", "status_page")
        for key in _changed(getattr(old, section), getattr(new, section), LIVE_KEYS[section])
    ]


def in_force(old: Settings, new: Settings) -> Settings:
    """``new`` with every key that needs a restart at its running value."""
    updates = {}
    for section, keys in RESTART_KEYS.items():
        running = getattr(old, section)
        updates[section] = getattr(new, section).model_copy(
            update={key: getattr(running, key) for key in keys}
        )
    return new.model_copy(update=updates)


def _served(service: ServiceSettings | None) -> object:
    # What a mock serves; a change of check knobs alone must not restart it
    # (a restart would be a moment of "connection refused").
    if service is None or not service.mock:
        return None
    return (service.url, service.health_path, service.data_endpoint)


@dataclass
class _Swap:
    """The mocks a reload replaces, and those it has started to replace them."""

    # Names whose running mock goes (removed, no longer a mock, or serving anew).
    retired: list[str] = field(default_factory=list)
    # Already stopped: their port is wanted by a mock starting now.
    stopped: list[MockService] = field(default_factory=list)
    started: dict[str, MockService] = field(default_factory=dict)
    # Stopped once the switch is made.
    leaving: list[MockService] = field(default_factory=list)


class _MockFailed(Exception):
    def __init__(self, service: str, error: Exception) -> None:
        # A port taken says it all; anything else is named with its type.
        if isinstance(error, StartupError):
            message = str(error)
        else:
            message = f"mock {service!r} cannot start: {type(error).__name__}: {error}"
        super().__init__(message)
        self.service = service


class Reloader:
    def __init__(self, app: web.Application, path: Path) -> None:
        self.app = app
        self.path = path
        self.controls = app.get(CONTROLS) or Controls()
        self._wanted = asyncio.Event()
        self._stamp: tuple[int, int, int] | None = None
        self._content: bytes | None = None
        self._last: bytes | None = None
        # One reload at a time, whoever asks.
        self._reloading = asyncio.Lock()

    def _read(self) -> bytes | None:
        """The file's bytes, read again only when its stat says it changed (blocking)."""
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
            if stamp != self._stamp:
                self._content = self.path.read_bytes()
                self._stamp = stamp
        except OSError:
            self._stamp = self._content = None
        return self._content

    async def prime(self) -> None:
        """Remember the file as it is when the process starts."""
        self._last = await asyncio.to_thread(self._read)

    def request(self) -> None:
        """Reload now (SIGHUP), whether or not the file changed."""
        self._wanted.set()

    async def run(self) -> None:
        seen = self._last
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), POLL_S)
            content = await asyncio.to_thread(self._read)
            # An edit applies once two reads in a row agree: an editor that
            # empties the file before writing it must not remove every
            # service for a moment, nor half a file show as an error.
            settled, seen = content == seen, content
            if self._wanted.is_set() or (settled and content != self._last):
                self._wanted.clear()
                await self.reload()
                # Only now: a reload that crashed is tried again once the
                # supervisor restarts this loop.
                self._last = content

    async def reload(self) -> None:
        async with self._reloading:
            await self._reload()

    async def _reload(self) -> None:
        live = self.app[CONFIG]
        error_before = live.error
        try:
            loaded = await asyncio.to_thread(load_settings, self.path)
        except ConfigError as exc:
            self._reject(str(exc))
            return
        except Exception as exc:
            self._reject(f"{self.path}: cannot load: {type(exc).__name__}: {exc}", crashed=True)
            return
        old = live.settings
        restart = restart_keys(old, loaded)
        new = in_force(old, loaded)
        before = {s.name: s for s in old.services}
        after = {s.name: s for s in new.services}
        added = [n for n in after if n not in before]
        removed = [n for n in before if n not in after]
        changed = [n for n in after if n in before and after[n] != before[n]]
        keys = live_keys(old, new)
        if new != old:
            mocks = self.app.get(MOCKS, {})
            retired = [n for n in mocks if _served(before.get(n)) != _served(after.get(n))]
            touched = {*retired, *(n for n, s in after.items() if s.mock and n not in mocks)}
            async with contextlib.AsyncExitStack() as stack:
                # No control call switches a mock or the monitor meanwhile.
                for lock in self.controls.locks(mocks=touched, components=("monitor",)):
                    await stack.enter_async_context(lock)
                try:
                    swap = await self._start_mocks(new, after, retired)
                except _MockFailed as exc:
                    crashed = not isinstance(exc.__cause__, StartupError)
                    self._reject(f"{self.path}: {exc}", service=exc.service, crashed=crashed)
                    return
                mocks_before = dict(mocks)
                try:
                    await self._switch(new, after, swap, removed)
                except Exception as exc:
                    await self._switch_back(old, before, mocks_before, swap)
                    self._reject(
                        f"{self.path}: cannot apply: {type(exc).__name__}: {exc}", crashed=True
                    )
                    return
            # Out of the way now that nothing uses them.
            await asyncio.gather(*(mock.stop() for mock in swap.leaving))
        else:
            self._set_error(None)
        # A mistake fixed, or a file read in place of the built-in demo.
        fixed = error_before is not None or not live.from_file
        # The keys that waited for a restart and are now back at their running value.
        reverted = sorted(set(live.restart_needed) - set(restart))
        self._set_restart_needed(restart)
        file = str(self.path)
        if restart:
            log.warning(
                "config.restart_needed",
                keys=restart,
                file=file,
                kept="the running values until a restart",
            )
        if new != old or fixed or reverted:
            # Also when only a mistake was fixed or a key reverted: the file is in force again.
            log.info(
                "config.applied",
                file=file,
                added=added,
                removed=removed,
                changed=changed,
                keys=keys,
                reverted=reverted,
            )
        if new != old:
            # The name the walkthrough and the process test look for.
            log.info("config.reloaded", added=added, removed=removed, changed=changed)

    def _set_restart_needed(self, keys: list[str]) -> None:
        """Keep (and show every page) the saved keys that wait for a restart, when they change."""
        live = self.app[CONFIG]
        before = (live.restart_needed, live.file)
        live.restart_needed = tuple(keys)
        # A file read for the first time replaces the built-in demo.
        live.from_file = True
        if (live.restart_needed, live.file) != before and HUB in self.app:
            self.app[HUB].show_restart_needed(live.restart_needed, live.file)

    def _reject(self, error: str, *, service: str | None = None, crashed: bool = False) -> None:
        """Keep the running configuration; log and show why, once per error.

        ``crashed``: the error is healthmon's own, so its traceback is logged too.
        """
        if error == self.app[CONFIG].error:
            return
        extra: dict[str, object] = {"service": service} if service is not None else {}
        if crashed:
            extra["exc_info"] = True
        log.error(
            "config.invalid",
            error=error,
            file=str(self.path),
            kept="the running configuration",
            **extra,
        )
        self._set_error(error)

    def _set_error(self, error: str | None) -> None:
        live = self.app[CONFIG]
        if error == live.error:
            return
        live.error = error
        if HUB in self.app:
            self.app[HUB].show_config_error(error)

    async def _start_mocks(
        self, new: Settings, after: dict[str, ServiceSettings], retired: list[str]
    ) -> _Swap:
        """Start the mocks ``new`` adds or changes: all of them, or none (``_MockFailed``)."""
        swap = _Swap(retired=retired)
        if MOCKS not in self.app:
            return swap
        mocks = self.app[MOCKS]
        starting = {n: s for n, s in after.items() if s.mock and (n not in mocks or n in retired)}
        ports = {s.port for s in starting.values()}
        name = ""
        try:
            # A retired mock whose port a new one wants stops first.
            for name in retired:
                if mocks[name].service.port in ports:
                    await mocks[name].stop()
                    swap.stopped.append(mocks[name])
            for name, service in starting.items():
                previous = mocks.get(name)
                # A changed mock keeps the mode a teacher switched it to.
                mock = mock_for(service, new, mode=previous.mode if previous else Mode.UP)
                # Kept before it starts: an undo stops whatever it left running.
                swap.started[name] = mock
                await mock.start()
        except Exception as exc:
            # Whatever failed, the mocks are put back as they were.
            await self._undo(swap)
            raise _MockFailed(name, exc) from exc
        swap.leaving = [mocks[n] for n in retired if mocks[n] not in swap.stopped]
        return swap

    async def _undo(self, swap: _Swap) -> None:
        await asyncio.gather(*(mock.stop() for mock in swap.started.values()))
        for mock in swap.stopped:
            try:
                await mock.start()
            except StartupError as exc:
                # Its port was taken meanwhile: show it down, as it is.
                mock.mode = Mode.DOWN
                log.error("mock.restore_failed", service=mock.name, error=str(exc))

    async def _switch_back(
        self,
        old: Settings,
        before: dict[str, ServiceSettings],
        mocks_before: dict[str, MockService],
        swap: _Swap,
    ) -> None:
        """After a switch that failed part-way: every part on ``old`` again, each mock as it was."""
        if MOCKS in self.app:
            mocks = self.app[MOCKS]
            mocks.clear()
            mocks.update(mocks_before)
        await self._undo(swap)
        await self._switch(old, before, _Swap(), [])

    async def _switch(
        self,
        new: Settings,
        after: dict[str, ServiceSettings],
        swap: _Swap,
        removed: list[str],
    ) -> None:
        """Every part takes ``new`` in one step: nothing here awaits before the monitor's swap."""
        self.app[CONFIG].settings = new
        if MOCKS in self.app:
            mocks = self.app[MOCKS]
            for name in swap.retired:
                del mocks[name]
            mocks.update(swap.started)
            for name, mock in mocks.items():
                # "Slow" must keep outlasting the check timeout.
                mock.slow_ms = slow_ms_for(after[name], new)
        for name in removed:
            self.app[METRICS].forget(name)
        if BOARD in self.app:
            self.app[BOARD].set_services(new.services, new.monitor)
        self._set_error(None)
        if HUB in self.app:
            self.app[HUB].set_services(new.services, new.monitor.heartbeat_ms)
        if RECORDER in self.app:
            limits = {s.name: stale_after_ms(s, new.monitor) for s in new.services}
            self.app[RECORDER].set_services(new.history, limits)
        if ALERTER in self.app:
            self.app[ALERTER].set_settings(new)
        if MONITOR in self.app:
            # Its specs swap before its first await: still the same step.
            await self.app[MONITOR].set_services(new.services, new.monitor)


RELOADER = web.AppKey("reloader", Reloader)


async def reloader_context(app: web.Application) -> AsyncIterator[None]:
    live = app[CONFIG]
    path = live.path or DEFAULT_CONFIG
    reloader = Reloader(app, path)
    app[RELOADER] = reloader
    await reloader.prime()
    task = supervise("reloader", reloader.run)
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
