"""Browser fixtures: a real healthmon process on free ports and a real Chromium.

The server runs as a subprocess (``python -m healthmon --config <tmp>``), so
the page is tested exactly as a class would use it. Chromium is Debian's
``/usr/bin/chromium`` when present, else Playwright's own; when neither can be
launched the tests fail, they never skip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SERVICES = {
    "auth": "/analytics",
    "billing": "/billing",
    "notifications": "/notifications",
    "analytics": "/analytics",
}
START_TIMEOUT_S = 20.0


@dataclass
class Server:
    """A running healthmon process and plain-HTTP helpers to drive it."""

    port: int
    mock_ports: dict[str, int]
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path
    names: tuple[str, ...] = field(default_factory=lambda: tuple(SERVICES))

    def base(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def health_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.mock_ports[name]}/health"

    def data_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.mock_ports[name]}{SERVICES[name]}"

    def _request(
        self, path: str, body: dict[str, Any] | None = None, method: str | None = None
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base() + path,
            data=data,
            method=method or ("GET" if body is None else "POST"),
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def services(self) -> dict[str, Any]:
        return self._request("/api/services")

    def set_mode(self, name: str, mode: str) -> None:
        answer = self._request(f"/api/mocks/{name}", {"mode": mode})
        assert answer == {"name": name, "mode": mode}

    def set_component(self, component: str, running: bool) -> None:
        answer = self._request(f"/api/components/{component}", {"running": running})
        assert answer == {"component": component, "running": running}

    def set_push(self, running: bool) -> None:
        """Both push channels (WebSocket and Server-Sent Events) off or on: off, pages poll."""
        self.set_component("ws", running)
        self.set_component("sse", running)

    def wait_until(
        self, condition: Callable[[dict[str, Any]], bool], timeout_s: float, what: str
    ) -> dict[str, Any]:
        """Poll GET /api/services until ``condition`` holds (process start and resets only)."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] | str = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"healthmon exited: {self.log_path.read_text()[-2000:]}")
            try:
                document = self.services()
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = repr(exc)
            else:
                last = document
                if condition(document):
                    return document
            time.sleep(0.1)  # process start and resets: a deadline-bounded poll of the API
        raise AssertionError(f"timed out waiting for {what}; last answer: {last}")

    def reset(self) -> None:
        """Every mock up, monitor and both push channels on, all services seen up."""
        for name in self.names:
            self.set_mode(name, "up")
        self.set_component("monitor", True)
        self.set_component("ws", True)
        self.set_component("sse", True)
        self.wait_until(self._all_up_and_alive, 15, "all services up with a live monitor")

    def _all_up_and_alive(self, doc: dict[str, Any]) -> bool:
        return bool(
            doc["monitor"]["alive"]
            and doc["ws"]["running"]
            and doc["sse"]["running"]
            and all(s["status"] == "up" for s in doc["services"] if s["name"] in self.names)
        )


def service_toml(
    name: str, url: str, data_endpoint: str, *, mock: bool, health_path: str = "/health"
) -> str:
    """One ``[[services]]`` table."""
    return "\n".join(
        [
            "",
            "[[services]]",
            f'name = "{name}"',
            f'url = "{url}"',
            f'health_path = "{health_path}"',
            f'data_endpoint = "{data_endpoint}"',
            f"mock = {'true' if mock else 'false'}",
            "",
        ]
    )


def config_toml(
    port: int, mock_ports: dict[str, int], extra: str = "", web: str = "", host: str = "127.0.0.1"
) -> str:
    """The test config: the four mocks on ``mock_ports``, then ``extra`` tables; ``web`` adds
    lines to ``[web]``; the page is served on ``host``.
    """
    return _config(port, mock_ports, web, host) + extra


