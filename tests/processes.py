"""Real ``python -m healthmon`` processes for tests that cross process boundaries."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

READY_TIMEOUT_S = 30.0


class HealthmonProcess:
    """One healthmon process: started, awaited until it answers, stopped by signal."""

    def __init__(
        self,
        config: Path,
        role: str,
        port: int,
        env: Mapping[str, str],
        log: Path,
        prefix: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.role = role
        self.port = port
        self.env = {**os.environ, **env}
        self.log = log
        # Run under another command (e.g. unshare for a read-only mount).
        self.prefix = tuple(prefix)
        self.process: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HealthmonProcess:
        command = ["-m", "healthmon", "--config", str(self.config), "--role", self.role]
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.prefix,
                sys.executable,
                *command,
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        await self.wait_ready()
        return self

    async def wait_ready(self) -> None:
        """Wait until /metrics answers (every role serves it), or fail with the log."""
        async with aiohttp.ClientSession() as session:
            deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_S
            while True:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.role} exited early:\n{self.output()}")
                try:
                    async with session.get(f"{self.base}/metrics") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{self.role} did not start:\n{self.output()}")
                # Polling a process that is starting: there is no event to wait on.
                await asyncio.sleep(0.05)

    def send(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Stop with ``sig`` (SIGKILL for a crash) and wait for the exit."""
        if self.process is None:
            return None
        self.send(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = await asyncio.wait_for(self.process.wait(), 15)
        self.process = None
        return code

    async def exited(self) -> int:
        """The exit code, once the process ends by itself (after a signal sent earlier)."""
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), 15)
        self.process = None
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def split_env(broker_url: str, monitor_ports: Sequence[int]) -> dict[str, str]:
    """The environment of one process of the split topology: RabbitMQ and the monitors' URLs."""
    return {
        "HEALTHMON_BROKER__KIND": "rabbitmq",
        "HEALTHMON_BROKER__URL": broker_url,
        "HEALTHMON_MONITOR__URLS": json.dumps([f"http://127.0.0.1:{p}" for p in monitor_ports]),
    }
