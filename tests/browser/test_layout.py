"""Readable on a laptop, a phone and a projector, in light and dark themes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, Tab

pytestmark = pytest.mark.browser


def no_horizontal_overflow(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"page is {overflow}px wider than the viewport"
    # No card content pokes out of its card.
    poking = page.evaluate(
        """() => [...document.querySelectorAll('.card')].flatMap(card => {
            const box = card.getBoundingClientRect();
            return [...card.querySelectorAll('button, input, legend, p')]
                .filter(el => el.offsetParent !== null)
                .filter(el => el.getBoundingClientRect().right > box.right + 0.5)
                .map(el => card.dataset.service + ': ' + el.outerHTML.slice(0, 60));
        })"""
    )
    assert poking == []


@pytest.mark.parametrize(
    ("label", "width", "height", "scheme", "query"),
    [
        ("laptop-dark", 1280, 800, "dark", ""),
        ("phone-light", 390, 844, "light", ""),
        ("phone-dark", 390, 844, "dark", ""),
        ("projector-light", 1920, 1080, "light", "?projector"),
    ],
)
def test_layout_in_each_theme_and_width(
    new_tab: Callable[..., Tab],
    system: Server,
    label: str,
    width: int,
    height: int,
    scheme: str,
    query: str,
) -> None:
    """Each width and theme shows every card, with a down and a degraded one, without overflow."""
    tab = new_tab(width=width, height=height, color_scheme=scheme)
    page = tab.page
    page.goto(system.base() + "/" + query)
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=5000
    )
    system.set_mode("billing", "down")
    system.set_mode("auth", "degraded")
    expect(page.locator('.card[data-service="billing"]')).to_have_attribute(
        "data-status", "down", timeout=2000
    )
    expect(page.locator('.card[data-service="auth"]')).to_have_attribute(
        "data-status", "degraded", timeout=2000
    )
    page.locator("#controls summary").click()
    expect(page.locator('[data-control="mock:billing"]')).to_have_value("down")
    no_horizontal_overflow(page)
    if query == "?projector":
        size = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
        assert float(size.removesuffix("px")) >= 22
    tab.shot(f"20-{label}")


def test_theme_toggle_overrides_system_and_is_remembered(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The theme button overrides the system theme and the choice survives a reload."""
    tab = new_tab(color_scheme="light")
    page = tab.page
    page.goto(system.base() + "/")
    background = "() => getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    toggle = page.locator("#theme-toggle")
    expect(toggle).to_have_text("Theme: system")
    toggle.click()  # system -> light
    toggle.click()  # light -> dark
    expect(toggle).to_have_text("Theme: dark")
    assert page.evaluate(background) == "rgb(11, 15, 20)" != light
    page.reload()
    expect(page.locator("#theme-toggle")).to_have_text("Theme: dark")
    assert page.evaluate(background) == "rgb(11, 15, 20)"
