"""Classroom use: projector layout, a dialog that leaves the Control panel usable, plain words,
and an event log that survives a reload and is the same on every screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, Tab, open_live

pytestmark = pytest.mark.browser

WITHIN_A_SECOND = 1500
RECONNECT_TIMEOUT = 15_000


def boxes_on_screen(page: Page, selectors: list[str]) -> dict[str, Any]:
    """Each selector's elements' bounding boxes and whether every one is inside the viewport."""
    result: dict[str, Any] = page.evaluate(
        """selectors => {
            const w = document.documentElement.clientWidth;
            const h = document.documentElement.clientHeight;
            const out = {};
            for (const sel of selectors) {
                out[sel] = [...document.querySelectorAll(sel)].map(el => {
                    const r = el.getBoundingClientRect();
                    return {top: r.top, left: r.left, bottom: r.bottom, right: r.right,
                            inside: r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0
                                    && r.bottom <= h + 0.5 && r.right <= w + 0.5};
                });
            }
            out.scroll = [document.documentElement.scrollHeight, h];
            return out;
        }""",
        selectors,
    )
    return result


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1024, 768)])
def test_projector_shows_cards_and_control_panel_together(
    new_tab: Callable[..., Tab], system: Server, width: int, height: int
) -> None:
    """In projector mode the four cards, the open Control panel and the log fit one screen."""
    tab = new_tab(width=width, height=height)
    page = tab.page
    page.goto(system.base() + "/?projector")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    system.set_mode("billing", "down")
    system.set_mode("analytics", "degraded")
    expect(page.locator('.card[data-service="billing"]')).to_have_attribute(
        "data-status", "down", timeout=WITHIN_A_SECOND
    )
    expect(page.locator("#controls")).to_have_attribute("open", "")
    boxes = boxes_on_screen(
        page,
        [
            ".card",
            "#controls",
            '[data-control="mock:analytics"]',
            '[data-control="sse"]',
            "#log-title",
        ],
    )
    assert len(boxes[".card"]) == 4
    for selector, found in boxes.items():
        if selector == "scroll":
            continue
        assert found, selector
        assert all(b["inside"] for b in found), (selector, found)
    # One screen: the page itself does not scroll.
    assert boxes["scroll"][0] <= boxes["scroll"][1]
    # Forms and URLs are folded away; the cards' buttons stay.
    expect(page.locator(".card .query-form").first).to_be_hidden()
    expect(page.locator(".card .url").first).to_be_hidden()
    expect(page.locator('.card[data-service="auth"] [data-action=open]')).to_be_visible()
    # And the panel works from there.
    page.locator('[data-control="mock:billing"]').select_option("up")
    expect(page.locator('.card[data-service="billing"]')).to_have_attribute(
        "data-status", "up", timeout=WITHIN_A_SECOND
    )
    tab.shot(f"40-projector-{width}x{height}")


def test_projector_button_toggles_the_mode_and_the_url(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The header's Projector button switches the layout and keeps ?projector in the URL."""
    page = open_live(new_tab, system, width=1280, height=720).page
    button = page.locator("#projector-toggle")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(page.locator("html")).to_have_class(re.compile(r"\bprojector\b"))
    expect(button).to_have_attribute("aria-pressed", "true")
    assert page.url.endswith("/?projector")
    page.reload()
    expect(page.locator("html")).to_have_class(re.compile(r"\bprojector\b"))
    page.locator("#projector-toggle").click()
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bprojector\b"))
    assert "projector" not in page.url


