"""Alerts on the page, in a real Chromium against a real healthmon and a real webhook receiver:
the Control panel's alert log and silences, and the cards' "alerts held" mark.

History is off in this module's server: the alert log comes from the in-memory outbox.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.alerts.sink import Sink
from tests.browser.conftest import HOLD_DOCUMENTS, NEXT_FRAME, Server, Tab, launch, open_live
from tests.browser.test_live_config import write_atomically

pytestmark = pytest.mark.browser


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    """The webhook receiver, on its own event loop in a thread (the tests here are sync)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> Sink:
        receiver = Sink()
        return await receiver.__aenter__()

    receiver = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield receiver
    asyncio.run_coroutine_threadsafe(receiver.__aexit__(None, None, None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def alerts_toml(sink: Sink, window: str = "", mode: str = "ok") -> str:
    """History off, one webhook channel to the sink's ``mode`` for every service (a try
    lasts at most 1 s), and ``window``."""
    return f"""
[history]
enabled = false

[alerts]
channels = ["hook"]

[[channels]]
name = "hook"
kind = "webhook"
url = "{sink.url(mode)}"
timeout = "1s"
{window}"""


def window_toml(service: str, start: datetime, end: datetime, description: str) -> str:
    return f"""
[[maintenance]]
services = ["{service}"]
description = "{description}"
start = {iso(start)}
end = {iso(end)}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[Server]:
    """healthmon with a webhook channel, and analytics inside a maintenance window now."""
    now = datetime.now(UTC)
    window = window_toml("analytics", now - timedelta(hours=1), now + timedelta(hours=2), "backup")
    with launch(tmp_path_factory.mktemp("alerts"), alerts_toml(sink, window)) as running:
        yield running


def silences(system: Server) -> list[dict[str, object]]:
    found: list[dict[str, object]] = system._request("/api/silences")["silences"]
    return found


def open_panel(tab: Tab) -> None:
    tab.page.locator("#controls summary").click()
    expect(tab.page.locator("#controls")).to_have_attribute("open", "")


def test_a_down_service_shows_a_sent_row_in_the_alert_log(
    new_tab: Callable[..., Tab], system: Server, sink: Sink
) -> None:
    """Billing switched down from the panel: the receiver gets the alert, and the panel's alert
    log shows it as a row with the time, "✓ sent", the channel and what was said."""
    tab = open_live(new_tab, system)
    open_panel(tab)
    page = tab.page
    page.select_option('[data-control="mock:billing"]', "down")
    row = page.locator('#alert-log .alert-row[data-state="sent"]').filter(
        has_text="billing is down"
    )
    expect(row).to_have_count(1, timeout=10_000)
    expect(row.locator(".alert-state")).to_have_text("✓ sent")
    expect(row.locator(".alert-channel")).to_have_text("hook")
    expect(row.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    told = [a["service"] for r in sink.received for a in r.json["alerts"] if a["kind"] == "down"]
    assert "billing" in told
    expect(page.locator("#alert-empty")).to_be_hidden()


def test_a_silence_set_from_the_page_marks_the_card_and_lifting_it_clears_it(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """Silencing auth from the panel lists the silence (and the API has it) and marks auth's card
    while its pill still says Up; Lift removes both."""
    tab = open_live(new_tab, system)
    page = tab.page
    card = page.locator('.card[data-service="auth"]')
    mark = card.locator("[data-role=hold]")
    expect(mark).to_be_hidden()
    open_panel(tab)
    page.select_option("#silence-service", "auth")
    page.select_option("#silence-form [name=minutes]", "15")
    page.fill("#silence-form [name=comment]", "deploy")
    page.click("#silence-form button[type=submit]")
    expect(page.locator("#control-status")).to_contain_text("✓ Silence on auth for 15 min")
    expect(mark).to_be_visible(timeout=3000)
    expect(mark).to_have_text(re.compile(r"Alerts held until \d\d:\d\d — silenced: deploy"))
    expect(card.locator("[data-role=state] .word")).to_have_text("Up")
    listed = silences(system)
    assert [(s["services"], s["comment"]) for s in listed] == [(["auth"], "deploy")]
    until = listed[0]["until_ms"]
    assert isinstance(until, int)
    assert abs(until - time.time() * 1000 - 15 * 60_000) < 60_000
    item = page.locator("#silence-list .silence")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("auth until")
    expect(item).to_contain_text("deploy")
    item.get_by_role("button", name="Lift the silence on auth").click()
    expect(mark).to_be_hidden(timeout=3000)
    expect(item).to_have_count(0)
    expect(page.locator("#silence-empty")).to_be_visible()
    assert silences(system) == []


def test_a_document_asked_for_before_a_silence_and_read_after_it_leaves_the_mark(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """Two GET /api/services answers cross on their way: the one asked for before a silence
    is read after the one that shows it, and auth's card keeps its mark."""
    tab = open_live(new_tab, system)
    page = tab.page
    mark = page.locator('.card[data-service="auth"] [data-role=hold]')
    page.evaluate(HOLD_DOCUMENTS)
    open_panel(tab)  # asks for the document: answered before any silence
    page.wait_for_function("window.__held.length > 0 && window.__answered === window.__held.length")
    older = page.evaluate("window.__held.length")
    page.select_option("#silence-service", "auth")
    page.click("#silence-form button[type=submit]")
    expect(page.locator("#control-status")).to_contain_text("✓ Silence on auth")
    page.wait_for_function(
        f"window.__held.length > {older} && window.__answered === window.__held.length"
    )
    try:
        newer = f"window.__held.slice({older}).forEach((r) => r())"
        page.evaluate(f"() => {{ window.__holding = false; {newer}; }}")
        expect(mark).to_be_visible()
        page.evaluate(f"() => window.__held.slice(0, {older}).forEach((r) => r())")
        page.wait_for_function("window.__read.length === window.__held.length")
        page.evaluate(NEXT_FRAME)
        # What was read last said auth was not held: the older document, really.
        last = page.evaluate("window.__read[window.__read.length - 1].services")
        assert [s["maintenance"] for s in last if s["name"] == "auth"] == [None]
        expect(mark).to_be_visible()
    finally:
        for silence in silences(system):
            system._request(f"/api/silences/{silence['id']}", method="DELETE")


def test_a_maintenance_window_marks_the_card_on_first_paint_without_javascript(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With JavaScript off analytics' card already says its alerts are held for maintenance, and
    its pill still shows its real state."""
    page = new_tab(java_script_enabled=False).page
    page.goto(system.base() + "/")
    card = page.locator('.card[data-service="analytics"]')
    mark = card.locator("[data-role=hold]")
    expect(mark).to_be_visible()
    expect(mark).to_have_text("‖ Alerts held — maintenance: backup")
    expect(card.locator("[data-role=state] .word")).to_have_text("Up")
    expect(page.locator('.card[data-service="auth"] [data-role=hold]')).to_be_hidden()


def test_with_javascript_the_mark_says_until_when(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The running page keeps the mark and adds the window's end in local time."""
    page = open_live(new_tab, system).page
    mark = page.locator('.card[data-service="analytics"] [data-role=hold]')
    expect(mark).to_have_text(re.compile(r"Alerts held until \d\d:\d\d — maintenance: backup"))


def test_the_mark_appears_when_a_window_starts_without_a_reload(
    new_tab: Callable[..., Tab], tmp_path: Path, sink: Sink
) -> None:
    """A window starting a few seconds after the page loaded marks the card within about a
    second of its start, with the panel closed and nothing else changing (the page asks
    again at the server's maintenance_next_ms, not at its once-a-minute refresh)."""
    with launch(tmp_path, alerts_toml(sink)) as system:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
        window = window_toml("billing", start, start + timedelta(hours=1), "upgrade")
        write_atomically(system.config_path, system.config_path.read_text() + window)
        start_ms = int(start.timestamp() * 1000)
        system.wait_until(
            lambda doc: doc["maintenance_next_ms"] == start_ms, 10, "the window to be loaded"
        )
        page = open_live(new_tab, system).page
        mark = page.locator('.card[data-service="billing"] [data-role=hold]')
        assert time.time() * 1000 < start_ms, "the page loaded after the window started"
        expect(mark).to_be_hidden()
        expect(mark).to_be_visible(timeout=20_000)
        assert time.time() * 1000 < start_ms + 3000
        expect(mark).to_contain_text("maintenance: upgrade")


def outward_address() -> str:
    """This machine's address on its network (not loopback): what another host would call."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    found += socket.gethostbyname_ex(socket.gethostname())[2]
    outward = [a for a in found if not a.startswith("127.") and a != "0.0.0.0"]
    assert outward, f"no network address besides loopback (found {found})"
    return outward[0]


def test_a_refused_silence_says_why_in_the_status_line(
    new_tab: Callable[..., Tab], tmp_path: Path, sink: Sink
) -> None:
    """Opened from another address than loopback (and no control token sent), setting a silence
    is refused: the panel's status line shows the server's 403 reason, and none is set."""
    address = outward_address()
    with launch(
        tmp_path, alerts_toml(sink), web_toml=f'allowed_hosts = ["{address}"]', host="0.0.0.0"
    ) as system:
        page = new_tab().page
        page.goto(f"http://{address}:{system.port}/")
        expect(page.locator("[data-connection]")).to_have_attribute(
            "data-connection", "live", timeout=5000
        )
        page.locator("#controls summary").click()
        page.fill("#silence-form [name=pattern]", "bill*")
        page.click("#silence-form button[type=submit]")
        status = page.locator("#control-status")
        expect(status).to_have_attribute("data-state", "error")
        expect(status).to_contain_text("✕ Silence on bill* for 1 h failed:")
        expect(status).to_contain_text("loopback callers only")
        expect(page.locator("#silence-list .silence")).to_have_count(0)
        assert silences(system) == []
        # The typed pattern stays, for another try.
        expect(page.locator("#silence-form [name=pattern]")).to_have_value("bill*")


def test_without_a_channel_the_log_says_what_to_add(
    new_tab: Callable[..., Tab], tmp_path: Path
) -> None:
    """No [[channels]] configured: the alert log says so and names what to add to config.toml."""
    with launch(tmp_path, "\n[history]\nenabled = false\n") as system:
        page = open_live(new_tab, system).page
        page.locator("#controls summary").click()
        empty = page.locator("#alert-empty")
        expect(empty).to_contain_text("No alert channel is configured")
        expect(empty).to_contain_text("[[channels]]")
        expect(empty).to_contain_text("config.toml")
        expect(page.locator("#alert-log .alert-row")).to_have_count(0)


def test_the_open_panel_follows_a_retry_to_sent_without_a_status_change(
    new_tab: Callable[..., Tab], tmp_path: Path, sink: Sink
) -> None:
    """The receiver hangs on the first try: the open panel shows the alert not sent yet, then
    (nothing else changing on the page) the same row as sent after the retry."""
    with launch(tmp_path, alerts_toml(sink, mode="hangfirst")) as system:
        tab = open_live(new_tab, system)
        open_panel(tab)
        page = tab.page
        page.select_option('[data-control="mock:auth"]', "down")
        row = page.locator("#alert-log .alert-row").filter(has_text="auth is down")
        expect(row).to_have_count(1, timeout=5000)
        expect(row).not_to_have_attribute("data-state", "sent")
        key = row.get_attribute("data-key")
        expect(row).to_have_attribute("data-state", "sent", timeout=15_000)
        expect(row.locator(".alert-state")).to_have_text("✓ sent")
        assert row.get_attribute("data-key") == key
