"""Command line: ``healthmon [run] | init | check-config | status | history NAME``."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from healthmon import reports
from healthmon.app import ROLES, check_roles, serve
from healthmon.config import (
    DEFAULT_CONFIG,
    ENV_PREFIX,
    ConfigError,
    Settings,
    WebSettings,
    demo_settings,
    load_settings,
    starter_text,
)
from healthmon.errors import StartupError
from healthmon.logs import LOG_FORMATS, LogFormat, configure_logging, visible
from healthmon.reports import WINDOWS
from healthmon.store import StoreError, StoreUnusable, create_store, sqlite_path

EXIT_OK, EXIT_DOWN, EXIT_USAGE = 0, 1, 2
# The starter config's ports: the page's, and the first of the four mocks'.
STARTER_WEB_PORT, STARTER_MOCK_PORT = 4000, 3001
# How long status waits for the server.
STATUS_TIMEOUT_S = 5.0
NOTHING_LISTENS = "nothing listens there"
NO_CONFIG = (
    "no config.toml here: running the built-in demo (four mock services); "
    "write one with healthmon init"
)


def parse_roles(value: str) -> frozenset[str]:
    roles = {part.strip() for part in value.split(",") if part.strip()}
    if roles == {"all"}:
        return ROLES
    unknown = roles - ROLES
    if not roles or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown role(s) {', '.join(sorted(unknown)) or value!r}; "
            f"choose all or a comma list of {', '.join(sorted(ROLES))}"
        )
    return frozenset(roles)


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake said in one line (and exit 2), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def port_number(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port (1-65535)")
    return int(value)


def server_url(value: str) -> str:
    """``http://host:port``, ``https://…`` or ``host:port`` as a base URL (no trailing ``/``)."""
    text = value.strip()
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an address: write http://host:port, https://host or host:port"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an address: write http://host:port, https://host or host:port"
        )
    return text.rstrip("/")


