"""The public view's pure parts, table-driven: the banner, stale words, badge texts and widths."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from healthmon.config import Settings
from healthmon.public import badges
from healthmon.public.view import banner, floor_percent, public_detail, shown_services


@pytest.mark.parametrize(
    ("statuses", "key"),
    [
        ([], "unknown"),
        (["up", "up"], "operational"),
        (["up", "unknown"], "unknown"),
        (["up", "degraded", "unknown"], "degraded"),
        (["up", "up", "down"], "partial"),
        (["up", "down"], "major"),
        (["down"], "major"),
        (["down", "degraded", "up", "up", "up"], "partial"),
    ],
)
def test_banner_rolls_up_the_worst(statuses: list[str], key: str) -> None:
    """Major at half down or more, partial below, unknown never hides a known problem."""
    assert banner(statuses).key == key


SETTINGS = Settings.model_validate(
    {
        "services": [
            {"name": "api", "url": "http://10.0.0.1:80", "group": "Edge", "depends_on": ["db"]},
            {"name": "db", "url": "http://10.0.0.2:80", "group": "Data", "display_name": "DB"},
            {"name": "cron", "url": "http://10.0.0.3:80"},
        ],
        "status_page": {"services": ["api", "db"], "latency_warn_ms": 900},
    }
)


@pytest.mark.parametrize(
    ("parts", "detail", "message", "state", "found"),
    [
        (("api", "status"), {"status": "up"}, "up", "up", True),
        (("api", "status"), {"status": "up", "stale": True}, "stale", "unknown", True),
        (("api", "status"), None, "unknown", "unknown", True),
        (("api", "status"), {"status": "weird"}, "unknown", "unknown", True),
        (("db", "status"), {"status": "down"}, "down", "down", True),
        (("cron", "status"), {"status": "up"}, "unknown service", "unknown", False),
        (("api", "uptime", "24h"), {"status": "up"}, "99.99%", "up", True),
        (("api", "uptime", "7d"), {"status": "up"}, "no data", "unknown", True),
        (("api", "latency", "24h"), {"status": "up"}, "950 ms", "down", True),
        (("api", "latency", "90d"), {"status": "up"}, "unknown service", "unknown", False),
        (("@all", "status"), {"status": "down"}, "major outage", "down", True),
        (("@group", "Edge", "status"), {"status": "up"}, "operational", "up", True),
        (("@group", "Nope", "status"), {"status": "up"}, "unknown service", "unknown", False),
    ],
)
def test_choose_says_only_what_is_known(
    parts: tuple[str, ...], detail: dict[str, Any] | None, message: str, state: str, found: bool
) -> None:
    """A badge's words never guess: stale reads stale, no data reads no data, and a hidden
    service does not exist on the public listener."""
    details = {"api": detail, "db": detail} if detail is not None else {}
    figures = {
        "api": {
            "24h": {"uptime": 99.996, "known_ms": 100, "covered_ms": 100, "latency_ms": 950.0},
            "7d": {"uptime": None, "known_ms": 0, "covered_ms": 100, "latency_ms": None},
        }
    }
    badge = badges.choose(parts, SETTINGS, details, figures, public=True)
    assert (badge.message, badge.state, badge.found) == (message, state, found)


def test_hidden_services_exist_on_the_main_listener() -> None:
    """The main listener has badges for every service, the public one only for those shown."""
    details = {"cron": {"status": "up"}}
    assert badges.choose(("cron", "status"), SETTINGS, details, {}, public=False).found
    assert not badges.choose(("cron", "status"), SETTINGS, details, {}, public=True).found
    assert [s.name for s in shown_services(SETTINGS)] == ["api", "db"]


def test_public_detail_strips_what_strangers_may_not_see() -> None:
    """No URL, checks or reason (by default), and no dependency on a hidden service."""
    detail = {
        "status": "down",
        "reason": "connect to 10.0.0.2:5432 refused",
        "checks": [{"name": "db", "output": "10.0.0.2"}],
        "blocked_by": [{"service": "db"}, {"service": "cron"}],
        "latency_ms": 12.0,
    }
    entry = public_detail(SETTINGS.services[0], detail, SETTINGS, ["api"])
    assert entry["reason"] is None
    assert entry["checks"] == []
    assert entry["depends_on"] == []
    assert entry["blocked_by"] == []
    assert "10.0.0" not in repr(entry)


@pytest.mark.parametrize(
    ("value", "text"), [(100.0, "100"), (99.996, "99.99"), (99.5, "99.5"), (0.0, "0"), (None, None)]
)
def test_percent_is_floored(value: float | None, text: str | None) -> None:
    """100 % is printed only when it is exactly true."""
    assert floor_percent(value) == text


@pytest.mark.parametrize("label", ["a", "billing", "W" * 40, "ü€😀", "<&>\"'"])
def test_svg_is_wide_enough_and_escaped(label: str) -> None:
    """The label's box is at least its estimated text width; the SVG parses."""
    root = ET.fromstring(badges.render_svg(label, "up", "up"))
    rects = root.findall(".//{http://www.w3.org/2000/svg}rect")
    assert float(rects[1].get("width", "0")) >= badges.text_width(label)
    assert root.get("aria-label") == f"{label}: up"
