"""The terminal's log formats: classroom lines on a terminal, JSON lines when piped."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import unused_port

from healthmon.cli import build_parser
from healthmon.logs import ClassroomRenderer, LogFormat, configure_logging
from tests.support import run_in_folder

ESC = "\x1b"
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
HOSTILE = f"{ESC}]0;pwned\x07\u202e{ESC}[2J db gone\r\n\x9b1m"
TIME = re.compile(r"^\d\d:\d\d:\d\d  ")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def india() -> Iterator[None]:
    """This process's local time zone is UTC+05:30 for the test (the shown time is local)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def render(
    method: str,
    event: str,
    stream: io.StringIO | None = None,
    fmt: LogFormat = "classroom",
    **kw: Any,
) -> str:
    """``event`` logged through the configured pipeline into ``stream``; what it wrote."""
    stream = stream if stream is not None else io.StringIO()
    configure_logging("debug", stream, fmt=fmt)
    getattr(structlog.get_logger("test"), method)(event, **kw)
    return stream.getvalue()


def change(reason: str, was: str | None = "up", to: str = "down", **kw: Any) -> dict[str, Any]:
    """The keyword arguments the monitor logs a status change with."""
    return {"service": "billing", "reason": reason, "latency_ms": 1.2, "from": was, "to": to, **kw}


def test_a_status_change_is_one_line_service_first_in_local_time(india: None) -> None:
    """A status change reads time (local HH:MM:SS), service, new state, old state, reason."""
    before = time.time()
    out = render("info", "status.changed", **change("connection refused"))
    after = time.time()
    shown = {time.strftime("%H:%M:%S", time.localtime(t)) for t in (before, after)}
    utc = {time.strftime("%H:%M:%S", time.gmtime(t)) for t in (before, after)}
    assert not shown & utc, "the zone under test must differ from UTC"
    assert out.count("\n") == 1
    assert out[:8] in shown
    assert out[8:] == "  billing        ✕ down      ← up        connection refused\n"


def test_the_time_is_the_local_clock_without_date_or_microseconds(india: None) -> None:
    """A UTC ISO timestamp is shown as this machine's local HH:MM:SS, nothing more."""
    renderer = ClassroomRenderer()
    line = renderer(
        None, "info", {"event": "monitor.silent", "timestamp": "2024-03-05T08:30:15.123456Z"}
    )
    assert line.startswith("14:00:15  monitor        ? silent")


def test_a_300_character_reason_is_cut_to_one_line_of_100() -> None:
    """A long reason is cut with an ellipsis so the status change stays one line of ≤ 100."""
    reason = "HTTP 503: " + "x" * 290
    out = render("info", "status.changed", **change(reason, to="degraded"))
    line = out.rstrip("\n")
    assert "\n" not in line
    assert len(line) == 100
    assert line.endswith("x…")
    assert line[10:].startswith("billing        ▲ degraded  ← up        1 ms  HTTP 503: xxx")


