"""A throwaway PostgreSQL cluster on loopback, owned by the test session.

Debian's server binaries (or any ``initdb``/``pg_ctl`` on PATH) make a
cluster in a folder of its own, trusted, on 127.0.0.1 and a Unix socket in
that folder, without fsync: it lives for one session and is removed after.
The server refuses to run as root, so as root every step runs as the
``postgres`` user the package creates, in a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DEBIAN_BINS = Path("/usr/lib/postgresql")
USER = "healthmon"
# Below the ephemeral range (32768-60999), whose ports the tests' own client
# sockets may take between choosing one and the server binding it.
PORTS = range(20_000, 32_768)
START_ATTEMPTS = 3
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class PostgresServerError(RuntimeError):
    """The test cluster could not be made, started or stopped."""


def _version(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))


def find_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: the newest Debian one, else PATH's."""
    packaged = sorted(
        (p.parent for p in DEBIAN_BINS.glob("*/bin/initdb") if (p.parent / "pg_ctl").is_file()),
        key=_version,
    )
    if packaged:
        return packaged[-1]
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise PostgresServerError(
            f"initdb and pg_ctl not found in {DEBIAN_BINS}/*/bin nor on PATH; install "
            "PostgreSQL (apt-get install postgresql, brew install postgresql)"
        )
    return Path(initdb).parent


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def low_port() -> int:
    """A port below the ephemeral range that nothing holds right now."""
    for port in random.sample(PORTS, 200):
        if _bindable(port):
            return port
    raise PostgresServerError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


class PostgresServer:
    """One cluster: ``start()``, ``url(database)``, ``stop()``."""

    def __init__(self) -> None:
        self._bin = find_bin()
        self._as_root = os.geteuid() == 0
        self._tmp = Path(tempfile.mkdtemp(prefix="healthmon-postgres-"))
        if self._as_root:
            try:
                shutil.chown(self._tmp, "postgres", "postgres")
            except LookupError:
                shutil.rmtree(self._tmp, ignore_errors=True)
                raise PostgresServerError(
                    "running as root, and there is no 'postgres' user to run the server as "
                    "(the postgresql package creates it)"
                ) from None
        self.data = self._tmp / "data"
        self.log = self._tmp / "server.log"
        self.port = 0
        self._started = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Make the cluster and start it detached; wait until it accepts clients."""
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", USER, "-E", "UTF8",
                  "--locale=C", "--no-sync", "--no-instructions")  # fmt: skip
        for attempt in range(START_ATTEMPTS):
            self.port = low_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._tmp} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w",
                          "-t", str(START_TIMEOUT_S), "start", "-o", options)  # fmt: skip
            except PostgresServerError:
                # Another program may have bound the port since it was chosen.
                if attempt + 1 < START_ATTEMPTS and "already in use" in self.output():
                    continue
                raise
            self._started = True
            return

    def stop(self) -> None:
        """Stop the server (fast: clients are disconnected) and remove its folder."""
        if self._started:
            try:
                self._run("pg_ctl", "-D", self.data, "-w", "-t", str(STOP_TIMEOUT_S),
                          "stop", "-m", "fast")  # fmt: skip
            except PostgresServerError:
                # SIGQUIT: the postmaster's immediate shutdown, ending its children too.
                with contextlib.suppress(OSError, ValueError):
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGQUIT)
            self._started = False
        shutil.rmtree(self._tmp, ignore_errors=True)

    def output(self) -> str:
        """The end of the server's log."""
        text = ""
        with contextlib.suppress(OSError):
            text = self.log.read_text(errors="replace")
        return text[-4000:]

    def _run(self, tool: str, *args: str | Path) -> None:
        command = [str(self._bin / tool), *map(str, args)]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        try:
            done = subprocess.run(
                command,
                cwd=self._tmp,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=START_TIMEOUT_S + 10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresServerError(f"{tool} {args[-1]}: {exc}") from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise PostgresServerError(
                f"{tool} failed ({done.returncode}): {output}\n--- server log ---\n{self.output()}"
            )


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresServer]:
    """A started cluster for a fixture, stopped after; no cluster fails the test."""
    try:
        server = PostgresServer()
    except PostgresServerError as exc:
        pytest.fail(f"cannot start PostgreSQL for the tests: {exc}", pytrace=False)
    try:
        server.start()
    except PostgresServerError as exc:
        server.stop()
        pytest.fail(f"cannot start PostgreSQL for the tests: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
