"""The command line as a script uses it: init, run without a config, check-config, status."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from yarl import URL

from healthmon.cli import NO_CONFIG
from healthmon.config import demo_settings, load_settings
from tests.support import System, run_healthmon, run_in_folder

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
    """check-config on a broken file exits 2 naming the line, the service and the field."""
    path = tmp_path / "bad.toml"
    path.write_text('[[services]]\nname = "x"\nurl = "nope"\n')
    result = run_healthmon("check-config", str(path))
    assert result.returncode == 2
    assert f'{path}:3: services[0] "x".url: must be an absolute http://' in result.stderr


@pytest.mark.parametrize("command", ["run", "init", "check-config", "status"])
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


def _in(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m healthmon ARGS`` run in ``folder``, with ``env`` added."""
    return subprocess.run(
        [sys.executable, "-m", "healthmon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
        env={**_clean_env(), **env},
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HEALTHMON_")}


def test_init_writes_a_starter_that_check_config_accepts(tmp_path: Path) -> None:
    """init writes a commented config.toml here; check-config accepts it as the four mocks."""
    result = _in(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    written = tmp_path / "config.toml"
    assert written.read_text().startswith("# healthmon configuration")
    assert "healthmon check-config" in result.stdout
    checked = _in(tmp_path, "check-config")
    assert checked.returncode == 0, checked.stderr
    assert "valid, 4 service(s)" in checked.stdout


def test_init_keeps_an_existing_file_unless_forced(tmp_path: Path) -> None:
    """init refuses to overwrite a file (exit 2, file unchanged); --force overwrites it."""
    path = tmp_path / "mine.toml"
    path.write_text("# my own\n")
    refused = _in(tmp_path, "init", str(path))
    assert refused.returncode == 2
    assert f"{path} already exists" in refused.stderr
    assert path.read_text() == "# my own\n"
    forced = _in(tmp_path, "init", str(path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_settings(path) == load_settings(ROOT / "config.toml")


def test_the_demo_is_the_shipped_config() -> None:
    """The built-in demo is the repository's config.toml: four mocks on 3001-3004."""
    assert demo_settings() == load_settings(ROOT / "config.toml")


def test_check_config_without_a_file_says_so(tmp_path: Path) -> None:
    """check-config where there is no config.toml exits 2 and points to init."""
    result = _in(tmp_path, "check-config")
    assert result.returncode == 2
    assert "no config.toml here; write one with healthmon init" in result.stderr


async def test_run_without_a_config_runs_the_demo(tmp_path: Path) -> None:
    """run with no config.toml says so in one line and serves the built-in demo."""
    services = [
        {"name": name, "url": f"http://127.0.0.1:{unused_port()}", "mock": True}
        for name in ("auth", "billing")
    ]
    async with run_in_folder(tmp_path, services=services) as (_, log, port):
        first = await asyncio.wait_for(log.readline(), 30)
        assert first.decode().strip() == f"healthmon: {NO_CONFIG}"
        while b"healthmon.started" not in (line := await asyncio.wait_for(log.readline(), 30)):
            assert line, "healthmon exited before it started"
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/api/services") as response,
        ):
            document = await response.json()
        assert [s["name"] for s in document["services"]] == ["auth", "billing"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--role", "bogus"], "healthmon: argument --role: unknown role(s) 'bogus'"),
        (["run", "--loop", "nope"], "argument --loop: invalid choice: 'nope'"),
        (["check-config", "a.toml", "b.toml"], "unrecognized arguments: b.toml"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    ],
)
def test_a_flag_mistake_is_one_line_and_exit_2(args: list[str], expected: str) -> None:
    """A wrong flag or command is told in one line pointing at --help, with exit 2."""
    result = run_healthmon(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "--help" in result.stderr


async def test_a_mock_with_router_special_paths_starts_and_is_up(tmp_path: Path) -> None:
    """The issue's case: a mock on '/he{alth?verbose' starts (no traceback), serves, and is up."""
    mock_port = unused_port()
    services = [
        {
            "name": "odd",
            "url": f"http://127.0.0.1:{mock_port}",
            "mock": True,
            "health_path": "/he{alth?verbose",
            "data_endpoint": "/{name}?limit=5",
        }
    ]
    async with run_in_folder(tmp_path, services=services) as (_, log, port):
        while b"healthmon.started" not in (line := await asyncio.wait_for(log.readline(), 30)):
            assert b"Traceback" not in line
            assert line, "healthmon exited before it started"
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{mock_port}"
            async with session.get(URL(base + "/he{alth?verbose")) as response:
                assert (await response.json(content_type=None))["status"] == "pass"
            async with session.get(URL(base + "/{name}?limit=5")) as response:
                assert (await response.json())["query"] == {"limit": "5"}
            # A page's snapshot waits for the first check of every service.
            async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "welcome"
                snapshot = await ws.receive_json(timeout=10)
            assert snapshot["services"]["odd"]["status"] == "up"
