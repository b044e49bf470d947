"""Property tests: every config check-config accepts runs; every one it refuses is one line.

Configs are generated with odd but legal names, unicode, paths with queries,
fragments, percent-escapes and router-special characters, every kind of
check, and environment overrides of every type of field. What ``check-config``
accepts, the app starts with (in process, on free loopback ports), serves
every mock's health and data path, and reloads out of and back into; what it
refuses it says in one line, with exit 2. A few examples run as real
``python -m healthmon`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from yarl import URL

from healthmon import cli
from healthmon.app import create_app
from healthmon.checks.base import CheckSpec
from healthmon.checks.http import check_once
from healthmon.config import Settings, load_settings
from healthmon.keys import CONFIG
from healthmon.models import Status
from healthmon.reload import RELOADER
from tests.support import free_ports

# -- generating configs -------------------------------------------------------------

# Path characters: plain, router-special and unicode; then those a client would change.
LEGAL_CHARS = "abzAZ09-._~!$&'()*+,;=:@{}[]|^`\"<>é中€"
ODD_CHARS = " \t\x7f\\#"
LEGAL_ESCAPES = ["%20", "%2F", "%7B", "%E2%82%AC", "%2e%2e%2e"]
ODD_ESCAPES = ["%zz", "%"]


@dataclass(frozen=True)
class Values:
    """The values one field may take: legal ones, and (for odd configs) refused ones too."""

    legal: st.SearchStrategy[Any]
    refused: st.SearchStrategy[Any]

    def any(self, odd: bool) -> st.SearchStrategy[Any]:
        return self.legal | self.refused if odd else self.legal


def _path_of(chars: str, escapes: list[str], dots: bool) -> st.SearchStrategy[str]:
    segment = st.lists(st.text(chars, max_size=4) | st.sampled_from(escapes), max_size=3).map(
        "".join
    )
    if dots:
        segment |= st.sampled_from([".", ".."])
    queries = st.just("") | st.text(chars + "?/=&", max_size=8).map(lambda q: "?" + q)
    return st.builds(
        lambda parts, q: "/" + "/".join(parts) + q, st.lists(segment, max_size=3), queries
    )


PATHS = Values(
    _path_of(LEGAL_CHARS, LEGAL_ESCAPES, dots=False)
    | st.sampled_from(["/readyz?verbose", "/{", "/he{alth}", "/", "//x", "/a?b?c", "/é?ü=ö"]),
    _path_of(LEGAL_CHARS + ODD_CHARS, LEGAL_ESCAPES + ODD_ESCAPES, dots=True)
    | st.sampled_from(["health", "/a#frag", "/a/../b"]),
)
NAMES = Values(
    st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(lambda n: n not in (".", "..")),
    st.sampled_from([".", "..", "a b", "x" * 65, "Ünï"]),
)
MILLIS = Values(st.sampled_from([50, 200, 1500]), st.sampled_from([0, -5, 4_000_000]))
EXPECTED = Values(
    st.sampled_from([200, "2xx", "200-299", [200, 304], ["2xx", "5xx"], 404]),
    st.sampled_from(["abc", 99, "300-200"]),
)
HEADER_NAMES = Values(st.sampled_from(["X-Token", "Authorization"]), st.just("Bad Name"))
HEADER_VALUES = Values(
    st.sampled_from(["v", "Bearer ${HM_PROP_TOKEN}"]), st.sampled_from(["${HM_PROP_UNSET}", "a\nb"])
)
BASES = Values(st.sampled_from(["", "", "/api", "/x/", "/é"]), st.sampled_from(["/a b", "/a/.."]))
HOSTS = Values(st.sampled_from(["x.example", "*.lan"]), st.just("h:1"))

# Every type of field, plain and in JSON: legal values, then values refused.
ENVIRONMENT: dict[str, tuple[list[str], list[str]]] = {
    "HEALTHMON_WEB__CORS_ORIGINS": (
        ["http://a.example", '["http://a.example", "http://b.example"]'],
        ["http://a,http://b", "[broken"],
    ),
    "HEALTHMON_WEB__ALLOWED_HOSTS": (["status.example.org", "*.example.org"], ["a.lan:80"]),
    "HEALTHMON_WEB__FRAME_ANCESTORS": (["'self'", "'none'"], ["a;b"]),
    "HEALTHMON_WEB__CONTROL_TOKEN": (["s3cret"], []),
    "HEALTHMON_MONITOR__INTERVAL_MS": (["100"], ["0", "abc"]),
    "HEALTHMON_MONITOR__VERIFY_TLS": (["true", "0"], ["maybe"]),
    "HEALTHMON_MONITOR__EXPECTED_STATUS": (["2xx", "200", "[200, 304]"], ["200,304", "600"]),
    "HEALTHMON_MONITOR__METHOD": (["GET", "HEAD"], ["PUT"]),
    "HEALTHMON_MONITOR__DEGRADED_AFTER_MS": (["800"], ["none"]),
    "HEALTHMON_MONITOR__FAILURE_THRESHOLD": (["2"], ["0"]),
    "HEALTHMON_MONITOR__URLS": (["http://127.0.0.1:3999"], ["http://a:1,http://b:2", "nope"]),
    "HEALTHMON_BROKER__KIND": (["memory"], ["kafka"]),
    "HEALTHMON_SERVICES": (["[]"], ["garbage"]),
    "HEALTHMON_WEB": (['{"frame_ancestors": ["\'self\'"]}'], ["port=1"]),
    "HEALTHMON_WEB__BOGUS": ([], ["1"]),
}


def environments(odd: bool) -> st.SearchStrategy[dict[str, str]]:
    def values(name: str) -> st.SearchStrategy[str]:
        legal, refused = ENVIRONMENT[name]
        return st.sampled_from(legal + refused if odd else legal)

    chosen = [name for name, (legal, _) in ENVIRONMENT.items() if odd or legal]
    return st.lists(st.sampled_from(chosen), max_size=2, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: values(name) for name in names})
    )


@st.composite
def services(draw: st.DrawFn, ports: list[int], odd: bool) -> list[dict[str, Any]]:
    """Up to three ``[[services]]`` tables of any kind, each on its own free port."""
    tables: list[dict[str, Any]] = []
    for port in ports[: draw(st.integers(0 if odd else 1, 3))]:
        kind = draw(st.sampled_from(["mock", "mock", "http", "tcp", "grpc"]))
        # Legal names are kept apart by their position (a last digit of their own).
        name = draw(NAMES.any(odd)) if odd else draw(NAMES.legal)[:11] + str(len(tables))
        table: dict[str, Any] = {"name": name}
        if kind in ("mock", "http"):
            table["url"] = f"http://127.0.0.1:{port}{draw(BASES.any(odd))}"
            table["mock"] = kind == "mock"
            for key in ("health_path", "data_endpoint"):
                if draw(st.booleans()):
                    table[key] = draw(PATHS.any(odd))
            optional = {
                "method": st.sampled_from(["GET", "HEAD", "PUT"] if odd else ["GET", "HEAD"]),
                "expected_status": EXPECTED.any(odd),
                "headers": st.dictionaries(
                    HEADER_NAMES.any(odd), HEADER_VALUES.any(odd), max_size=2
                ),
                "verify_tls": st.booleans(),
                "degraded_after_ms": MILLIS.any(odd),
            }
        else:
            table["url"] = f"{kind}://127.0.0.1:{port}"
            table["kind"] = kind
            optional = {}
            if kind == "grpc":
                optional["grpc_service"] = st.text(max_size=8)
                optional["headers"] = st.just({"X-Token": "v"})
            if odd:
                optional["health_path"] = PATHS.legal
        optional |= {
            "interval_ms": MILLIS.any(odd),
            "timeout_ms": MILLIS.any(odd),
            "failure_threshold": st.integers(0 if odd else 1, 101 if odd else 100),
            "success_threshold": st.integers(1, 3),
        }
        for key, values in optional.items():
            if draw(st.integers(0, 3)) == 0:
                table[key] = draw(values)
        tables.append(table)
    for index, table in enumerate(tables):
        # Earlier services only (no cycle), unless odd: then any name, or none known.
        known = [t["name"] for t in (tables if odd else tables[:index])]
        if known and draw(st.integers(0, 2)) == 0:
            table["depends_on"] = [draw(st.sampled_from(known + (["nobody"] if odd else [])))]
    return tables


@dataclass
class Config:
    """A generated config: the file's tables, the environment over it, its web port."""

    web_port: int
    web: dict[str, Any]
    monitor: dict[str, Any]
    services: list[dict[str, Any]]
    environment: dict[str, str]

    def toml(self) -> str:
        return render(self.web_port, self.web, self.monitor, self.services)


