"""On a phone (390 by 844) the Control panel is a bottom sheet in reach from anywhere on the page,
and the card a switch changes is brought into sight and announced.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, Server, Tab, open_live

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 390, 844

# Whether the panel's bar is on screen and not covered: the element at its middle is its own.
BAR_REACHABLE = """() => {
    const bar = document.querySelector('#controls summary');
    const r = bar.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return r.top >= 0 && r.bottom <= innerHeight && r.height > 0 && bar.contains(hit);
}"""

# Whether the card's head and its "Down for …" line are in the part of the page the header and
# the open sheet leave in sight.
IN_SIGHT = """name => {
    const card = document.querySelector(`.card[data-service="${name}"]`);
    const top = document.querySelector('.topbar').getBoundingClientRect().bottom;
    const bottom = document.querySelector('#controls').getBoundingClientRect().top;
    const head = card.querySelector('.card-head').getBoundingClientRect();
    const since = card.querySelector('[data-role=since]').getBoundingClientRect();
    return head.top >= top - 0.5 && since.bottom <= bottom + 0.5;
}"""


def scroll_to(page: Page, where: str) -> None:
    page.evaluate(
        """where => window.scrollTo(0, where === 'top' ? 0 : where === 'middle'
            ? document.documentElement.scrollHeight / 2 : document.documentElement.scrollHeight)""",
        where,
    )
    page.wait_for_function(
        """where => where === 'top' ? scrollY === 0 : scrollY > 0""", arg=where, timeout=5000
    )


def test_the_panel_is_in_reach_from_anywhere(new_tab: Callable[..., Tab], system: Server) -> None:
    """At the top, the middle and the bottom of the page the Control panel's bar is on screen and
    uncovered, and a tap opens it there.
    """
    page = open_live(new_tab, system, width=WIDTH, height=HEIGHT).page
    assert page.evaluate("() => document.documentElement.scrollHeight") > 2 * HEIGHT
    for where in ("top", "middle", "bottom"):
        scroll_to(page, where)
        assert page.evaluate(BAR_REACHABLE), f"the panel's bar is not in reach at the {where}"
    page.locator("#controls summary").click()
    expect(page.locator('[data-control="mock:billing"]')).to_be_in_viewport()
    expect(page.locator('[data-control="monitor"]')).to_be_visible()


def test_a_switched_card_comes_into_sight_and_is_announced(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """Switching billing down from the sheet at the bottom of the page brings billing's card into
    sight above the sheet, where it turns down, and the live region says so.
    """
    tab = open_live(new_tab, system, width=WIDTH, height=HEIGHT)
    page = tab.page
    scroll_to(page, "bottom")
    page.locator("#controls summary").click()
    assert not page.evaluate(IN_SIGHT, "billing")
    page.select_option('[data-control="mock:billing"]', "down")
    page.wait_for_function(IN_SIGHT, arg="billing", timeout=5000)
    billing = page.locator('.card[data-service="billing"]')
    expect(billing).to_have_attribute("data-status", "down", timeout=3000)
    expect(page.locator("#announcer")).to_contain_text("billing is down")
    expect(page.locator("#announcer")).to_have_attribute("aria-live", "polite")
    assert page.evaluate(IN_SIGHT, "billing")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "phone.png"))
