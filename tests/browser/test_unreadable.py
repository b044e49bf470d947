"""Services as they are: one the page may not read (never shown down by it), one that refuses
connections, and a mock whose paths carry queries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import expect

from tests.browser.conftest import Server, Tab, launch, service_toml

pytestmark = pytest.mark.browser

# Records every status and stale flag each card shows, from the first paint on.
WATCH_CARDS = """
window.__shown = [];
new MutationObserver((records) => {
  for (const r of records) {
    const card = r.target;
    if (card.classList && card.classList.contains("card")) {
      window.__shown.push([card.dataset.service, card.dataset.status]);
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-status"] });
"""


class _NoCors(BaseHTTPRequestHandler):
    """A real service that is up and says so, with no CORS headers at all."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "pass"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/health+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the page, not this log."""


@pytest.fixture(scope="module")
def no_cors() -> Iterator[int]:
    """The no-CORS service on a free loopback port; stopped after the module."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoCors)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def with_real_services(tmp_path_factory: pytest.TempPathFactory, no_cors: int) -> Iterator[Server]:
    """The four mocks, the no-CORS service, one that refuses connections, a mock with queries."""
    extra = (
        service_toml("plain", f"http://127.0.0.1:{no_cors}", "/", mock=False)
        + service_toml("gone", f"http://127.0.0.1:{unused_port()}", "/", mock=False)
        + service_toml(
            "queried",
            f"http://127.0.0.1:{unused_port()}",
            "/rows?limit=5",
            mock=True,
            health_path="/readyz?verbose",
        )
    )
    with launch(Path(tmp_path_factory.mktemp("unreadable")), extra) as running:
        yield running


def test_a_service_the_page_cannot_read_is_never_shown_down(
    new_tab: Callable[..., Tab], with_real_services: Server
) -> None:
    """With push off, an up service without CORS is never shown down; a refused one is."""
    system = with_real_services
    tab = new_tab()
    page = tab.page
    page.add_init_script(WATCH_CARDS)
    page.goto(system.base() + "/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    plain = page.locator('.card[data-service="plain"]')
    gone = page.locator('.card[data-service="gone"]')
    expect(plain).to_have_attribute("data-status", "up")
    try:
        system.set_push(False)
        expect(page.locator("[data-connection]")).to_have_attribute(
            "data-connection", "polling", timeout=3000
        )
        # The refused one is checked by the page itself and is down by its own poll.
        page.wait_for_function(
            """() => { const s = window.healthmon.store.services;
                return s.gone.source === "poll" && s.gone.status === "down"
                    && s.auth.source === "poll" && s.plain.unreadable; }""",
            timeout=5000,
        )
        expect(gone).to_have_attribute("data-status", "down")
        expect(gone.locator("[data-role=reason]")).to_contain_text("connection refused")
        # The unreadable one keeps its last known state, turns stale, and says why.
        expect(plain).to_have_attribute("data-unchecked", "true")
        expect(plain).to_have_attribute("data-stale", "true", timeout=5000)
        expect(plain.locator("[data-role=stale]")).to_contain_text("can't check from this page")
        expect(plain.locator("[data-role=gate-reason]")).to_contain_text(
            "can't check from this page"
        )
        expect(page.locator("#banner")).to_contain_text("cannot check plain (it does not allow")
        summary = page.locator("#summary .summary-counts")
        expect(summary).to_contain_text("1 down")
        expect(summary).to_contain_text("1 not checkable from this page")
        tab.shot("unreadable-service-while-polling")
        # Never down on the page, no change in its log; the server still says up.
        shown = page.evaluate("() => window.__shown")
        assert ["plain", "down"] not in shown, shown
        assert page.locator('[data-log] li[data-service="plain"]').count() == 0
        statuses = {s["name"]: s["status"] for s in system.services()["services"]}
        assert statuses["plain"] == "up"
    finally:
        system.set_push(True)


def test_a_mock_whose_paths_carry_queries_is_up_and_its_form_keeps_the_query(
    new_tab: Callable[..., Tab], with_real_services: Server
) -> None:
    """A mock on '/readyz?verbose' is up, and its form adds q to '/rows?limit=5'."""
    tab = new_tab()
    page = tab.page
    page.goto(with_real_services.base() + "/")
    card = page.locator('.card[data-service="queried"]')
    expect(card).to_have_attribute("data-status", "up")
    form = card.locator("[data-action=form]")
    expect(form).to_contain_text("/rows?limit=5&q=")
    form.locator("input[name=q]").fill("hello class")
    with page.expect_request(lambda r: r.url.endswith("/rows?limit=5&q=hello%20class")):
        form.locator("input[name=q]").press("Enter")
    expect(card.locator("[data-role=form-result]")).to_contain_text(
        '{"limit":"5","q":"hello class"}'
    )
