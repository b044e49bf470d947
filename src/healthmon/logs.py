"""structlog, configured once at start: pretty on a terminal, JSON lines otherwise.

Text that came from outside (a service's reason, a request's Host) may carry
control characters; no log line and no command output shows them raw: ESC
is written ``\\x1b``, so nothing a service sends can drive the reader's terminal.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# C1 and DEL, and the bidirectional marks, overrides and isolates that can
# reorder what a terminal shows; then C0 without and with tab and line feed.
_OTHER = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f{_OTHER}]")
# Tabs and line feeds stay here: a traceback keeps its layout.
_CONTROL_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHER}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with every control character written out (ESC becomes ``\\x1b``).

    With ``keep_lines``, tabs and line feeds stay (a traceback's layout).
    """
    return (_CONTROL_BUT_LINES if keep_lines else _CONTROL).sub(_escape, text)


def _visible_value(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {key: _visible_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_visible_value(item) for item in value)
    return value


def escape_control_characters(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: every string value, nested ones too, made visible."""
    for key, value in event_dict.items():
        if key == "exception" and isinstance(value, str):
            event_dict[key] = visible(value, keep_lines=True)
        else:
            event_dict[key] = _visible_value(value)
    return event_dict


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    renderer: structlog.typing.Processor
    if stream.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            escape_control_characters,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # aiohttp and asyncio log through the standard library; keep their
    # warnings and errors, in the same stream.
    logging.basicConfig(
        stream=stream, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
