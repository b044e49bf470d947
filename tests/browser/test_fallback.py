"""Fallback: when both push channels or the monitor fail, the page polls the services itself."""

from __future__ import annotations

import statistics
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Request, WebSocket, expect

from tests.browser.conftest import Server, Tab

pytestmark = pytest.mark.browser

# Reconnect backoff is capped at ~10 s (plus jitter); give recovery room.
RECONNECT_TIMEOUT = 20_000
# The monitor counts as dead ~3 s after its last heartbeat.
MONITOR_SILENT_TIMEOUT = 8_000


class Recorder:
    """Every /health request the page makes, and every WebSocket it opens."""

    def __init__(self, page: Page, system: Server) -> None:
        self.health_urls = {system.health_url(name) for name in system.names}
        self.page = page
        self.health: list[str] = []
        self.sockets: list[WebSocket] = []
        page.on("request", self._on_request)
        page.on("websocket", self._on_websocket)

    def _on_request(self, request: Request) -> None:
        if request.url in self.health_urls:
            self.health.append(request.url)

    def _on_websocket(self, socket: WebSocket) -> None:
        self.sockets.append(socket)

    def await_heartbeats(self, count: int) -> None:
        """Block until the page's client has heard ``count`` more heartbeats, on whichever
        live channel it uses (after a reconnect that may be the event stream, and the
        newest WebSocket seen may be one already closed)."""
        self.page.evaluate(
            """() => {
                const h = window.healthmon;
                if (h.heartbeatsHeard === undefined) {
                    h.heartbeatsHeard = 0;
                    h.client.on("message", (e) => {
                        if (e.message && e.message.type === "heartbeat") h.heartbeatsHeard += 1;
                    });
                }
                h.heartbeatsFrom = h.heartbeatsHeard;
            }"""
        )
        self.page.wait_for_function(
            "n => window.healthmon.heartbeatsHeard >= window.healthmon.heartbeatsFrom + n",
            arg=count,
            timeout=5000,
        )


def connection(page: Page, state: str, timeout: int) -> None:
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", state, timeout=timeout
    )


def wait_all_polled(page: Page, status: str = "up") -> None:
    page.wait_for_function(
        """status => Object.values(window.healthmon.store.services)
            .every(s => s.source === "poll" && s.status === status)""",
        arg=status,
        timeout=5000,
    )


def test_push_off_polls_and_push_on_stops_polling(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With both push channels off the page polls (a mock downed meanwhile shows down, source
    poll), and with them back on it goes live and stops polling.
    """
    tab = new_tab()
    page = tab.page
    seen = Recorder(page, system)
    page.goto(system.base() + "/")
    connection(page, "live", 5000)
    assert seen.health == [], "no polling while live"

    system.set_push(False)
    connection(page, "polling", 3000)
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner")).to_contain_text("WebSocket")
    expect(page.locator("#banner")).to_contain_text("Server-Sent Events")
    wait_all_polled(page)

    system.set_mode("analytics", "down")
    analytics = page.locator('.card[data-service="analytics"]')
    expect(analytics).to_have_attribute("data-status", "down", timeout=3000)
    expect(analytics.locator("[data-action=open]")).to_be_disabled()
    entry = page.locator('[data-log] li[data-service="analytics"][data-to="down"]')
    expect(entry).to_have_attribute("data-source", "poll")
    tab.shot("10-ws-off-polling")

    system.set_push(True)
    connection(page, "live", RECONNECT_TIMEOUT)
    expect(page.locator("#banner")).to_be_hidden()
    expect(analytics).to_have_attribute("data-status", "down")
    polled = len(seen.health)
    seen.await_heartbeats(2)
    system.set_mode("analytics", "up")
    expect(analytics).to_have_attribute("data-status", "up", timeout=2000)
    up_entry = page.locator('[data-log] li[data-service="analytics"][data-to="up"]')
    expect(up_entry).to_have_attribute("data-source", "push")
    assert len(seen.health) == polled, "the page kept polling after going live"
    tab.shot("11-ws-back-live")


def test_monitor_off_polls_with_socket_open(new_tab: Callable[..., Tab], system: Server) -> None:
    """With the monitor off the page polls while its WebSocket stays open, and stops polling when
    the monitor is back.
    """
    tab = new_tab()
    page = tab.page
    seen = Recorder(page, system)
    page.goto(system.base() + "/")
    connection(page, "live", 5000)
    assert len(seen.sockets) == 1
    socket = seen.sockets[0]

    system.set_component("monitor", False)
    connection(page, "polling", MONITOR_SILENT_TIMEOUT)
    expect(page.locator("#banner")).to_contain_text("monitor")
    assert not socket.is_closed()
    wait_all_polled(page)

    system.set_mode("billing", "down")
    billing = page.locator('.card[data-service="billing"]')
    expect(billing).to_have_attribute("data-status", "down", timeout=3000)
    entry = page.locator('[data-log] li[data-service="billing"][data-to="down"]')
    expect(entry).to_have_attribute("data-source", "poll")
    tab.shot("12-monitor-off-polling")

    system.set_component("monitor", True)
    connection(page, "live", MONITOR_SILENT_TIMEOUT)
    assert not socket.is_closed()
    assert len(seen.sockets) == 1, "the socket was never replaced"
    polled = len(seen.health)
    seen.await_heartbeats(2)
    system.set_mode("billing", "up")
    expect(billing).to_have_attribute("data-status", "up", timeout=2000)
    assert len(seen.health) == polled, "the page kept polling after the monitor came back"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_both_loopback_names_work(new_tab: Callable[..., Tab], system: Server, host: str) -> None:
    """The page opened as 127.0.0.1 or localhost goes live, fetches data and polls across origins
    (CORS).
    """
    tab = new_tab()
    page = tab.page
    page.goto(system.base(host) + "/")
    connection(page, "live", 5000)
    page.locator('.card[data-service="auth"] [data-action=open]').click()
    modal = page.locator('[data-modal="auth"]')
    expect(modal).to_contain_text("userCount")
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()

    system.set_push(False)
    connection(page, "polling", 3000)
    wait_all_polled(page)
    system.set_mode("auth", "degraded")
    auth = page.locator('.card[data-service="auth"]')
    expect(auth).to_have_attribute("data-status", "degraded", timeout=3000)
    system.set_mode("auth", "up")
    expect(auth).to_have_attribute("data-status", "up", timeout=3000)
    assert page.evaluate("() => window.healthmon.store.services.auth.source") == "poll"


def test_reconnect_backoff_has_full_jitter(new_tab: Callable[..., Tab], system: Server) -> None:
    """Reconnect delays grow exponentially to a ~10 s cap with full jitter, so tabs never reconnect
    in lockstep.
    """
    page = new_tab().page
    page.goto(system.base() + "/")
    samples: dict[str, list[float]] = page.evaluate(
        """() => {
            const out = {};
            for (const attempt of [0, 1, 2, 3, 10]) {
                const delay = () => window.healthmon.backoffDelay(attempt);
                out[attempt] = Array.from({length: 400}, delay);
            }
            return out;
        }"""
    )
    for attempt, cap in (("0", 1000), ("1", 2000), ("2", 4000), ("3", 8000), ("10", 10_000)):
        delays = samples[attempt]
        assert max(delays) <= cap
        assert min(delays) < cap * 0.25, "full jitter reaches near zero"
        assert max(delays) > cap * 0.75, "full jitter reaches near the cap"
        # Uniform over [0, cap] has a standard deviation of cap / sqrt(12) ~ 0.29 cap.
        assert statistics.pstdev(delays) > cap * 0.2, "delays are spread, not in lockstep"
