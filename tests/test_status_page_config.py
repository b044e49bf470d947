"""The ``[status_page]`` table and the services' ``group``/``display_name``: defaults and errors."""

from __future__ import annotations

import pytest

from healthmon.app import ROLES, create_app, public_address
from healthmon.config import ConfigError, parse_settings

SERVICE = '[[services]]\nname = "db"\nurl = "http://127.0.0.1:3001"\ngroup = "Core"\n'


def test_defaults_hide_reasons_and_open_no_second_port() -> None:
    """Without a table the page shows every service, no reasons, on no extra listener."""
    page = parse_settings(SERVICE, "config.toml").status_page
    assert page.enabled
    assert not page.show_reasons
    assert page.show_latency
    assert page.port is None
    assert page.services == ()
    assert page.groups == ()
    assert page.badge_max_age_s == 5


def test_keys_are_read() -> None:
    """Every key written is the key in force."""
    text = SERVICE + (
        'display_name = "Database"\n[status_page]\ntitle = "Acme status"\n'
        'services = ["db"]\ngroups = ["Core"]\nshow_reasons = true\nport = 4100\n'
        "badge_max_age_s = 30\nlatency_ok_ms = 100\nlatency_warn_ms = 200\n"
    )
    settings = parse_settings(text, "config.toml")
    assert settings.services[0].display_name == "Database"
    assert settings.services[0].group == "Core"
    page = settings.status_page
    assert (page.title, page.services, page.groups, page.show_reasons, page.port) == (
        "Acme status",
        ("db",),
        ("Core",),
        True,
        4100,
    )
    assert (page.badge_max_age_s, page.latency_ok_ms, page.latency_warn_ms) == (30, 100, 200)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[status_page]\nservices = ["nope"]\n',
            "config.toml:6: status_page.services: unknown service 'nope'",
        ),
        (
            '[status_page]\ngroups = ["Edge"]\n',
            "config.toml:6: status_page.groups: no service is in group 'Edge'",
        ),
        ("[status_page]\nport = 4000\n", "config.toml:6: status_page.port: 4000 is the web port"),
        (
            "[status_page]\nlatency_ok_ms = 900\nlatency_warn_ms = 800\n",
            "config.toml:7: status_page.latency_warn_ms: must be more than latency_ok_ms",
        ),
        (
            "[status_page]\nshow_reason = true\n",
            "config.toml:6: status_page.show_reason: unknown key (did you mean show_reasons?)",
        ),
        (
            "[status_page]\nbadge_max_age_s = -1\n",
            "config.toml:6: status_page.badge_max_age_s: "
            "Input should be greater than or equal to 0",
        ),
        (
            'display_name = "two\\nlines"\n',
            'config.toml:5: services[0] "db".display_name: must be one line (no line break or NUL)',
        ),
    ],
)
def test_mistakes_name_the_field_in_one_line(extra: str, message: str) -> None:
    """A wrong status-page key reads file:line, the field and the reason, as other sections do."""
    with pytest.raises(ConfigError) as error:
        parse_settings(SERVICE + extra, "config.toml")
    assert str(error.value) == message


def test_disabled_page_has_no_routes_and_no_listener() -> None:
    """enabled = false: no /status or badges on the main listener, and no public listener."""
    text = SERVICE + "[status_page]\nenabled = false\nport = 4100\n"
    settings = parse_settings(text, "config.toml")
    paths = {r.canonical for r in create_app(settings).router.resources()}
    assert "/status" not in paths
    assert not any(p.startswith("/badge") for p in paths)
    assert public_address(settings, ROLES) is None
    enabled = parse_settings(SERVICE + "[status_page]\nport = 4100\n", "config.toml")
    assert public_address(enabled, ROLES) == ("127.0.0.1", 4100)
    assert public_address(enabled, {"monitor"}) is None
