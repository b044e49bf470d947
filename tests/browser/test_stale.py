"""Trust: a card says when its state is not fresh, its uptime follows every change, and a new
reason reaches it even when the status stays the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Server, Tab, open_live

pytestmark = pytest.mark.browser

# The test config checks every 500 ms with a 1000 ms timeout: stale after
# 2 * (500 + 1000) ms. One heartbeat is 1000 ms; the slack covers the board's
# 100 ms sweep and a frame or two of rendering.
STALE_AFTER_MS = 3000
HEARTBEAT_MS = 1000
SLACK_MS = 1500
# The monitor restarts, checks within one interval (plus its timeout) and the
# next heartbeat or status update says so.
FRESH_AGAIN_MS = 6000

# Lets a test hold this page's own health checks (the fallback polling when
# the monitor is off): each one then never answers, as for a page that cannot
# reach the services itself, so only the server's word about them is left.
HOLD_OWN_CHECKS = """
(() => {
  window.__holdChecks = false;
  const native = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    if (window.__holdChecks && new URL(url, location.href).pathname === "/health") {
      return new Promise(() => {});
    }
    return native(input, init);
  };
})();
"""


def card_of(page: Page, name: str) -> Locator:
    return page.locator(f'.card[data-service="{name}"]')


def uptime_of(page: Page, name: str) -> float:
    text = card_of(page, name).locator("[data-role=uptime]").inner_text()
    match = re.match(r"Uptime (\d+\.\d\d) %", text)
    assert match, text
    return float(match.group(1))


def test_checks_stopping_shows_stale_then_fresh(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With the monitor off and the page unable to check itself, a card turns stale within the
    stale bound plus a heartbeat, keeps its last state in view with a live count, and is fresh
    again once the monitor is back.
    """
    tab = open_live(new_tab, system, HOLD_OWN_CHECKS)
    page = tab.page
    auth = card_of(page, "auth")
    expect(auth).to_have_attribute("data-stale", "false")
    expect(auth.locator("[data-role=stale]")).to_be_hidden()
    page.evaluate("() => { window.__holdChecks = true; }")

    system.set_component("monitor", False)
    expect(auth).to_have_attribute(
        "data-stale", "true", timeout=STALE_AFTER_MS + HEARTBEAT_MS + SLACK_MS
    )
    # The last known state stays in view, marked stale in words and with a shape.
    expect(auth).to_have_attribute("data-status", "up")
    expect(auth.locator("[data-role=state]")).to_contain_text("Up")
    note = auth.locator("[data-role=stale]")
    expect(note).to_be_visible()
    expect(note).to_have_text(re.compile(r"^◷ Stale — no fresh check for \d+ s$"))
    expect(auth.locator("[data-role=since]")).to_contain_text("Last known: Up")
    # The gate keeps its last state but does not claim it is current.
    expect(auth.locator("[data-action=open]")).to_be_enabled()
    legend = auth.locator("[data-role=gate-reason]")
    expect(legend).to_have_text(re.compile(r"Last known: up · not confirmed for \d+ s$"))
    # The count goes up live, with no new message needed.
    seconds = int(re.findall(r"\d+", note.inner_text())[0])
    page.wait_for_function(
        """seen => {
            const text = document.querySelector(
                '.card[data-service="auth"] [data-role=stale]').textContent;
            return Number(text.match(/(\\d+) s/)[1]) > seen;
        }""",
        arg=seconds,
        timeout=3000,
    )
    expect(page.locator("#summary")).to_contain_text("stale")
    tab.shot("40-stale-card")

    system.set_component("monitor", True)
    expect(auth).to_have_attribute("data-stale", "false", timeout=FRESH_AGAIN_MS)
    expect(note).to_be_hidden()
    expect(legend).to_have_text("Available")
    expect(auth.locator("[data-role=since]")).to_contain_text(re.compile(r"^Up for "))


# Rewrites the heartbeats this page receives once ``window.__stopAuthAt`` is
# set: from then on auth's age grows as if its checks had stopped, while the
# monitor stays alive and every other service keeps its real, fresh age.
AGE_AUTH = """
(() => {
  window.__stopAuthAt = null;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    set onmessage(handler) {
      super.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (window.__stopAuthAt !== null && msg.type === "heartbeat" && msg.ages) {
          msg.ages.auth = Date.now() - window.__stopAuthAt;
          handler(new MessageEvent("message", { data: JSON.stringify(msg) }));
          return;
        }
        handler(event);
      };
    }
  };
})();
"""