def _run_options(defaults: bool) -> _Parser:
    """The options of ``run``, before or after the command word.

    After it (``defaults`` False) an option left out keeps what was given
    before it: ``healthmon --config my.toml run`` reads my.toml.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    options = _Parser(add_help=False)
    options.add_argument(
        "--config",
        type=Path,
        default=default(None),
        help="TOML file to read (default: ./config.toml)",
    )
    options.add_argument(
        "--role",
        type=parse_roles,
        default=default(ROLES),
        help="what this process runs: all (default) or a comma list of mocks, monitor, ws",
    )
    options.add_argument(
        "--log-level", default=default("info"), choices=["debug", "info", "warning", "error"]
    )
    options.add_argument(
        "--log-format",
        default=default("auto"),
        choices=LOG_FORMATS,
        help="classroom (one short line per event), console, json; "
        "auto (default): classroom on a terminal, json when piped",
    )
    options.add_argument(
        "--loop",
        default=default("auto"),
        choices=["auto", "asyncio", "uvloop"],
        help="event loop: uvloop when installed (pip install 'healthmon[fast]'), else asyncio",
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="healthmon",
        description="Real-time service health monitor: mocks, checker, broker, hub, page.",
        parents=[_run_options(defaults=True)],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "run",
        parents=[_run_options(defaults=False)],
        help="start healthmon (the default)",
        description="Start healthmon with the parts --role names.",
    )
    init = commands.add_parser(
        "init",
        help="write a commented starter config.toml",
        description="Write a commented starter config (the four-mock demo) to PATH; "
        "an existing file is kept unless --force.",
    )
    init.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_CONFIG, help="default: ./config.toml"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument(
        "--port",
        type=port_number,
        default=STARTER_WEB_PORT,
        help=f"the page's port (default: {STARTER_WEB_PORT})",
    )
    init.add_argument(
        "--mock-ports",
        type=port_number,
        default=STARTER_MOCK_PORT,
        metavar="FIRST",
        help=f"the four mocks' ports: FIRST to FIRST+3 (default: {STARTER_MOCK_PORT})",
    )
    check = commands.add_parser(
        "check-config",
        help="validate a config file and list its services",
        description="Validate a config file; exit 0 when valid, 2 when not.",
    )
    check.add_argument("path", nargs="?", type=Path, default=None, help="default: ./config.toml")
    status = commands.add_parser(
        "status",
        help="print a running server's statuses",
        description="Print the statuses of a running healthmon, found where healthmon run "
        "would serve (the same config file and HEALTHMON_* environment); exit 1 when any "
        "service is down, 2 when no healthmon answers.",
    )
    where = status.add_mutually_exclusive_group()
    where.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="the TOML file the server runs with (default: ./config.toml, or the built-in "
        "demo without one); its [web] host and port, with HEALTHMON_WEB__* over them, "
        "say where to ask (http://127.0.0.1:4000 by default)",
    )
    where.add_argument(
        "--url",
        type=server_url,
        default=None,
        help="ask here instead: http://host:port, https://..., or host:port",
    )
    history = commands.add_parser(
        "history",
        help="print a service's stored history (uptime, bars, incidents) or export it",
        description="Read the history store the config names (running or not) and print one "
        "service's uptime, bars and incidents over a window; exit 2 when it cannot be read.",
    )
    history.add_argument("name", help="the service")
    history.add_argument("--window", default="24h", choices=list(WINDOWS), help="default: 24h")
    history.add_argument(
        "--format",
        default="text",
        choices=["text", "json", "csv", "jsonl"],
        help="text (default), json (as GET /api/services/NAME/history), "
        "csv or jsonl (the window's buckets, for a spreadsheet)",
    )
    history.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="TOML file to read (default: ./config.toml)",
    )
    alert = commands.add_parser(
        "alert",
        help="try an alert channel",
        description="Alert channels: 'healthmon alert test CHANNEL' sends one test message "
        "through a [[channels]] entry and prints the receiver's answer; exit 0 when it took "
        "it, 1 when not, 2 when the config or the channel name is wrong.",
    )
    alert_commands = alert.add_subparsers(dest="alert_command", metavar="ACTION", required=True)
    alert_test = alert_commands.add_parser("test", help="send a test message")
    alert_test.add_argument("channel", help="the channel's name in [[channels]]")
    alert_test.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="TOML file to read (default: ./config.toml)",
    )
    return parser


def alert_test(name: str, config: Path | None) -> int:
    """Send a test message through one channel and print what its receiver said."""
    from healthmon.alerts.cli import send_test

    try:
        settings, _ = settings_for_run(config)
    except ConfigError as exc:
        print(f"healthmon: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if all(c.name != name for c in settings.channels):
        known = ", ".join(c.name for c in settings.channels) or "none"
        print(f"healthmon: no channel named {name!r} (configured: {known})", file=sys.stderr)
        return EXIT_USAGE
    message, answer = asyncio.run(send_test(settings, name))
    verdict = "delivered" if answer.ok else "not delivered"
    print(f"{name}: {verdict} (key {message.key}): {visible(answer.detail)}")
    return EXIT_OK if answer.ok else EXIT_DOWN


def _table(rows: list[list[str]]) -> str:
    # Cells may hold what a service sent: no control character reaches the terminal.
    rows = [[visible(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def check_config(path: Path | None) -> int:
    if path is None and not DEFAULT_CONFIG.exists():
        print("healthmon: no config.toml here; write one with healthmon init", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(f"healthmon: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(_describe(settings, path))
    return EXIT_OK


def _describe(settings: Settings, path: Path | None) -> str:
    from healthmon.checker import CheckSpec

    rows = [["SERVICE", "HEALTH URL", "EVERY", "TIMEOUT", "MOCK"]]
    for service in settings.services:
        spec = CheckSpec.resolve(service, settings.monitor)
        rows.append(
            [
                service.name,
                service.health_url,
                f"{spec.interval_ms} ms",
                f"{spec.timeout_ms} ms",
                "yes" if service.mock else "no",
            ]
        )
    head = f"{path or 'config.toml'}: valid, {len(settings.services)} service(s)"
    return head + ("\n" + _table(rows) if settings.services else "")


def init(
    path: Path,
    force: bool = False,
    port: int = STARTER_WEB_PORT,
    mock_ports: int = STARTER_MOCK_PORT,
) -> int:
    """Write the starter config; never over an existing file unless ``force``."""
    mocks = range(mock_ports, mock_ports + 4)
    if mocks[-1] > 65535:
        print(
            f"healthmon: --mock-ports {mock_ports}: the four mocks would need ports up to "
            f"{mocks[-1]}; choose at most 65532",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if port in mocks:
        print(
            f"healthmon: --port {port} is one of the mocks' ports ({mocks[0]}-{mocks[-1]}); "
            "choose another, or move the mocks with --mock-ports",
            file=sys.stderr,
        )
        return EXIT_USAGE
    text = starter_text(web_port=port, mock_ports=mock_ports)
    if path.is_dir():
        path = path / DEFAULT_CONFIG.name
    try:
        with path.open("w" if force else "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        print(f"healthmon: {path} already exists; keep it, or use --force", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"healthmon: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    run_hint = "healthmon run" + ("" if path == DEFAULT_CONFIG else f" --config {path}")
    print(
        f"wrote {path}: check it with healthmon check-config, start with {run_hint}; "
        f"the page will be on http://localhost:{port}/"
    )
    return EXIT_OK


def settings_for_run(config: Path | None) -> tuple[Settings, Path | None]:
    """The given file, ./config.toml, or (with neither) the built-in demo, said in one line.

    Also the file read: None for the demo.
    """
    if config is None and not DEFAULT_CONFIG.exists():
        print(f"healthmon: {NO_CONFIG}", file=sys.stderr)
        return demo_settings(), None
    path = config or DEFAULT_CONFIG
    return load_settings(path), path


def web_url(web: WebSettings) -> str:
    """Where a client on this machine reaches the server that ``web`` describes."""
    host = web.host.strip("[]")
    # Bound to every address: ask loopback of the same family.
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"http://{host}:{web.port}"


def _where_from(config: Path | None) -> str:
    """What the address ``status`` asks was taken from, for its messages."""
    source = (
        str(config)
        if config is not None
        else DEFAULT_CONFIG.name
        if DEFAULT_CONFIG.exists()
        else "the built-in defaults"
    )
    names = sorted(
        name.upper()
        for name in os.environ
        if name.upper() in {f"{ENV_PREFIX}WEB", f"{ENV_PREFIX}WEB__HOST", f"{ENV_PREFIX}WEB__PORT"}
    )
    return source + "".join(f" and {name}" for name in names)


def _fetch(base: str) -> tuple[dict[str, Any] | None, str]:
    """``GET base/api/services``: healthmon's document, or None and what answered instead."""
    target = base + "/api/services"
    try:
        with urllib.request.urlopen(target, timeout=STATUS_TIMEOUT_S) as response:
            body = response.read(4 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        if exc.code == 421:
            # healthmon's own refusal of a host name it does not answer to.
            text = exc.read(300).decode("utf-8", "replace").strip()
            return None, f"it refuses the host name in this address (HTTP 421: {text})"
        return None, f"something else does (HTTP {exc.code} for /api/services)"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            return None, NOTHING_LISTENS
        if isinstance(reason, TimeoutError):
            return None, f"no answer within {STATUS_TIMEOUT_S:g} s"
        if isinstance(reason, socket.gaierror):
            return None, f"its host is unknown ({reason.strerror})"
        return None, str(getattr(reason, "strerror", None) or reason)
    except TimeoutError:
        return None, f"no answer within {STATUS_TIMEOUT_S:g} s"
    except OSError as exc:
        return None, str(exc.strerror or exc)
    try:
        document = json.loads(body)
    except ValueError:
        return None, "something else does (its /api/services is not JSON)"
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, list) or not all(
        isinstance(s, dict) and "name" in s and "status" in s for s in services
    ):
        return None, "something else does (its /api/services is not healthmon's)"
    return document, ""


