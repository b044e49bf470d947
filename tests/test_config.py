"""Configuration: the shipped file works, env overrides it, every mistake is named."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from healthmon.config import ConfigError, load_settings, parse_settings
from tests.support import run_healthmon

ROOT = Path(__file__).resolve().parent.parent

GOOD_SERVICE = """
[[services]]
name = "auth"
url = "http://127.0.0.1:3001"
mock = true
"""


def test_shipped_config_has_the_four_mocks() -> None:
    """The repository's config.toml loads and describes the original's four mocks."""
    settings = load_settings(ROOT / "config.toml")
    assert [s.name for s in settings.services] == ["auth", "billing", "notifications", "analytics"]
    assert [s.port for s in settings.services] == [3001, 3002, 3003, 3004]
    assert settings.web.port == 4000
    assert settings.monitor.interval_ms == 500
    assert settings.broker.kind == "memory"
    assert settings.service("billing").data_url == "http://127.0.0.1:3002/billing"  # type: ignore[union-attr]


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HEALTHMON_WEB__PORT and friends win over the file, nested with a double underscore."""
    path = tmp_path / "config.toml"
    path.write_text("[web]\nport = 4000\n" + GOOD_SERVICE)
    monkeypatch.setenv("HEALTHMON_WEB__PORT", "4001")
    monkeypatch.setenv("HEALTHMON_MONITOR__INTERVAL_MS", "250")
    settings = load_settings(path)
    assert settings.web.port == 4001
    assert settings.monitor.interval_ms == 250


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[web\nport = 1", "invalid TOML"),
        ("[web]\nprot = 4000\n" + GOOD_SERVICE, "web.prot: unknown key"),
        (GOOD_SERVICE + GOOD_SERVICE.replace("3001", "3002"), "duplicate service name 'auth'"),
        (
            GOOD_SERVICE + GOOD_SERVICE.replace('"auth"', '"billing"'),
            "services[1] \"billing\".url: port 3001 is already used by mock 'auth'",
        ),
        (GOOD_SERVICE.replace("http://127.0.0.1:3001", "ftp://x"), '"auth".url: must be'),
        (GOOD_SERVICE.replace(":3001", ":99999"), 'services[0] "auth".url: has an invalid port'),
        (GOOD_SERVICE.replace(":3001", ":0"), '"auth".url: has an invalid port (0)'),
        (
            GOOD_SERVICE.replace("http://", "http://ops:hunter2@"),
            'services[0] "auth".url: must not carry a user name or password',
        ),
        (GOOD_SERVICE.replace('"auth"', '".."'), "services[0] \"..\".name: '..' cannot be a"),
        ("[web]\nport = 0\n", "web.port: Input should be greater than or equal to 1"),
        ('[web]\nallowed_hosts = ["a.lan:80"]\n', "web.allowed_hosts[0]: 'a.lan:80': give"),
        ("[monitor]\ninterval_ms = 0\n", "monitor.interval_ms: Input should be greater than 0"),
        ("[monitor]\ntimeout_ms = -5\n", "monitor.timeout_ms: Input should be greater than 0"),
        ('[[services]]\nname = "x"\n', 'services[0] "x".url: missing required field'),
        ('[broker]\nkind = "kafka"\n', "broker.kind: Input should be 'memory' or 'rabbitmq'"),
        ('[[services]]\nname = "a b"\nurl = "http://h"\n', '"a b".name: String should match'),
        (
            GOOD_SERVICE + 'headers = { "X-Token" = "a\\r\\nInjected: 1" }\n',
            '"auth".headers.X-Token: must not contain a line break or NUL',
        ),
        (
            GOOD_SERVICE + 'headers = { "Bad Name" = "v" }\n',
            "\"auth\".headers.Bad Name: 'Bad Name' is not a valid HTTP header name",
        ),
        (
            GOOD_SERVICE + 'headers = { Authorization = "Bearer ${HM_SURELY_UNSET_VAR}" }\n',
            "environment variable HM_SURELY_UNSET_VAR is not set",
        ),
    ],
)
def test_invalid_config_is_named(tmp_path: Path, text: str, expected: str) -> None:
    """Each kind of mistake stops loading with the file, the field and the reason."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert re.match(rf"{re.escape(str(path))}:(\d+:)? ", str(error.value)), error.value
    assert expected in str(error.value)
    assert "hunter2" not in str(error.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    """A --config path that does not exist is an error, not silent defaults."""
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_cli_exits_2_without_traceback(tmp_path: Path) -> None:
    """python -m healthmon with a bad file prints one clear line and exits with code 2."""
    path = tmp_path / "bad.toml"
    path.write_text("[monitor]\ninterval_ms = -1\n")
    result = run_healthmon("--config", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path}:2: monitor.interval_ms: Input should be greater than 0" in result.stderr


def _service_with(key: str, value: str) -> str:
    return GOOD_SERVICE + f"{key} = {json.dumps(value)}\n"


@pytest.mark.parametrize("key", ["health_path", "data_endpoint"])
@pytest.mark.parametrize(
    "value",
    [
        "/readyz?verbose",
        "/{",
        "/{name}",
        "/a:b/*/(x)+[y]",
        "/caf\u00e9/\u30c7\u30fc\u30bf",
        "/a%20b%2Fc",
        "/a?x=1&y=%7B",
        "//twice",
        "/a;b=c/~user/.well-known/x",
        "/q?",
    ],
)
def test_odd_but_legal_paths_are_accepted(tmp_path: Path, key: str, value: str) -> None:
    """A path with router-special characters, unicode, escapes or a query is valid as written."""
    path = tmp_path / "config.toml"
    path.write_text(_service_with(key, value))
    service = load_settings(path).services[0]
    assert getattr(service, key) == value


@pytest.mark.parametrize("key", ["health_path", "data_endpoint"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("health", "must start with '/'"),
        ("/health#top", "must not carry a fragment"),
        ("/a b", "must not contain whitespace"),
        ("/a\tb", "must not contain whitespace"),
        ("/a\u0085b", "must not contain whitespace"),
        ("/a\x7fb", "control characters"),
        ("/a\\b", "browsers read it as '/'"),
        ("/100%", "has a '%' that starts no percent-escape"),
        ("/a%zz", "has a '%' that starts no percent-escape"),
        ("/a/../health", "'..' segment"),
        ("/./health", "'.' or '..' segment"),
        ("/a/%2e%2E/b", "'..' segment"),
    ],
)
def test_paths_a_client_would_change_are_refused(
    tmp_path: Path, key: str, value: str, expected: str
) -> None:
    """A path that a client would not send as written is refused in one line naming the key."""
    path = tmp_path / "config.toml"
    path.write_text(_service_with(key, value))
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert f'services[0] "auth".{key}: ' in str(error.value)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_a_url_path_follows_the_same_rule(tmp_path: Path) -> None:
    """A service URL's own path is held to the rule its health_path is."""
    path = tmp_path / "config.toml"
    path.write_text(GOOD_SERVICE.replace(":3001", ":3001/a/../b"))
    with pytest.raises(ConfigError, match=r"\"auth\"\.url: path has a '\.' or '\.\.' segment"):
        load_settings(path)


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("HEALTHMON_WEB__CORS_ORIGINS", "http://a.example", "cors_origins", ("http://a.example",)),
        (
            "HEALTHMON_MONITOR__URLS",
            "http://127.0.0.1:3999",
            "urls",
            ("http://127.0.0.1:3999",),
        ),
        (
            "HEALTHMON_MONITOR__URLS",
            '["http://127.0.0.1:3999", "http://127.0.0.1:4000"]',
            "urls",
            ("http://127.0.0.1:3999", "http://127.0.0.1:4000"),
        ),
        (
            "HEALTHMON_WEB__ALLOWED_HOSTS",
            "Status.Example.org",
            "allowed_hosts",
            ("status.example.org",),
        ),
        ("HEALTHMON_WEB__FRAME_ANCESTORS", "'none'", "frame_ancestors", ("'none'",)),
        ("HEALTHMON_MONITOR__EXPECTED_STATUS", "2xx", "expected_status", ((200, 299),)),
        (
            "HEALTHMON_MONITOR__EXPECTED_STATUS",
            "[200, 304]",
            "expected_status",
            ((200, 200), (304, 304)),
        ),
    ],
)
def test_a_list_in_the_environment_takes_one_plain_value(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    """A list variable holds one value as it is, or several as JSON."""
    path = tmp_path / "config.toml"
    path.write_text(GOOD_SERVICE)
    monkeypatch.setenv(variable, value)
    settings = load_settings(path)
    section = getattr(settings, variable.split("__")[0].removeprefix("HEALTHMON_").lower())
    assert getattr(section, field) == expected


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "HEALTHMON_MONITOR__URLS",
            "http://127.0.0.1:3999,http://127.0.0.1:4000",
            "HEALTHMON_MONITOR__URLS: several values are written as JSON: "
            '["http://127.0.0.1:3999", "http://127.0.0.1:4000"]',
        ),
        (
            "HEALTHMON_WEB__CORS_ORIGINS",
            "[http://a",
            "HEALTHMON_WEB__CORS_ORIGINS: is not a JSON list",
        ),
        ("HEALTHMON_MONITOR__URLS", "nope", "HEALTHMON_MONITOR__URLS: monitor.urls[0]: must be"),
        (
            "HEALTHMON_WEB__PORT",
            "abc",
            "HEALTHMON_WEB__PORT: web.port: Input should be a valid int",
        ),
        ("healthmon_web__port", "0", "HEALTHMON_WEB__PORT: web.port: Input should be greater"),
        ("HEALTHMON_WEB", '{"port": "x"}', "HEALTHMON_WEB: web.port: Input should be a valid int"),
        ("HEALTHMON_WEB", "port=4001", "HEALTHMON_WEB: is not JSON"),
        ("HEALTHMON_WEB__PROT", "4001", "HEALTHMON_WEB__PROT: web.prot: unknown key"),
        ("HEALTHMON_SERVICES", "auth", "HEALTHMON_SERVICES: is not JSON"),
        (
            "HEALTHMON_SERVICES",
            '[{"name": "x", "url": "http://h:1", "health_path": "/a b"}]',
            'HEALTHMON_SERVICES: services[0] "x".health_path: must not contain whitespace',
        ),
        ("HEALTHMON_MONITOR__VERIFY_TLS", "maybe", "HEALTHMON_MONITOR__VERIFY_TLS: monitor.verify"),
        ("HEALTHMON_BROKER__KIND", "kafka", "HEALTHMON_BROKER__KIND: broker.kind: Input should be"),
    ],
)
def test_an_unreadable_variable_is_named_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    """A variable that cannot be used is named with the field and the reason, in one line."""
    path = tmp_path / "config.toml"
    path.write_text(GOOD_SERVICE)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


