"""The healthmon server under test: its config file and its process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
DEFAULT_NAMES = ("auth", "billing", "notifications", "analytics")
# Bounds on waiting for the server: to answer at all, and to exit when asked.
READY_TIMEOUT_S = 30.0
UP = frozenset({"up"})
KNOWN = frozenset({"up", "degraded", "down"})
STOP_TIMEOUT_S = 8.0
# A server's own history file, beside its config in the run's folder.
HISTORY_FILE = "history-{port}.sqlite3"


class BenchError(RuntimeError):
    """A benchmark step could not run; the message says which and why."""


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    url: str
    health_path: str = "/health"
    mock: bool = False


@dataclass(frozen=True, slots=True)
class ServerSpec:
    port: int
    services: tuple[Service, ...]
    interval_ms: int = 500
    timeout_ms: int = 1000
    # History as users get it by default (a SQLite file, default flush), or
    # off ([history] enabled = false). The file is ``history_path``, or else a
    # new one per server beside its config (``HISTORY_FILE``), removed before
    # each start so no run inherits another's history.
    history: bool = True
    history_path: Path | None = None
    # [status_page] port: the public listener (None: none).
    public_port: int | None = None
    # More tables, written after the services (alert channels, say).
    extra_toml: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def toml(self) -> str:
        # A relative path is taken from the config file's folder.
        path = self.history_path or HISTORY_FILE.format(port=self.port)
        history = f"path = {json.dumps(str(path))}" if self.history else "enabled = false"
        lines = [
            "[web]",
            'host = "127.0.0.1"',
            f"port = {self.port}",
            "[monitor]",
            f"interval_ms = {self.interval_ms}",
            f"timeout_ms = {self.timeout_ms}",
            "[history]",
            history,
        ]
        if self.public_port is not None:
            lines += ["[status_page]", f"port = {self.public_port}"]
        for s in self.services:
            lines += [
                "[[services]]",
                f'name = "{s.name}"',
                f'url = "{s.url}"',
                f'health_path = "{s.health_path}"',
                f"mock = {'true' if s.mock else 'false'}",
            ]
        return "\n".join(lines) + "\n" + self.extra_toml


def default_spec() -> ServerSpec:
    """The four default services as healthmon's own mocks, on free ports."""
    web, *mocks = free_ports(1 + len(DEFAULT_NAMES))
    services = tuple(
        Service(name, f"http://127.0.0.1:{port}", mock=True)
        for name, port in zip(DEFAULT_NAMES, mocks, strict=True)
    )
    return ServerSpec(port=web, services=services)


@dataclass(slots=True)
class Server:
    spec: ServerSpec
    process: asyncio.subprocess.Process
    spawned_at: float  # time.perf_counter() just before the spawn

    @property
    def pid(self) -> int:
        return self.process.pid


def child_env() -> dict[str, str]:
    """Our environment without HEALTHMON_* overrides, so the file decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HEALTHMON_")}


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """Close its stdin (our children exit on EOF), then SIGTERM, then SIGKILL."""
    if process.returncode is None and process.stdin is not None:
        process.stdin.close()
    for step in (None, process.terminate, process.kill):
        if process.returncode is not None:
            break
        if step is not None:
            with contextlib.suppress(ProcessLookupError):
                step()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S / 2)
    await process.wait()


@contextlib.asynccontextmanager
async def running_server(spec: ServerSpec, loop: str, workdir: Path) -> AsyncIterator[Server]:
    """Spawn healthmon on ``loop``; stopped on exit, whatever happened."""
    config = workdir / f"healthmon-{spec.port}.toml"
    config.write_text(spec.toml())
    if spec.history and spec.history_path is None:
        remove_history(workdir / HISTORY_FILE.format(port=spec.port))
    log_path = workdir / f"healthmon-{spec.port}-{loop}.log"
    with log_path.open("wb") as log:
        spawned_at = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.serve",
            "--config",
            str(config),
            "--loop",
            loop,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
            cwd=REPO,
            env=child_env(),
        )
        try:
            yield Server(spec, process, spawned_at)
        finally:
            await stop_process(process)
            if spec.history and spec.history_path is None:
                remove_history(workdir / HISTORY_FILE.format(port=spec.port))


def remove_history(path: Path) -> None:
    """A history file and what SQLite and healthmon keep beside it."""
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def wait_ready(session: aiohttp.ClientSession, server: Server) -> None:
    """Until ``GET /api/services`` answers, within ``READY_TIMEOUT_S``."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.returncode is not None:
            raise BenchError(f"healthmon exited with {server.process.returncode}; see its log")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{server.spec.base_url}/api/services") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise BenchError(f"healthmon did not answer within {READY_TIMEOUT_S:.0f} s")


async def services_doc(session: aiohttp.ClientSession, spec: ServerSpec) -> dict[str, object]:
    async with session.get(f"{spec.base_url}/api/services") as response:
        response.raise_for_status()
        doc: dict[str, object] = await response.json()
        return doc


async def wait_until(
    session: aiohttp.ClientSession,
    spec: ServerSpec,
    *,
    statuses: frozenset[str] | None = None,
    clients: int | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> None:
    """Poll the server until every service's status is one of ``statuses``
    and/or ``clients`` are connected."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = await services_doc(session, spec)
        services = doc["services"]
        ws = doc["ws"]
        assert isinstance(services, list)
        assert isinstance(ws, dict)
        up_ok = statuses is None or all(s["status"] in statuses for s in services)
        clients_ok = clients is None or ws["clients"] == clients
        if up_ok and clients_ok:
            return
        await asyncio.sleep(0.25)
    raise BenchError(f"server not in the expected state within {timeout_s:.0f} s")


async def set_mode(session: aiohttp.ClientSession, spec: ServerSpec, name: str, mode: str) -> None:
    async with session.post(f"{spec.base_url}/api/mocks/{name}", json={"mode": mode}) as response:
        if response.status != 200:
            raise BenchError(f"POST mode {mode} for {name}: HTTP {response.status}")