@pytest.mark.parametrize(
    ("method", "event", "kw", "shown"),
    [
        (
            "info",
            "status.changed",
            change("ok", was=None, to="up"),
            "billing        ✓ up        first check  1 ms  ok",
        ),
        (
            "info",
            "status.stale",
            {"service": "billing", "age_ms": 3012},
            "billing        ? stale     no fresh check for 3.01 s",
        ),
        (
            "info",
            "status.stale",
            {"service": "billing"},
            "billing        ? stale     no fresh check",
        ),
        (
            "info",
            "status.fresh",
            {"service": "billing"},
            "billing          fresh     checks arrive again",
        ),
        (
            "info",
            "monitor.silent",
            {"monitor": "m1"},
            "monitor        ? silent    no heartbeat: statuses may be out of date  id m1",
        ),
        ("info", "monitor.alive", {"monitor": "m1"}, "monitor        ✓ alive     id m1"),
        (
            "info",
            "config.applied",
            {"added": ["payments"], "removed": [], "changed": ["auth"], "keys": []},
            "config           applied   added payments  changed auth",
        ),
        (
            "error",
            "config.invalid",
            {
                "error": "services[0].url: not a URL",
                "kept": "the running configuration",
            },
            "config         ✕ invalid   running config kept  services[0].url: not a URL",
        ),
        (
            "error",
            "config.invalid",
            {"error": "b.toml:3: web.prot: unknown key", "file": "b.toml", "kept": "..."},
            "config         ✕ invalid   running config kept  b.toml:3: web.prot: unknown key",
        ),
        (
            "info",
            "config.applied",
            {"file": "b.toml", "added": [], "keys": [], "reverted": ["web.port"]},
            "config           applied   web.port back as running (no restart needed)  in b.toml",
        ),
        (
            "warning",
            "config.restart_needed",
            {"keys": ["web.port"], "file": "b.toml", "kept": "the running values"},
            "config         ▲ restart   needed for web.port  in b.toml",
        ),
        (
            "info",
            "mock.mode",
            {"service": "billing", "from": "up", "to": "down"},
            "billing          mock      set to down, was up",
        ),
        (
            "info",
            "component.switched",
            {"component": "monitor", "running": False},
            "monitor          off       switched by a control request",
        ),
        (
            "info",
            "board.corrected",
            {"service": "auth", "monitor": "m1", "from": "up", "to": "down"},
            "auth           ✕ down      ← up        corrected by a heartbeat",
        ),
        (
            "warning",
            "rabbitmq.lost",
            {"url": "amqp://h/", "error": "reset"},
            "rabbitmq       ▲ lost      url=amqp://h/  error=reset",
        ),
        (
            "info",
            "ws.snapshot_incomplete",
            {"missing": ["a", "b"]},
            "ws               snapshot incomplete  missing=a, b",
        ),
    ],
)
def test_each_event_kind_has_its_fixed_order(
    method: str, event: str, kw: dict[str, Any], shown: str
) -> None:
    """Each kind of event shows the service or part, a shape and word, then its values in order."""
    out = render(method, event, **kw)
    assert TIME.match(out), out
    assert out[10:] == shown + "\n"


STARTED = {
    "roles": ["mocks", "monitor", "ws"],
    "broker": "memory",
    "loop": "uvloop",
    "websocket": "ws://localhost:4000/ws",
    "api": "http://localhost:4000/api/services",
    "mocks": {"auth": "http://127.0.0.1:3001/analytics"},
}


@pytest.mark.parametrize(
    ("width", "page", "shown"),
    [
        (
            80,
            "http://localhost:4000/",
            "healthmon        started   http://localhost:4000/  broker memory  rol…",
        ),
        (
            80,
            "http://classroom-12.physics.example.org:4000/",
            "healthmon        started   http://classroom-12.physics.example.org:4000/",
        ),
        (
            60,
            "http://classroom-12.physics.example.org:4000/",
            "healthmon        started   http://classroom-12.physics.example.org:4000/",
        ),
        (
            160,
            "http://localhost:4000/",
            "healthmon        started   http://localhost:4000/  broker memory  "
            "roles mocks, monitor, ws  loop uvloop  mocks=auth http://127.0.0.1:3001/analytics",
        ),
    ],
)
def test_the_start_line_keeps_the_page_address_whole(width: int, page: str, shown: str) -> None:
    """On an 80-column (or narrower) terminal the page's address is never cut; the rest may be."""
    line = ClassroomRenderer(width=width)(
        None, "info", {"event": "healthmon.started", "page": page, **STARTED}
    )
    assert line[10:] == shown
    assert len(line) <= width or line.endswith(page)


def test_a_lone_monitor_start_line_keeps_its_address_whole() -> None:
    """A monitor started alone shows its own address first, whole, as a page's would be."""
    url = "http://monitor-host.example.org:3000/api/statuses"
    line = ClassroomRenderer(width=80)(
        None, "info", {"event": "healthmon.started", "roles": ["monitor"], "monitor": url}
    )
    assert line[10:] == f"healthmon        started   {url}"


def test_the_alias_config_reloaded_is_one_line_in_json_and_none_in_classroom() -> None:
    """config.reloaded repeats config.applied: JSON keeps it for scripts, the classroom skips it."""
    assert render("info", "config.reloaded", added=["x"]) == ""
    assert json.loads(render("info", "config.reloaded", fmt="json", added=["x"]))["added"] == ["x"]


