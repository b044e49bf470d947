"""Stored history on the page: the cards' 24 h and 30 d uptime, the data dialog's 90-day bar and
incidents, and the notice while history is unavailable.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from healthmon.store import Batch, Period, Retention, Totals
from healthmon.store.base import DAY_MS, GAP_REASON, HOUR_MS, MINUTE_MS
from healthmon.store.sqlite import SqliteStore
from tests.browser.conftest import SCREENSHOTS, SERVICES, Server, Tab, launch, open_live

pytestmark = pytest.mark.browser

CHECK_MS = 500


@dataclass(frozen=True)
class Stretch:
    """One stretch of one status (None: nobody was watching)."""

    start: int
    end: int | None
    status: str | None
    reason: str | None = None


@dataclass(frozen=True)
class Seeded:
    """The days a seeded store holds, as UTC day starts."""

    first_seen: int
    outage_day: int  # billing was down 45 min
    slow_day: int  # auth was degraded 30 min
    gap_day: int  # healthmon was not running at all
    end: int  # the seeding writer's last write


def seed_history(path: Path, names: Iterable[str], now: int) -> Seeded:
    """Write six days of history as a stopped healthmon would have left it: every service up,
    billing down 45 min one day, auth degraded 30 min another, and one whole day with no data.
    """
    today = now // DAY_MS * DAY_MS
    first_seen = today - 6 * DAY_MS + 9 * HOUR_MS
    gap_day, outage_day, slow_day = today - 3 * DAY_MS, today - 4 * DAY_MS, today - 2 * DAY_MS
    end = now // MINUTE_MS * MINUTE_MS - MINUTE_MS
    outage = outage_day + 10 * HOUR_MS
    slow = slow_day + 14 * HOUR_MS
    gap = Stretch(gap_day, gap_day + DAY_MS, None, GAP_REASON)
    timelines: dict[str, list[Stretch]] = {}
    for name in names:
        if name == "billing":
            early = [
                Stretch(first_seen, outage, "up"),
                Stretch(outage, outage + 45 * MINUTE_MS, "down", "connection refused"),
                Stretch(outage + 45 * MINUTE_MS, gap_day, "up"),
            ]
        else:
            early = [Stretch(first_seen, gap_day, "up")]
        if name == "auth":
            late = [
                Stretch(gap_day + DAY_MS, slow, "up"),
                Stretch(slow, slow + 30 * MINUTE_MS, "degraded", "answered in 1.2 s"),
                Stretch(slow + 30 * MINUTE_MS, None, "up"),
            ]
        else:
            late = [Stretch(gap_day + DAY_MS, None, "up")]
        timelines[name] = [*early, gap, *late]
    batch = Batch("seed", 1, end, first_seen={name: first_seen for name in timelines})
    for name, stretches in timelines.items():
        previous: str | None = None
        for stretch in stretches:
            status = stretch.status or "unknown"
            batch.periods[(name, stretch.start)] = Period(
                name, stretch.start, status, stretch.end, previous, stretch.reason, None, "seed"
            )
            previous = status
            if stretch.status is None:
                continue
            for minute in range(stretch.start, stretch.end or end, MINUTE_MS):
                totals = Totals(checks=MINUTE_MS // CHECK_MS)
                setattr(totals, f"{stretch.status}_ms", MINUTE_MS)
                if stretch.status == "down":
                    totals.failures = totals.checks
                else:
                    totals.add_latency(1.0)
                batch.minutes[(name, minute)] = totals

    async def write() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await store.write(batch, Retention(2 * DAY_MS, 90 * DAY_MS, 400 * DAY_MS))
        finally:
            await store.close()

    # Its own thread: Playwright's sync API may already run a loop on this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(write())).result()
    return Seeded(first_seen, outage_day, slow_day, gap_day, end)


# ---- servers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Seeded]]:
    """healthmon started on a store that already holds six days of history."""
    folder = tmp_path_factory.mktemp("stored")
    store_file = folder / "healthmon-data" / "history.sqlite3"
    store_file.parent.mkdir()
    seeded = seed_history(store_file, SERVICES, int(time.time() * 1000))
    with launch(folder) as running:
        yield running, seeded


@pytest.fixture
def stored(seeded_server: tuple[Server, Seeded]) -> tuple[Server, Seeded]:
    """The seeded server, reset: every mock up, monitor and channels on."""
    server, seeded = seeded_server
    server.reset()
    return server, seeded


def api(server: Server, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(server.base() + path, timeout=5) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


def stored_uptime(server: Server, name: str) -> dict[str, Any]:
    entry = next(s for s in server.services()["services"] if s["name"] == name)
    figures: dict[str, Any] = entry["uptime"]
    return figures


def iso_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def floor2(percent: float) -> float:
    return math.floor(percent * 100 + 1e-9) / 100


def card_line(page: Page, name: str) -> Locator:
    return page.locator(f'.card[data-service="{name}"] [data-role=uptime]')


def shown(page: Page, name: str, window: str) -> float:
    """The figure a card shows for ``window`` ("24 h" or "30 d")."""
    found = re.search(rf"{window} ([\d.]+) %", card_line(page, name).inner_text())
    assert found, card_line(page, name).inner_text()
    return float(found[1])


WORDS = {"down": "down", "degraded": "degraded", "up": "up", "unknown": "no data"}


def days_in_words(document: dict[str, Any]) -> str:
    """What the bar's summary should say of the watched days, from the API's own document."""
    states = {bucket["start"]: bucket["status"] for bucket in document["buckets"]}
    today = document["to"] // DAY_MS * DAY_MS
    first = document["first_seen"] // DAY_MS * DAY_MS
    watched = [states.get(day, "unknown") for day in range(first, today + 1, DAY_MS)]
    counts = [f"{watched.count(s)} {word}" for s, word in WORDS.items() if watched.count(s)]
    return f"{len(watched)} days watched ({', '.join(counts)})"


# Every page message's type and channel, recorded from the page's own client.
RECORD_MESSAGES = """
document.addEventListener("DOMContentLoaded", () => {
  window.__messages = [];
  const poll = setInterval(() => {
    if (!window.healthmon) return;
    clearInterval(poll);
    window.healthmon.client.on("message", ({ message, via }) =>
      window.__messages.push({ type: message.type, via }));
  }, 10);
});
"""
# A browser whose WebSocket never connects: the page lives on Server-Sent Events.
NO_WEBSOCKET = """
window.WebSocket = class {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      if (this.onerror) this.onerror({});
      if (this.onclose) this.onclose({ code: 1006, reason: "", wasClean: false });
    }, 0);
  }
  send() {}
  close() {}
};
"""


# ---- the cards ------------------------------------------------------------------------


def test_cards_show_stored_uptime_with_known_time(
    new_tab: Callable[..., Tab], stored: tuple[Server, Seeded]
) -> None:
    """A card shows the store's 24 h and 30 d uptime, says how much of 30 days is known, and its
    figures drop below 100 % the moment its service goes down, then match the store's.
    """
    server, _ = stored
    tab = open_live(new_tab, server)
    page = tab.page
    month = stored_uptime(server, "billing")["30d"]
    days_known = month["known_ms"] // DAY_MS
    # Six days seeded, one of them unwatched: never the whole 30 days, never a guess.
    assert 3 <= days_known < 30
    billing = card_line(page, "billing")
    expect(billing).to_have_attribute("data-source", "stored")
    # The last day is all known, so no note on 24 h; 30 d says how much of it is.
    expect(billing).to_have_text(
        re.compile(rf"^Uptime 24 h (100|99\.\d\d) % · 30 d 99\.\d\d % \({days_known} d known\)$")
    )
    assert abs(shown(page, "billing", "30 d") - month["uptime"]) <= 0.01
    # A service never down reads 100 %, and still says how much is known.
    notifications = card_line(page, "notifications")
    expect(notifications).to_have_text(f"Uptime 24 h 100 % · 30 d 100 % ({days_known} d known)")

    page.locator("#controls summary").click()
    outage_began = time.monotonic()
    page.locator('[data-control="mock:notifications"]').select_option("down")
    card = page.locator('.card[data-service="notifications"]')
    expect(card).to_have_attribute("data-status", "down", timeout=2000)
    # Counted by the page at once, not a minute later; never rounded back up to 100.
    expect(notifications).to_have_text(
        re.compile(rf"^Uptime 24 h 99\.\d\d % · 30 d 99\.\d\d % \({days_known} d known\)$"),
        timeout=5000,
    )
    page.locator('[data-control="mock:notifications"]').select_option("up")
    expect(card).to_have_attribute("data-status", "up", timeout=2000)
    outage_ms = (time.monotonic() - outage_began) * 1000  # at least as long as the outage

    # A figure the server read before the outage does not erase it; once the store has
    # counted it, the page's figures are the store's.
    def counted(doc: dict[str, Any]) -> bool:
        entry = next(s for s in doc["services"] if s["name"] == "notifications")
        return bool(entry["uptime"]["24h"]["down_ms"] > 0)

    document = server.wait_until(counted, 15, "the store to count the outage")
    day = next(s for s in document["services"] if s["name"] == "notifications")["uptime"]["24h"]
    page.locator("#controls summary").click()  # closed
    page.locator("#controls summary").click()  # open again: the page reads the document
    # The page floors to two decimals, and an outage inside the last few seconds before a
    # figure is read may be counted twice (by the store and by the page, never forgotten):
    # shown is the store's figure, less at most that outage's share and the floor.
    page.wait_for_function(
        """([expected, outageShare]) => {
            const text = document.querySelector(
                '.card[data-service="notifications"] [data-role=uptime]').textContent;
            const shown = parseFloat(text.match(/24 h ([\\d.]+) %/)[1]);
            return shown < 100 && shown <= expected + 0.001
                && shown >= expected - outageShare - 0.01;
        }""",
        arg=[day["uptime"], 100 * outage_ms / day["known_ms"]],
        timeout=5000,
    )
    expect(notifications).not_to_contain_text("since start")
    tab.shot("60-stored-cards-light")


# ---- the data dialog -------------------------------------------------------------


def test_dialog_shows_ninety_days_incidents_and_export(
    new_tab: Callable[..., Tab], stored: tuple[Server, Seeded]
) -> None:
    """The data dialog draws one bar per day of the last 90 with the day's worst state (a day
    with downtime in the down shape, an unwatched day as no data), lists the outage and links
    the CSV export.
    """
    server, seeded = stored
    tab = open_live(new_tab, server)
    page = tab.page
    page.locator('.card[data-service="billing"] [data-action=open]').click()
    dialog = page.locator('[data-modal="billing"]')
    days = dialog.locator("[data-role=days] .day")
    expect(days).to_have_count(90)
    document = api(server, "/api/services/billing/history?window=90d")
    assert document["grain"] == "day"
    # Every day the store has is drawn with its own state.
    for bucket in document["buckets"]:
        expect(dialog.locator(f'[data-day="{iso_day(bucket["start"])}"]')).to_have_class(
            f"day day-{bucket['status']}"
        )
    outage = dialog.locator(f'[data-day="{iso_day(seeded.outage_day)}"]')
    expect(outage).to_have_class("day day-down")
    expect(outage).to_have_attribute("title", re.compile(r"✕ down · uptime 96\.87 % .*down 45 min"))
    expect(dialog.locator(f'[data-day="{iso_day(seeded.gap_day)}"]')).to_have_class(
        "day day-unknown"
    )
    before = dialog.locator(f'[data-day="{iso_day(seeded.first_seen - DAY_MS)}"]')
    expect(before).to_have_class("day day-empty")
    # The same in words: a summary for the bar, a row per watched day.
    bar = dialog.locator("[data-role=days]")
    expect(bar).to_have_attribute("role", "img")
    expect(bar).to_have_attribute("aria-label", re.compile(re.escape(days_in_words(document))))
    assert "1 no data" in days_in_words(document)
    expect(dialog.locator("[data-role=days-table] tbody tr")).to_have_count(7)
    summary = dialog.locator("[data-role=stored-summary]")
    expect(summary).to_contain_text(f"Uptime {floor2(document['uptime']):.2f} %")
    expect(summary).to_contain_text("known of 90 d")
    expect(summary).to_contain_text("down 45 min")
    incident = dialog.locator("[data-role=incidents] .incident").last
    expect(incident).to_have_attribute("data-status", "down")
    expect(incident).to_contain_text("✕ down")
    expect(incident).to_contain_text("for 45 min")
    expect(incident).to_contain_text("connection refused")
    link = dialog.locator("[data-role=export]")
    expect(link).to_have_text("Export 90 days as CSV")
    answer = page.request.get(server.base() + (link.get_attribute("href") or ""))
    assert answer.ok
    rows = answer.text().splitlines()
    assert rows[0].startswith("service,grain,start,end,status")
    assert len(rows) == 1 + len(document["buckets"])
    tab.shot("61-stored-dialog-light")

    # The other service: a degraded day in the degraded shape.
    page.keyboard.press("Escape")
    page.locator('.card[data-service="auth"] [data-action=open]').click()
    auth = page.locator('[data-modal="auth"]')
    expect(auth.locator(f'[data-day="{iso_day(seeded.slow_day)}"]')).to_have_class(
        "day day-degraded"
    )
    expect(auth.locator("[data-role=incidents]")).to_contain_text("answered in 1.2 s")


@pytest.mark.parametrize(
    ("label", "width", "height", "scheme", "query"),
    [
        ("projector-light", 1280, 720, "light", "?projector"),
        ("projector-dark", 1024, 768, "dark", "?projector"),
        ("laptop-dark", 1280, 800, "dark", ""),
        ("phone-light", 390, 844, "light", ""),
        ("phone-dark", 390, 844, "dark", ""),
    ],
)
def test_stored_history_fits_every_width(
    new_tab: Callable[..., Tab],
    stored: tuple[Server, Seeded],
    label: str,
    width: int,
    height: int,
    scheme: str,
    query: str,
) -> None:
    """With a down and a degraded card, the stored figures fit every card without cutting anything
    off, and the 90-day bar fits its dialog.
    """
    server, _ = stored
    tab = new_tab(width=width, height=height, color_scheme=scheme)
    page = tab.page
    page.goto(server.base() + "/" + query)
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    server.set_mode("billing", "down")
    server.set_mode("auth", "degraded")
    expect(page.locator('.card[data-service="auth"]')).to_have_attribute(
        "data-status", "degraded", timeout=2000
    )
    expect(card_line(page, "billing")).to_contain_text(re.compile(r"24 h 99\.\d\d %"))
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('.card')]
            .filter(card => card.scrollHeight > card.clientHeight + 0.5
                || card.scrollWidth > card.clientWidth + 0.5)
            .map(card => card.dataset.service)"""
    )
    assert clipped == [], f"cut off: {clipped}"
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    tab.shot(f"62-stored-{label}")
    page.locator('.card[data-service="auth"] [data-action=open]').click()
    bar = page.locator('[data-modal="auth"] [data-role=days]')
    expect(bar.locator(".day")).to_have_count(90)
    box = bar.bounding_box()
    dialog = page.locator('[data-modal="auth"]').bounding_box()
    assert box is not None
    assert dialog is not None
    assert box["x"] >= dialog["x"]
    assert box["x"] + box["width"] <= dialog["x"] + dialog["width"]
    page.locator('[data-modal="auth"]').screenshot(path=SCREENSHOTS / f"63-dialog-{label}.png")


