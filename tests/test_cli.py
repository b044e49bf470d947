"""The command line as a script uses it: init, run without a config, check-config, status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from yarl import URL

from healthmon.cli import NO_CONFIG
from healthmon.config import demo_settings, load_settings
from tests.support import (
    NAMES,
    System,
    clean_env,
    free_ports,
    healthmon_in,
    run_healthmon,
    run_in_folder,
)

ROOT = Path(__file__).resolve().parent.parent


async def healthmon_async(*args: str, cwd: Path | None = None, **env: str) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop that serves the app under test.

    With ``cwd`` or ``env``: in that folder, with no HEALTHMON_* variable but ``env``.
    """
    environment = None if cwd is None and not env else clean_env(**env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthmon",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=environment,
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
    """status against nothing exits 2 saying plainly that no healthmon answers there."""
    code, _, err = await healthmon_async("status", "--url", "http://127.0.0.1:1")
    assert code == 2
    assert err == "healthmon: no healthmon answers at http://127.0.0.1:1: nothing listens there\n"


@pytest.mark.parametrize(
    "how", ["--config", "--config first", "./config.toml", "environment", "host:port"]
)
async def test_status_finds_the_server_the_way_run_would(
    system: System, tmp_path: Path, how: str
) -> None:
    """status asks where run serves: --config, ./config.toml, HEALTHMON_WEB__PORT, or host:port."""
    port = system.settings.web.port
    config = tmp_path / ("config.toml" if how == "./config.toml" else "mine.toml")
    config.write_text(f"[web]\nport = {port}\n")
    argv, env = {
        "--config": (["status", "--config", str(config)], {}),
        # As with run, an option given before the command counts.
        "--config first": (["--config", str(config), "status"], {}),
        "./config.toml": (["status"], {}),
        "environment": (["status"], {"HEALTHMON_WEB__PORT": str(port)}),
        "host:port": (["status", "--url", f"localhost:{port}"], {}),
    }[how]
    folder = tmp_path if how != "environment" else tmp_path / "empty"
    folder.mkdir(exist_ok=True)
    code, out, err = await healthmon_async(*argv, cwd=folder, **env)
    assert (code, err) == (0, ""), err
    assert out.splitlines()[0].split() == ["SERVICE", "STATUS", "LATENCY", "REASON"]
    assert [line.split()[0] for line in out.splitlines()[1:]] == list(NAMES)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "said"),
    [
        (404, "404: Not Found", "text/plain", "something else does (HTTP 404 for /api/services)"),
        (500, "boom", "text/plain", "something else does (HTTP 500 for /api/services)"),
        (200, "<html>a router</html>", "text/html", "its /api/services is not JSON"),
        (200, '{"services": "none"}', "application/json", "is not healthmon's"),
        (200, '[{"name": "x"}]', "application/json", "is not healthmon's"),
        (200, '{"services": [{"name": 1}]}', "application/json", "is not healthmon's"),
    ],
)
async def test_status_says_when_something_else_answers(
    tmp_path: Path, status: int, body: str, content_type: str, said: str
) -> None:
    """Another server on the port is named as such, in one line with exit 2, never a traceback."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, content_type=content_type)

    other = web.Application()
    other.router.add_get("/api/services", answer)
    port = unused_port()
    server = TestServer(other, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        (tmp_path / "config.toml").write_text(f"[web]\nport = {port}\n")
        code, out, err = await healthmon_async("status", cwd=tmp_path)
    finally:
        await server.close()
    assert (code, out) == (2, "")
    assert err.startswith(f"healthmon: no healthmon answers at http://127.0.0.1:{port}: ")
    assert said in err
    assert err.endswith(" (the address from config.toml; ask elsewhere with --url)\n")


async def test_status_without_a_server_names_where_the_address_came_from(tmp_path: Path) -> None:
    """With nothing on the port, status names the file and variable that gave the address."""
    port = unused_port()
    config = tmp_path / "mine.toml"
    config.write_text("[web]\nport = 4000\n")
    code, _, err = await healthmon_async(
        "status", "--config", str(config), HEALTHMON_WEB__PORT=str(port)
    )
    assert code == 2
    assert err == (
        f"healthmon: no healthmon answers at http://127.0.0.1:{port}: nothing listens there "
        f"(the address from {config} and HEALTHMON_WEB__PORT; start it with healthmon run, "
        "or ask elsewhere with --url)\n"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--url", "ftp://h:1"], "argument --url: 'ftp://h:1' is not an address"),
        (["--url", "localhost:99999"], "argument --url: 'localhost:99999' is not an address"),
        (["--url", "h:1?x"], "argument --url: 'h:1?x' is not an address"),
        (["--url", "h:1", "--config", "a.toml"], "argument --config: not allowed with"),
    ],
)
def test_a_status_address_mistake_is_one_line(args: list[str], expected: str) -> None:
    """A --url that is no address, or with --config too, is told in one line with exit 2."""
    result = run_healthmon("status", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr


def test_status_help_says_where_it_looks() -> None:
    """status --help says it asks where run would serve, and the default address."""
    out = " ".join(run_healthmon("status", "--help").stdout.split())
    assert "found where healthmon run would serve" in out
    assert "http://127.0.0.1:4000 by default" in out
    assert "host:port" in out


def _in(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m healthmon ARGS`` run in ``folder``, with ``env`` added."""
    return subprocess.run(
        [sys.executable, "-m", "healthmon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
        env=clean_env(**env),
    )


def free_run(count: int) -> int:
    """The first of ``count`` consecutive loopback ports that are free now."""
    while True:
        first = unused_port()
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
        except (OverflowError, OSError):
            continue
        return first


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


def test_init_port_writes_a_config_on_those_ports(tmp_path: Path) -> None:
    """init --port and --mock-ports write a valid config using those ports and no others."""
    result = _in(tmp_path, "init", "--port", "4100", "--mock-ports", "5001")
    assert result.returncode == 0, result.stderr
    assert "the page will be on http://localhost:4100/" in result.stdout
    settings = load_settings(tmp_path / "config.toml")
    assert settings.web.port == 4100
    assert [(s.name, s.port) for s in settings.services] == [
        ("auth", 5001),
        ("billing", 5002),
        ("notifications", 5003),
        ("analytics", 5004),
    ]
    # Only the ports moved: the rest is the commented starter.
    assert settings.model_copy(update={"web": None, "services": None}) == load_settings(
        ROOT / "config.toml"
    ).model_copy(update={"web": None, "services": None})
    assert settings.web.model_copy(update={"port": 4000}) == load_settings(ROOT / "config.toml").web
    checked = _in(tmp_path, "check-config")
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "3002"], "--port 3002 is one of the mocks' ports (3001-3004)"),
        (["--port", "5003", "--mock-ports", "5001"], "--port 5003 is one of the mocks' ports"),
        (["--mock-ports", "65533"], "the four mocks would need ports up to 65536"),
        (["--port", "0"], "argument --port: '0' is not a port (1-65535)"),
        (["--port", "http"], "argument --port: 'http' is not a port"),
        (["--mock-ports", "-1"], "argument --mock-ports: '-1' is not a port"),
    ],
)
def test_init_refuses_ports_that_cannot_work(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """init with clashing or impossible ports says why in one line, exit 2, and writes nothing."""
    result = _in(tmp_path, "init", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert not (tmp_path / "config.toml").exists()


async def test_init_port_then_run_then_status_need_no_other_flag(tmp_path: Path) -> None:
    """After init --port, run and status in that folder agree on the address by themselves."""
    first = free_run(4)
    web_port = next(p for p in free_ports(5) if not first <= p < first + 4)
    code, out, err = await healthmon_async(
        "init", "--port", str(web_port), "--mock-ports", str(first), cwd=tmp_path
    )
    assert code == 0, err
    env = clean_env(HEALTHMON_HISTORY__PATH=":memory:")
    async with healthmon_in(tmp_path, env=env) as (_, log):
        while b"healthmon.started" not in (line := await asyncio.wait_for(log.readline(), 30)):
            assert line, "healthmon exited before it started"
        code, out, err = await healthmon_async("status", cwd=tmp_path)
    assert code in (0, 1), err
    assert [line.split()[0] for line in out.splitlines()[1:]] == list(NAMES)


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


def test_a_reader_that_stops_early_ends_it_quietly() -> None:
    """``healthmon check-config | head -0``: the reader is gone before the first line, so the
    command ends with the shell's SIGPIPE status and says nothing, never a traceback.
    """
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whenever it comes
    try:
        done = subprocess.run(
            [sys.executable, "-m", "healthmon", "check-config", str(ROOT / "config.toml")],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""
