"""structlog, configured once at start: classroom lines on a terminal, JSON lines otherwise.

The classroom format is one short line per event, made to be read on a
projector: local ``HH:MM:SS``, the service (or the part that spoke), the state
with a shape as well as a colour (✓ up, ▲ degraded, ✕ down, ? stale or
unknown), then the few values that matter in a fixed order, cut to the line.

Text that came from outside (a service's reason, a request's Host) may carry
control characters; no log line and no command output shows them raw: ESC
is written ``\\x1b``, so nothing a service sends can drive the reader's terminal.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, MutableMapping
from datetime import datetime
from typing import Any, Literal, TextIO

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


# -- the classroom format --------------------------------------------------

LogFormat = Literal["auto", "classroom", "console", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "classroom", "console", "json")

# The line never wraps on a terminal this wide (or on the real one, if it says).
DEFAULT_WIDTH = 100
_SUBJECT = 14  # the service, or the part that spoke
_VERB = 10  # a shape and a word: "▲ degraded"
_LONGEST_SUBJECT = 24

_GREEN, _AMBER, _RED, _GREY = "\x1b[32m", "\x1b[33m", "\x1b[1;31m", "\x1b[90m"
_RESET = "\x1b[0m"
# A shape as well as a colour: it reads in black and white and on a projector.
_STATES: dict[str, tuple[str, str]] = {
    "up": ("✓", _GREEN),
    "degraded": ("▲", _AMBER),
    "down": ("✕", _RED),
    "stale": ("?", _GREY),
    "unknown": ("?", _GREY),
}
_LEVELS: dict[str, str] = {"warning": "degraded", "error": "down", "critical": "down"}
# Never shown as key=value: the line or the traceback already says them.
_HIDDEN = frozenset({"event", "timestamp", "level", "exception", "exc_info", "stack", "logger"})
# Events that say again what the line before said (kept in JSON for scripts).
_ALIASES = frozenset({"config.reloaded"})


class _Line:
    """One event's parts, before layout: who, what state, what word, then details."""

    def __init__(self, event_dict: MutableMapping[str, Any]) -> None:
        self.rest = {k: v for k, v in event_dict.items() if k not in _HIDDEN}
        event = str(event_dict.get("event", ""))
        area, _, what = event.partition(".")
        self.subject: str = str(self.rest.pop("service", None) or (area if what else "healthmon"))
        self.word: str = (what or area).replace("_", " ")
        self.state: str | None = None
        self.details: list[str] = []
        # Shown first and never cut (an address to open or copy).
        self.whole: str | None = None

    def take(self, key: str) -> Any:
        """The value under ``key``, now shown in its own place (None if absent)."""
        return self.rest.pop(key, None)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_text(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{key} {_text(item)}" for key, item in value.items())
    return str(value)


def _duration(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return _text(ms)
    return f"{ms / 1000:.3g} s" if ms >= 1000 else f"{ms:.0f} ms"


def _status_changed(line: _Line) -> None:
    line.state = line.word = _text(line.take("to"))
    was, latency, reason = line.take("from"), line.take("latency_ms"), line.take("reason")
    line.details.append("first check" if was is None else f"← {_text(was)}".ljust(_VERB))
    # A service that did not answer has no latency worth showing.
    if latency is not None and line.state != "down":
        line.details.append(_duration(latency))
    if reason:
        line.details.append(_text(reason))


def _board_corrected(line: _Line) -> None:
    line.state = line.word = _text(line.take("to"))
    line.take("monitor")
    line.details += [f"← {_text(line.take('from'))}".ljust(_VERB), "corrected by a heartbeat"]


def _stale(line: _Line) -> None:
    line.state = "stale"
    age, bound, status = line.take("age_ms"), line.take("stale_after_ms"), line.take("status")
    if age is not None:
        line.details.append(f"no fresh check for {_duration(age)}")
    elif bound is not None:
        line.details.append(f"no fresh check in {_duration(bound)}")
    else:
        line.details.append("no fresh check")
    if status is not None:
        line.details.append(f"last known {_text(status)}")


def _fresh(line: _Line) -> None:
    line.details.append("checks arrive again")


def _monitor(state: str | None, *said: str) -> Callable[[_Line], None]:
    def build(line: _Line) -> None:
        line.subject, line.state = "monitor", state
        services = line.take("services")
        if services is not None:
            line.details.append(f"{_text(services)} services")
        line.details += said
        monitor = line.take("monitor")
        if monitor:
            line.details.append(f"id {_text(monitor)}")

    return build


def _config_file(line: _Line) -> None:
    file = line.take("file")
    if file:
        line.details.append(f"in {_text(file)}")


def _config_applied(line: _Line) -> None:
    for key, label in (("added", "added"), ("removed", "removed"), ("changed", "changed")):
        names = line.take(key)
        if names:
            line.details.append(f"{label} {_text(names)}")
    keys = line.take("keys")
    if keys:
        line.details.append(f"settings {_text(keys)}")
    reverted = line.take("reverted")
    if reverted:
        line.details.append(f"{_text(reverted)} back as running (no restart needed)")
    if not line.details:
        line.details.append("no service changed")
    _config_file(line)


def _config_invalid(line: _Line) -> None:
    line.take("kept")
    # The error names the file (or the variable) already.
    line.take("file")
    line.details += ["running config kept", _text(line.take("error"))]


def _restart_needed(line: _Line) -> None:
    line.take("kept")
    line.word = "restart"
    line.details.append(f"needed for {_text(line.take('keys'))}")
    _config_file(line)


def _mock_mode(line: _Line) -> None:
    line.word = "mock"
    line.details.append(f"set to {_text(line.take('to'))}, was {_text(line.take('from'))}")


def _component_switched(line: _Line) -> None:
    line.subject = _text(line.take("component"))
    line.word = "on" if line.take("running") else "off"
    line.details.append("switched by a control request")


def _task_crashed(line: _Line) -> None:
    line.subject = _text(line.take("task"))
    line.word = "crashed"
    restart, error = line.take("restart_in_s"), line.take("error")
    if error == "returned":
        line.details.append("it returned")
    elif error is not None:
        line.details.append(_text(error))
    if restart is not None:
        line.details.append(f"restart in {_text(restart)} s")


def _history_problem(line: _Line) -> None:
    line.take("kind")
    line.details.append(_text(line.take("error")))


def _history_where(line: _Line) -> None:
    line.details.append(_text(line.take("where")))


def _alert(line: _Line) -> None:
    """``hook  sent  billing is down  key …  attempt 1  12 ms  answer 200 ok``: one per try."""
    channel = line.take("channel")
    if channel is not None:
        line.subject = _text(channel)
    for key in ("title", "why"):
        value = line.take(key)
        if value is not None:
            line.details.append(_text(value))
    key, attempt = line.take("key"), line.take("attempt")
    if key is not None:
        line.details.append(f"key {_text(key)}")
    if attempt is not None:
        line.details.append(f"attempt {_text(attempt)}")
    took, wait = line.take("took_ms"), line.take("in_s")
    if took is not None:
        line.details.append(_duration(took))
    if wait is not None:
        line.details.append(f"again in {_text(wait)} s")
    answer = line.take("answer")
    if answer is not None:
        line.details.append(f"answer {_text(answer)}")


def _started(line: _Line) -> None:
    line.take("websocket")
    line.take("api")
    # The address to open: the page, or a lone monitor's; never cut.
    page = line.take("page")
    monitor = None if page else line.take("monitor")
    if page or monitor:
        line.whole = _text(page or monitor)
    for key in ("broker", "roles", "loop"):
        value = line.take(key)
        if value is not None:
            line.details.append(f"{key} {_text(value)}")


# The few values that matter, in a fixed order, per kind of event; any other
# key follows as key=value, in the order the code logged it.
_KINDS: dict[str, Callable[[_Line], None]] = {
    "status.changed": _status_changed,
    "board.corrected": _board_corrected,
    "status.stale": _stale,
    "status.fresh": _fresh,
    "monitor.alive": _monitor("up"),
    "monitor.silent": _monitor("unknown", "no heartbeat: statuses may be out of date"),
    "monitor.started": _monitor(None),
    "monitor.stopped": _monitor(None),
    "config.applied": _config_applied,
    "config.invalid": _config_invalid,
    "config.restart_needed": _restart_needed,
    "mock.mode": _mock_mode,
    "component.switched": _component_switched,
    "task.crashed": _task_crashed,
    "healthmon.started": _started,
    "history.unusable": _history_problem,
    "history.error": _history_problem,
    "history.opened": _history_where,
    "history.writing": _history_where,
    "history.recovered": _history_where,
    "alert.sent": _alert,
    "alert.retrying": _alert,
    "alert.failed": _alert,
    "alert.held": _alert,
}
# Lines that say what to do about a problem are never cut to the terminal's width.
_WHOLE = frozenset({"history.unusable", "history.error"})


def _clock(timestamp: Any) -> str:
    """``HH:MM:SS`` in this machine's time zone, as the page shows time."""
    moment: datetime
    if isinstance(timestamp, int | float):
        moment = datetime.fromtimestamp(timestamp).astimezone()
    else:
        try:
            moment = datetime.fromisoformat(str(timestamp)).astimezone()
        except ValueError:
            moment = datetime.now().astimezone()
    return moment.strftime("%H:%M:%S")


# The tail of an escape a cut would split (``\x1`` of ``\x1b``): cut before it.
_SPLIT_ESCAPE = re.compile(r"\\(?:x[0-9a-f]?|u[0-9a-f]{0,3})?$")


def _cut(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    return _SPLIT_ESCAPE.sub("", text[: max(room - 1, 0)]) + "…"


class ClassroomRenderer:
    """A structlog renderer: one short line per event, the service first, colour by state."""

    def __init__(
        self, *, colour: bool = False, width: int | None = None, stream: TextIO | None = None
    ) -> None:
        self.colour = colour
        self.width = width
        self.stream = stream

    def _room(self) -> int:
        if self.width is not None:
            return self.width
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns if self.stream else 0
        except (OSError, ValueError, AttributeError):
            columns = 0
        # A pipe or a test stream says 0: keep to the width a class can read.
        return max(columns, 40) if columns else DEFAULT_WIDTH

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        event = str(event_dict.get("event", ""))
        if event in _ALIASES:
            raise structlog.DropEvent
        line = _Line(event_dict)
        build = _KINDS.get(event)
        if build is not None:
            build(line)
        line.details += [f"{key}={_text(value)}" for key, value in line.rest.items()]
        state = line.state or _LEVELS.get(str(event_dict.get("level", method)))
        shape, paint = _STATES.get(state or "", ("", ""))
        subject = _cut(visible(line.subject), _LONGEST_SUBJECT).ljust(_SUBJECT)
        verb = visible(f"{shape or ' '} {line.word}")
        head = f"{_clock(event_dict.get('timestamp'))}  {subject} "
        details = visible("  ".join(d for d in line.details if d))
        room = self._room() - len(head) - max(len(verb), _VERB) - 2
        text = details if event in _WHOLE else _cut(details, room) if details else ""
        if line.whole is not None:
            whole = visible(line.whole)
            # What fits after it, when enough room is left to be worth reading.
            rest = room - len(whole) - 2
            text = whole + (f"  {_cut(details, rest)}" if details and rest >= 8 else "")
        if self.colour and paint:
            verb_shown = f"{paint}{verb}{_RESET}" + " " * (_VERB - len(verb))
        else:
            verb_shown = verb.ljust(_VERB)
        rendered = f"{head}{verb_shown}  {text}".rstrip()
        # A crash keeps its whole traceback, below its line.
        trace = event_dict.get("exception")
        if isinstance(trace, str) and trace:
            rendered += "\n" + visible(trace.rstrip("\n"), keep_lines=True)
        return rendered


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


class _VisibleFormatter(logging.Formatter):
    """The standard library's records (aiohttp, asyncio), control characters written out."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record), keep_lines=True)


def configure_logging(
    level: str = "info", stream: TextIO | None = None, fmt: LogFormat = "auto"
) -> None:
    """structlog for the whole process: ``fmt`` picks the format, ``auto`` by the stream."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "classroom" if stream.isatty() else "json"
    renderer: structlog.typing.Processor
    if fmt == "classroom":
        renderer = ClassroomRenderer(colour=use_colour(stream), stream=stream)
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=use_colour(stream), sort_keys=False)
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
    handler = logging.StreamHandler(stream)
    if fmt == "classroom":
        handler.setFormatter(
            _VisibleFormatter("%(asctime)s  %(name)-14s %(levelname)s: %(message)s", "%H:%M:%S")
        )
    else:
        handler.setFormatter(_VisibleFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.WARNING)
