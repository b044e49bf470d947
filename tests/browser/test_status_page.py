"""The public status page in Chromium, served by its own listener: live within a second,
90-day bars and incidents from stored history, complete without JavaScript, and fitting a
phone. A real healthmon process on a seeded store; controls driven on the main port.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import Page, expect

from healthmon.store.base import DAY_MS
from tests.browser.conftest import REPO, SCREENSHOTS, SERVICES, Server, Tab, launch
from tests.browser.test_cross_origin import OtherApp
from tests.browser.test_stored_history import NO_WEBSOCKET, Seeded, seed_history

pytestmark = pytest.mark.browser

# docs/'s two screenshots are refreshed on purpose (UPDATE_DOCS_SHOTS=1); an ordinary
# run writes its own beside the other screenshots and leaves the working tree alone.
SHOTS = REPO / "docs" if os.environ.get("UPDATE_DOCS_SHOTS") else SCREENSHOTS


@dataclass
class Site:
    server: Server
    seeded: Seeded
    port: int
    # Another site on its own loopback origin, listed in [web] cors_origins.
    shop: OtherApp

    @property
    def status(self) -> str:
        return f"http://127.0.0.1:{self.port}/status"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """healthmon on a store with six days of history, its status page on a port of its own."""
    folder = tmp_path_factory.mktemp("status")
    store_file = folder / "healthmon-data" / "history.sqlite3"
    store_file.parent.mkdir()
    seeded = seed_history(store_file, SERVICES, int(time.time() * 1000))
    port = unused_port()
    shop = OtherApp("")
    shop.start()
    page = (
        "\n[status_page]\n"
        'title = "Acme status"\n'
        'description = "Live state of the Acme shop"\n'
        f"port = {port}\n"
    )
    try:
        with launch(folder, page, web_toml=f'cors_origins = ["{shop.origin}"]') as running:
            yield Site(running, seeded, port, shop)
    finally:
        shop.stop()


@pytest.fixture
def public(site: Site) -> Site:
    site.server.reset()
    return site


def open_status(new_tab: Callable[..., Tab], site: Site, **options: object) -> Tab:
    tab = new_tab(**options)
    tab.page.goto(site.status)
    expect(tab.page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=5000
    )
    return tab


def row(page: Page, name: str) -> object:
    return page.locator(f'li.service[data-service="{name}"]')


def iso_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def test_a_service_switched_down_shows_within_a_second(
    public: Site, new_tab: Callable[..., Tab]
) -> None:
    """Switching a mock down on the main port turns its row, the banner, the title and the
    tab icon on the public page within a second, and back."""
    page = open_status(new_tab, public).page
    billing = page.locator('li.service[data-service="billing"]')
    expect(billing).to_have_attribute("data-status", "up")
    expect(page.locator("[data-banner]")).to_have_text("✓ All systems operational")
    public.server.set_mode("billing", "down")
    expect(billing).to_have_attribute("data-status", "down", timeout=1000)
    expect(billing.locator("[data-role=word]")).to_have_text("Down")
    expect(page.locator("[data-banner]")).to_have_attribute("data-banner", "partial")
    expect(page).to_have_title("(Partial outage) Acme status")
    expect(page.locator("#favicon")).to_have_attribute("data-status", "down")
    expect(page.locator("[data-list=ongoing]")).to_contain_text("billing down since")
    public.server.set_mode("billing", "up")
    expect(billing).to_have_attribute("data-status", "up", timeout=1000)
    expect(page).to_have_title("Acme status")
    expect(page.locator("[data-list=ongoing]")).to_be_hidden()
    expect(page.locator("[data-role=no-ongoing]")).to_have_text("No incident in progress.")


def test_day_bars_and_incidents_come_from_history(
    public: Site, new_tab: Callable[..., Tab]
) -> None:
    """The 90-day bar marks billing's outage day down and the gap day as no data, each with
    its words; the resolved incident lists billing's 45 minutes, without its reason."""
    page = open_status(new_tab, public).page
    seeded = public.seeded
    days = page.locator('li.service[data-service="billing"] ol.days li')
    expect(days).to_have_count(90)
    today = int(time.time() * 1000) // DAY_MS * DAY_MS
    outage = days.nth(89 - (today - seeded.outage_day) // DAY_MS)
    expect(outage).to_have_attribute("data-day-status", "down")
    expect(outage).to_have_attribute(
        "title", f"{iso_day(seeded.outage_day)}: down, 96.87% up, down 45 min"
    )
    expect(outage.locator(".vh")).to_have_text(outage.get_attribute("title") or "")
    gap = days.nth(89 - (today - seeded.gap_day) // DAY_MS)
    expect(gap).to_have_attribute("title", f"{iso_day(seeded.gap_day)}: no data")
    resolved = page.locator("[data-list=resolved]")
    expect(resolved).to_contain_text("billing down for 45 min")
    expect(resolved).to_contain_text("auth degraded for 30 min")
    expect(page.locator("[data-role=no-ongoing]")).to_be_visible()
    assert "connection refused" not in page.content()
    uptime = page.locator('li.service[data-service="billing"] [data-window="30 d"]')
    expect(uptime).not_to_contain_text("100 %")


def test_complete_without_javascript(public: Site, new_tab: Callable[..., Tab]) -> None:
    """With JavaScript off the page still shows the banner, every service's state in words,
    uptime, day bars and incidents."""
    tab = new_tab(java_script_enabled=False)
    page = tab.page
    page.goto(public.status)
    expect(page.locator("h1")).to_have_text("Acme status")
    expect(page.locator("[data-banner]")).to_have_text("✓ All systems operational")
    for name in SERVICES:
        service = page.locator(f'li.service[data-service="{name}"]')
        expect(service.locator("[data-role=word]")).to_have_text("Operational")
        expect(service.locator(".uptime")).to_have_count(3)
        expect(service.locator("ol.days li")).to_have_count(90)
    expect(page.locator("[data-list=resolved]")).to_contain_text("billing down for 45 min")
    expect(page.locator("[data-connection]")).to_have_text("Updated when loaded")


def test_fits_a_phone_and_screenshots(public: Site, new_tab: Callable[..., Tab]) -> None:
    """At 390 px nothing overflows; the desktop and phone screenshots are taken."""
    public.server.set_mode("billing", "down")
    desktop = open_status(new_tab, public, width=1280, height=900).page
    expect(desktop.locator('li.service[data-service="billing"]')).to_have_attribute(
        "data-status", "down"
    )
    desktop.screenshot(path=str(SHOTS / "status-page.png"), full_page=True)
    phone = open_status(new_tab, public, width=390, height=844).page
    expect(phone.locator('li.service[data-service="billing"]')).to_have_attribute(
        "data-status", "down"
    )
    overflow = phone.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert overflow[0] <= overflow[1], overflow
    wide = phone.evaluate(
        """() => [...document.querySelectorAll('main *')]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
            .map((el) => el.className || el.tagName)"""
    )
    assert wide == []
    phone.screenshot(path=str(SHOTS / "status-phone.png"), full_page=True)
    public.server.set_mode("billing", "up")


EMBED = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script type="module" src="{base}/client.js" data-hm-connect="{base}/status/live/"></script>
</head><body>
<p>Payments: <span data-hm-status="billing">unknown</span></p>
<p><span data-hm-connection></span></p>
</body></html>"""


def test_another_site_embeds_a_live_state(public: Site, new_tab: Callable[..., Tab]) -> None:
    """A page on a cors_origins origin shows billing's state live from the public listener,
    with data-hm-status, through the client module it loads from there."""
    public.shop.page = EMBED.format(base=f"http://127.0.0.1:{public.port}")
    page = new_tab().page
    page.goto(public.shop.origin + "/")
    state = page.locator('[data-hm-status="billing"]')
    expect(state).to_have_attribute("data-status", "up", timeout=5000)
    expect(page.locator("[data-hm-connection]")).to_have_text("Live (WebSocket)")
    public.server.set_mode("billing", "down")
    expect(state).to_have_attribute("data-status", "down", timeout=1000)
    public.server.set_mode("billing", "up")
    expect(state).to_have_attribute("data-status", "up", timeout=1000)


# A browser where neither push channel connects (a proxy that breaks both).
NO_PUSH = (
    NO_WEBSOCKET
    + """
window.EventSource = class {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    setTimeout(() => { this.readyState = 2; if (this.onerror) this.onerror({}); }, 0);
  }
  addEventListener() {}
  close() {}
};
"""
)


def test_without_push_channels_the_page_polls(public: Site, new_tab: Callable[..., Tab]) -> None:
    """With WebSocket and Server-Sent Events both broken, the page polls the public JSON and
    still shows a mock switched down within a few seconds."""
    tab = new_tab()
    tab.page.add_init_script(NO_PUSH)
    page = tab.page
    page.goto(public.status)
    connection = page.locator("[data-connection]")
    expect(connection).to_have_attribute("data-connection", "polling", timeout=6000)
    expect(connection).to_contain_text("Polling · updated")
    public.server.set_mode("billing", "down")
    billing = page.locator('li.service[data-service="billing"]')
    expect(billing).to_have_attribute("data-status", "down", timeout=4000)
    public.server.set_mode("billing", "up")
    expect(billing).to_have_attribute("data-status", "up", timeout=4000)
