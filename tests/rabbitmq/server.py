"""A throwaway RabbitMQ node on loopback, owned by the test session.

Debian's ``rabbitmq-server`` started detached, in a session of its own, on
loopback with its own node name and data folder, as the package allows: every
port, folder and the Erlang cookie (via ``HOME``) private to this node, and an
``epmd`` of its own on a private port, so it never meets another node and can
be ended whole by its process group.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TypeVar

import pytest

DEBIAN_BIN = Path("/usr/lib/rabbitmq/bin")
STARTUP_TIMEOUT_S = 60.0
CTL_TIMEOUT_S = 30.0


class RabbitMQServerError(RuntimeError):
    """The test node could not be started or controlled."""


def _find(tool: str) -> str:
    packaged = DEBIAN_BIN / tool
    if packaged.is_file():
        return str(packaged)
    found = shutil.which(tool)
    if found is None:
        raise RabbitMQServerError(
            f"{tool} not found in {DEBIAN_BIN} nor on PATH; "
            "install RabbitMQ (apt-get install rabbitmq-server, brew install rabbitmq)"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RabbitMQServer:
    """One RabbitMQ node: ``start()``, ``stop_app()``/``start_app()``, ``stop()``."""

    def __init__(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="healthmon-rabbitmq-"))
        self.node = f"hm{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._server = _find("rabbitmq-server")
        self._ctl = _find("rabbitmqctl")
        plugins = self._tmp / "enabled_plugins"
        plugins.write_text("[].\n")
        home = self._tmp / "home"
        home.mkdir()
        self._env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self._tmp / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self._tmp / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.started_in: float | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        """Start the node and wait until it accepts AMQP clients."""
        started = time.monotonic()
        self._log = (self._tmp / "server.out").open("wb")
        self._process = subprocess.Popen(
            [self._server],
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._await_startup(started + STARTUP_TIMEOUT_S)
        except RabbitMQServerError as exc:
            output = self._output()
            self.stop()
            raise RabbitMQServerError(f"{exc}\n--- server output ---\n{output}") from None
        self.started_in = time.monotonic() - started

    def _await_startup(self, deadline: float) -> None:
        # await_startup fails at once while the node has not yet registered
        # with epmd, so it is retried until the node answers or the deadline.
        assert self._process is not None
        while True:
            remaining = deadline - time.monotonic()
            try:
                self._ctl_run("await_startup", timeout=max(remaining, 1.0))
                return
            except RabbitMQServerError as exc:
                if self._process.poll() is not None:
                    raise RabbitMQServerError(
                        f"rabbitmq-server exited with {self._process.returncode} during start"
                    ) from None
                if time.monotonic() >= deadline:
                    raise RabbitMQServerError(
                        f"node {self.node} not up within {STARTUP_TIMEOUT_S:.0f} s: {exc}"
                    ) from None
            time.sleep(0.2)

    def stop_app(self) -> None:
        """Stop RabbitMQ inside the node: clients are disconnected, the port closes."""
        self._ctl_run("stop_app")

    def start_app(self) -> None:
        """Start RabbitMQ again inside the running node and wait until it is up."""
        self._ctl_run("start_app")
        self._await_startup(time.monotonic() + STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        """End the node, its epmd and anything else of its process group."""
        if self._process is not None:
            with contextlib.suppress(RabbitMQServerError):
                self._ctl_run("stop")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=CTL_TIMEOUT_S)
            self._kill_group()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self._kill_epmd()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def queues(self) -> list[tuple[str, bool, bool]]:
        """The node's queues as (name, exclusive, auto_delete)."""
        output = self._ctl_run(
            "list_queues", "name", "exclusive", "auto_delete", "--no-table-headers", "--quiet"
        )
        rows = [line.split("\t") for line in output.splitlines() if line.strip()]
        return [(name, exclusive == "true", auto == "true") for name, exclusive, auto in rows]

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): connections stay open but nothing answers."""
        assert self._process is not None
        os.killpg(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused node run again."""
        assert self._process is not None
        os.killpg(self._process.pid, signal.SIGCONT)

    def delete_queue(self, name: str) -> None:
        """Delete a queue as an operator would."""
        self._ctl_run("delete_queue", name)

    def _ctl_run(self, *args: str, timeout: float = CTL_TIMEOUT_S) -> str:
        command = [self._ctl, "-n", self.node, *args]
        if args[0] == "await_startup":
            command += ["--timeout", str(int(timeout))]
        try:
            done = subprocess.run(
                command,
                env=self._env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout + 5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RabbitMQServerError(
                f"rabbitmqctl {' '.join(args)} did not finish within {timeout + 5:.0f} s"
            ) from None
        output = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise RabbitMQServerError(
                f"rabbitmqctl {' '.join(args)} failed ({done.returncode}): {output.strip()}"
            )
        return output

    def _kill_group(self) -> None:
        if self._process is None:
            return
        # The node runs in a session of its own: its group is everything it
        # started (the shell wrapper, beam.smp, erl_child_setup, inet_gethost).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)

    def _kill_epmd(self) -> None:
        # epmd daemonises out of the node's process group. Ours is the one on
        # our private port: ask it to stop, then end it by PID if it is left.
        epmd = shutil.which("epmd")
        if epmd is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [epmd, "-kill"],
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
        for pid in _pids_of("epmd"):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if f"ERL_EPMD_PORT={self.epmd_port}".encode() in environ.split(b"\0"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _output(self) -> str:
        text = ""
        with contextlib.suppress(OSError):
            text = (self._tmp / "server.out").read_text(errors="replace")
        return text[-4000:]


def _pids_of(name: str) -> list[int]:
    pids: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return pids
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


_Node = TypeVar("_Node", bound=RabbitMQServer)


@contextlib.contextmanager
def running_node(kind: type[_Node]) -> Iterator[_Node]:
    """A started node of ``kind`` for a fixture, stopped after; no node fails the test."""
    try:
        server = kind()
        server.start()
    except RabbitMQServerError as exc:
        pytest.fail(f"cannot start a RabbitMQ node for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
