"""Configuration: the shipped file works, env overrides it, every mistake is named."""

from __future__ import annotations

import json
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