def status(url: str | None, config: Path | None = None) -> int:
    """The running server's statuses: asked at ``url``, or where ``run`` would serve."""
    given = url is not None
    if url is None:
        try:
            url = web_url(load_settings(config, only=("web",)).web)
        except ConfigError as exc:
            print(f"healthmon: invalid configuration: {exc}", file=sys.stderr)
            return EXIT_USAGE
    document, problem = _fetch(url)
    if document is None:
        hint = ""
        if not given:
            start = "start it with healthmon run, or " if problem == NOTHING_LISTENS else ""
            hint = f" (the address from {_where_from(config)}; {start}ask elsewhere with --url)"
        print(
            f"healthmon: no healthmon answers at {url}: {visible(problem)}{hint}", file=sys.stderr
        )
        return EXIT_USAGE
    rows = [["SERVICE", "STATUS", "LATENCY", "REASON"]]
    for service in document["services"]:
        latency = service.get("latency_ms")
        rows.append(
            [
                str(service["name"]),
                str(service["status"]),
                f"{latency:.0f} ms" if isinstance(latency, int | float) else "-",
                str(service.get("reason") or ""),
            ]
        )
    print(_table(rows))
    monitor = document.get("monitor")
    if not (isinstance(monitor, dict) and monitor.get("alive")):
        print("warning: the monitor is silent; these statuses may be stale", file=sys.stderr)
    # What the page says too: a saved file not in force, keys waiting for a restart.
    if document.get("config_error"):
        error = visible(str(document["config_error"]))
        print(f"warning: the running config is kept: {error}", file=sys.stderr)
    restart = document.get("restart_needed")
    if isinstance(restart, list) and restart:
        file = visible(str(document.get("config_file") or "the config file"))
        keys = visible(", ".join(map(str, restart)))
        print(f"warning: saved in {file}, waiting for a restart: {keys}", file=sys.stderr)
    down = any(s["status"] == "down" for s in document["services"])
    return EXIT_DOWN if down else EXIT_OK