@st.composite
def configs(draw: st.DrawFn, odd: bool) -> Config:
    """A config on free loopback ports; ``odd`` mixes in values check-config must refuse."""
    web_port, *ports = free_ports(4)
    web: dict[str, Any] = {}
    if draw(st.booleans()):
        web["allowed_hosts"] = draw(st.lists(HOSTS.any(odd), max_size=2))
    monitor: dict[str, Any] = {"interval_ms": 100, "heartbeat_ms": 200}
    if draw(st.booleans()):
        monitor["expected_status"] = draw(EXPECTED.any(odd))
    return Config(web_port, web, monitor, draw(services(ports, odd)), draw(environments(odd)))


# -- writing and running ----------------------------------------------------------------


def toml_value(value: object) -> str:
    """``value`` in TOML: a basic string escapes what TOML does not take as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    text = str(value)
    out = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else "\\" + c if c in '"\\' else c
        for c in text
    )
    return f'"{out}"'


def render(
    web_port: int, web: dict[str, Any], monitor: dict[str, Any], tables: list[dict[str, Any]]
) -> str:
    lines = ["[web]", f"port = {web_port}"]
    lines += [f"{key} = {toml_value(value)}" for key, value in web.items()]
    lines += ["", "[monitor]"] + [f"{key} = {toml_value(v)}" for key, v in monitor.items()]
    for table in tables:
        lines += ["", "[[services]]"]
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ (no other HEALTHMON_* variable) for the block."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in saved.items() if not k.upper().startswith("HEALTHMON_")})
    os.environ.update({"HM_PROP_TOKEN": "t0k3n", **values})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def check_config(path: Path) -> tuple[int, str, str]:
    """``healthmon check-config PATH`` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["check-config", str(path)])
    return code, out.getvalue(), err.getvalue()


