"""Projector mode (?projector) at 1280 by 720: up to eight services on one screen with nothing cut
off, and past eight a page that scrolls with the Control panel still in sight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import expect

from tests.browser.conftest import Server, Tab, launch, service_toml

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 720
# The longest cards a mock gives: a reason, a "no answer", a warning legend.
MODES = {"auth": "degraded", "billing": "down", "notifications": "error", "analytics": "slow"}
WORDS = {"degraded": "degraded", "down": "down", "error": "down", "slow": "down"}

# Every card and everything drawn in it: a box outside the card's box, or an
# element whose content is wider or taller than its box (cut off, or scrolled).
CLIPPED = """() => {
    const out = [];
    const fits = (inner, outer) => inner.left >= outer.left - 0.5
        && inner.right <= outer.right + 0.5
        && inner.top >= outer.top - 0.5 && inner.bottom <= outer.bottom + 0.5;
    const viewport = {left: 0, top: 0, right: innerWidth, bottom: innerHeight};
    for (const card of document.querySelectorAll('.card')) {
        const name = card.dataset.service;
        const box = card.getBoundingClientRect();
        if (!fits(box, viewport)) out.push(name + ': the card is off the screen');
        if (card.scrollWidth > card.clientWidth || card.scrollHeight > card.clientHeight) {
            out.push(name + ': the card scrolls (' + card.scrollHeight + ' > '
                + card.clientHeight + ')');
        }
        for (const el of card.querySelectorAll('*')) {
            if (!el.getClientRects().length) continue;  // not rendered (hidden, display: none)
            const what = name + ': ' + el.outerHTML.slice(0, 70);
            if (!fits(el.getBoundingClientRect(), box)) out.push(what + ' pokes out of the card');
            if (!(el instanceof SVGElement) && el.clientWidth > 0
                && (el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight)) {
                out.push(what + ' is cut (' + el.scrollWidth + 'x' + el.scrollHeight + ' in '
                    + el.clientWidth + 'x' + el.clientHeight + ')');
            }
        }
    }
    return out;
}"""


@contextmanager
def services(folder: Path, count: int) -> Iterator[Server]:
    """healthmon with ``count`` services: the four mocks and more, with long-ish names."""
    extra = "".join(
        service_toml(f"inventory-{i}", f"http://127.0.0.1:{unused_port()}", "/items", mock=True)
        for i in range(count - 4)
    )
    with launch(folder, extra) as running:
        yield running


def open_projector(new_tab: Callable[..., Tab], system: Server, count: int) -> Tab:
    """The page in projector mode at 1280 by 720 with the mocks in their longest states."""
    tab = new_tab(width=WIDTH, height=HEIGHT)
    page = tab.page
    page.goto(system.base() + "/?projector")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    expect(page.locator(".card")).to_have_count(count)
    for name, mode in MODES.items():
        system.set_mode(name, mode)
    for name, mode in MODES.items():
        expect(page.locator(f'.card[data-service="{name}"]')).to_have_attribute(
            "data-status", WORDS[mode], timeout=5000
        )
    # The reason of a slow one is its timeout: there once its check has timed out.
    expect(page.locator('.card[data-service="analytics"] [data-role=reason]')).to_be_visible()
    return tab


@pytest.mark.parametrize("count", [6, 8])
def test_up_to_eight_services_fit_one_screen_uncut(
    new_tab: Callable[..., Tab], tmp_path: Path, count: int
) -> None:
    """With six or eight services at 1280 by 720 every card is on the one screen, and nothing in any
    card is cut off or pokes out of it, with the Control panel open beside them.
    """
    with services(tmp_path, count) as system:
        tab = open_projector(new_tab, system, count)
        page = tab.page
        expect(page.locator("#controls")).to_have_attribute("open", "")
        assert page.evaluate("() => document.documentElement.scrollHeight") <= HEIGHT
        assert page.evaluate(CLIPPED) == []
        controls = page.locator("#controls summary").bounding_box()
        assert controls is not None
        assert controls["y"] + controls["height"] <= HEIGHT
        tab.shot(f"projector-{count}")


def test_past_eight_the_page_scrolls_and_the_panel_stays(
    new_tab: Callable[..., Tab], tmp_path: Path
) -> None:
    """With twelve services the page scrolls, nothing in a card is cut, and the Control panel stays
    on screen at the bottom of the page as at its top.
    """
    with services(tmp_path, 12) as system:
        page = open_projector(new_tab, system, 12).page
        assert page.evaluate("() => document.documentElement.scrollHeight") > HEIGHT
        page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_function("() => window.scrollY > 0")
        panel = page.locator("#controls")
        expect(panel).to_be_in_viewport()
        box = page.locator("#controls summary").bounding_box()
        assert box is not None
        assert box["y"] >= 0
        assert box["y"] + box["height"] <= HEIGHT
        # Still usable from down there: the last card's mock is switched from it.
        page.select_option('[data-control="mock:inventory-7"]', "down")
        expect(page.locator('.card[data-service="inventory-7"]')).to_have_attribute(
            "data-status", "down", timeout=5000
        )
        cut = [c for c in page.evaluate(CLIPPED) if "off the screen" not in c]
        assert cut == []
