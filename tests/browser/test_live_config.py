"""Why a service is degraded, and config.toml edited while the page is open."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, Tab, launch, open_live, service_toml
from tests.browser.test_layout import no_horizontal_overflow

pytestmark = pytest.mark.browser

INVENTORY_HEALTH = {
    "status": "warn",
    "checks": {"db:connections": [{"status": "warn", "output": "91 of 100 used"}]},
}
# Five failing checks, listed warn first: the page shows the worst three.
WAREHOUSE_HEALTH = {
    "status": "pass",
    "checks": {
        "queue:depth": [{"status": "warn", "observedValue": 950, "observedUnit": "jobs"}],
        "disk:free": [{"status": "fail", "output": "2 % left"}],
        "cache:hits": [{"status": "warn", "output": "hit rate 41 %"}],
        "db:replica": [{"status": "fail", "output": "replica lag 30 s"}],
        "mail:smtp": [{"status": "warn"}],
    },
}
EXTRA_NAMES = ["inventory", "warehouse"]
# A reload is noticed within half a second and applied at once; a new
# service's first check follows within an interval.
RELOAD_TIMEOUT = 5000


class _Inventory(BaseHTTPRequestHandler):
    """A real (non-mock) service whose health+json has one failing check."""

    def do_GET(self) -> None:
        answers = {"/health": INVENTORY_HEALTH, "/warehouse-health": WAREHOUSE_HEALTH}
        body = json.dumps(answers.get(self.path, {"items": 3})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/health+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def inventory() -> Iterator[str]:
    """The inventory service on a free port, for the whole module."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Inventory)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, inventory: str) -> Iterator[Server]:
    """This module's healthmon: the four mocks plus two real services with failing checks."""
    extra = service_toml("inventory", inventory, "/items", mock=False) + service_toml(
        "warehouse", inventory, "/items", mock=False, health_path="/warehouse-health"
    )
    with launch(tmp_path_factory.mktemp("healthmon"), extra) as running:
        yield running


@pytest.fixture
def config_file(system: Server) -> Iterator[Path]:
    """The server's config file, put back as it was after the test."""
    original = system.config_path.read_text()
    yield system.config_path
    write_atomically(system.config_path, original)
    system.wait_until(
        lambda doc: (
            doc["config_error"] is None
            and [s["name"] for s in doc["services"]] == [*system.names, *EXTRA_NAMES]
        ),
        10,
        "the original config to be back",
    )


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step: the server polls it and must never read half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)


def test_failing_check_name_and_output(new_tab: Callable[..., Tab], system: Server) -> None:
    """A service with a failing check shows the check's name and output as visible text."""
    tab = open_live(new_tab, system)
    card = tab.page.locator('.card[data-service="inventory"]')
    expect(card).to_have_attribute("data-status", "degraded")
    check = card.locator('[data-role=checks] li[data-check="db:connections"]')
    expect(check).to_be_visible()
    expect(check).to_contain_text("db:connections")
    expect(check).to_contain_text("warn")
    expect(check).to_contain_text("91 of 100 used")
    expect(card.locator("[data-role=reason]")).to_contain_text("db:connections")
    # The mocks' degraded mode has no checks: the reason alone, no empty list.
    auth = tab.page.locator('.card[data-service="auth"]')
    system.set_mode("auth", "degraded")
    expect(auth).to_have_attribute("data-status", "degraded", timeout=2000)
    expect(auth.locator("[data-role=checks]")).to_be_hidden()
    tab.shot("31-failing-check")


def test_at_most_three_checks_worst_first(new_tab: Callable[..., Tab], system: Server) -> None:
    """A service with five failing checks shows the worst three, failures first, then "+2 more"."""
    page = open_live(new_tab, system).page
    card = page.locator('.card[data-service="warehouse"]')
    expect(card).to_have_attribute("data-status", "down")
    items = card.locator("[data-role=checks] li.check")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_have_attribute("data-status", "down")
    expect(items.nth(1)).to_have_attribute("data-status", "down")
    expect(items.nth(2)).to_have_attribute("data-status", "degraded")
    expect(card.locator("[data-role=checks]")).to_contain_text("replica lag 30 s")
    expect(card.locator("[data-role=checks]")).to_contain_text("2 % left")
    expect(card.locator("[data-role=checks] .check-more")).to_have_text("+2 more")


def mark(page: Page) -> None:
    page.evaluate("() => { window.__marker = 'same page'; }")


def same_page(page: Page) -> bool:
    return bool(page.evaluate("() => window.__marker === 'same page'"))


