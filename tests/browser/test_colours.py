"""Colours a class can read: WCAG contrast of the state words, and state colours that stay apart
for the common colour blindnesses, computed from what Chromium renders.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, Tab

pytestmark = pytest.mark.browser

STATES = ("up", "degraded", "down", "unknown")
# Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB.
DEUTERANOPIA = (
    (0.367322, 0.860646, -0.227968),
    (0.280085, 0.672501, 0.047413),
    (-0.011820, 0.042940, 0.968881),
)
PROTANOPIA = (
    (0.152286, 1.052583, -0.204868),
    (0.114503, 0.786281, 0.099216),
    (-0.003882, -0.048116, 1.051998),
)
# CIE76 distance at which two flat colours side by side are told apart at a glance.
DISTINCT_DELTA_E = 20.0

RGB = tuple[float, float, float]

# Every visible state word, with the colour of its text and of what is behind it
# (the nearest ancestor with an opaque background).
WORDS = """() => {
    const opaque = el => {
        for (let e = el; e; e = e.parentElement) {
            const bg = getComputedStyle(e).backgroundColor;
            if (!/rgba\\(.*,\\s*0\\)$/.test(bg) && bg !== "transparent") return bg;
        }
        return getComputedStyle(document.documentElement).backgroundColor;
    };
    const words = [...document.querySelectorAll(
        '.pill.state .word, .status-word, .card .reason, .summary-head, .modal-alert')]
        .filter(el => el.offsetParent !== null && el.textContent.trim());
    return words.map(el => ({
        what: (el.closest('[data-status]') || el).getAttribute('data-status') + ' '
              + el.className + ': ' + el.textContent.trim().slice(0, 30),
        color: getComputedStyle(el).color, background: opaque(el),
    }));
}"""

# A pill and a log word for each state, made with the page's own markup and CSS
# (a fresh server has no service in every state at once).
SAMPLES = """states => {
    const holder = document.createElement('div');
    holder.id = 'colour-samples';
    holder.className = 'event-log';
    for (const s of states) {
        holder.insertAdjacentHTML('beforeend',
          `<li class="event"><span class="pill state" data-status="${s}">`
          + `<span class="word">${s}</span></span> <span class="status-word" data-status="${s}">`
          + `${s}</span></li>`);
    }
    document.querySelector('main').appendChild(holder);
    const fill = s => getComputedStyle(holder.querySelector(
        `.pill[data-status="${s}"]`)).backgroundColor;
    return Object.fromEntries(states.map(s => [s, fill(s)]));
}"""


def parse(css: str) -> RGB:
    values = [float(v) for v in re.findall(r"[\d.]+", css)[:3]]
    return (values[0] / 255, values[1] / 255, values[2] / 255)


def linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: RGB) -> float:
    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def simulate(rgb: RGB, matrix: tuple[RGB, RGB, RGB] | None) -> RGB:
    """Linear RGB as seen with the given colour-vision deficiency (None: normal vision)."""
    lin = [linear(c) for c in rgb]
    if matrix is None:
        return (lin[0], lin[1], lin[2])
    out = [min(1.0, max(0.0, sum(row[j] * lin[j] for j in range(3)))) for row in matrix]
    return (out[0], out[1], out[2])


def lab(lin: RGB) -> RGB:
    """CIELAB (D65) from linear sRGB."""
    r, g, b = lin
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return float(t ** (1 / 3)) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def delta_e(a: RGB, b: RGB) -> float:
    return float(sum((p - q) ** 2 for p, q in zip(a, b, strict=True)) ** 0.5)


def test_the_colour_maths_is_right() -> None:
    """The contrast and simulation helpers give the known answers (black on white 21:1; the old
    red and amber collapse under deuteranopia, the new fills do not).
    """
    assert round(contrast((0, 0, 0), (1, 1, 1)), 2) == 21.0
    assert round(contrast(parse("rgb(118, 118, 118)"), (1, 1, 1)), 1) == 4.5
    old_down, old_degraded = parse("rgb(185, 28, 28)"), parse("rgb(180, 83, 9)")
    seen = [lab(simulate(c, DEUTERANOPIA)) for c in (old_down, old_degraded)]
    assert delta_e(*seen) < DISTINCT_DELTA_E


def page_in_all_states(new_tab: Callable[..., Tab], system: Server, scheme: str) -> Page:
    tab = new_tab(width=1280, height=900, color_scheme=scheme)
    page = tab.page
    page.goto(system.base() + "/")
    expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "live")
    system.set_mode("billing", "down")
    system.set_mode("analytics", "degraded")
    expect(page.locator('.card[data-service="billing"]')).to_have_attribute(
        "data-status", "down", timeout=2000
    )
    expect(page.locator('.card[data-service="analytics"]')).to_have_attribute(
        "data-status", "degraded", timeout=2000
    )
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_state_words_have_enough_contrast(
    new_tab: Callable[..., Tab], system: Server, scheme: str
) -> None:
    """Every state word on the page (pills, log words, reasons, summary) is at least 4.5:1
    against what is behind it, in the light and the dark theme.
    """
    page = page_in_all_states(new_tab, system, scheme)
    page.evaluate(SAMPLES, list(STATES))
    words = page.evaluate(WORDS)
    assert len(words) >= 16
    low = [
        (w["what"], round(contrast(parse(w["color"]), parse(w["background"])), 2))
        for w in words
        if contrast(parse(w["color"]), parse(w["background"])) < 4.5
    ]
    assert low == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_state_colours_stay_apart_for_colour_blindness(
    new_tab: Callable[..., Tab], system: Server, scheme: str
) -> None:
    """The four state fills are pairwise distinguishable (CIE76 ΔE ≥ 20) with normal vision and
    under simulated deuteranopia and protanopia, and the history band gives each state its own
    height, so it reads without colour too.
    """
    page = page_in_all_states(new_tab, system, scheme)
    fills = {state: parse(css) for state, css in page.evaluate(SAMPLES, list(STATES)).items()}
    for name, matrix in (
        ("normal", None),
        ("deuteranopia", DEUTERANOPIA),
        ("protanopia", PROTANOPIA),
    ):
        for a, b in itertools.combinations(STATES, 2):
            distance = delta_e(lab(simulate(fills[a], matrix)), lab(simulate(fills[b], matrix)))
            assert distance >= DISTINCT_DELTA_E, (name, a, b, round(distance, 1))
    # Band cells: one height per state, whatever the colour.
    page.wait_for_function(
        """() => ['down', 'degraded', 'up'].every(s =>
            document.querySelector('.band-' + s))"""
    )
    heights = page.evaluate(
        """() => Object.fromEntries(['up', 'degraded', 'down'].map(s =>
            [s, document.querySelector('.band-' + s).getAttribute('height')]))"""
    )
    assert len(set(heights.values())) == 3, heights
