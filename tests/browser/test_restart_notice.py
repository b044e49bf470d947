"""The page names the real config file: a saved key that waits for a restart is listed under the
header, and a refused save's banner names the file that was refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port
from playwright.sync_api import expect

from tests.browser.conftest import HOLD_DOCUMENTS, NEXT_FRAME, Server, Tab, open_live

pytestmark = pytest.mark.browser


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step: the server polls it and must never read half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)


@pytest.fixture
def config_file(system: Server) -> Iterator[Path]:
    """The server's config file, put back as it was (and seen back) after the test."""
    original = system.config_path.read_text()
    yield system.config_path
    # Rewritten only when a test left it changed: a rewrite of the same text is a
    # reload the wait below cannot see (its condition already holds), which could
    # then land after the next test's own save.
    if system.config_path.read_text() != original:
        write_atomically(system.config_path, original)
    system.wait_until(
        lambda doc: doc["config_error"] is None and not doc.get("restart_needed"),
        10,
        "the original config to be back",
    )


def test_a_key_waiting_for_a_restart_is_listed_with_the_file(
    new_tab: Callable[..., Tab], system: Server, config_file: Path
) -> None:
    """Saving another web.port shows "Saved in <the file>, waiting for a restart: web.port", on a
    reload too, and the notice goes once the file says the running port again.
    """
    page = open_live(new_tab, system).page
    notice = page.locator("#restart-notice")
    expect(notice).to_be_hidden()
    original = config_file.read_text()
    moved = re.sub(r"(?m)^port = \d+$", f"port = {unused_port()}", original, count=1)
    write_atomically(config_file, moved)
    text = f"Saved in {config_file}, waiting for a restart: web.port"
    expect(notice).to_be_visible(timeout=10_000)
    expect(notice.locator("[data-role=restart-text]")).to_have_text(text)
    expect(page.locator("#announcer")).to_contain_text("waiting for a restart: web.port")
    page.reload()
    expect(page.locator("#restart-notice [data-role=restart-text]")).to_have_text(text)
    write_atomically(config_file, original)
    expect(page.locator("#restart-notice")).to_be_hidden(timeout=10_000)


def test_the_config_error_banner_names_the_file(
    new_tab: Callable[..., Tab], system: Server, config_file: Path
) -> None:
    """A refused save shows "<the file> not applied:" with the reason, not a made-up file name."""
    page = open_live(new_tab, system).page
    banner = page.locator("#config-banner")
    write_atomically(
        config_file, config_file.read_text().replace("interval_ms = 500", 'interval_ms = "soon"')
    )
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner.locator(".banner-title")).to_have_text(f"{config_file} not applied:")
    expect(banner).to_contain_text("interval_ms")


def test_a_document_older_than_the_pushed_error_leaves_the_banner_up(
    new_tab: Callable[..., Tab], system: Server, config_file: Path
) -> None:
    """GET /api/services answered before a refused save but read after its push: the banner stays.

    Every config change is pushed, so a document that was on its way while one
    was is no newer than it; reading it anyway hid the banner of a save the
    server still refuses (as a fresh-clone CI run caught by chance).
    """
    page = open_live(new_tab, system).page
    page.evaluate(HOLD_DOCUMENTS)
    page.locator("#controls > summary").click()  # opening the panel asks for the document
    page.wait_for_function("window.__answered > 0")
    write_atomically(
        config_file, config_file.read_text().replace("interval_ms = 500", 'interval_ms = "soon"')
    )
    banner = page.locator("#config-banner")
    expect(banner).to_be_visible(timeout=10_000)
    page.evaluate("() => { window.__holding = false; window.__held.forEach((r) => r()); }")
    page.wait_for_function("window.__read.length === window.__held.length")
    page.evaluate(NEXT_FRAME)
    # A document read last really was from before the save.
    assert page.evaluate("window.__read.some((doc) => doc.config_error === null)")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("interval_ms")