@pytest.mark.parametrize("query", ["?projector", ""])
def test_control_panel_works_with_the_data_dialog_open(
    new_tab: Callable[..., Tab], system: Server, query: str
) -> None:
    """With a data dialog open the Control panel switches its service, the dialog says so at once,
    and Escape closes it with focus on the card's heading (its button is disabled by then).
    """
    tab = new_tab(width=1280, height=720)
    page = tab.page
    page.goto(system.base() + "/" + query)
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    card = page.locator('.card[data-service="analytics"]')
    opener = card.locator("[data-action=open]")
    opener.click()
    dialog = page.locator('[data-modal="analytics"]')
    expect(dialog).to_contain_text("pageViews")
    controls = page.locator("#controls")
    if controls.get_attribute("open") is None:
        page.locator("#controls summary").click()
    select = page.locator('[data-control="mock:analytics"]')
    # A real click reaches the panel: nothing covers it, nothing makes it inert.
    select.click(trial=True)
    select.select_option("down")
    expect(dialog.locator("[data-role=modal-alert]")).to_contain_text(
        "analytics is down: connection refused", timeout=WITHIN_A_SECOND
    )
    expect(dialog).to_be_visible()
    expect(opener).to_be_disabled()
    tab.shot("41-dialog-and-panel" + ("-projector" if query else ""))
    dialog.locator("[data-action=close]").focus()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(card.locator(".card-name")).to_be_focused()
    # Back up: the dialog opens again and Escape returns focus to its enabled button.
    select.select_option("up")
    expect(opener).to_be_enabled(timeout=WITHIN_A_SECOND)
    opener.click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()


def log_rows(page: Page) -> list[str]:
    """The event log as text, one row per entry, newest first."""
    rows: list[str] = page.locator("[data-log] li").all_inner_texts()
    return [re.sub(r"\s+", " ", row).strip() for row in rows]


def test_event_log_survives_a_reload_and_is_the_same_on_another_screen(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The changes a page saw are still in its log after a reload, and a second page opened later
    shows the same entries with the same times.
    """
    page = open_live(new_tab, system).page
    before = page.locator("[data-log] li").count()
    system.set_mode("notifications", "error")
    expect(page.locator("[data-log] li")).to_have_count(before + 1, timeout=WITHIN_A_SECOND)
    system.set_mode("notifications", "up")
    expect(page.locator("[data-log] li")).to_have_count(before + 2, timeout=WITHIN_A_SECOND)
    seen = log_rows(page)
    assert "HTTP 503" in seen[1]
    assert "notifications" in seen[0]
    page.reload()
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    expect(page.locator("#log-empty")).to_be_hidden()
    assert log_rows(page)[: len(seen)] == seen
    other = open_live(new_tab, system).page
    assert log_rows(other)[: len(seen)] == seen


def test_plain_words_when_the_channels_are_off_and_a_service_is_silent(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With both channels switched off the banner says so in words (no close codes), a service
    that does not answer shows no latency, and no reason nests brackets.
    """
    tab = open_live(new_tab, system)
    page = tab.page
    system.set_mode("billing", "down")
    billing = page.locator('.card[data-service="billing"]')
    expect(billing).to_have_attribute("data-status", "down", timeout=WITHIN_A_SECOND)
    expect(billing.locator("[data-role=latency]")).to_have_text("No answer")
    expect(billing.locator("[data-role=gate-reason]")).to_have_text(
        "✕ Unavailable — billing is down: connection refused"
    )
    system.set_push(False)
    banner = page.locator("#banner")
    expect(banner).to_contain_text(
        "The server switched its live channels off (WebSocket and Server-Sent Events).",
        timeout=5000,
    )
    expect(banner).to_contain_text("This page is checking the services itself every second.")
    expect(banner).not_to_contain_text(re.compile(r"code|\d{4}"))
    expect(billing.locator("[data-role=freshness]")).to_have_text(
        " · measured by this page", timeout=3000
    )
    expect(billing.locator("[data-role=reason]")).to_have_text(
        "Reason: no answer: connection refused or network error"
    )
    expect(billing.locator("[data-role=latency]")).to_have_text("No answer")
    legend = billing.locator("[data-role=gate-reason]").inner_text()
    assert not re.search(r"\([^)]*\(", legend), legend
    tab.shot("42-plain-words-polling")
    system.set_push(True)
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=RECONNECT_TIMEOUT
    )
