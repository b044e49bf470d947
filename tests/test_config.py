"""Configuration: the shipped file works, env overrides it, every mistake is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from healthmon.config import ConfigError, load_settings
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
            "services[1].url: port 3001 is already used by mock 'auth'",
        ),
        (GOOD_SERVICE.replace("http://127.0.0.1:3001", "ftp://x"), "services[0].url: must be"),
        (GOOD_SERVICE.replace(":3001", ":99999"), "services[0].url: has an invalid port"),
        (GOOD_SERVICE.replace(":3001", ":0"), "services[0].url: has an invalid port (0)"),
        (
            GOOD_SERVICE.replace("http://", "http://ops:hunter2@"),
            "services[0].url: must not carry a user name or password",
        ),
        (GOOD_SERVICE.replace('"auth"', '".."'), "services[0].name: '..' cannot be a service"),
        ("[web]\nport = 0\n", "web.port: Input should be greater than or equal to 1"),
        ('[web]\nallowed_hosts = ["a.lan:80"]\n', "web.allowed_hosts[0]: 'a.lan:80': give"),
        ("[monitor]\ninterval_ms = 0\n", "monitor.interval_ms: Input should be greater than 0"),
        ("[monitor]\ntimeout_ms = -5\n", "monitor.timeout_ms: Input should be greater than 0"),
        ('[[services]]\nname = "x"\n', "services[0].url: missing required field"),
        ('[broker]\nkind = "kafka"\n', "broker.kind: Input should be 'memory' or 'rabbitmq'"),
        ('[[services]]\nname = "a b"\nurl = "http://h"\n', "services[0].name: String should match"),
        (
            GOOD_SERVICE + 'headers = { "X-Token" = "a\\r\\nInjected: 1" }\n',
            "services[0].headers.X-Token: must not contain a line break or NUL",
        ),
        (
            GOOD_SERVICE + 'headers = { "Bad Name" = "v" }\n',
            "services[0].headers.Bad Name: 'Bad Name' is not a valid HTTP header name",
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
    assert str(error.value).startswith(f"{path}: ")
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
    assert f"{path}: monitor.interval_ms: Input should be greater than 0" in result.stderr


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
    assert f"services[0].{key}: " in str(error.value)
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_a_url_path_follows_the_same_rule(tmp_path: Path) -> None:
    """A service URL's own path is held to the rule its health_path is."""
    path = tmp_path / "config.toml"
    path.write_text(GOOD_SERVICE.replace(":3001", ":3001/a/../b"))
    with pytest.raises(ConfigError, match=r"services\[0\]\.url: path has a '\.' or '\.\.' segment"):
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
            "HEALTHMON_SERVICES: services[0].health_path: must not contain whitespace",
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
        f"{path}: monitor.interval_ms: Input should be greater than 0; "
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
