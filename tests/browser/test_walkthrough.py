"""docs/walkthrough.md, followed step by step through the Control panel in projector mode at
1280x720, checking what the doc says the class sees; one screenshot per step (under
docs/walkthrough/ with UPDATE_WALKTHROUGH_SHOTS=1).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import REPO, Server, Tab, service_toml

pytestmark = pytest.mark.browser

# The committed screenshots are refreshed on purpose (UPDATE_WALKTHROUGH_SHOTS=1, or
# UPDATE_DOCS_SHOTS=1 with every other screenshot under docs/);
# an ordinary run writes its own beside the other screenshots.
SHOTS = (
    REPO / "docs" / "walkthrough"
    if os.environ.get("UPDATE_WALKTHROUGH_SHOTS") or os.environ.get("UPDATE_DOCS_SHOTS")
    else REPO / "artifacts" / "screenshots" / "walkthrough"
)
WITHIN_A_SECOND = 1500  # "within a second", plus the browser's own time
RECONNECT = 15_000  # "within about 10 s" (the backoff's cap) plus margin
MONITOR_SILENT = 6_000  # "for about 3 s nothing changes"
RELOAD = 5_000  # the config file is polled every half second


ON_SCREEN = """() => {
    const w = document.documentElement.clientWidth, h = document.documentElement.clientHeight;
    return [...document.querySelectorAll('.card, #controls')].filter(el => {
        const r = el.getBoundingClientRect();
        return r.top < 0 || r.left < 0 || r.bottom > h + 0.5 || r.right > w + 0.5;
    }).map(el => el.id || el.dataset.service);
}"""


def shot(page: Page, name: str) -> None:
    """The projector's screen as the class sees it: every card and the Control panel on it."""
    assert page.evaluate(ON_SCREEN) == [], name
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def write_atomically(path: Path, text: str) -> None:
    """Save the file in one step, as an editor does (the server never reads half of it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def changes(page: Page) -> list[list[str]]:
    """The event log as [time, service, from, to], newest first."""
    rows: list[list[str]] = page.locator("[data-log] li").evaluate_all(
        """items => items.map(li => [li.querySelector('time').textContent,
            li.dataset.service, li.dataset.from, li.dataset.to])"""
    )
    return rows


class Class:
    """The dashboard on the projector, driven only through its Control panel."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def card(self, name: str) -> Locator:
        return self.page.locator(f'.card[data-service="{name}"]')

    def mode(self, name: str, mode: str) -> None:
        self.page.locator(f'[data-control="mock:{name}"]').select_option(mode)

    def switch(self, component: str, on: bool) -> None:
        box = self.page.locator(f'[data-control="{component}"]')
        expect(box).to_be_enabled()
        box.set_checked(on)

    def status(self, name: str, status: str, timeout: float = WITHIN_A_SECOND) -> None:
        expect(self.card(name)).to_have_attribute("data-status", status, timeout=timeout)

    def newest_log(self) -> Locator:
        return self.page.locator("[data-log] li").first

    def pill(self) -> Locator:
        """The connection pill's words."""
        return self.page.locator("#connection .connection-text")


