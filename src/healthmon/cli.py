"""Command line: ``healthmon [--config PATH] [--role ROLES]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from healthmon.app import ROLES, serve
from healthmon.broker import BrokerExtraMissing
from healthmon.config import ConfigError, load_settings
from healthmon.errors import StartupError
from healthmon.logs import configure_logging


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="healthmon",
        description="Real-time service health monitor: mocks, checker, broker, hub, page.",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML file to read (default: ./config.toml)"
    )
    parser.add_argument(
        "--role",
        type=parse_roles,
        default=ROLES,
        help="what this process runs: all (default) or a comma list of mocks, monitor, ws",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"healthmon: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings, args.role))
    except (StartupError, BrokerExtraMissing) as exc:
        print(f"healthmon: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
