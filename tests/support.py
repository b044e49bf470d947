"""Test helpers: settings on free loopback ports, a running system, WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from healthmon.app import create_app
from healthmon.archive import STARTING
from healthmon.config import ServiceSettings, Settings
from healthmon.keys import ARCHIVE

NAMES = ("auth", "billing", "notifications", "analytics")
ENDPOINTS = {
    "auth": "/analytics",
    "billing": "/billing",
    "notifications": "/notifications",
    "analytics": "/analytics",
}


def data_url(service: ServiceSettings) -> str:
    """The data URL of a service the test gave a data endpoint."""
    url = service.data_url
    assert url is not None, f"{service.name} has no data endpoint"
    return url


def free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports (one free port may be offered twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = unused_port()
        if port not in ports:
            ports.append(port)
    return ports


def make_settings(
    names: tuple[str, ...] = NAMES,
    *,
    interval_ms: int = 100,
    timeout_ms: int = 1000,
    heartbeat_ms: int = 200,
    **web: Any,
) -> Settings:
    """Settings for mocks on free ports; the check interval is short to keep tests quick."""
    web_port, *ports = free_ports(len(names) + 1)
    services = [
        {
            "name": name,
            "url": f"http://127.0.0.1:{port}",
            "data_endpoint": ENDPOINTS.get(name, "/data"),
            "mock": True,
        }
        for name, port in zip(names, ports, strict=True)
    ]
    return Settings.model_validate(
        {
            "web": {"port": web_port, **web},
            "monitor": {
                "interval_ms": interval_ms,
                "timeout_ms": timeout_ms,
                "heartbeat_ms": heartbeat_ms,
            },
            "services": services,
            # Each app its own history, gone with it: no file left behind.
            "history": {"path": ":memory:"},
        }
    )


class Messages:
    """A WebSocket client's messages, awaited by predicate with a timeout."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def next(self, within: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=within)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {msg.type!r} {msg.data!r}")
        data: dict[str, Any] = json.loads(msg.data)
        self.seen.append(data)
        return data

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 5.0
    ) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                message = await self.next(within)
                if predicate(message):
                    return message

    async def update_for(self, service: str, within: float = 5.0) -> dict[str, Any]:
        message = await self.until(
            lambda m: m["type"] == "statusUpdate" and m["data"]["service"] == service, within
        )
        data: dict[str, Any] = message["data"]
        return data


async def poll(
    what: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], within: float = 20.0
) -> Any:
    """Ask ``what()`` until ``check`` holds, for what offers no event to wait on (another
    process's API, a store's thread); fails with the last answer after ``within`` s."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await what()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within} s: {value!r}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_system(settings: Settings) -> AsyncIterator[System]:
    """The real app for ``settings`` on its port, with a session; closed after."""
    server = TestServer(create_app(settings), host="127.0.0.1", port=settings.web.port)
    await server.start_server()
    archive = server.app.get(ARCHIVE)
    if archive is not None and archive.problem == STARTING:
        # The store opens (or fails to) in the background and every client is told
        # (historyState, a numbered message): a test starts with that behind it.
        told = asyncio.Event()
        archive.on_change.append(told.set)
        await asyncio.wait_for(told.wait(), 10)
        archive.on_change.remove(told.set)
    async with aiohttp.ClientSession() as session:
        running = System(settings, server, session)
        try:
            yield running
        finally:
            for ws in running.sockets:
                await ws.close()
            await server.close()


@dataclass
class System:
    """A running healthmon app (mocks, monitor, hub, API) and an HTTP session to it."""

    settings: Settings
    server: TestServer
    session: aiohttp.ClientSession
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        return self.server.app

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.web.port}"

    async def connect(self, **headers: str) -> Messages:
        ws = await self.session.ws_connect(f"{self.base}/ws", headers=headers)
        self.sockets.append(ws)
        return Messages(ws)

    async def connected(self) -> Messages:
        """A client that has read its welcome and initial snapshot."""
        messages = await self.connect()
        assert (await messages.next())["type"] == "welcome"
        assert (await messages.next())["type"] == "initialSnapshot"
        return messages

    async def post(self, path: str, body: object) -> tuple[int, Any]:
        async with self.session.post(f"{self.base}{path}", json=body) as response:
            return response.status, await response.json()

    async def set_mode(self, name: str, mode: str) -> None:
        status, body = await self.post(f"/api/mocks/{name}", {"mode": mode})
        assert status == 200, body

    async def get(self, path: str) -> Any:
        async with self.session.get(f"{self.base}{path}") as response:
            assert response.status == 200
            return await response.json()


def run_healthmon(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m healthmon ARGS`` (or ``python -c CODE ARGS``) to completion, output captured."""
    entry = ["-c", code] if code is not None else ["-m", "healthmon"]
    return subprocess.run(
        [sys.executable, *entry, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any HEALTHMON_* variable, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("HEALTHMON_")}, **extra}


@contextlib.asynccontextmanager
async def healthmon_in(
    folder: Path, *args: str, env: dict[str, str]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, asyncio.StreamReader]]:
    """``healthmon run ARGS`` in ``folder`` with exactly ``env``; yields the process and its
    stderr (the log) and terminates it after.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthmon",
        "run",
        *args,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        cwd=folder,
        env={"PYTHONUNBUFFERED": "1", **env},
    )
    assert process.stderr is not None
    try:
        yield process, process.stderr
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


@contextlib.asynccontextmanager
async def run_in_folder(
    folder: Path, *args: str, services: list[dict[str, Any]]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, asyncio.StreamReader, int]]:
    """``healthmon run ARGS`` in ``folder`` (no config.toml there), services from the environment.

    Yields the process, its stderr (the log) and its web port; terminates it after.
    """
    port = unused_port()
    # The demo's own ports may be busy here: the environment moves them.
    env = clean_env(HEALTHMON_WEB__PORT=str(port), HEALTHMON_SERVICES=json.dumps(services))
    async with healthmon_in(folder, *args, env=env) as (process, log):
        yield process, log, port
