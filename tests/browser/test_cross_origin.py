"""A page on another origin using the markup docs/client.md shows: its gated controls start
closed, stay closed when the module cannot load, and open once healthmon says so when it can.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import REPO, Server, Tab, launch

pytestmark = pytest.mark.browser

DOCUMENTED_HEALTHMON = "http://localhost:4000/"

# Before any page script: the script elements that failed to load.
RECORD_SCRIPT_ERRORS = """
window.__scriptErrors = [];
document.addEventListener("error", (e) => {
  if (e.target && e.target.src) window.__scriptErrors.push(e.target.src);
}, true);
"""


def documented_markup() -> str:
    """The first HTML example of docs/client.md ("In a few lines"), as a reader copies it."""
    text = (REPO / "docs" / "client.md").read_text()
    section = text[text.index("## In a few lines") :]
    found = re.search(r"```html\n(.*?)```", section, re.S)
    assert found is not None, "docs/client.md has no HTML example under 'In a few lines'"
    assert DOCUMENTED_HEALTHMON in found[1]
    return found[1]


class OtherApp:
    """Another app on its own loopback port: an aiohttp Application serving one page at /."""

    def __init__(self, page: str) -> None:
        self.page = page
        self.origin = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=self.page, content_type="text/html")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._index)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.origin = f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class Apps:
    """Three other apps with the documented markup: one whose origin healthmon lists, one it does
    not, and one pointed at a healthmon that is not there.
    """

    def __init__(self) -> None:
        self.listed = OtherApp("")
        self.unlisted = OtherApp("")
        self.nowhere = OtherApp("")
        for app in self.all():
            app.start()

    def all(self) -> tuple[OtherApp, OtherApp, OtherApp]:
        return (self.listed, self.unlisted, self.nowhere)

    def point_at(self, healthmon: str) -> None:
        markup = documented_markup()
        page = "<!doctype html><meta charset=utf-8><title>another app</title>\n{}"
        self.listed.page = page.format(markup.replace(DOCUMENTED_HEALTHMON, healthmon))
        self.unlisted.page = self.listed.page
        closed_port = f"http://127.0.0.1:{unused_port()}/"
        self.nowhere.page = page.format(markup.replace(DOCUMENTED_HEALTHMON, closed_port))

    def stop(self) -> None:
        for app in self.all():
            app.stop()


@pytest.fixture(scope="module")
def apps() -> Iterator[Apps]:
    running = Apps()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, apps: Apps) -> Iterator[Server]:
    """This module's healthmon: the four mocks, and one other app's origin listed."""
    web_toml = f'cors_origins = ["{apps.listed.origin}"]'
    with launch(tmp_path_factory.mktemp("healthmon"), web_toml=web_toml) as running:
        apps.point_at(running.base() + "/")
        yield running


def open_app(new_tab: Callable[..., Tab], origin: str) -> Page:
    tab = new_tab()
    tab.page.add_init_script(RECORD_SCRIPT_ERRORS)
    tab.page.goto(origin + "/")
    return tab.page


def expect_closed_and_waiting(page: Page) -> None:
    """Checkout and Sign in disabled, each saying it waits for healthmon."""
    checkout = page.get_by_role("button", name="Checkout")
    expect(checkout).to_be_disabled()
    expect(page.get_by_role("button", name="Sign in")).to_be_disabled()
    expect(checkout.locator("+ [data-hm-reason]")).to_have_text(
        "Waiting for healthmon to say whether billing is up"
    )
    expect(checkout.locator("+ [data-hm-reason]")).to_be_visible()


@pytest.mark.parametrize("which", ["unlisted", "nowhere"])
def test_without_the_module_the_gated_controls_stay_closed(
    new_tab: Callable[..., Tab], system: Server, apps: Apps, which: str
) -> None:
    """When the module cannot load (healthmon does not list the page's origin, or is not at that
    URL at all), Checkout and Sign in stay disabled and say they are waiting for healthmon.
    """
    app = apps.unlisted if which == "unlisted" else apps.nowhere
    page = open_app(new_tab, app.origin)
    page.wait_for_function("() => window.__scriptErrors.length > 0", timeout=10_000)
    assert page.evaluate("() => 'hm' in window") is False
    expect_closed_and_waiting(page)


def test_with_the_module_they_open_once_billing_is_up(
    new_tab: Callable[..., Tab], system: Server, apps: Apps
) -> None:
    """On a listed origin the module loads and enables Checkout once billing is up, disables it
    again while billing is down, and gives Sign in's submit button a real disabled while auth is.
    """
    page = open_app(new_tab, apps.listed.origin)
    checkout = page.get_by_role("button", name="Checkout")
    sign_in = page.get_by_role("button", name="Sign in")
    expect(checkout).to_be_enabled(timeout=5000)
    expect(sign_in).to_be_enabled()
    expect(page.locator("[data-hm-reason]").first).to_be_hidden()
    assert page.evaluate("() => window.__scriptErrors") == []

    system.set_mode("billing", "down")
    expect(checkout).to_be_disabled(timeout=3000)
    expect(checkout.locator("+ [data-hm-reason]")).to_have_text(
        "billing is down (connection refused)"
    )
    system.set_mode("auth", "down")
    expect(sign_in).to_be_disabled(timeout=3000)
    expect(sign_in).to_have_attribute("aria-disabled", "true")
    expect(page.locator("form")).to_have_attribute("data-hm-gate", "closed")

    system.set_mode("billing", "up")
    system.set_mode("auth", "up")
    expect(checkout).to_be_enabled(timeout=3000)
    expect(sign_in).to_be_enabled(timeout=3000)


def test_the_example_shop_starts_closed_too(new_tab: Callable[..., Tab], system: Server) -> None:
    """/example with its module blocked keeps Checkout and Sign in disabled, saying they wait."""
    tab = new_tab()
    page = tab.page

    def refuse(route: Route) -> None:
        route.abort()

    page.route("**/client.js", refuse)
    page.goto(system.base() + "/example")
    expect(page.locator("#checkout")).to_be_disabled()
    expect(page.locator("#signin button[type=submit]")).to_be_disabled()
    expect(page.locator("#checkout + [data-hm-reason]")).to_contain_text("Waiting for healthmon")
    page.unroute("**/client.js")
    page.reload()
    expect(page.locator("#checkout")).to_be_enabled(timeout=5000)
