"""The client module (/client.js) in a real Chromium: gating, its transports, resume, other origins.

Most tests use /example, a page that is nothing but the module and data-hm-*
attributes. The module's own unit tests (fake transports, fake clock) run
with ``node --test tests/js/``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import Page, WebSocket, expect

from tests.browser.conftest import REPO, Server, Tab, launch, service_toml

pytestmark = pytest.mark.browser

# The test config checks every 500 ms; a gate follows within that plus 100 ms.
INTERVAL_MS = 500
WITHIN_AN_INTERVAL = INTERVAL_MS + 100
# The module retries the WebSocket with backoff capped at 10 s, plus jitter.
RETURN_TIMEOUT = 15_000

# Before any page script: every gate verdict and every connection change, timed
# on the page's clock, and every WebSocket the page opens.
RECORD = """
(() => {
  window.__gates = [];
  window.__transports = [];
  window.__sockets = [];
  window.__scriptErrors = [];
  document.addEventListener("hm-gate", (e) => window.__gates.push(
    { id: e.target.id, allowed: e.detail.allowed, reason: e.detail.reason, at: Date.now() }));
  document.addEventListener("hm-ready", (e) => e.detail.on("connection",
    (c) => window.__transports.push({ transport: c.transport, at: Date.now() })));
  document.addEventListener("error", (e) => {
    if (e.target && e.target.src) window.__scriptErrors.push(e.target.src);
  }, true);
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""


class _Pages(BaseHTTPRequestHandler):
    """Another app's origin: serves ``pages`` (path -> (content type, body)) and nothing else."""

    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}

    def do_GET(self) -> None:
        found = self.pages.get(self.path)
        if found is None:
            self.send_error(404)
            return
        kind, body = found
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(pages: dict[str, tuple[str, bytes]]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    handler = type("Pages", (_Pages,), {"pages": pages})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread


class Origins:
    """Two other apps' origins: ``listed`` is in cors_origins, ``unlisted`` is not."""

    def __init__(self) -> None:
        self.listed_pages: dict[str, tuple[str, bytes]] = {}
        self.unlisted_pages: dict[str, tuple[str, bytes]] = {}
        self._listed = _serve(self.listed_pages)
        self._unlisted = _serve(self.unlisted_pages)
        self.listed = f"http://127.0.0.1:{self._listed[0].server_port}"
        self.unlisted = f"http://127.0.0.1:{self._unlisted[0].server_port}"

    def close(self) -> None:
        for httpd, _ in (self._listed, self._unlisted):
            httpd.shutdown()
            httpd.server_close()


def shop_page(module_src: str, healthmon: str) -> bytes:
    """Another app's page: the module from ``module_src``, one button gated by billing."""
    return (
        "<!doctype html><meta charset=utf-8><title>another app</title>"
        f'<script type="module" src="{module_src}" data-hm-connect="{healthmon}"></script>'
        '<button id="pay" data-hm-requires="billing">Pay</button>'
    ).encode()


@pytest.fixture(scope="module")
def origins() -> Iterator[Origins]:
    running = Origins()
    yield running
    running.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, origins: Origins) -> Iterator[Server]:
    """This module's healthmon: the four mocks, payments (depends on billing), one listed origin."""
    payments = service_toml(
        "payments", f"http://127.0.0.1:{unused_port()}", "/payments", mock=True
    ).rstrip("\n")
    extra = payments + '\ndepends_on = ["billing"]\n'
    web = f'cors_origins = ["{origins.listed}"]'
    with launch(tmp_path_factory.mktemp("healthmon"), extra, web) as running:
        healthmon = running.base() + "/"
        module = (REPO / "static" / "client.js").read_bytes()
        origins.listed_pages["/"] = ("text/html", shop_page(healthmon + "client.js", healthmon))
        origins.unlisted_pages["/"] = ("text/html", shop_page(healthmon + "client.js", healthmon))
        # The module copied into the unlisted app: it loads, but healthmon refuses it.
        origins.unlisted_pages["/copy"] = ("text/html", shop_page("/client.js", healthmon))
        origins.unlisted_pages["/client.js"] = ("text/javascript", module)
        yield running


def open_page(new_tab: Callable[..., Tab], url: str, transport: str = "websocket") -> Tab:
    """A tab on ``url`` (recording gates, transports and sockets), once its client uses
    ``transport``.
    """
    tab = new_tab()
    tab.page.add_init_script(RECORD)
    tab.page.goto(url)
    wait_transport(tab.page, transport, 5000)
    return tab


def wait_transport(page: Page, transport: str, timeout: int) -> None:
    page.wait_for_function(
        "t => window.hm && window.hm.connection().transport === t", arg=transport, timeout=timeout
    )


def now_ms(page: Page) -> int:
    return int(page.evaluate("() => Date.now()"))


def gate_changed_at(page: Page, element: str, allowed: bool, after: int) -> int:
    """When (page clock) the gate on #element first turned ``allowed`` after ``after``."""
    page.wait_for_function(
        """([id, allowed, after]) => window.__gates.some(
            g => g.id === id && g.allowed === allowed && g.at >= after)""",
        arg=[element, allowed, after],
        timeout=5000,
    )
    found: int = page.evaluate(
        """([id, allowed, after]) => window.__gates.find(
            g => g.id === id && g.allowed === allowed && g.at >= after).at""",
        [element, allowed, after],
    )
    return found


def test_gate_follows_a_change_within_one_interval(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """Checkout (data-hm-requires="billing") is disabled, with aria-disabled and a visible reason,
    within one check interval + 100 ms of billing going down, and enabled as fast when it is back.
    """
    tab = open_page(new_tab, system.base() + "/example")
    page = tab.page
    checkout = page.locator("#checkout")
    reason = page.locator("#checkout + [data-hm-reason]")
    expect(checkout).to_be_enabled()
    expect(checkout).to_have_attribute("aria-disabled", "false")
    expect(reason).to_be_hidden()

    switched = now_ms(page)
    system.set_mode("billing", "down")
    closed = gate_changed_at(page, "checkout", False, switched)
    assert closed - switched <= WITHIN_AN_INTERVAL, f"gated after {closed - switched} ms"
    expect(checkout).to_be_disabled()
    expect(checkout).to_have_attribute("aria-disabled", "true")
    expect(checkout).to_have_attribute("title", "billing is down (connection refused)")
    expect(reason).to_be_visible()
    expect(reason).to_have_text("billing is down (connection refused)")
    expect(page.locator('[data-hm-status="billing"]')).to_have_attribute("data-status", "down")
    tab.shot("50-example-billing-down")

    switched = now_ms(page)
    system.set_mode("billing", "up")
    opened = gate_changed_at(page, "checkout", True, switched)
    assert opened - switched <= WITHIN_AN_INTERVAL, f"ungated after {opened - switched} ms"
    expect(checkout).to_be_enabled()
    expect(reason).to_be_hidden()


def test_a_gated_form_blocks_its_submit_with_the_reason(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """The sign-in form (requires auth, allow up) disables its submit button and blocks its submit
    with the reason while auth is down or degraded, and submits once auth is up.
    """
    tab = open_page(new_tab, system.base() + "/example")
    page = tab.page
    form = page.locator("#signin")
    reason = form.locator("[data-hm-reason]")
    submit = form.locator("button[type=submit]")
    start = page.url

    system.set_mode("auth", "degraded")
    expect(form).to_have_attribute("aria-disabled", "true", timeout=2000)
    expect(reason).to_have_text("auth is degraded (auth was switched to degraded)")
    expect(submit).to_have_attribute("aria-disabled", "true")
    expect(submit).to_be_disabled()
    submit.click(force=True)  # as a user may try: nothing is submitted
    assert page.url == start, "the submit went through"
    system.set_mode("auth", "down")
    expect(reason).to_contain_text("auth is down", timeout=2000)
    page.locator("#email").press("Enter")
    assert page.url == start, "the submit went through"
    tab.shot("51-example-signin-blocked")

    system.set_mode("auth", "up")
    expect(form).to_have_attribute("aria-disabled", "false", timeout=2000)
    expect(reason).to_be_hidden()
    with page.expect_navigation():
        submit.click()
    assert page.url.endswith("#signed-in")


def test_dependencies_and_elements_added_later_are_gated(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """A button added after load with data-hm-requires="payments" is gated while billing (which
    payments depends on) is down, with that reason, and follows a changed attribute.
    """
    tab = open_page(new_tab, system.base() + "/example")
    page = tab.page
    page.evaluate(
        """() => {
            const b = document.createElement("button");
            b.id = "pay"; b.textContent = "Pay"; b.setAttribute("data-hm-requires", "payments");
            document.querySelector(".products").append(b);
        }"""
    )
    pay = page.locator("#pay")
    expect(pay).to_have_attribute("aria-disabled", "false")
    system.set_mode("billing", "down")
    expect(pay).to_be_disabled(timeout=2000)
    expect(pay).to_have_attribute("data-hm-cause", "dependency")
    reason = page.locator("#pay + [data-hm-reason]")
    expect(reason).to_have_text("payments depends on billing, which is down")
    assert page.evaluate("() => window.hm.status('payments').status") == "up"
    page.evaluate("() => document.querySelector('#pay').setAttribute('data-hm-requires', 'auth')")
    expect(pay).to_be_enabled()
    page.evaluate("() => document.querySelector('#pay').remove()")
    expect(page.locator("[data-hm-reason]:not(.reason)")).to_have_count(0)


class Health:
    """Every request the page makes to a service's /health (polling)."""

    def __init__(self, page: Page, system: Server) -> None:
        urls = {system.health_url(name) for name in system.names}
        self.requests: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url) if r.url in urls else None)


def test_ws_off_moves_to_sse_within_a_second_and_back(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With the WebSocket switched off the client is on SSE within a second, gates by it and does
    not poll; when the WebSocket is back the client returns to it and drops SSE.
    """
    tab = open_page(new_tab, system.base() + "/example")
    page = tab.page
    health = Health(page, system)
    off = now_ms(page)
    system.set_component("ws", False)
    wait_transport(page, "sse", 3000)
    moved = page.evaluate(
        "after => window.__transports.find(c => c.transport === 'sse' && c.at >= after).at", off
    )
    assert moved - off <= 1000, f"on SSE after {moved - off} ms"
    system.set_mode("billing", "down")
    expect(page.locator("#checkout")).to_be_disabled(timeout=2000)
    assert page.evaluate("() => window.hm.status('billing').source") == "sse"
    # A few heartbeats over SSE: the stream works, so nothing polls.
    page.evaluate(
        """() => new Promise(resolve => {
            let beats = 0;
            const stop = window.hm.on("message", ({ message, via }) => {
                if (message.type === "heartbeat" && via === "sse" && ++beats === 3) {
                    stop(); resolve();
                }
            });
        })"""
    )
    transports = page.evaluate("after => window.__transports.filter(c => c.at >= after)", off)
    assert "polling" not in [c["transport"] for c in transports], transports
    assert health.requests == [], "polled while SSE worked"
    tab.shot("52-example-on-sse")

    system.set_component("ws", True)
    wait_transport(page, "websocket", RETURN_TIMEOUT)
    assert page.evaluate("() => window.hm._internal.channel") == "websocket"
    system.set_mode("billing", "up")
    expect(page.locator("#checkout")).to_be_enabled(timeout=2000)
    assert page.evaluate("() => window.hm.status('billing').source") == "websocket"
    assert health.requests == []


def test_both_channels_off_it_polls_and_gates_by_polling(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """With the WebSocket and SSE both off the client polls each health URL and gates by what it
    sees, and goes back to the WebSocket when the channels return.
    """
    tab = open_page(new_tab, system.base() + "/example")
    page = tab.page
    health = Health(page, system)
    system.set_push(False)
    wait_transport(page, "polling", 3000)
    system.set_mode("billing", "down")
    expect(page.locator("#checkout")).to_be_disabled(timeout=3000)
    assert page.evaluate("() => window.hm.status('billing').source") == "polling"
    assert system.health_url("billing") in health.requests
    expect(page.locator("[data-hm-connection]")).to_have_text("Polling services directly")
    system.set_push(True)
    wait_transport(page, "websocket", RETURN_TIMEOUT)
    system.set_mode("billing", "up")
    expect(page.locator("#checkout")).to_be_enabled(timeout=2000)


class Frames:
    """Every text frame each WebSocket of the page receives, by socket, in order."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[tuple[WebSocket, list[dict[str, Any]]]] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        frames: list[dict[str, Any]] = []
        socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))
        self.sockets.append((socket, frames))


NUMBERED = {"initialSnapshot", "statusUpdate", "configError"}


def test_a_resume_delivers_exactly_the_missed_changes(
    new_tab: Callable[..., Tab], system: Server
) -> None:
    """A client whose socket dropped reconnects with ?since=<stream>:<seq> and gets exactly the
    numbered messages it missed (those a connected client got meanwhile), and no snapshot.
    """
    tab = new_tab()
    page = tab.page
    page.add_init_script(RECORD)
    frames = Frames(page)
    page.goto(system.base() + "/example")
    wait_transport(page, "websocket", 5000)
    # A second client on the page: WebSocket only, reconnecting exactly 4 s after a drop.
    page.evaluate(
        """async () => {
            const { connect } = await import("/client.js");
            window.hm2 = await connect(location.origin, {
                transports: ["websocket"], backoffBaseMs: 4000, random: () => 1, bind: false });
        }"""
    )
    page.wait_for_function("() => window.hm2.connection().transport === 'websocket'")
    left_at = page.evaluate("() => window.hm2.position()")
    stream, seq = left_at.split(":")
    page.evaluate("() => window.__sockets.at(-1).close()")  # hm2's socket: the newest
    page.wait_for_function("() => window.hm2.connection().transport === 'connecting'")

    system.set_mode("billing", "down")
    system.set_mode("auth", "degraded")
    page.wait_for_function(
        """() => window.hm.status("billing").status === "down"
            && window.hm.status("auth").status === "degraded" """
    )
    # hm2 missed both: still away, still the old state.
    assert page.evaluate("() => window.__sockets.length") == 2
    assert page.evaluate("() => window.hm2.status('billing').status") == "up"

    page.wait_for_function(
        """() => window.hm2.status("billing").status === "down"
            && window.hm2.status("auth").status === "degraded" """,
        timeout=10_000,
    )
    resumed, got = frames.sockets[-1]
    assert f"since={stream}%3A{seq}" in resumed.url
    assert got[0]["type"] == "welcome"
    assert not any(f["type"] == "initialSnapshot" for f in got), "a snapshot instead of a resume"
    welcome_seq = got[0]["seq"]
    missed = [f for f in got if f["type"] in NUMBERED and f.get("seq", 0) <= welcome_seq]
    assert [f["seq"] for f in missed] == list(range(int(seq) + 1, welcome_seq + 1))
    # Exactly what the connected client received with those numbers.
    _, continuous = frames.sockets[0]
    expected = [
        f
        for f in continuous
        if f["type"] in NUMBERED
        and f.get("stream") == stream
        and int(seq) < f.get("seq", 0) <= welcome_seq
    ]
    assert missed == expected
    changes = {(f["data"]["service"], f["data"]["status"]) for f in missed}
    assert {("billing", "down"), ("auth", "degraded")} <= changes
    states = "names => names.map(n => [window.hm.status(n).status, window.hm2.status(n).status])"
    for now, resumed_state in page.evaluate(states, list(system.names)):
        assert now == resumed_state


def test_a_listed_origin_gates_with_the_module(
    new_tab: Callable[..., Tab], system: Server, origins: Origins
) -> None:
    """A page on an origin in cors_origins loads /client.js from healthmon, goes live, gates its
    button by billing, and reads SSE too when the WebSocket is off.
    """
    tab = open_page(new_tab, origins.listed + "/")
    page = tab.page
    pay = page.locator("#pay")
    expect(pay).to_be_enabled()
    system.set_mode("billing", "down")
    expect(pay).to_be_disabled(timeout=2000)
    expect(page.locator("#pay + [data-hm-reason]")).to_have_text(
        "billing is down (connection refused)"
    )
    system.set_component("ws", False)
    wait_transport(page, "sse", 3000)
    system.set_mode("billing", "up")
    expect(pay).to_be_enabled(timeout=2000)


def test_an_unlisted_origin_is_refused(
    new_tab: Callable[..., Tab], system: Server, origins: Origins
) -> None:
    """A page on an origin not in cors_origins cannot load /client.js from healthmon, and a copy
    of the module served by that app is refused too: its fail-closed button stays disabled,
    saying healthmon is unreachable.
    """
    tab = new_tab()
    page = tab.page
    page.add_init_script(RECORD)
    page.goto(origins.unlisted + "/")
    page.wait_for_function("() => window.__scriptErrors.length > 0")
    assert page.evaluate("() => window.__scriptErrors") == [system.base() + "/client.js"]
    assert page.evaluate("() => 'hm' in window") is False
    expect(page.locator("#pay")).not_to_have_attribute("data-hm-gate", "closed")

    page.goto(origins.unlisted + "/copy")
    page.wait_for_function("() => window.hm !== undefined", timeout=10_000)
    assert page.evaluate("() => window.hm.names()") == []
    assert page.evaluate("() => window.hm.connection().transport") in ("polling", "connecting")
    pay = page.locator("#pay")
    expect(pay).to_be_disabled()
    expect(pay).to_have_attribute("aria-disabled", "true")
    expect(page.locator("#pay + [data-hm-reason]")).to_contain_text("healthmon is unreachable")
    # Each channel is refused by healthmon itself, not by chance.
    refused = page.evaluate(
        """async (base) => {
            const api = await fetch(base + "/api/services").then(() => "read", () => "refused");
            const ws = await new Promise(resolve => {
                const s = new WebSocket(base.replace("http", "ws") + "/ws");
                s.onopen = () => { s.close(); resolve("open"); };
                s.onerror = () => resolve("refused");
            });
            const sse = await new Promise(resolve => {
                const s = new EventSource(base + "/events");
                s.onopen = () => { s.close(); resolve("open"); };
                s.onerror = () => { s.close(); resolve("refused"); };
            });
            return [api, ws, sse];
        }""",
        system.base(),
    )
    assert refused == ["refused", "refused", "refused"]