def assert_one_line_refusal(code: int, err: str) -> None:
    assert code == 2, err
    assert err.startswith("healthmon: invalid configuration: "), err
    assert err.count("\n") == 1, err
    assert err.endswith("\n"), err
    assert "Traceback" not in err


async def serves(session: aiohttp.ClientSession, settings: Settings) -> None:
    """Every mock answers its health and data paths; its own check of it is not a 404."""
    for service in settings.services:
        if not service.mock:
            continue
        urls = [service.health_url, service.data_url]
        for url in filter(None, urls):
            async with session.get(URL(url)) as response:
                assert response.status == 200, (url, await response.text())
        result = await check_once(session, CheckSpec.resolve(service, settings.monitor))
        assert not (result.reason or "").startswith("HTTP 404"), result
        if result.status is Status.DOWN:
            # Only what was asked for makes it down: a status the check does not expect.
            assert (result.reason or "").startswith("HTTP 200"), result


async def refuses(session: aiohttp.ClientSession, settings: Settings) -> None:
    """No mock of ``settings`` answers any more."""
    for service in settings.services:
        if service.mock:
            try:
                async with session.get(URL(service.health_url)):
                    raise AssertionError(f"{service.name} still answers")
            except aiohttp.ClientConnectorError:
                pass


async def run_and_reload(path: Path, config: Config, settings: Settings) -> None:
    """Start with ``settings``, reload out to a one-mock config and back in."""
    baseline = render(
        config.web_port,
        {},
        {"interval_ms": 100},
        [{"name": "baseline", "url": f"http://127.0.0.1:{free_ports(1)[0]}", "mock": True}],
    )
    server = TestServer(create_app(settings, config_path=path), port=config.web_port)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            await serves(session, settings)
            app = server.app
            await asyncio.to_thread(path.write_text, baseline)
            await app[RELOADER].reload()
            assert app[CONFIG].error is None, app[CONFIG].error
            out = app[CONFIG].settings
            # The environment may override the services (HEALTHMON_SERVICES) here too.
            assert [s.name for s in out.services] == [s.name for s in load_settings(path).services]
            await refuses(session, settings)
            await serves(session, out)
            await asyncio.to_thread(path.write_text, config.toml())
            await app[RELOADER].reload()
            assert app[CONFIG].error is None, app[CONFIG].error
            assert [s.name for s in app[CONFIG].settings.services] == [
                s.name for s in settings.services
            ]
            await serves(session, app[CONFIG].settings)
    finally:
        await server.close()


