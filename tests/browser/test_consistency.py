"""What the page says twice says the same: the tab's icon and the worst state, the shop's
colours and the dashboard's, a card's "Down for N s" and its history line's "N s down".
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Request, Response, expect

from tests.browser.conftest import Server, Tab, open_live

pytestmark = pytest.mark.browser

STATES = ("up", "degraded", "down", "unknown")


class Misses:
    """Every answer of 400 or more, and every request that failed, on one page."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.seen.append(f"{response.status} {response.url}")

    def _failed(self, request: Request) -> None:
        self.seen.append(f"failed {request.url}: {request.failure}")


def test_no_favicon_404_and_the_icon_shows_the_worst_state(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """Loading the dashboard and the shop asks nothing that fails (the icon included), /favicon.ico
    answers, and the dashboard's icon takes the worst state's colour and shape.
    """
    tab = new_tab()
    page = tab.page
    misses = Misses(page)
    page.goto(system.base() + "/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_attribute("data-status", "up")
    system.set_mode("billing", "down")
    expect(icon).to_have_attribute("data-status", "down", timeout=3000)
    down_fill = page.evaluate(
        "() => getComputedStyle(document.documentElement).getPropertyValue('--down').trim()"
    )
    assert "%23" + down_fill.removeprefix("#") in (icon.get_attribute("href") or "")
    system.set_mode("auth", "degraded")
    system.set_mode("billing", "up")
    expect(icon).to_have_attribute("data-status", "degraded", timeout=3000)
    page.goto(system.base() + "/example")
    expect(page.locator("[data-hm-connection]")).to_have_text("Live (WebSocket)")
    page.reload()
    expect(page.locator("#checkout")).to_be_enabled()
    assert misses.seen == []
    with urllib.request.urlopen(system.base() + "/favicon.ico", timeout=5) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "image/svg+xml"


# Each state's word colour where the page draws it on its own surface.
DASHBOARD_INK = """states => Object.fromEntries(states.map(s => {
    const word = document.createElement('span');
    word.className = 'status-word';
    word.setAttribute('data-status', s);
    word.textContent = s;
    document.querySelector('main').append(word);
    const colour = getComputedStyle(word).color;
    word.remove();
    return [s, colour];
}))"""

SHOP_INK = """states => Object.fromEntries(states.map(s => {
    const badge = document.querySelector('[data-hm-status]').cloneNode(true);
    badge.removeAttribute('data-hm-status');
    badge.setAttribute('data-status', s);
    badge.setAttribute('data-stale', 'false');
    document.querySelector('.health').append(badge);
    const colour = getComputedStyle(badge).color;
    badge.remove();
    return [s, colour];
}))"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_shop_uses_the_dashboards_state_colours(
    new_tab: Callable[..., Tab], system: Server, scheme: str
) -> None:
    """The shop's state badges are in the dashboard's light-theme state colours (the shop is light
    in either system theme): up is the dashboard's blue, not a green of its own.
    """
    dashboard = new_tab(color_scheme="light").page
    dashboard.goto(system.base() + "/")
    expected = dashboard.evaluate(DASHBOARD_INK, list(STATES))
    shop = new_tab(color_scheme=scheme).page
    shop.goto(system.base() + "/example")
    expect(shop.locator('[data-hm-status="billing"]')).to_have_attribute("data-status", "up")
    assert shop.evaluate(SHOP_INK, list(STATES)) == expected
    assert expected["up"] == "rgb(31, 111, 191)"


# Every frame for ``ms``: the card's "Down for N s" and its history line's "N s down".
SECONDS_SHOWN = """([name, ms]) => new Promise(resolve => {
    const card = document.querySelector(`.card[data-service="${name}"]`);
    const pairs = [];
    const end = performance.now() + ms;
    const frame = () => {
        pairs.push([card.querySelector('[data-role=since]').textContent,
                    card.querySelector('[data-role=spark-text]').textContent]);
        if (performance.now() < end) requestAnimationFrame(frame); else resolve(pairs);
    };
    requestAnimationFrame(frame);
})"""


def test_down_for_and_the_history_line_count_the_same_seconds(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """While billing is down, every frame's "Down for N s" on its card and "N s down" in its history
    line give the same N, as it ticks from 0 to a few seconds.
    """
    page = open_live(new_tab, system).page
    system.set_mode("billing", "down")
    card = page.locator('.card[data-service="billing"]')
    expect(card).to_have_attribute("data-status", "down", timeout=3000)
    pairs = page.evaluate(SECONDS_SHOWN, ["billing", 4000])
    seen = set()
    for since, history in pairs:
        down_for = re.search(r"Down for (\d+) s", since)
        in_line = re.search(r"(\d+) s down", history)
        assert down_for is not None, since
        if in_line is None:
            assert down_for[1] == "0", (since, history)
            continue
        assert down_for[1] == in_line[1], (since, history)
        seen.add(int(down_for[1]))
    assert len(seen) >= 3, f"the seconds did not tick: {sorted(seen)}"