def test_a_crash_prints_its_whole_traceback_below_its_line() -> None:
    """task.crashed keeps one cut line, then the traceback in full beneath it."""
    stream = io.StringIO()
    configure_logging("info", stream, fmt="classroom")
    try:
        raise RuntimeError("boom " + "y" * 200)
    except RuntimeError:
        structlog.get_logger("test").exception("task.crashed", task="board", restart_in_s=0.1)
    first, *trace = stream.getvalue().splitlines()
    assert first[10:] == "board          ✕ crashed   restart in 0.1 s"
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-1] == "RuntimeError: boom " + "y" * 200


@pytest.mark.parametrize(
    ("to", "code"), [("up", "\x1b[32m"), ("degraded", "\x1b[33m"), ("down", "\x1b[1;31m")]
)
def test_a_terminal_gets_the_state_coloured(
    monkeypatch: pytest.MonkeyPatch, to: str, code: str
) -> None:
    """On a terminal without NO_COLOR, the state's shape and word carry its colour."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = render("info", "status.changed", Terminal(), **change("r", to=to))
    assert re.search(rf"{re.escape(code)}. {to}\x1b\[0m", out), out
    assert len(COLOUR.sub("", out).rstrip("\n")) <= 100


def test_no_colour_with_no_color_or_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR, or a stream that is not a terminal, gets the shapes and no escape at all."""
    monkeypatch.setenv("NO_COLOR", "1")
    on_terminal = render("info", "status.changed", Terminal(), **change("r"))
    monkeypatch.delenv("NO_COLOR")
    piped = render("info", "status.changed", io.StringIO(), **change("r"))
    for out in (on_terminal, piped):
        assert ESC not in out
        assert "✕ down" in out


def test_auto_is_classroom_on_a_terminal_and_json_when_piped() -> None:
    """The default format follows the stream: classroom lines on a terminal, JSON otherwise."""
    piped = json.loads(render("info", "status.changed", io.StringIO(), fmt="auto", **change("r")))
    assert piped["service"] == "billing"
    assert piped["to"] == "down"
    assert piped["timestamp"].endswith("Z")
    on_terminal = COLOUR.sub(
        "", render("info", "status.changed", Terminal(), fmt="auto", **change("r"))
    )
    assert TIME.match(on_terminal)
    assert "billing        ✕ down" in on_terminal


@pytest.mark.parametrize("stream_class", [Terminal, io.StringIO])
def test_control_characters_never_reach_the_terminal(stream_class: type[io.StringIO]) -> None:
    """A hostile reason and service name are written as escapes, colour or not."""
    out = render("info", "status.changed", stream_class(), **change(HOSTILE, service=f"x{ESC}[2J"))
    text = COLOUR.sub("", out)
    for raw in (ESC, "\x07", "\x9b", "\u202e", "\r"):
        assert raw not in text
    assert text.count("\n") == 1
    assert "x\\x1b[2J" in text
    assert "\\x1b]0;pwned\\x07\\u202e\\x1b[2J db gone\\x0d\\x0a\\x9b1m" in text


def test_a_cut_never_splits_an_escape() -> None:
    """Cutting a long escaped reason ends at a whole escape, not at half of one."""
    out = render("info", "status.changed", **change("\x1b" * 200))
    assert out.rstrip("\n").endswith("\\x1b…")


def test_the_run_command_takes_a_log_format() -> None:
    """run (and the bare command) accept --log-format, auto by default."""
    parser = build_parser()
    assert parser.parse_args(["run"]).log_format == "auto"
    assert parser.parse_args(["run", "--log-format", "classroom"]).log_format == "classroom"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--log-format", "xml"])


async def test_a_piped_run_can_still_ask_for_classroom_lines(tmp_path: Path) -> None:
    """healthmon run --log-format classroom writes classroom lines even into a pipe."""
    services = [{"name": "auth", "url": f"http://127.0.0.1:{unused_port()}", "mock": True}]
    async with run_in_folder(tmp_path, "--log-format", "classroom", services=services) as (
        _,
        log,
        _port,
    ):
        while True:
            line = (await asyncio.wait_for(log.readline(), 30)).decode()
            assert line, "healthmon exited before the service's first check"
            if " auth " in line:
                break
        assert TIME.match(line), line
        assert line[10:].startswith("auth           ✓ up        first check  ")
