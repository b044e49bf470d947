"""Alert settings: bad input stops the start with one line (exit 2), and a reload keeps
the running config."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthmon.alerts.service import ALERTER
from healthmon.keys import CONFIG
from healthmon.reload import RELOADER
from tests.support import run_healthmon
from tests.test_reload import Reloadable, reloadable

SERVICE = '[[services]]\nname = "db"\nurl = "http://127.0.0.1:9"\n'
HOOK = '[[channels]]\nname = "hook"\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n'

BAD = [
    (
        '[alerts]\nchannels = ["pager"]\n',
        "alerts.channels: unknown channel 'pager'",
    ),
    (
        '[[alerts.rules]]\nservices = ["db"]\nchannels = ["nope"]\n',
        "alerts.rules[0].channels: unknown channel 'nope'",
    ),
    (
        '[alerts]\nrepeat = "10s"\ndigest = "1m"\n',
        "alerts.digest: longer than a reminder interval (repeat)",
    ),
    (
        '[[maintenance]]\ncron = "61 * * * *"\nduration = "1h"\n',
        "maintenance[0].cron: '61 * * * *' is not a cron expression",
    ),
    (
        '[[maintenance]]\ncron = "0 2 * * *"\nduration = "1h"\ntimezone = "Mars/Olympus"\n',
        "maintenance[0].timezone: 'Mars/Olympus' is not an IANA time zone",
    ),
    (
        '[[channels]]\nname = "signed"\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n'
        'secret = "${HEALTHMON_TEST_NO_SUCH_SECRET}"\n',
        "channels[1].secret: environment variable HEALTHMON_TEST_NO_SUCH_SECRET is not set",
    ),
]


@pytest.mark.parametrize(("extra", "said"), BAD)
def test_bad_alert_config_stops_the_start_naming_the_field(
    tmp_path: Path, extra: str, said: str
) -> None:
    """Each mistake stops check-config (as it does a start) with exit 2 and one line."""
    path = tmp_path / "config.toml"
    text = SERVICE + HOOK + extra
    path.write_text(text)
    result = run_healthmon("check-config", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert said in lines[0]
    assert lines[0].startswith(f"healthmon: invalid configuration: {path}:")


async def test_a_bad_alert_edit_keeps_the_running_alert_config(tmp_path: Path) -> None:
    """A reload with an unknown channel in a rule is refused; the running channels stay."""
    async with reloadable(tmp_path / "config.toml") as live:
        live_system: Reloadable = live
        good = HOOK + '[alerts]\nchannels = ["hook"]\n'
        live_system.path.write_text(
            live_system.path.read_text().replace("[broker]", good + "\n[broker]", 1)
        )
        await live_system.app[RELOADER].reload()
        assert [c.name for c in live_system.app[CONFIG].settings.channels] == ["hook"]
        assert list(live_system.app[ALERTER].delivery.channels) == ["hook"]
        live_system.path.write_text(
            live_system.path.read_text()
            + '\n[[alerts.rules]]\nservices = ["auth"]\nchannels = ["gone"]\n'
        )
        await live_system.app[RELOADER].reload()
        error = live_system.app[CONFIG].error
        assert error is not None
        assert "alerts.rules[0].channels: unknown channel 'gone'" in error
        assert [c.name for c in live_system.app[CONFIG].settings.channels] == ["hook"]
        assert list(live_system.app[ALERTER].delivery.channels) == ["hook"]
