"""DNS rebinding in a real Chromium: a page on a name that resolves to 127.0.0.1 gets nothing.

Chromium is told that ``evil.example`` resolves to 127.0.0.1, as an attacker's
DNS arranges once its page is loaded. A script in a document of origin
``http://evil.example:PORT`` is then same-origin with that name's ``/ws`` and
controls, so only the server's Host allow-list stands between it and them.
The document used is the server's own refusal, with its (empty) CSP bypassed,
so the script runs in that origin and every answer comes from the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Server, Tab

pytestmark = pytest.mark.browser

EVIL = "evil.example"

# Same-origin calls, as a page's own script makes them: the status each got.
SWITCH = """async ([path, body]) => {
  const response = await fetch(path, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  return response.status;
}"""
SOCKET = """() => new Promise((resolve) => {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => { ws.close(); resolve("open"); };
  ws.onerror = () => resolve("refused");
})"""


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium (the suite's flags) that resolves evil.example to 127.0.0.1."""
    options: dict[str, Any] = {
        "headless": True,
        "args": [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {EVIL} 127.0.0.1"],
    }
    if CHROMIUM.exists():
        options["executable_path"] = str(CHROMIUM)
    browser = playwright.chromium.launch(**options)
    yield browser
    browser.close()


def _attempts(page: Page) -> tuple[int, int, str]:
    """From ``page``: switch billing down, switch the monitor off, open the socket."""
    mock = page.evaluate(SWITCH, ["/api/mocks/billing", {"mode": "down"}])
    monitor = page.evaluate(SWITCH, ["/api/components/monitor", {"running": False}])
    return mock, monitor, page.evaluate(SOCKET)


def test_a_rebound_page_can_neither_switch_nor_listen(
    system: Server, new_tab: Callable[..., Tab]
) -> None:
    """A page from http://evil.example:PORT/ is refused (421): no switch, no socket, no page."""
    tab = new_tab(bypass_csp=True)
    response = tab.page.goto(f"http://{EVIL}:{system.port}/")
    assert response is not None
    assert response.status == 421
    assert _attempts(tab.page) == (421, 421, "refused")
    document = system.services()
    billing = next(s for s in document["services"] if s["name"] == "billing")
    assert billing["mode"] == "up"
    assert document["monitor"]["running"] is True


def test_the_same_calls_from_localhost_work(system: Server, new_tab: Callable[..., Tab]) -> None:
    """The page at http://localhost:PORT/ goes live under its CSP and may switch and listen."""
    tab = new_tab()
    tab.page.goto(f"http://localhost:{system.port}/")
    expect(tab.page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=5000
    )
    assert _attempts(tab.page) == (200, 200, "open")
    document = system.services()
    billing = next(s for s in document["services"] if s["name"] == "billing")
    assert billing["mode"] == "down"
    assert document["monitor"]["running"] is False


# Every CSP violation the page causes, as the browser reports it.
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def test_the_page_breaks_none_of_its_policy(system: Server, new_tab: Callable[..., Tab]) -> None:
    """Loading, reordering cards and fetching a service's data violate no CSP directive."""
    tab = new_tab()
    page = tab.page
    page.add_init_script(VIOLATIONS)
    response = page.goto(f"http://localhost:{system.port}/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=5000
    )
    page.locator("#problems-first").check()
    card = page.locator('.card[data-service="billing"]')
    card.locator("[data-action=open]").click()
    expect(page.locator('[data-modal="billing"] [data-role=modal-body] dl')).to_be_visible()
    assert page.evaluate("window.__violations") == []