def test_a_file_and_a_variable_are_each_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mistakes in the file and in a variable are each told where they are."""
    path = tmp_path / "config.toml"
    path.write_text("[monitor]\ninterval_ms = 0\n")
    monkeypatch.setenv("HEALTHMON_WEB__PORT", "abc")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(error.value) == (
        f"{path}:2: monitor.interval_ms: Input should be greater than 0; "
        "HEALTHMON_WEB__PORT: web.port: Input should be a valid integer, "
        "unable to parse string as an integer"
    )


def _healthmon(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "healthmon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_check_config_takes_one_plain_value_for_a_list(tmp_path: Path) -> None:
    """The issue's own variables, each with one plain value, are valid for check-config."""
    path = tmp_path / "config.toml"
    path.write_text(GOOD_SERVICE)
    result = _healthmon(
        "check-config",
        str(path),
        HEALTHMON_WEB__CORS_ORIGINS="http://a.example",
        HEALTHMON_MONITOR__URLS="http://127.0.0.1:3999",
    )
    assert result.returncode == 0, result.stderr
    assert "valid, 1 service(s)" in result.stdout


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_an_unreadable_variable_stops_run_and_check_config_in_one_line(
    tmp_path: Path, command: str
) -> None:
    """run and check-config both refuse a variable in one line naming it, with exit 2."""
    path = tmp_path / "config.toml"
    path.write_text(GOOD_SERVICE)
    args = ["--config", str(path)] if command == "run" else [str(path)]
    result = _healthmon(
        command, *args, HEALTHMON_MONITOR__URLS="http://127.0.0.1:3999,http://127.0.0.1:4000"
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "HEALTHMON_MONITOR__URLS: several values are written as JSON" in result.stderr


BILLING = '[[services]]\nname = "billing"\nurl = "http://127.0.0.1:3002"\nmock = true\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A near-miss key: its line, and the key it most likely means.
        (
            "[web]\nport = 4000\n\n[monitor]\nintervall_ms = 500\n",
            "config.toml:5: monitor.intervall_ms: unknown key (did you mean interval_ms?)",
        ),
        ("[web]\nprot = 4000\n", "config.toml:2: web.prot: unknown key (did you mean port?)"),
        ("[webb]\nport = 4000\n", "config.toml:1: webb: unknown key (did you mean web?)"),
        ("[web]\nflavour = 1\n", "config.toml:2: web.flavour: unknown key"),
        (
            'web.prot = 1\n"monitor" = {}\n',
            "config.toml:1: web.prot: unknown key (did you mean port?)",
        ),
        (
            GOOD_SERVICE + BILLING + 'helth_path = "/h"\n',
            'config.toml:10: services[1] "billing".helth_path: unknown key '
            "(did you mean health_path?)",
        ),
        # TOML types as written: a string is not a port, nor a switch.
        (
            '[web]\nport = "4000"\n',
            'config.toml:2: web.port: must be a number, not the string "4000" (write port = 4000)',
        ),
        (
            "[web]\nport = 4000.0\n",
            "config.toml:2: web.port: must be a whole number, not 4000.0 (write port = 4000)",
        ),
        ("[web]\nport = true\n", "config.toml:2: web.port: must be a number, not true"),
        (
            '[web]\nport = "four"\n',
            'config.toml:2: web.port: must be a number, not the string "four"',
        ),
        (
            '[monitor]\nverify_tls = "false"\n',
            "config.toml:2: monitor.verify_tls: must be true or false, "
            'not the string "false" (write verify_tls = false)',
        ),
        (
            GOOD_SERVICE + 'interval_ms = "250"\n',
            'config.toml:6: services[0] "auth".interval_ms: must be a number, '
            'not the string "250" (write interval_ms = 250)',
        ),
        # Each service by its name as well as its place.
        (
            GOOD_SERVICE + BILLING.replace("http://127.0.0.1:3002", "nope"),
            'config.toml:8: services[1] "billing".url: must be an absolute http:// or https:// '
            "URL with a host (or tcp://, grpc://, grpcs:// for those kinds)",
        ),
        (
            GOOD_SERVICE + BILLING.replace("3002", "3001"),
            "config.toml:8: services[1] \"billing\".url: port 3001 is already used by mock 'auth'",
        ),
        (
            GOOD_SERVICE + GOOD_SERVICE.replace("3001", "3002"),
            "config.toml:8: services[1] \"auth\".name: duplicate service name 'auth'",
        ),
        (
            GOOD_SERVICE.replace("http://", "tcp://"),
            'config.toml:4: services[0] "auth".url: a tcp:// URL needs kind = "tcp"',
        ),
        (
            GOOD_SERVICE + 'depends_on = ["db"]\n',
            "config.toml:6: services[0] \"auth\".depends_on: unknown service 'db'",
        ),
        (
            '[[services]]\nname = "x"\n',
            'config.toml:1: services[0] "x".url: missing required field',
        ),
        (
            '[[services]]\nurl = "http://h"\n',
            "config.toml:1: services[0].name: missing required field",
        ),
        (
            '[history]\nkeep_minutes = "1h"\n',
            "config.toml:2: history.keep_minutes: at least 2h (the hour in progress is read "
            "from minutes)",
        ),
        # A syntax error: tomllib's own line, in the same form.
        (
            "[web]\nport = \n",
            "config.toml:2: invalid TOML: Invalid value (column 8)",
        ),
    ],
)
def test_check_config_points_at_the_line_and_the_service(text: str, message: str) -> None:
    """A mistake reads file:line, the service's name, the near-miss key meant, the type wanted."""
    with pytest.raises(ConfigError) as error:
        parse_settings(text, "config.toml")
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Look-alikes inside strings and comments are not keys or tables.
        (
            '# [monitor]\n[web]\nnote = """\nport = 1\n[monitor]\n"""\nprot = 4000\n',
            "config.toml:3: web.note: unknown key; config.toml:7: web.prot: unknown key "
            "(did you mean port?)",
        ),
        (
            '[web]\ncors_origins = [\n  "http://a",  # ]\n  1,\n]\nprot = 1\n',
            "config.toml:2: web.cors_origins[1]: Input should be a valid string; "
            "config.toml:6: web.prot: unknown key (did you mean port?)",
        ),
        # One service's table spread over lines: no line is told rather than a wrong one.
        (
            'services = [\n  { name = "a", url = "http://h:1" },\n'
            '  { name = "b", url = "no" },\n]\n',
            'config.toml: services[1] "b".url: must be an absolute http:// or https:// URL '
            "with a host (or tcp://, grpc://, grpcs:// for those kinds)",
        ),
        (
            'services = [{ name = "b", url = "no" }]\n',
            'config.toml:1: services[0] "b".url: must be an absolute http:// or https:// URL '
            "with a host (or tcp://, grpc://, grpcs:// for those kinds)",
        ),
        (
            GOOD_SERVICE + '[services.headers]\n"Bad Name" = "v"\n',
            'config.toml:7: services[0] "auth".headers.Bad Name: '
            "'Bad Name' is not a valid HTTP header name",
        ),
        # A name that could break the line is shown escaped.
        (
            '[[services]]\nname = "a\\nb"\nurl = "http://h"\n',
            'config.toml:2: services[0] "a\\nb".name: String should match pattern '
            "'^[A-Za-z0-9_.-]+$'",
        ),
    ],
)
def test_a_line_is_told_only_when_it_is_sure(text: str, message: str) -> None:
    """Strings, comments and arrays never mislead the line; spread-out tables get none."""
    with pytest.raises(ConfigError) as error:
        parse_settings(text, "config.toml")
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("text", "variables", "port", "interval_ms"),
    [
        ("[web]\nport = 4000\n", {"HEALTHMON_WEB__PORT": "4001"}, 4001, 500),
        ('[web]\nport = "4000"\n', {"HEALTHMON_WEB__PORT": "4001"}, 4001, 500),
        ("", {"HEALTHMON_MONITOR__INTERVAL_MS": "250"}, 4000, 250),
        ("", {"HEALTHMON_WEB": '{"port": "4002"}'}, 4002, 500),
        ('[monitor]\ninterval_ms = "9"\n', {"HEALTHMON_MONITOR": '{"interval_ms": 7}'}, 4000, 7),
    ],
)
def test_variables_are_text_and_still_read_as_numbers(
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    variables: dict[str, str],
    port: int,
    interval_ms: int,
) -> None:
    """A variable's "4001" is a port as before; a value it replaces is not held to TOML types."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = parse_settings(text, "config.toml")
    assert (settings.web.port, settings.monitor.interval_ms) == (port, interval_ms)


def test_a_variable_keeps_its_own_message_over_the_files_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file's string port replaced by an unreadable variable is the variable's mistake alone."""
    monkeypatch.setenv("HEALTHMON_WEB__PORT", "abc")
    with pytest.raises(ConfigError) as error:
        parse_settings('[web]\nport = "4000"\n', "config.toml")
    assert str(error.value) == (
        "HEALTHMON_WEB__PORT: web.port: Input should be a valid integer, "
        "unable to parse string as an integer"
    )


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_string_port_stops_run_and_check_config_alike(tmp_path: Path, command: str) -> None:
    """run and check-config refuse port = "4000" with the same one line, naming the line."""
    path = tmp_path / "config.toml"
    path.write_text('[web]\nport = "4000"\n' + GOOD_SERVICE)
    args = ["--config", str(path)] if command == "run" else [str(path)]
    result = _healthmon(command, *args)
    assert result.returncode == 2
    assert result.stderr == (
        f"healthmon: invalid configuration: {path}:2: web.port: must be a number, "
        'not the string "4000" (write port = 4000)\n'
    )