def test_reload_adds_and_removes_a_card(
    new_tab: Callable[..., Tab], system: Server, config_file: Path
) -> None:
    """A service added to config.toml gets a live card, modal and control row without a page
    reload, and loses them when removed, while the log and focus stay.
    """
    tab = open_live(new_tab, system)
    page = tab.page
    mark(page)
    # Something in the log and focus in another card: both must survive.
    # (The log starts with the server's latest changes: count from there.)
    billing_logged = page.locator("[data-log] li[data-service=billing]").count()
    system.set_mode("billing", "down")
    expect(page.locator("[data-log] li[data-service=billing]")).to_have_count(
        billing_logged + 1, timeout=2000
    )
    query = page.locator('.card[data-service="auth"] input[name=q]')
    query.focus()

    port = unused_port()
    original = config_file.read_text()
    write_atomically(
        config_file,
        original + service_toml("payments", f"http://127.0.0.1:{port}", "/payments", mock=True),
    )
    card = page.locator('.card[data-service="payments"]')
    expect(card).to_have_attribute("data-status", "up", timeout=RELOAD_TIMEOUT)
    expect(card.locator("[data-role=state]")).to_contain_text("Up")
    expect(page.locator("#summary")).to_contain_text("2 down")
    # Placed after the last service in the file.
    names = page.locator("#services > .card").evaluate_all(
        "cards => cards.map(c => c.dataset.service)"
    )
    assert names == [*system.names, *EXTRA_NAMES, "payments"]
    select = page.locator('[data-control="mock:payments"]')
    expect(select).to_have_value("up")
    expect(query).to_be_focused()
    assert same_page(page)

    # The new card's controls work like any other: its mode select and its modal.
    page.locator("#controls summary").click()
    select.select_option("down")
    expect(card).to_have_attribute("data-status", "down", timeout=2000)
    expect(card.locator("[data-action=open]")).to_be_disabled()
    select.select_option("up")
    expect(card).to_have_attribute("data-status", "up", timeout=2000)
    opener = card.locator("[data-action=open]")
    opener.click()
    modal = page.locator('[data-modal="payments"]')
    expect(modal).to_be_visible()
    expect(modal.locator("[data-role=modal-body] dl")).to_be_visible()
    tab.shot("32-service-added")
    page.keyboard.press("Escape")
    expect(opener).to_be_focused()
    query.focus()

    write_atomically(config_file, original)
    expect(card).to_have_count(0, timeout=RELOAD_TIMEOUT)
    expect(modal).to_have_count(0)
    expect(select).to_have_count(0)
    expect(page.locator("[data-log] li[data-service=billing]")).to_have_count(billing_logged + 1)
    expect(page.locator("#summary")).to_contain_text("2 down")
    expect(query).to_be_focused()
    assert same_page(page)
    assert "payments" not in page.evaluate("() => Object.keys(window.healthmon.store.services)")


def test_invalid_config_shows_banner_until_fixed(
    new_tab: Callable[..., Tab], system: Server, config_file: Path
) -> None:
    """An invalid config.toml shows a banner naming the field, and fixing it hides the banner."""
    tab = open_live(new_tab, system)
    page = tab.page
    mark(page)
    banner = page.locator("#config-banner")
    expect(banner).to_be_hidden()
    original = config_file.read_text()
    write_atomically(config_file, original.replace("interval_ms = 500", "interval_ms = -5"))
    expect(banner).to_be_visible(timeout=RELOAD_TIMEOUT)
    expect(banner).to_contain_text("config.toml not applied")
    expect(banner).to_contain_text("monitor.interval_ms")
    assert system.services()["config_error"] in banner.inner_text()
    # The running configuration carries on: every card is still there and live.
    expect(page.locator("#services > .card")).to_have_count(len(system.names) + len(EXTRA_NAMES))
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    tab.shot("33-config-error")
    write_atomically(config_file, original)
    expect(banner).to_be_hidden(timeout=RELOAD_TIMEOUT)
    assert same_page(page)


def test_config_error_shown_on_first_load(
    new_tab: Callable[..., Tab], system: Server, config_file: Path
) -> None:
    """A page opened while config.toml is invalid shows the banner from its first render."""
    original = config_file.read_text()
    write_atomically(config_file, original + "\nunknown_key = 1\n")
    system.wait_until(lambda doc: doc["config_error"] is not None, 5, "the config error")
    tab = new_tab()
    tab.page.goto(system.base() + "/")
    banner = tab.page.locator("#config-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("unknown_key")


@pytest.mark.parametrize(
    ("label", "width", "height", "scheme"),
    [
        ("laptop-light", 1280, 800, "light"),
        ("laptop-dark", 1280, 800, "dark"),
        ("phone-light", 390, 844, "light"),
        ("phone-dark", 390, 844, "dark"),
    ],
)
def test_new_pieces_fit_each_width_and_theme(
    new_tab: Callable[..., Tab],
    system: Server,
    config_file: Path,
    label: str,
    width: int,
    height: int,
    scheme: str,
) -> None:
    """The config banner, failing checks and history area fit laptop and phone widths, light and
    dark, without overflow.
    """
    tab = open_live(new_tab, system, width=width, height=height, color_scheme=scheme)
    page = tab.page
    system.set_mode("billing", "down")
    expect(page.locator('.card[data-service="billing"]')).to_have_attribute(
        "data-status", "down", timeout=2000
    )
    write_atomically(config_file, config_file.read_text() + "\n[monitor.oops]\n")
    expect(page.locator("#config-banner")).to_be_visible(timeout=RELOAD_TIMEOUT)
    expect(page.locator('.card[data-service="inventory"] [data-role=checks]')).to_be_visible()
    no_horizontal_overflow(page)
    tab.shot(f"34-new-pieces-{label}")
