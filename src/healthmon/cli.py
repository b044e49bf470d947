"""Command line: ``healthmon [run] | init | check-config | status | history NAME``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from healthmon import reports
from healthmon.app import ROLES, check_roles, serve
from healthmon.config import (
    DEFAULT_CONFIG,
    ConfigError,
    Settings,
    demo_settings,
    load_settings,
    starter_text,
)
from healthmon.errors import StartupError
from healthmon.logs import LOG_FORMATS, LogFormat, configure_logging, visible
from healthmon.reports import WINDOWS
from healthmon.store import StoreError, StoreUnusable, create_store, sqlite_path

EXIT_OK, EXIT_DOWN, EXIT_USAGE = 0, 1, 2
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


def build_parser() -> argparse.ArgumentParser:
    run_options = _Parser(add_help=False)
    run_options.add_argument(
        "--config", type=Path, default=None, help="TOML file to read (default: ./config.toml)"
    )
    run_options.add_argument(
        "--role",
        type=parse_roles,
        default=ROLES,
        help="what this process runs: all (default) or a comma list of mocks, monitor, ws",
    )
    run_options.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    run_options.add_argument(
        "--log-format",
        default="auto",
        choices=LOG_FORMATS,
        help="classroom (one short line per event), console, json; "
        "auto (default): classroom on a terminal, json when piped",
    )
    run_options.add_argument(
        "--loop",
        default="auto",
        choices=["auto", "asyncio", "uvloop"],
        help="event loop: uvloop when installed (pip install 'healthmon[fast]'), else asyncio",
    )
    parser = _Parser(
        prog="healthmon",
        description="Real-time service health monitor: mocks, checker, broker, hub, page.",
        parents=[run_options],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "run",
        parents=[run_options],
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
    check = commands.add_parser(
        "check-config",
        help="validate a config file and list its services",
        description="Validate a config file; exit 0 when valid, 2 when not.",
    )
    check.add_argument("path", nargs="?", type=Path, default=None, help="default: ./config.toml")
    status = commands.add_parser(
        "status",
        help="print a running server's statuses",
        description="Print the statuses of a running healthmon; exit 1 when any service is down, "
        "2 when the server cannot be reached.",
    )
    status.add_argument("--url", default="http://127.0.0.1:4000", help="healthmon's web address")
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
        "--config", type=Path, default=None, help="TOML file to read (default: ./config.toml)"
    )
    return parser


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


def init(path: Path, force: bool = False) -> int:
    """Write the starter config; never over an existing file unless ``force``."""
    if path.is_dir():
        path = path / DEFAULT_CONFIG.name
    try:
        with path.open("w" if force else "x", encoding="utf-8") as out:
            out.write(starter_text())
    except FileExistsError:
        print(f"healthmon: {path} already exists; keep it, or use --force", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"healthmon: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    run_hint = "healthmon run" + ("" if path == DEFAULT_CONFIG else f" --config {path}")
    print(f"wrote {path}: check it with healthmon check-config, start with {run_hint}")
    return EXIT_OK


def settings_for_run(config: Path | None) -> Settings:
    """The given file, ./config.toml, or (with neither) the built-in demo, said in one line."""
    if config is None and not DEFAULT_CONFIG.exists():
        print(f"healthmon: {NO_CONFIG}", file=sys.stderr)
        return demo_settings()
    return load_settings(config)


def status(url: str) -> int:
    target = url.rstrip("/") + "/api/services"
    try:
        with urllib.request.urlopen(target, timeout=5) as response:
            document: dict[str, Any] = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"healthmon: cannot read {target}: {visible(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    rows = [["SERVICE", "STATUS", "LATENCY", "REASON"]]
    for service in document["services"]:
        latency = service.get("latency_ms")
        rows.append(
            [
                str(service["name"]),
                str(service["status"]),
                "-" if latency is None else f"{latency:.0f} ms",
                str(service.get("reason") or ""),
            ]
        )
    print(_table(rows))
    monitor = document.get("monitor", {})
    if not monitor.get("alive"):
        print("warning: the monitor is silent; these statuses may be stale", file=sys.stderr)
    down = any(s["status"] == "down" for s in document["services"])
    return EXIT_DOWN if down else EXIT_OK


def history(name: str, window: str, fmt: str, config: Path | None) -> int:
    """Print one service's history straight from the store (healthmon need not run)."""
    try:
        settings = settings_for_run(config)
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
        settings = settings_for_run(config)
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
            runner.run(serve(settings, roles, config_path=config))
    except StartupError as exc:
        print(f"healthmon: cannot start: {exc}", file=sys.stderr)
        return EXIT_DOWN
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "init":
        return init(args.path, args.force)
    if args.command == "check-config":
        return check_config(args.path)
    if args.command == "status":
        return status(args.url)
    if args.command == "history":
        return history(args.name, args.window, args.format, args.config)
    return run(args.config, args.role, args.log_level, args.loop, args.log_format)