def test_the_walkthrough_as_written(
    new_tab: Callable[..., Tab], system: Server, tmp_path: Path
) -> None:
    """Every step of docs/walkthrough.md shows what the doc says, driven from the Control panel
    alone, with the four cards and the panel on one 1280x720 screen throughout.
    """
    tab = new_tab(width=1280, height=720)
    page = tab.page
    page.goto(system.base() + "/?projector")
    c = Class(page)
    expect(page.locator("#controls")).to_have_attribute("open", "")

    # 0. Baseline: four cards up, Live, an empty log.
    expect(page.locator("#connection")).to_have_attribute("data-connection", "live")
    expect(c.pill()).to_have_text("Live")
    for name in system.names:
        c.status(name, "up")
    expect(page.locator("#log-empty")).to_have_text("No status changes yet.")
    expect(page.locator("#summary")).to_contain_text("All systems up")
    expect(c.card("auth").locator("[data-role=uptime]")).to_have_text(
        re.compile(r"^Uptime 100\.00 % since start \(\d+ (s|min)\)$")
    )
    shot(page, "step-0")

    # 1. A service goes down.
    c.mode("billing", "down")
    billing = c.card("billing")
    c.status("billing", "down")
    expect(billing.locator("[data-role=latency]")).to_have_text("No answer")
    expect(billing.locator("[data-role=reason]")).to_have_text("Reason: connection refused")
    expect(billing.locator("[data-role=gate-reason]")).to_have_text(
        "✕ Unavailable — billing is down: connection refused"
    )
    expect(billing.locator("[data-action=open]")).to_be_disabled()
    expect(page).to_have_title("(1 down) healthmon")
    entry = c.newest_log()
    expect(entry).to_have_attribute("data-service", "billing")
    expect(entry).to_contain_text("✓ up → ✕ down")
    expect(entry).to_have_attribute("data-source", "push")
    expect(entry).to_contain_text("connection refused")
    shot(page, "step-1")
    analytics = c.card("analytics")
    analytics.locator("[data-action=open]").click()
    dialog = page.locator('[data-modal="analytics"]')
    expect(dialog).to_contain_text("pageViews")
    c.mode("analytics", "down")  # the dialog is open: the panel is still there
    expect(dialog.locator("[data-role=modal-alert]")).to_contain_text(
        "analytics is down: connection refused", timeout=WITHIN_A_SECOND
    )
    shot(page, "step-1-dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(analytics.locator(".card-name")).to_be_focused()
    c.mode("billing", "up")
    c.mode("analytics", "up")
    c.status("billing", "up")
    c.status("analytics", "up")
    expect(page.locator("[data-log] li[data-to=up]")).to_have_count(2)

    # 2. A service answers with an error.
    notifications = c.card("notifications")
    notifications.locator("[data-action=open]").click()
    dialog = page.locator('[data-modal="notifications"]')
    expect(dialog.locator("[data-role=modal-body] dl")).to_be_visible()
    c.mode("notifications", "error")
    c.status("notifications", "down")
    expect(notifications.locator("[data-role=reason]")).to_have_text(
        "Reason: HTTP 503: notifications was switched to error"
    )
    expect(notifications.locator("[data-role=latency]")).to_have_text(
        re.compile(r"^Latency \d+ ms")
    )
    expect(dialog.locator("[data-role=modal-alert]")).to_contain_text("notifications is down")
    dialog.locator("[data-action=refresh]").click()
    error = dialog.locator("[data-role=modal-error]")
    expect(error).to_contain_text("HTTP 503: notifications is failing (mode: error)")
    expect(c.newest_log()).to_contain_text("HTTP 503")
    shot(page, "step-2")
    c.mode("notifications", "up")
    c.status("notifications", "up")
    error.locator("[data-action=retry]").click()
    expect(dialog.locator("[data-role=modal-body] dl")).to_be_visible()
    dialog.locator("[data-action=close]").click()
    expect(dialog).to_be_hidden()

    # 3. A service is slow: down after about a second.
    c.mode("auth", "slow")
    auth = c.card("auth")
    c.status("auth", "down", timeout=2500)
    expect(auth.locator("[data-role=reason]")).to_have_text("Reason: no answer within 1000 ms")
    expect(auth.locator("[data-role=latency]")).to_have_text("No answer")
    shot(page, "step-3")
    c.mode("auth", "up")
    c.status("auth", "up", timeout=2500)

    # 4. A service is degraded: a warning, the button stays enabled.
    c.mode("analytics", "degraded")
    c.status("analytics", "degraded")
    expect(analytics.locator("[data-role=state]")).to_have_text("▲ Degraded")
    expect(analytics.locator("[data-role=reason]")).to_have_text(
        "Reason: analytics was switched to degraded"
    )
    expect(analytics.locator("[data-action=open]")).to_be_enabled()
    expect(analytics.locator("[data-role=gate-reason]")).to_have_text(
        "▲ Warning — analytics is degraded; answers may be slow or partial"
    )
    expect(page.locator("#summary")).to_contain_text("Partially degraded")
    expect(page).to_have_title("(1 degraded) healthmon")
    shot(page, "step-4")
    c.mode("analytics", "up")
    c.status("analytics", "up")

    # 5. The live channels go off: first SSE takes over, then the page polls.
    c.switch("ws", False)
    expect(c.pill()).to_have_text("Live (SSE)", timeout=WITHIN_A_SECOND)
    expect(page.locator("#banner")).to_be_hidden()
    c.mode("billing", "down")
    c.status("billing", "down")
    expect(c.newest_log()).to_have_attribute("data-source", "push")
    shot(page, "step-5-sse")
    c.mode("billing", "up")
    c.status("billing", "up")
    c.switch("sse", False)
    expect(page.locator("#connection")).to_have_attribute(
        "data-connection", "polling", timeout=5000
    )
    expect(c.pill()).to_contain_text("Polling · updated")
    banner = page.locator("#banner")
    expect(banner).to_contain_text(
        "The server switched its live channels off (WebSocket and Server-Sent Events). "
        "This page is checking the services itself every second."
    )
    c.mode("billing", "down")
    c.status("billing", "down")
    expect(billing.locator("[data-role=reason]")).to_have_text(
        "Reason: no answer: connection refused or network error"
    )
    expect(billing.locator("[data-role=freshness]")).to_have_text(" · measured by this page")
    expect(c.newest_log()).to_have_attribute("data-source", "poll")
    shot(page, "step-5-polling")
    c.switch("ws", True)
    c.switch("sse", True)
    expect(c.pill()).to_have_text("Live", timeout=RECONNECT)
    expect(banner).to_be_hidden()
    c.status("billing", "down")
    c.mode("billing", "up")
    c.status("billing", "up")
    expect(c.newest_log()).to_have_attribute("data-source", "push")

    # 6. The monitor stops: polling after about 3 s, the socket stays open.
    c.switch("monitor", False)
    expect(page.locator("#connection")).to_have_attribute(
        "data-connection", "polling", timeout=MONITOR_SILENT
    )
    expect(banner).to_contain_text(
        "The monitor has stopped sending heartbeats, so the server cannot vouch for any status."
    )
    assert page.evaluate("() => window.healthmon.client.connection().channel") == "websocket"
    c.mode("notifications", "down")
    c.status("notifications", "down")
    expect(c.newest_log()).to_have_attribute("data-source", "poll")
    shot(page, "step-6")
    c.switch("monitor", True)
    expect(c.pill()).to_have_text("Live", timeout=5000)
    # The restarted monitor's first check: the server now knows it too.
    page.wait_for_function(
        """() => {
            const s = window.healthmon.store.services.notifications;
            return s.status === "down" && s.source === "push";
        }"""
    )
    c.mode("notifications", "up")
    c.status("notifications", "up")

    # 7. Add a service while everything runs: first with a mistake, then fixed.
    original = system.config_path.read_text()
    payments = service_toml("payments", f"http://127.0.0.1:{unused_port()}", "/payments", mock=True)
    try:
        write_atomically(system.config_path, original + payments + "interval_ms = -5\n")
        config_banner = page.locator("#config-banner")
        expect(config_banner).to_be_visible(timeout=RELOAD)
        expect(config_banner).to_contain_text("config.toml not applied")
        expect(config_banner).to_contain_text(
            'services[4] "payments".interval_ms: Input should be greater than 0'
        )
        expect(page.locator(".card")).to_have_count(4)
        shot(page, "step-7-invalid")
        write_atomically(system.config_path, original + payments)
        expect(config_banner).to_be_hidden(timeout=RELOAD)
        c.status("payments", "up", timeout=RELOAD)
        expect(page.locator('[data-control="mock:payments"]')).to_have_value("up")
        names = page.locator("#services > .card").evaluate_all(
            "cards => cards.map(c => c.dataset.service)"
        )
        assert names == [*system.names, "payments"]
        shot(page, "step-7-added")
    finally:
        write_atomically(system.config_path, original)
    expect(c.card("payments")).to_have_count(0, timeout=RELOAD)
    expect(page.locator('[data-control="mock:payments"]')).to_have_count(0)

    # 8. Recovery: all up; the log holds the lesson and survives a reload.
    for name in system.names:
        c.status(name, "up")
    expect(page.locator("#summary")).to_contain_text("All systems up")
    expect(page).to_have_title("healthmon")
    lesson = changes(page)
    assert len(lesson) == 16  # every change of steps 1-6 once
    page.reload()
    expect(c.pill()).to_have_text("Live")
    expect(page.locator("#log-empty")).to_be_hidden()
    # The same changes at the same times; one found by polling now says push:
    # this page learnt it from the server.
    assert changes(page) == lesson
    shot(page, "step-8")

    # 9. The example shop beside the dashboard, gated by the client module.
    shop = tab.page.context.new_page()
    shop.set_viewport_size({"width": 1280, "height": 720})
    shop.goto(system.base() + "/example")
    checkout = shop.locator("#checkout")
    expect(checkout).to_be_enabled()
    c.mode("billing", "down")
    expect(checkout).to_be_disabled(timeout=WITHIN_A_SECOND)
    expect(shop.locator(".checkout [data-hm-reason]")).to_have_text(
        "billing is down (connection refused)"
    )
    c.mode("analytics", "degraded")
    c.mode("auth", "degraded")
    recommend = shop.locator("#recommend")
    expect(shop.locator(".recommend [data-hm-reason]")).to_contain_text(
        "analytics is degraded", timeout=WITHIN_A_SECOND
    )
    expect(recommend).to_be_enabled()
    expect(shop.locator("#signin")).to_have_attribute("data-hm-gate", "closed")
    shop.screenshot(path=str(SHOTS / "step-9-example.png"))
    for name in ("billing", "analytics", "auth"):
        c.mode(name, "up")
    expect(checkout).to_be_enabled(timeout=WITHIN_A_SECOND)
    expect(shop.locator("#signin")).to_have_attribute("data-hm-gate", "open")
