"""The page as a class sees it: first render, gating, modal, form, log, control panel."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Server, Tab, open_live

pytestmark = pytest.mark.browser

# The monitor checks every 500 ms; "within a second" of a mode switch.
WITHIN_A_SECOND = 1000


def test_first_render_matches_snapshot(new_tab: Callable[..., Tab], system: Server) -> None:
    """The first render shows one card per configured service with the server's status."""
    document = system.services()
    tab = new_tab()
    page = tab.page
    page.goto(system.base() + "/")
    cards = page.locator("[data-service]").and_(page.locator(".card"))
    expect(cards).to_have_count(len(document["services"]))
    for service in document["services"]:
        located = page.locator(f'.card[data-service="{service["name"]}"]')
        expect(located).to_have_attribute("data-status", service["status"])
        expect(located.locator("[data-role=state]")).to_contain_text("Up")
        expect(located.locator("[data-action=open]")).to_be_enabled()
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=5000
    )
    expect(page.locator("#summary")).to_contain_text("4 up")
    expect(page).to_have_title("healthmon")
    tab.shot("01-first-render-light")


def test_down_disables_and_up_reenables(new_tab: Callable[..., Tab], system: Server) -> None:
    """A mock switched down disables its button and form within a second, with a visible reason, and
    up re-enables them.
    """
    tab = open_live(new_tab, system)
    page = tab.page
    billing = page.locator('.card[data-service="billing"]')
    system.set_mode("billing", "down")
    expect(billing).to_have_attribute("data-status", "down", timeout=WITHIN_A_SECOND)
    expect(billing.locator("[data-action=open]")).to_be_disabled()
    form = billing.locator("[data-action=form]")
    expect(form.locator("input[name=q]")).to_be_disabled()
    expect(form.locator("button[type=submit]")).to_be_disabled()
    expect(billing.locator("[data-role=gate-reason]")).to_contain_text("billing is down")
    expect(billing.locator("[data-role=reason]")).to_contain_text("connection refused")
    expect(billing.locator("[data-role=since]")).to_contain_text(re.compile(r"Down for \d+ s"))
    # Others are untouched; the title and summary carry the signal.
    expect(page.locator('.card[data-service="auth"] [data-action=open]')).to_be_enabled()
    expect(page).to_have_title("(1 down) healthmon")
    expect(page.locator("#summary")).to_contain_text("1 down")
    tab.shot("02-billing-down")
    system.set_mode("billing", "up")
    expect(billing).to_have_attribute("data-status", "up", timeout=WITHIN_A_SECOND)
    expect(billing.locator("[data-action=open]")).to_be_enabled()
    expect(form.locator("input[name=q]")).to_be_enabled()
    expect(billing.locator("[data-role=gate-reason]")).to_have_text("Available")
    expect(billing.locator("[data-role=reason]")).to_be_hidden()


def test_degraded_keeps_actions_with_warning(new_tab: Callable[..., Tab], system: Server) -> None:
    """A degraded service keeps its button and form enabled and shows a warning."""
    tab = open_live(new_tab, system)
    page = tab.page
    auth = page.locator('.card[data-service="auth"]')
    system.set_mode("auth", "degraded")
    expect(auth).to_have_attribute("data-status", "degraded", timeout=WITHIN_A_SECOND)
    expect(auth.locator("[data-action=open]")).to_be_enabled()
    expect(auth.locator("[data-action=form] input[name=q]")).to_be_enabled()
    expect(auth.locator("[data-role=gate-reason]")).to_contain_text("Warning")
    expect(auth.locator("[data-role=reason]")).to_contain_text("auth was switched to degraded")
    expect(auth.locator("[data-role=state]")).to_contain_text("Degraded")
    expect(page).to_have_title("(1 degraded) healthmon")
    tab.shot("03-auth-degraded")


