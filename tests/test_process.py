"""``python -m healthmon`` as a user runs it: a real process, real signals, a websockets client."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import websockets
from aiohttp.test_utils import unused_port

from tests.processes import HealthmonProcess
from tests.support import ENDPOINTS, NAMES, poll


def write_config(path: Path, web_port: int, ports: dict[str, int], extra: str = "") -> None:
    services = "".join(
        f'[[services]]\nname = "{name}"\nurl = "http://127.0.0.1:{port}"\n'
        f'data_endpoint = "{ENDPOINTS.get(name, "/data")}"\nmock = true\n\n'
        for name, port in ports.items()
    )
    path.write_text(f"[web]\nport = {web_port}\n\n{extra}{services}")


@pytest.fixture
async def process(tmp_path: Path) -> AsyncIterator[HealthmonProcess]:
    """The default four mocks and settings (500 ms interval), on free ports."""
    port = unused_port()
    config = tmp_path / "config.toml"
    write_config(config, port, {name: unused_port() for name in NAMES})
    running = HealthmonProcess(config, "all", port, {}, tmp_path / "healthmon.log")
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def post(url: str, body: object) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status


async def test_websockets_client_sees_snapshot_then_update(process: HealthmonProcess) -> None:
    """A websockets-library client gets welcome, a correct snapshot, then billing's update."""
    async with websockets.connect(f"ws://127.0.0.1:{process.port}/ws") as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["type"] == "welcome"
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert snapshot["type"] == "initialSnapshot"
        assert snapshot["data"] == dict.fromkeys(NAMES, True)
        assert await post(f"{process.base}/api/mocks/billing", {"mode": "down"}) == 200
        async with asyncio.timeout(10):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "statusUpdate":
                    break
        assert message["data"]["service"] == "billing"
        assert message["data"]["up"] is False


async def test_sigterm_closes_clients_with_1001_and_exits_0(process: HealthmonProcess) -> None:
    """SIGTERM closes every WebSocket with 1001 (going away) and the process exits cleanly."""
    async with websockets.connect(f"ws://127.0.0.1:{process.port}/ws") as ws:
        await asyncio.wait_for(ws.recv(), 10)
        process.send(signal.SIGTERM)
        async with asyncio.timeout(10):
            await ws.wait_closed()
        assert ws.close_code == 1001
    assert await process.exited() == 0
    assert "healthmon.stopping" in process.output()


async def test_sighup_reloads_the_file(process: HealthmonProcess, tmp_path: Path) -> None:
    """SIGHUP applies the config file at once, here a longer check interval shown by the API."""
    ports = {name: unused_port() for name in NAMES}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{process.base}/api/services") as response:
            services = (await response.json())["services"]
        ports = {s["name"]: int(s["url"].rsplit(":", 1)[1]) for s in services}
        write_config(process.config, process.port, ports, "[monitor]\ninterval_ms = 750\n\n")
        process.send(signal.SIGHUP)
        async with asyncio.timeout(10):
            while True:
                async with session.get(f"{process.base}/api/services") as response:
                    if (await response.json())["interval_ms"] == 750:
                        break
                # Waiting for another process to act on a signal: no event to await.
                await asyncio.sleep(0.05)
    # The API shows the new settings a moment before the monitor's switch is done and logged.
    await poll(lambda: asyncio.to_thread(process.output), lambda out: "config.reloaded" in out)


async def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    """A taken port stops the start with one line naming it and exit code 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.toml"
        write_config(config, unused_port(), {"auth": port})
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "healthmon",
            "--config",
            str(config),
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )
        _, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 1
    text = err.decode()
    assert f"mock 'auth' cannot listen on 127.0.0.1:{port}" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("log_format", ["classroom", "json"])
async def test_a_taken_web_port_is_said_before_anything_runs(
    tmp_path: Path, log_format: str
) -> None:
    """With the page's port taken, its one error line is all that is said: no mock, no check."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.toml"
        write_config(config, port, {name: unused_port() for name in NAMES})
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "healthmon",
            "--config",
            str(config),
            "--log-format",
            log_format,
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
        )
        _, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 1
    assert err.decode() == (
        f"healthmon: cannot start: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