def history(name: str, window: str, fmt: str, config: Path | None) -> int:
    """Print one service's history straight from the store (healthmon need not run)."""
    try:
        settings, _ = settings_for_run(config)
    except ConfigError as exc:
        print(f"healthmon: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not settings.history.enabled:
        print("healthmon: history is off ([history] enabled = false)", file=sys.stderr)
        return EXIT_USAGE
    if settings.service(name) is None:
        known = ", ".join(s.name for s in settings.services) or "none"
        print(f"healthmon: no service named {name!r} (configured: {known})", file=sys.stderr)
        return EXIT_USAGE
    base = (config or DEFAULT_CONFIG).resolve().parent
    try:
        text = asyncio.run(_read_history(settings, base, name, window, fmt))
    except (StoreUnusable, StoreError) as exc:
        print(f"healthmon: cannot read history: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(text)
    return EXIT_OK


async def _read_history(settings: Settings, base: Path, name: str, window: str, fmt: str) -> str:
    store = create_store(settings.history, base)
    path = sqlite_path(settings.history, base)
    if path is not None and not await asyncio.to_thread(path.exists):
        raise StoreUnusable(f"no history yet at {path} (healthmon run writes it)")
    await store.open()
    try:
        if fmt in ("csv", "jsonl"):
            return (await reports.export(store, [name], window, fmt)).rstrip("\n")
        document = await reports.service_history(store, name, window)
    finally:
        await store.close()
    if fmt == "json":
        return json.dumps(document, indent=2)
    return visible_lines(reports.render_text(document))


def visible_lines(text: str) -> str:
    # Reasons are what a service sent: no control character reaches the terminal.
    return "\n".join(visible(line) for line in text.split("\n"))


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop if asked for or, with ``auto``, if installed; None for asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise StartupError(
                "--loop uvloop needs uvloop: pip install 'healthmon[fast]'"
            ) from None
        return None
    return uvloop.new_event_loop


def run(
    config: Path | None,
    roles: frozenset[str],
    log_level: str,
    loop: str = "auto",
    log_format: LogFormat = "auto",
) -> int:
    configure_logging(log_level, fmt=log_format)
    # Exit 2: what the file, the environment or the flags say cannot be used.
    try:
        settings, path = settings_for_run(config)
    except ConfigError as exc:
        print(f"healthmon: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        check_roles(settings, roles)
    except StartupError as exc:
        print(f"healthmon: cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # Exit 1: this machine cannot run it now (a port taken, a broker away, an extra missing).
    try:
        with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
            runner.run(serve(settings, roles, config_path=path))
    except StartupError as exc:
        print(f"healthmon: cannot start: {exc}", file=sys.stderr)
        return EXIT_DOWN
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A reader that stops early (``healthmon check-config | head``) ends
    it quietly, with the status a shell gives a command killed by SIGPIPE, not a traceback.
    """
    try:
        return _dispatch(argv)
    except BrokenPipeError:
        # Python's own advice: point stdout at devnull so the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + int(signal.SIGPIPE)


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "init":
        return init(args.path, args.force, args.port, args.mock_ports)
    if args.command == "check-config":
        return check_config(args.path)
    if args.command == "status":
        return status(args.url, args.config)
    if args.command == "history":
        return history(args.name, args.window, args.format, args.config)
    if args.command == "alert":
        return alert_test(args.channel, args.config)
    return run(args.config, args.role, args.log_level, args.loop, args.log_format)