def test_modal_data_error_retry_and_down_notice(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The modal shows the mock's data, says at once when its service goes down, shows a readable
    error and recovers with Retry.
    """
    tab = open_live(new_tab, system)
    page = tab.page
    opener = page.locator('.card[data-service="billing"] [data-action=open]')
    modal = page.locator('[data-modal="billing"]')
    with page.expect_request(system.data_url("billing")):
        opener.click()
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("totalInvoices")
    expect(modal).to_contain_text("$12,345.67")
    expect(modal.locator("[data-action=close]")).to_be_focused()
    tab.shot("04-modal-data")
    # Error mode: the health check fails (503) and so does the data endpoint.
    system.set_mode("billing", "error")
    alert = modal.locator("[data-role=modal-alert]")
    expect(alert).to_be_visible(timeout=WITHIN_A_SECOND)
    expect(alert).to_contain_text("billing is down")
    modal.locator("[data-action=refresh]").click()
    error = modal.locator("[data-role=modal-error]")
    expect(error).to_contain_text("HTTP 503")
    expect(error).to_contain_text("billing is failing (mode: error)")
    retry = error.locator("[data-action=retry]")
    expect(retry).to_be_visible()
    tab.shot("05-modal-error")
    system.set_mode("billing", "up")
    expect(alert).to_be_hidden(timeout=WITHIN_A_SECOND)
    retry.click()
    expect(modal).to_contain_text("totalInvoices")
    expect(error).to_have_count(0)
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    expect(opener).to_be_focused()


def test_dialog_leaves_the_page_usable(new_tab: Callable[..., Tab], system: Server) -> None:
    """The data dialog is not modal: with it open, Tab reaches the page and the Control panel."""
    page = open_live(new_tab, system).page
    page.locator('.card[data-service="auth"] [data-action=open]').click()
    modal = page.locator('[data-modal="auth"]')
    expect(modal).to_contain_text("userCount")
    assert page.evaluate("() => !document.querySelector(':modal')")
    page.locator("#controls summary").click()
    page.locator('[data-control="mock:auth"]').focus()
    expect(page.locator('[data-control="mock:auth"]')).to_be_focused()
    expect(modal).to_be_visible()
    modal.locator("[data-action=close]").click()
    expect(modal).to_be_hidden()


def test_form_sends_parameter_and_shows_echo(new_tab: Callable[..., Tab], system: Server) -> None:
    """The per-service form sends ?q= to the data endpoint and shows the echoed query."""
    tab = open_live(new_tab, system)
    page = tab.page
    form = page.locator('.card[data-service="notifications"] [data-action=form]')
    form.locator("input[name=q]").fill("hello class")
    with page.expect_request(
        lambda r: r.url.startswith(system.data_url("notifications")) and "q=hello%20class" in r.url
    ):
        form.locator("input[name=q]").press("Enter")
    result = page.locator('.card[data-service="notifications"] [data-role=form-result]')
    expect(result).to_contain_text('"q":"hello class"')
    tab.shot("06-form-echo")


def test_event_log_lists_changes(new_tab: Callable[..., Tab], system: Server) -> None:
    """Each status change appears in the event log, newest first, with from, to, source, reason."""
    tab = open_live(new_tab, system)
    page = tab.page
    entries = page.locator("[data-log] li")
    # The log starts with the server's latest changes (earlier tests made some).
    before = entries.count()
    system.set_mode("analytics", "down")
    expect(entries).to_have_count(before + 1, timeout=WITHIN_A_SECOND + 500)
    system.set_mode("analytics", "up")
    expect(entries).to_have_count(before + 2, timeout=WITHIN_A_SECOND + 500)
    newest, oldest = entries.nth(0), entries.nth(1)
    expect(newest).to_have_attribute("data-to", "up")
    expect(newest).to_have_attribute("data-from", "down")
    expect(oldest).to_have_attribute("data-to", "down")
    expect(oldest).to_have_attribute("data-source", "push")
    expect(oldest).to_contain_text("analytics")
    expect(oldest).to_contain_text("connection refused")
    expect(oldest).to_contain_text("up → ✕ down")
    tab.shot("07-event-log")


def test_control_panel_drives_mocks_and_components(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The control panel switches a mock's mode and the monitor, and reflects the server's state."""
    tab = open_live(new_tab, system)
    page = tab.page
    page.locator("#controls summary").click()
    select = page.locator('[data-control="mock:notifications"]')
    expect(select).to_have_value("up")
    select.select_option("slow")
    notifications = page.locator('.card[data-service="notifications"]')
    # Slow answers after the check timeout: down, with the timeout as reason.
    expect(notifications).to_have_attribute("data-status", "down", timeout=3000)
    expect(notifications.locator("[data-role=reason]")).to_contain_text("no answer within")
    assert system.services()["services"][2]["mode"] == "slow"
    expect(page.locator("#control-status")).to_contain_text("switched to slow")
    tab.shot("08-control-panel-slow")
    select.select_option("up")
    expect(notifications).to_have_attribute("data-status", "up", timeout=3000)
    monitor = page.locator('[data-control="monitor"]')
    ws_switch = page.locator('[data-control="ws"]')
    expect(monitor).to_be_checked()
    expect(ws_switch).to_be_checked()
    monitor.uncheck()
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "polling", timeout=6000
    )
    expect(monitor).not_to_be_checked()
    assert system.services()["monitor"]["running"] is False
    monitor.check()
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=6000
    )
    assert system.services()["monitor"]["running"] is True