# ---- history unavailable, then back ---------------------------------------------


def test_notice_while_history_is_unavailable_and_gone_when_it_is_back(
    new_tab: Callable[..., Tab], tmp_path: Path
) -> None:
    """With the history file unreadable, every page says so in one quiet line and its dialogs
    say why; once the file is moved away healthmon opens a new history and the line goes, on
    a WebSocket page and on a Server-Sent Events page alike.
    """
    broken = tmp_path / "history.bin"
    broken.write_text("a spreadsheet someone saved here, not a database\n")
    with launch(tmp_path, '\n[history]\npath = "history.bin"\n') as server:
        assert server.services()["history"]["available"] is False
        socket_tab = open_live(new_tab, server, RECORD_MESSAGES)
        sse_tab = new_tab()
        sse_tab.page.add_init_script(NO_WEBSOCKET + RECORD_MESSAGES)
        sse_tab.page.goto(server.base() + "/")
        expect(sse_tab.page.locator("[data-connection]")).to_have_attribute(
            "data-transport", "sse", timeout=5000
        )
        for tab in (socket_tab, sse_tab):
            notice = tab.page.locator("#history-notice")
            expect(notice).to_be_visible()
            expect(notice).to_contain_text("History unavailable — ")
            expect(notice).to_contain_text("is not a readable SQLite file")
            expect(notice).to_contain_text("Uptime shows at most the last hour")
            # The cards fall back to the hour kept in memory, and say so.
            expect(card_line(tab.page, "billing")).to_have_text(
                re.compile(r"^Uptime 100\.00 % since start \(\d+ (s|min)\)$")
            )
        page = socket_tab.page
        page.locator('.card[data-service="billing"] [data-action=open]').click()
        problem = page.locator('[data-modal="billing"] [data-role=stored-problem]')
        expect(problem).to_contain_text("History unavailable: ")
        expect(problem).to_contain_text("history.bin is not a readable SQLite file")
        socket_tab.shot("64-history-unavailable-light")

        broken.rename(tmp_path / "history.bin.old")  # as the message says: move it away
        # healthmon tries again every 10 s; each page hears it on its own channel.
        for tab, via in ((socket_tab, "websocket"), (sse_tab, "sse")):
            expect(tab.page.locator("#history-notice")).to_be_hidden(timeout=20_000)
            heard = tab.page.evaluate(
                "() => window.__messages.filter(m => m.type === 'historyState').map(m => m.via)"
            )
            assert heard == [via]
        expect(page.locator("#announcer")).to_have_text(
            re.compile("Stored history is back"), timeout=2000
        )
        # The open dialog loads its 90 days at once.
        expect(page.locator('[data-modal="billing"] [data-role=days] .day')).to_have_count(90)
        expect(problem).to_have_count(0)


def test_history_off_leaves_the_page_as_it_was(new_tab: Callable[..., Tab], tmp_path: Path) -> None:
    """With history switched off there is no notice, the cards show the hour and the dialog has no
    history section at all.
    """
    with launch(tmp_path, "\n[history]\nenabled = false\n") as server:
        assert server.services()["history"] is None
        page = open_live(new_tab, server).page
        expect(page.locator("#history-notice")).to_be_hidden()
        expect(card_line(page, "auth")).to_have_text(re.compile(r"^Uptime 100\.00 % since start"))
        page.locator('.card[data-service="auth"] [data-action=open]').click()
        dialog = page.locator('[data-modal="auth"]')
        expect(dialog).to_contain_text("userCount")
        expect(dialog.locator("[data-role=stored]")).to_have_attribute("data-state", "off")
        expect(dialog.locator("[data-role=stored]")).to_be_hidden()