# -- the properties --------------------------------------------------------------------


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=configs(odd=False))
def test_odd_but_legal_configs_run_serve_and_reload(tmp_path: Path, config: Config) -> None:
    """Odd but legal configs pass check-config, start, serve every mock path and reload."""
    path = tmp_path / "config.toml"
    path.write_text(config.toml())
    with environment(config.environment):
        code, out, err = check_config(path)
        assert (code, err) == (0, ""), config
        assert out.startswith(f"{path}: valid, "), out
        event(f"{len(config.services)} service(s), {len(config.environment)} variable(s)")
        asyncio.run(run_and_reload(path, config, load_settings(path)))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=configs(odd=True))
def test_what_check_config_accepts_runs_and_what_it_refuses_is_one_line(
    tmp_path: Path, config: Config
) -> None:
    """Any config, refused values mixed in: accepted ones run and reload; refused, one line."""
    path = tmp_path / "config.toml"
    path.write_text(config.toml())
    with environment(config.environment):
        code, out, err = check_config(path)
        event("refused" if code else "accepted")
        if code != 0:
            assert_one_line_refusal(code, err)
            return
        assert out.startswith(f"{path}: valid, "), out
        asyncio.run(run_and_reload(path, config, load_settings(path)))


async def _started(process: asyncio.subprocess.Process) -> None:
    """Until the process logs healthmon.started (it writes JSON lines when piped)."""
    assert process.stderr is not None
    async with asyncio.timeout(30):
        while b"healthmon.started" not in (line := await process.stderr.readline()):
            assert line, "healthmon exited before it started"


async def run_process(path: Path, env: dict[str, str]) -> None:
    """``python -m healthmon run`` on an accepted config: it starts and serves, then stops."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthmon",
        "run",
        "--config",
        str(path),
        "--log-format",
        "json",
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await _started(process)
        with environment({k: v for k, v in env.items() if k.startswith("HEALTHMON_")}):
            settings = load_settings(path)
        async with aiohttp.ClientSession() as session:
            await serves(session, settings)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=configs(odd=False) | configs(odd=True))
def test_a_real_process_runs_what_check_config_accepts(tmp_path: Path, config: Config) -> None:
    """As processes: check-config's verdict is run's, one line and exit 2 when refused."""
    path = tmp_path / "config.toml"
    path.write_text(config.toml())
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HEALTHMON_")}
    env |= {"HM_PROP_TOKEN": "t0k3n", **config.environment}
    checked = subprocess.run(
        [sys.executable, "-m", "healthmon", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    if checked.returncode != 0:
        assert_one_line_refusal(checked.returncode, checked.stderr)
        ran = subprocess.run(
            [sys.executable, "-m", "healthmon", "run", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert_one_line_refusal(ran.returncode, ran.stderr)
        assert ran.stderr == checked.stderr
        return
    asyncio.run(run_process(path, env))
