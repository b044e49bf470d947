"""Live config reload: a saved ``config.toml`` (or SIGHUP) applies within a second.

Only what changed is touched: added services start (mock, checks, a card
on every open page), removed ones stop and disappear, changed ones restart
with their new settings; unchanged checks and every WebSocket client carry
on. An invalid edit keeps the running config and is shown until fixed.

The file is looked at four times a second (a stat; read and compared byte
for byte when the stat changes): for one small file that is cheaper and more
reliable than a watcher library (editors that save by renaming, network
folders, macOS and Linux alike).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from healthmon.config import DEFAULT_CONFIG, ConfigError, ServiceSettings, Settings, load_settings
from healthmon.errors import StartupError
from healthmon.keys import BOARD, CONFIG, HUB, METRICS, MOCKS, MONITOR, RELOADER
from healthmon.mocks import MockService, mock_for

log = structlog.get_logger(__name__)

POLL_S = 0.25
# Sections read once at start: a change is reported, not applied.
RESTART_SECTIONS = ("web", "broker")


class Reloader:
    def __init__(self, app: web.Application, path: Path) -> None:
        self.app = app
        self.path = path
        self._wanted = asyncio.Event()
        self._stamp: tuple[int, int, int] | None = None
        self._content: bytes | None = None
        self._last = self._read()

    def _read(self) -> bytes | None:
        """The file's bytes, read again only when its stat says it changed."""
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
            if stamp != self._stamp:
                self._content = self.path.read_bytes()
                self._stamp = stamp
        except OSError:
            self._stamp = self._content = None
        return self._content

    def request(self) -> None:
        """Reload now (SIGHUP), whether or not the file changed."""
        self._wanted.set()

    async def run(self) -> None:
        seen = self._last
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), POLL_S)
            content = self._read()
            # An edit applies once two reads in a row agree: an editor that
            # empties the file before writing it must not remove every
            # service for a moment, nor half a file show as an error.
            settled, seen = content == seen, content
            if self._wanted.is_set() or (settled and content != self._last):
                self._wanted.clear()
                self._last = content
                await self.reload()

    async def reload(self) -> None:
        live = self.app[CONFIG]
        try:
            new = load_settings(self.path)
        except ConfigError as exc:
            if str(exc) != live.error:
                log.error("config.invalid", error=str(exc), kept="the running configuration")
                self._set_error(str(exc))
            return
        self._set_error(None)
        old, live.settings = live.settings, new
        if new == old:
            return
        for section in RESTART_SECTIONS:
            if getattr(new, section) != getattr(old, section):
                log.warning("config.restart_needed", section=section)
        before = {s.name: s for s in old.services}
        after = {s.name: s for s in new.services}
        added = [n for n in after if n not in before]
        removed = [n for n in before if n not in after]
        changed = [n for n in after if n in before and after[n] != before[n]]
        await self._apply(new, before, after)
        for name in removed:
            self.app[METRICS].forget(name)
        log.info("config.reloaded", added=added, removed=removed, changed=changed)

    def _set_error(self, error: str | None) -> None:
        live = self.app[CONFIG]
        if error == live.error:
            return
        live.error = error
        if HUB in self.app:
            self.app[HUB].show_config_error(error)

    async def _apply(
        self,
        new: Settings,
        before: dict[str, ServiceSettings],
        after: dict[str, ServiceSettings],
    ) -> None:
        if MOCKS in self.app:
            await self._apply_mocks(new, before, after)
        if MONITOR in self.app:
            await self.app[MONITOR].set_services(new.services, new.monitor)
        if BOARD in self.app:
            self.app[BOARD].set_names([s.name for s in new.services])
        if HUB in self.app:
            self.app[HUB].set_services(new.services)

    async def _apply_mocks(
        self,
        new: Settings,
        before: dict[str, ServiceSettings],
        after: dict[str, ServiceSettings],
    ) -> None:
        mocks = self.app[MOCKS]
        wanted = {n: s for n, s in after.items() if s.mock}

        def served(service: ServiceSettings | None) -> object:
            # What a mock serves; a change of check knobs alone must not
            # restart it (a restart would be a moment of "connection refused").
            if service is None:
                return None
            return (service.url, service.health_path, service.data_endpoint)

        stale = [n for n in mocks if served(before.get(n)) != served(wanted.get(n))]
        # Stop first: a changed mock may keep its port.
        await asyncio.gather(*(mocks.pop(name).stop() for name in stale))
        for name, service in wanted.items():
            if name in mocks:
                continue
            mock: MockService = mock_for(service, new)
            try:
                await mock.start()
            except StartupError as exc:
                log.error("config.mock_failed", service=name, error=str(exc))
                continue
            mocks[name] = mock


async def reloader_context(app: web.Application) -> AsyncIterator[None]:
    live = app[CONFIG]
    path = live.path or DEFAULT_CONFIG
    reloader = Reloader(app, path)
    app[RELOADER] = reloader
    task = asyncio.create_task(reloader.run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
