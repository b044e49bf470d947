"""The public live channel: the hub's messages, cut down to what the status page shows.

A second ``Hub`` on the same board, so the page's client module (WebSocket,
then Server-Sent Events, then polling) works unchanged at
``/status/live/``: ``ws``, ``events`` and ``api/services``. It carries only
the shown services, without URLs, failing checks, the event log, config
state or monitor ids; reasons and latency only where ``[status_page]`` says.
It reads the settings at each message, so a reload that hides a service
hides it from the next message on. Nothing a client sends is acted on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from healthmon.config import Settings, WebSettings
from healthmon.hub import Hub
from healthmon.models import ServiceState, monotonic_ms, now_ms
from healthmon.origins import origin_allowed
from healthmon.public.view import maintenance_next_ms, public_detail, shown
from healthmon.status import StatusBoard


def public_document(settings: Settings, board: StatusBoard) -> dict[str, Any]:
    """``GET /status/live/api/services``: the polling form of the public channel."""
    details = board.details()
    visible = shown(settings)
    now = now_ms()
    return {
        "services": [
            public_detail(
                s, {**details.get(s.name, {}), "uptime": None}, settings, visible.names, now
            )
            for s in visible.services
        ],
        # When an "Under maintenance" mark may next change: the page asks again then.
        "maintenance_next_ms": maintenance_next_ms(visible.services, settings.maintenance, now),
        "monitor": {"alive": board.monitor_alive},
        "show_reasons": settings.status_page.show_reasons,
        "ts": now_ms(),
    }


class PublicHub(Hub):
    """The hub's protocol and fan-out, with every message filtered at the source."""

    def __init__(
        self,
        board: StatusBoard,
        settings: Callable[[], Settings],
        public_origins: Callable[[], frozenset[str]],
        *,
        heartbeat_ms: int,
        snapshot_wait_ms: int,
    ) -> None:
        self.settings = settings
        self.public_origins = public_origins
        # The settings the open pages were last sent: a reload shows within a heartbeat.
        self._sent_settings = settings()
        super().__init__(
            board,
            web_settings=settings().web,
            heartbeat_ms=heartbeat_ms,
            snapshot_wait_ms=snapshot_wait_ms,
            services=(),
        )

    def origin_allowed(self, origin: str, web: WebSettings) -> bool:
        """The public page's own origins, and the main page's (``cors_origins`` included)."""
        return origin in self.public_origins() or origin_allowed(origin, None, web)

    def _names(self) -> frozenset[str]:
        return shown(self.settings()).names

    def _snapshot(self) -> dict[str, object]:
        document = public_document(self.settings(), self.board)
        services = {entry.pop("name"): entry for entry in document["services"]}
        return {
            "type": "initialSnapshot",
            "data": {n: s["up"] for n, s in services.items() if s["status"] != "unknown"},
            "services": services,
            "monitor": {"alive": self.board.monitor_alive, "id": None, "last_seen": None},
            "config_error": None,
            "config_file": None,
            "restart_needed": [],
            "history": None,
            "log": [],
            "ts": now_ms(),
        }

    def _on_change(self, name: str, state: ServiceState) -> None:
        settings = self.settings()
        visible = shown(settings)
        service = visible.by_name.get(name)
        if service is None:
            return
        detail = self.board.detail(name, state, now_ms(), monotonic_ms())
        entry = public_detail(service, detail, settings, visible.names)
        entry.update(service=name, ts=state.checked_at)
        self.broadcast({"type": "statusUpdate", "data": entry, "ts": now_ms()})

    def _heartbeat(self) -> dict[str, object]:
        """A heartbeat; first a fresh snapshot if a reload changed what is shown.

        The reloader tells the dashboard's hub; this one notices at its next beat.
        """
        if self.settings() is not self._sent_settings:
            self._sent_settings = self.settings()
            self.broadcast(self._snapshot())
        names = self._names()
        page = self.settings().status_page
        latency = self.board.latency if page.show_latency else {}
        return {
            "type": "heartbeat",
            "ts": now_ms(),
            "monitor": {"alive": self.board.monitor_alive, "id": None, "last_seen": None},
            "latency": {n: v for n, v in latency.items() if n in names},
            "ages": {n: v for n, v in self.board.ages().items() if n in names},
            "stale": [n for n in self.board.stale_names() if n in names],
        }
