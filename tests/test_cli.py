"""The command line as a script uses it: check-config, status, --help."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.support import System, run_healthmon

ROOT = Path(__file__).resolve().parent.parent


async def healthmon_async(*args: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop that serves the app under test."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthmon",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_check_config_lists_services() -> None:
    """check-config on the shipped file exits 0 and lists every service with its URL."""
    result = run_healthmon("check-config", str(ROOT / "config.toml"))
    assert result.returncode == 0
    assert "valid, 4 service(s)" in result.stdout
    assert "http://127.0.0.1:3002/health" in result.stdout


def test_check_config_rejects_bad_file(tmp_path: Path) -> None:
    """check-config on a broken file exits 2 naming the field."""
    path = tmp_path / "bad.toml"
    path.write_text('[[services]]\nname = "x"\nurl = "nope"\n')
    result = run_healthmon("check-config", str(path))
    assert result.returncode == 2
    assert "services[0].url: must be an absolute http:// or https:// URL" in result.stderr


@pytest.mark.parametrize("command", ["run", "check-config", "status"])
def test_help(command: str) -> None:
    """Every command explains itself with --help."""
    result = run_healthmon(command, "--help")
    assert result.returncode == 0
    assert "usage: healthmon" in result.stdout


async def test_status_exit_code_follows_the_services(system: System) -> None:
    """status prints a table and exits 1 while a service is down, 0 when all are up."""
    messages = await system.connected()
    code, out, _ = await healthmon_async("status", "--url", system.base)
    assert code == 0
    assert "billing" in out
    await system.set_mode("billing", "down")
    await messages.update_for("billing")
    code, out, _ = await healthmon_async("status", "--url", system.base)
    assert code == 1
    assert "connection refused" in out


async def test_status_unreachable_exits_2() -> None:
    """status against nothing exits 2 with a clear message."""
    code, _, err = await healthmon_async("status", "--url", "http://127.0.0.1:1")
    assert code == 2
    assert "cannot read http://127.0.0.1:1/api/services" in err