def _config(port: int, mock_ports: dict[str, int], web: str = "", host: str = "127.0.0.1") -> str:
    lines = [
        "[web]",
        f'host = "{host}"',
        f"port = {port}",
        *([web] if web else []),
        "",
        "[monitor]",
        "interval_ms = 500",
        "timeout_ms = 1000",
        "heartbeat_ms = 1000",
    ]
    for name, endpoint in SERVICES.items():
        lines += [
            "",
            "[[services]]",
            f'name = "{name}"',
            f'url = "http://127.0.0.1:{mock_ports[name]}"',
            'health_path = "/health"',
            f'data_endpoint = "{endpoint}"',
            "mock = true",
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def launch(
    folder: Path, extra_toml: str = "", web_toml: str = "", host: str = "127.0.0.1"
) -> Iterator[Server]:
    """Run healthmon with the four mocks plus ``extra_toml`` (and ``web_toml`` lines in
    ``[web]``), its page served on ``host``; stop it afterwards.
    """
    port = unused_port()
    mock_ports = {name: unused_port() for name in SERVICES}
    config = folder / "config.toml"
    config.write_text(config_toml(port, mock_ports, extra_toml, web_toml, host))
    log_path = folder / "healthmon.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("HEALTHMON_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "healthmon",
                "--config",
                str(config),
                # A developer's escape hatch (e.g. "--loop asyncio"); unset in CI.
                *os.environ.get("BROWSER_TESTS_SERVER_ARGS", "").split(),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    running = Server(
        port=port, mock_ports=mock_ports, process=process, log_path=log_path, config_path=config
    )
    try:
        running.wait_until(
            lambda doc: (
                all(s["status"] != "unknown" for s in doc["services"])
                and bool(doc["monitor"]["alive"])
            ),
            START_TIMEOUT_S,
            "healthmon to start and know every service",
        )
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One healthmon process per test module, on free ports."""
    with launch(tmp_path_factory.mktemp("healthmon")) as running:
        yield running


@pytest.fixture
def system(server: Server) -> Server:
    """The module's server, reset: every mock up, monitor and channel on."""
    server.reset()
    return server


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium; a launch failure is a test failure, never a skip."""
    options: dict[str, Any] = {"headless": True, "args": CHROMIUM_ARGS}
    if CHROMIUM.exists():
        options["executable_path"] = str(CHROMIUM)
    browser = playwright.chromium.launch(**options)
    yield browser
    browser.close()


@dataclass
class Tab:
    """A page plus what it logged: console errors and uncaught exceptions."""

    page: Page
    errors: list[str]

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def new_tab(browser: Browser) -> Iterator[Callable[..., Tab]]:
    """Open fresh pages (own context each); fails the test on any page error."""
    contexts = []
    tabs: list[Tab] = []

    def make(
        width: int = 1280, height: int = 900, color_scheme: str = "light", **extra: Any
    ) -> Tab:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,  # type: ignore[arg-type]
            **extra,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        tab = Tab(page, errors)
        tabs.append(tab)
        return tab

    yield make
    for context in contexts:
        context.close()
    for tab in tabs:
        assert not tab.errors, tab.errors


# Holds the page's GET /api/services answers while window.__holding is true: each is asked
# for and answered at once, and read by the page only when the test calls its release in
# window.__held (in the order the page asked). window.__answered counts the held answers
# come in; window.__read has the documents the page then read, in the order it read them.
HOLD_DOCUMENTS = """() => {
  window.__holding = true;
  window.__held = [];
  window.__answered = 0;
  window.__read = [];
  const real = window.fetch;
  window.fetch = (url, init) => {
    const answer = real(url, init);
    const path = new URL(String(url), location.href).pathname;
    if (!window.__holding || !path.endsWith("/api/services")) return answer;
    answer.then(() => { window.__answered += 1; });
    return new Promise((resolve, reject) => {
      window.__held.push(() => answer.then((res) => {
        const json = res.json.bind(res);
        res.json = () => json().then((doc) => {
          window.__read.push(doc);
          return doc;
        });
        resolve(res);
      }, reject));
    });
  };
}"""

# After a task and two frames: whatever the page rendered from what it read.
NEXT_FRAME = """() => new Promise((r) => setTimeout(() => {
  requestAnimationFrame(() => requestAnimationFrame(r));
}))"""


def open_live(
    new_tab: Callable[..., Tab], system: Server, init_script: str | None = None, **options: object
) -> Tab:
    """A tab on the page, once its connection pill says live."""
    tab = new_tab(**options)
    if init_script is not None:
        tab.page.add_init_script(init_script)
    tab.page.goto(system.base() + "/")
    # The context's 10 s: a server launched just before, on a busy two-core CI
    # machine, is no place to time how fast a page goes live (bench/ does that).
    expect(tab.page.locator("[data-connection]")).to_have_attribute(
        "data-connection", "live", timeout=10_000
    )
    return tab
