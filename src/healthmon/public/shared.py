"""What both listeners share: the public hub and stream, the badge cache, the day bars.

One ``PublicSite`` lives on the main application (``PUBLIC``); the public
listener's own application holds the same object, so the two serve the
same state and the same cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from healthmon.config import LiveConfig, Settings
from healthmon.keys import ARCHIVE, BOARD, CONFIG, SUMMARIES
from healthmon.origins import LOOPBACK_HOSTS, host_name
from healthmon.public import badges
from healthmon.public.live import PublicHub
from healthmon.public.view import shown_services
from healthmon.reports import service_history
from healthmon.sse import EventStreams
from healthmon.store import StoreError

log = structlog.get_logger(__name__)


def public_origins(settings: Settings) -> frozenset[str]:
    """The public listener's own origins: loopback and configured names on its port,
    and the configured names on the default ports (behind a proxy)."""
    page = settings.status_page
    if page.port is None:
        return frozenset()
    names = {h for h in settings.web.allowed_hosts if "*" not in h}
    host = host_name(page.host or settings.web.host)
    if host not in ("", "0.0.0.0", "[::]"):
        names.add(host)
    own = {f"http://{n}:{page.port}" for n in names | set(LOOPBACK_HOSTS)}
    own |= {f"{scheme}://{n}" for n in names for scheme in ("http", "https")}
    return frozenset(own)


class PublicSite:
    """What both listeners share: the public hub and stream, the badge cache, the day bars."""

    def __init__(self, main: web.Application) -> None:
        self.main = main
        self.config: LiveConfig = main[CONFIG]
        board = main[BOARD]
        settings = self.config.settings
        self.hub = PublicHub(
            board,
            lambda: self.config.settings,
            lambda: public_origins(self.config.settings),
            heartbeat_ms=settings.monitor.heartbeat_ms,
            snapshot_wait_ms=settings.monitor.timeout_ms + settings.monitor.interval_ms + 250,
        )
        self.events = EventStreams(self.hub)
        self.badges = badges.BadgeCache()
        # Bumped by every visible change and every summaries refresh: the badge cache's key.
        self.changes = 0
        self.refreshes = 0
        board.on_change.append(self._changed)
        self._bars: tuple[int, dict[str, dict[str, Any]]] | None = None
        self._bars_lock = asyncio.Lock()

    def _changed(self, name: str, state: object) -> None:
        self.changes += 1

    def refreshed(self) -> None:
        self.refreshes += 1

    @property
    def settings(self) -> Settings:
        return self.config.settings

    def version(self) -> tuple[int, int, int]:
        return (self.changes, self.refreshes, id(self.config.settings))

    def figures(self) -> Mapping[str, Mapping[str, Any]]:
        summaries = self.main.get(SUMMARIES)
        return summaries.with_long if summaries is not None else {}

    async def bars(self) -> dict[str, dict[str, Any]]:
        """Each shown service's 90 days and incidents, read once per summaries refresh."""
        async with self._bars_lock:
            if self._bars is not None and self._bars[0] == self.refreshes:
                return self._bars[1]
            archive = self.main.get(ARCHIVE)
            store = archive.store if archive is not None else None
            found: dict[str, dict[str, Any]] = {}
            if store is not None:
                try:
                    for service in shown_services(self.settings):
                        found[service.name] = await service_history(store, service.name, "90d")
                except StoreError as exc:
                    log.warning("status_page.history_unavailable", error=str(exc))
                    found = {}
            self._bars = (self.refreshes, found)
            return found


PUBLIC = web.AppKey("public", PublicSite)
# True on the public listener: only what the status page shows exists there.
PUBLIC_ONLY = web.AppKey("public_only", bool)
