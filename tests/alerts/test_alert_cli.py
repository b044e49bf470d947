"""``healthmon alert test CHANNEL`` sends one message and prints the receiver's answer."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.alerts.sink import Sink


async def alert_test(config: Path, channel: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "healthmon", "alert", "test", channel, "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_alert_test_prints_the_receivers_answer(tmp_path: Path) -> None:
    """A working channel: exit 0, the receiver's answer printed; a failing one: exit 1;
    an unknown name: exit 2 listing the configured channels."""
    async with Sink() as sink:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[[channels]]\nname = "good"\nkind = "webhook"\nurl = "{sink.url("ok")}"\n\n'
            f'[[channels]]\nname = "bad"\nkind = "webhook"\nurl = "{sink.url("fail")}"\n'
        )
        code, out, _ = await alert_test(config, "good")
        assert code == 0
        assert out.startswith("good: delivered (key test-")
        assert '200 {"ok": true, "n": 1}' in out
        got = sink.received[0].json
        assert got["alerts"][0]["kind"] == "test"
        code, out, _ = await alert_test(config, "bad")
        assert code == 1
        assert "bad: not delivered" in out
        assert "500" in out
        code, _, err = await alert_test(config, "nope")
        assert code == 2
        assert "no channel named 'nope' (configured: good, bad)" in err


def test_each_delivery_is_one_terminal_line() -> None:
    """alert.sent reads: time, channel, sent, then the title, key, attempt, time and answer."""
    from tests.test_logs import render

    out = render(
        "info", "alert.sent", channel="hook", title="billing is down", key="k-1",
        attempt=1, took_ms=12.0, answer="200 ok",
    )  # fmt: skip
    assert out.count("\n") == 1
    words = out.split()
    assert words[1:3] == ["hook", "sent"]
    assert words[3:] == [
        "billing",
        "is",
        "down",
        "key",
        "k-1",
        "attempt",
        "1",
        "12",
        "ms",
        "answer",
        "200",
        "ok",
    ]
