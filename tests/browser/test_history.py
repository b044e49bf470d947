"""Fresh latency from heartbeats, the latency sparkline and the hour's uptime on each card."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Server, Tab, open_live

pytestmark = pytest.mark.browser

# Records every heartbeat the page receives, before the page opens its socket.
RECORD_HEARTBEATS = """
(() => {
  window.__beats = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const msg = JSON.parse(event.data);
        if (msg.type === "heartbeat") window.__beats.push(msg);
      });
    }
  };
})();
"""
# Reconnect backoff is capped at ~10 s (plus jitter); give recovery room.
RECONNECT_TIMEOUT = 20_000


def test_latency_follows_heartbeats(new_tab: Callable[..., Tab], system: Server) -> None:
    """Each heartbeat's latency becomes the card's "Latency N ms", with no "confirmed" wording."""
    page = open_live(new_tab, system, RECORD_HEARTBEATS).page
    latency = page.locator('.card[data-service="billing"] [data-role=latency]')
    expect(latency).to_have_css("font-variant-numeric", "tabular-nums")
    start = page.evaluate("() => window.__beats.length")
    for seen in range(start + 1, start + 4):
        page.wait_for_function(
            """seen => {
                const beats = window.__beats;
                if (beats.length < seen) return false;
                const value = beats[beats.length - 1].latency.billing;
                const text = document.querySelector(
                    '.card[data-service="billing"] [data-role=latency]').textContent;
                return typeof value === "number"
                    && window.healthmon.store.services.billing.latencyMs === value
                    && text === "Latency " + Math.round(value) + " ms";
            }""",
            arg=seen,
            timeout=5000,
        )
    meta = page.locator('.card[data-service="billing"] [data-role=meta]')
    expect(meta).not_to_contain_text("confirmed")
    expect(meta).to_have_text(re.compile(r"^Latency \d+ ms$"))


def test_sparkline_has_text_and_gains_points(new_tab: Callable[..., Tab], system: Server) -> None:
    """The sparkline is an SVG polyline with a text alternative, and gains a point per heartbeat."""
    tab = open_live(new_tab, system, RECORD_HEARTBEATS)
    page = tab.page
    card = page.locator('.card[data-service="auth"]')
    spark = card.locator("svg[data-role=spark]")
    expect(spark).to_have_attribute("role", "img")
    expect(card.locator(".spark-line").first).to_be_attached(timeout=5000)
    labelled_by = spark.get_attribute("aria-labelledby")
    text = page.locator(f"#{labelled_by}")
    expect(text).to_be_visible()
    expect(text).to_have_text(re.compile(r"^Last 60 s: min [\d.]+ ms, max [\d.]+ ms"))
    before = int(spark.get_attribute("data-points") or "0")
    last = page.evaluate("() => window.healthmon.store.services.auth.samples.at(-1).at")
    page.wait_for_function(
        """([before, last]) => {
            const samples = window.healthmon.store.services.auth.samples;
            const svg = document.querySelector('.card[data-service="auth"] [data-role=spark]');
            const drawn = Number(svg.getAttribute("data-points"));
            return samples.at(-1).at > last && drawn >= Math.min(before + 2, 60)
                && samples.length <= 60;
        }""",
        arg=[before, last],
        timeout=5000,
    )
    tab.shot("30-sparkline")


def test_uptime_drops_after_down_and_matches_api(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """After a mock was down, the card's hour uptime falls below 100 % and matches the API's."""
    page = open_live(new_tab, system, RECORD_HEARTBEATS).page
    uptime = page.locator('.card[data-service="notifications"] [data-role=uptime]')
    # A server younger than an hour says so: "since start (N s)", not "(1 h)".
    expect(uptime).to_have_text(re.compile(r"^Uptime \d+\.\d\d % since start \(\d+ (s|min)\)$"))
    card = page.locator('.card[data-service="notifications"]')
    system.set_mode("notifications", "down")
    expect(card).to_have_attribute("data-status", "down", timeout=2000)
    system.set_mode("notifications", "up")
    expect(card).to_have_attribute("data-status", "up", timeout=2000)
    # The page refreshes uptime once a minute and on reconnect: reconnect.
    system.set_push(False)
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "polling", timeout=3000
    )
    system.set_push(True)
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=RECONNECT_TIMEOUT
    )
    expect(uptime).not_to_have_text(re.compile(r"Uptime (100\.00|—)"))
    shown = float(re.findall(r"[\d.]+", uptime.inner_text())[0])
    api = next(s for s in system.services()["services"] if s["name"] == "notifications")
    assert shown < 100
    # Uptime creeps back up while the service stays up: equal within a point.
    assert abs(shown - api["history"]["uptime_1h"]) < 1.0
