"""A service without a data endpoint a page can fetch gets no data controls: no "Open … data"
button, no query form; its stored history keeps a button of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Server, Tab, launch, open_live

pytestmark = pytest.mark.browser

# A database checked by a TCP connect (its "data URL" is its address), and an
# HTTP mock with no data_endpoint in its table.
EXTRA = f"""
[[services]]
name = "postgres"
kind = "tcp"
url = "tcp://127.0.0.1:{unused_port()}"

[[services]]
name = "plain"
url = "http://127.0.0.1:{unused_port()}"
mock = true
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The four mocks (each with a data endpoint), a TCP service and an HTTP one without."""
    with launch(tmp_path_factory.mktemp("healthmon"), EXTRA) as running:
        yield running


def no_data_controls(page: Page, name: str) -> Locator:
    """The card of ``name``, asserted to show no data controls at all."""
    card = page.locator(f'.card[data-service="{name}"]')
    expect(card).to_have_attribute("data-has-data", "false")
    expect(card.get_by_role("button", name=f"Open {name} data")).to_have_count(0)
    expect(card.get_by_role("textbox")).to_have_count(0)
    expect(card.get_by_role("button", name="Send")).to_have_count(0)
    expect(card.get_by_text("Query")).to_be_hidden()
    return card


def test_a_tcp_service_gets_no_data_controls(new_tab: Callable[..., Tab], system: Server) -> None:
    """A TCP service's card has no data button and no query form, before and after the page runs,
    while an HTTP mock with a data endpoint keeps both; its history opens without a data part.
    """
    tab = new_tab()
    page = tab.page
    page.goto(system.base() + "/")
    no_data_controls(page, "postgres")
    expect(page.get_by_role("button", name="Open billing data")).to_be_visible()
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    card = no_data_controls(page, "postgres")
    history = card.get_by_role("button", name="History of postgres")
    expect(history).to_be_visible()
    history.click()
    dialog = page.locator('dialog[data-modal="postgres"]')
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="postgres history")).to_be_visible()
    expect(dialog.locator("[data-role=modal-data]")).to_be_hidden()
    expect(dialog.locator("[data-role=stored]")).to_be_visible(timeout=5000)
    page.keyboard.press("Escape")
    expect(history).to_be_focused()
    tab.shot("data-none-tcp")


def test_an_http_service_without_a_data_endpoint_gets_none(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """An HTTP service whose table sets no data_endpoint has no data button and no query form."""
    page = open_live(new_tab, system).page
    no_data_controls(page, "plain")