def test_one_old_check_makes_only_that_card_stale(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With the monitor alive, a service whose latest check keeps getting older turns stale
    from its own age alone (the stale bound plus a heartbeat), and no other card does.
    """
    page = open_live(new_tab, system, AGE_AUTH).page
    page.evaluate("() => { window.__stopAuthAt = Date.now(); }")
    auth = card_of(page, "auth")
    expect(auth).to_have_attribute(
        "data-stale", "true", timeout=STALE_AFTER_MS + HEARTBEAT_MS + SLACK_MS
    )
    expect(auth).to_have_attribute("data-status", "up")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    for name in ("billing", "notifications", "analytics"):
        expect(card_of(page, name)).to_have_attribute("data-stale", "false")
    # Heartbeats kept arriving while auth went stale: they no longer vouch for it.
    page.evaluate("() => { window.__stopAuthAt = null; }")
    expect(auth).to_have_attribute("data-stale", "false", timeout=HEARTBEAT_MS + SLACK_MS)


def test_own_checks_keep_cards_fresh_while_polling(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With the monitor off the page's own fresh checks keep every card un-stale (measured by
    this page), though the server's last word about them is old.
    """
    page = open_live(new_tab, system).page
    system.set_component("monitor", False)
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "polling", timeout=STALE_AFTER_MS + HEARTBEAT_MS + SLACK_MS
    )
    # By now the server says every service is stale; the page's own checks say otherwise.
    page.wait_for_function(
        """() => Object.values(window.healthmon.store.services).every(s => s.source === "poll")
            && [...document.querySelectorAll(".card")].every(c => c.dataset.stale === "false")""",
        timeout=5000,
    )
    page.wait_for_function(
        """() => Object.values(window.healthmon.store.services).every(s => s.serverStale)""",
        timeout=5000,
    )
    expect(card_of(page, "billing").locator("[data-role=meta]")).to_contain_text(
        "measured by this page"
    )
    expect(card_of(page, "billing").locator("[data-role=stale]")).to_be_hidden()


def test_uptime_drops_as_soon_as_a_service_goes_down(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The card's hour uptime falls below 100 % within seconds of its service going down, and
    keeps falling every second while it stays down, with no refresh from the API.
    """
    page = open_live(new_tab, system).page
    uptime = card_of(page, "analytics").locator("[data-role=uptime]")
    expect(uptime).to_have_text(re.compile(r"^Uptime 100\.00 % since start \(\d+ (s|min)\)$"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/api/services" in r.url else None)

    system.set_mode("analytics", "down")
    expect(card_of(page, "analytics")).to_have_attribute("data-status", "down", timeout=2000)
    expect(uptime).not_to_have_text(re.compile(r"Uptime 100\.00 %"), timeout=2000)
    first = uptime_of(page, "analytics")
    assert first < 100
    page.wait_for_function(
        """first => {
            const text = document.querySelector(
                '.card[data-service="analytics"] [data-role=uptime]').textContent;
            return parseFloat(text.match(/Uptime ([\\d.]+)/)[1]) < first;
        }""",
        arg=first,
        timeout=3000,
    )
    assert requests == [], "uptime came from the page itself, not from GET /api/services"


def test_new_reason_with_same_status_reaches_the_card(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """A service going from down (refused) to down (HTTP 503) shows the new reason on its card,
    while its "since" and the event log stay as they were: the status did not change.
    """
    page = open_live(new_tab, system).page
    billing = card_of(page, "billing")
    reason = billing.locator("[data-role=reason]")
    since = billing.locator("[data-role=since]")
    system.set_mode("billing", "down")
    expect(billing).to_have_attribute("data-status", "down", timeout=2000)
    expect(reason).to_contain_text("connection refused")
    # At least a second down, so a "since" wrongly reset would show a later time.
    expect(since).to_have_text(re.compile(r"^Down for [1-9]\d* s"), timeout=3000)
    began = re.findall(r"since (\d\d:\d\d:\d\d)", since.inner_text())[0]
    log = page.locator('[data-log] li[data-service="billing"]')
    expect(log).to_have_count(1)

    system.set_mode("billing", "error")
    expect(reason).to_contain_text("switched to error", timeout=2000)
    expect(reason).not_to_contain_text("connection refused")
    expect(billing).to_have_attribute("data-status", "down")
    expect(since).to_contain_text(f"(since {began})")
    expect(billing.locator("[data-role=gate-reason]")).to_contain_text("switched to error")
    expect(log).to_have_count(1)
