"""One validated ``Settings`` root, read from ``config.toml`` and ``HEALTHMON_*``.

The TOML file is parsed here (so a syntax error can name its line) and handed
to pydantic-settings as init values; environment variables take precedence
over the file, nested with ``__`` (``HEALTHMON_WEB__PORT=4001``).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
import tomllib
import types
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

DEFAULT_CONFIG = Path("config.toml")


class ConfigError(Exception):
    """The configuration cannot be used; the message names file, field and reason."""


CREDENTIALS_IN_URL = (
    "must not carry a user name or password (they would be shown on the page, "
    "in the API and in logs); send them as a header instead: "
    'headers = { Authorization = "Basic ${VAR}" }'
)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL with a host")
    # Checked before anything else that could quote the URL: the message never does.
    if "@" in parts.netloc:
        raise ValueError(CREDENTIALS_IN_URL)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"has an invalid port ({exc})") from None
    if port == 0:
        raise ValueError("has an invalid port (0); use 1-65535")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    if parts.path and (problem := path_problem(parts.path)) is not None:
        raise ValueError(f"path {problem}")
    return value.rstrip("/")


# A '%' that does not start a percent-escape: clients disagree on what it means.
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def path_problem(value: str) -> str | None:
    """Why ``value`` is not a path (and query) that every client sends as written; None if it is.

    One rule for every path a check asks for or a mock serves: the mock compares
    the path it is asked for with this one, decoded, so any character the rule
    lets through is served (no router pattern is ever made of it). What is left
    out is what a client would change or drop on the way.
    """
    if not value.startswith("/"):
        return "must start with '/'"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it has a lone surrogate)"
    if "#" in value:
        return "must not carry a fragment ('#...'): it is never sent; write '#' as %23"
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in value):
        return "must not contain whitespace or control characters; write a space as %20"
    if "\\" in value:
        return "must not contain '\\' (browsers read it as '/'); write it as %5C"
    if _LONE_PERCENT.search(value):
        return "has a '%' that starts no percent-escape like %20; write '%' as %25"
    path = value.partition("?")[0]
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return "has a '.' or '..' segment, which clients resolve away; write the path it leads to"
    return None


def _path(value: str) -> str:
    if (problem := path_problem(value)) is not None:
        raise ValueError(problem)
    return value


def _status_ranges(value: object) -> tuple[tuple[int, int], ...]:
    """``200``, ``"2xx"``, ``"200-299"`` or a list of them, as inclusive ranges."""
    items = value if isinstance(value, list | tuple) else [value]
    ranges = []
    for item in items:
        text = str(item).strip().lower()
        if re.fullmatch(r"[1-5]xx", text):
            low = int(text[0]) * 100
            ranges.append((low, low + 99))
        elif match := re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", text):
            ranges.append((int(match[1]), int(match[2])))
        elif re.fullmatch(r"\d{3}", text):
            ranges.append((int(text), int(text)))
        else:
            raise ValueError(f"{item!r} is not a status code, a range like 200-299, or 2xx")
    if not ranges or any(not 100 <= lo <= hi <= 599 for lo, hi in ranges):
        raise ValueError("status codes must be between 100 and 599, low to high")
    return tuple(ranges)


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: object) -> object:
    """``"Bearer ${TOKEN}"`` takes TOKEN from the environment; it must be set."""
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        name = match[1]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    expanded = _ENV_REFERENCE.sub(lookup, value)
    # Never sent, and never echoed: the message does not quote the value.
    if any(c in expanded for c in "\r\n\0"):
        raise ValueError("must not contain a line break or NUL")
    return expanded


def _service_name(value: str) -> str:
    # Names travel as one URL path segment (/api/mocks/{name}).
    if value in (".", ".."):
        raise ValueError(f"{value!r} cannot be a service name (it is a path segment of its own)")
    return value


def _allowed_host(value: str) -> str:
    """A Host-header name as a browser sends it: lower case, IPv6 in brackets, no port."""
    host = value.strip().lower()
    if host == "*":
        return host
    if ":" in host and not host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            raise ValueError(
                f"{value!r}: give the name alone, without a port (ports are not checked)"
            ) from None
    pattern = r"\[[0-9a-f:.]+\]|(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?"
    if not re.fullmatch(pattern, host):
        raise ValueError(f"{value!r} is not a host name, an address, '*' or '*.domain'")
    return host


def _csp_source(value: str) -> str:
    # One source expression of a CSP directive: nothing that could end it.
    if not value or any(c.isspace() or c in ";," for c in value):
        raise ValueError(f"{value!r} is not one CSP source (like 'self' or https://a.example)")
    return value


def _header_name(value: str) -> str:
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", value):
        raise ValueError(f"{value!r} is not a valid HTTP header name")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
# How a service is checked, and the URL schemes each kind takes.
Kind = Literal["http", "tcp", "grpc"]
KIND_SCHEMES: dict[str, tuple[str, ...]] = {
    "http": ("http", "https"),
    "tcp": ("tcp",),
    "grpc": ("grpc", "grpcs"),
}


def _service_url(value: str) -> str:
    """http(s)://, or tcp:// and grpc(s):// (for those kinds), with the same rules."""
    scheme = urlsplit(value).scheme
    if scheme in ("http", "https"):
        return _http_url(value)
    if scheme not in ("tcp", "grpc", "grpcs"):
        raise ValueError(
            "must be an absolute http:// or https:// URL with a host "
            "(or tcp://, grpc://, grpcs:// for those kinds)"
        )
    # Host, port, credentials, query: checked as for http, on the rest of the URL.
    return scheme + _http_url("http" + value[len(scheme) :])[len("http") :]


ServiceUrl = Annotated[str, AfterValidator(_service_url)]
# Service keys that only some kinds use: setting one for another kind is a mistake.
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "health_path": ("http",),
    "data_endpoint": ("http",),
    "mock": ("http",),
    "method": ("http",),
    "expected_status": ("http",),
    "verify_tls": ("http",),
    "headers": ("http", "grpc"),
    "grpc_service": ("grpc",),
}
StatusRanges = Annotated[tuple[tuple[int, int], ...], BeforeValidator(_status_ranges)]
# Header values are secrets: never shown in logs, the API or the page.
HeaderValue = Annotated[SecretStr, BeforeValidator(_expand_env)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
Threshold = Annotated[int, Field(ge=1, le=100)]
Method = Literal["GET", "HEAD"]
UrlPath = Annotated[str, AfterValidator(_path)]
Port = Annotated[int, Field(ge=1, le=65535)]
ServiceName = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"),
    AfterValidator(_service_name),
]
AllowedHost = Annotated[str, AfterValidator(_allowed_host)]
CspSource = Annotated[str, AfterValidator(_csp_source)]
Millis = Annotated[int, Field(gt=0, le=3_600_000)]

_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration(value: object) -> int:
    """``"500ms"``, ``"30s"``, ``"5m"``, ``"48h"`` or ``"90d"``, in milliseconds."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"(\d+)\s*(ms|s|m|h|d)", text)
    if match is None or isinstance(value, bool):
        raise ValueError(f'{value!r} is not a duration like "30s", "48h" or "90d"')
    return int(match[1]) * _DURATION_UNITS[match[2]]


Duration = Annotated[int, BeforeValidator(_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: Port = 4000
    cors_origins: tuple[str, ...] = ("http://localhost:5173", "http://127.0.0.1:5173")
    # Without a token the control endpoints answer loopback callers only.
    control_token: SecretStr | None = None
    # Host names (besides localhost, 127.0.0.1, [::1], the bound host and the
    # hosts in [monitor] urls) that requests may name; "*" allows any, and
    # "*.example.org" any subdomain. Anything else gets 421 (DNS rebinding).
    allowed_hosts: tuple[AllowedHost, ...] = ()
    # Who may frame the page (CSP frame-ancestors).
    frame_ancestors: tuple[CspSource, ...] = ("'self'",)


class MonitorSettings(_Section):
    interval_ms: Millis = 500
    timeout_ms: Millis = 1000
    heartbeat_ms: Millis = 1000
    # Defaults for every service's check; a service may set its own.
    method: Method = "GET"
    expected_status: StatusRanges = ((200, 299),)
    verify_tls: bool = True
    degraded_after_ms: Millis | None = None
    failure_threshold: Threshold = 1
    success_threshold: Threshold = 1
    # Where a process without a monitor of its own serves (monitor role) and
    # fetches (ws role) the monitor's statuses; default: this port on loopback.
    port: Port = 3000
    urls: tuple[HttpUrl, ...] = ()

    @property
    def snapshot_urls(self) -> tuple[str, ...]:
        return self.urls or (f"http://127.0.0.1:{self.port}",)


class BrokerSettings(_Section):
    kind: Literal["memory", "rabbitmq"] = "memory"
    url: str = "amqp://guest:guest@127.0.0.1:5672/"


class HistorySettings(_Section):
    """Where history is kept, and for how long (``[history]``)."""

    enabled: bool = True
    # The SQLite file; a relative path is taken from the config file's folder
    # (the working folder without one). ":memory:" keeps it for one run only.
    path: str = "healthmon-data/history.sqlite3"
    # postgresql://user@host:port/db: a PostgreSQL shared by several processes
    # (pip install 'healthmon[postgres]'); replaces path.
    url: SecretStr | None = None
    # How often gathered figures are written: at most this much is lost to a kill -9.
    flush_ms: Annotated[int, Field(ge=100, le=60_000)] = 1000
    keep_minutes: Duration = 48 * 3_600_000
    keep_hours: Duration = 90 * 86_400_000
    keep_days: Duration = 400 * 86_400_000

    @model_validator(mode="after")
    def _retention(self) -> HistorySettings:
        if self.keep_minutes < 2 * 3_600_000:
            raise ValueError(
                "keep_minutes: at least 2h (the hour in progress is read from minutes)"
            )
        if self.keep_hours < max(2 * 86_400_000, self.keep_minutes):
            raise ValueError("keep_hours: at least 2d, and at least keep_minutes")
        if self.keep_days < max(2 * 86_400_000, self.keep_hours):
            raise ValueError("keep_days: at least 2d, and at least keep_hours")
        url = self.url.get_secret_value() if self.url else None
        if url is not None and urlsplit(url).scheme not in ("postgres", "postgresql"):
            raise ValueError("url: must be a postgresql:// URL")
        return self


class ServiceSettings(_Section):
    name: ServiceName
    url: ServiceUrl
    # "http" (the default), "tcp" (connect only) or "grpc" (grpc.health.v1.Health).
    kind: Kind = "http"
    # grpc: the service name asked of grpc.health.v1.Health ("": the whole server).
    grpc_service: str = Field(default="", max_length=200)
    health_path: UrlPath = "/health"
    data_endpoint: UrlPath = "/"
    mock: bool = False
    # Unset knobs take [monitor]'s value.
    interval_ms: Millis | None = None
    timeout_ms: Millis | None = None
    method: Method | None = None
    expected_status: StatusRanges | None = None
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)
    verify_tls: bool | None = None
    degraded_after_ms: Millis | None = None
    failure_threshold: Threshold | None = None
    success_threshold: Threshold | None = None
    # Services this one needs: while one of them is down, this one is blocked.
    depends_on: tuple[ServiceName, ...] = ()

    @model_validator(mode="after")
    def _kind_fits(self) -> ServiceSettings:
        parts = urlsplit(self.url)
        schemes = KIND_SCHEMES[self.kind]
        if parts.scheme not in schemes:
            for kind, its in KIND_SCHEMES.items():
                if parts.scheme in its:
                    raise ValueError(f'url: a {parts.scheme}:// URL needs kind = "{kind}"')
            wanted = " or ".join(f"{s}://" for s in schemes)
            raise ValueError(f'url: kind = "{self.kind}" needs a {wanted} URL')
        defaults = type(self).model_fields
        for key in sorted(self.model_fields_set):
            kinds = _KIND_KEYS.get(key)
            if kinds and self.kind not in kinds and getattr(self, key) != defaults[key].default:
                raise ValueError(f'{key}: not used by kind = "{self.kind}"')
        if self.kind == "http":
            return self
        form = f"{parts.scheme}://host:port"
        if parts.port is None:
            raise ValueError(f'url: kind = "{self.kind}" needs a port ({form})')
        if parts.path:
            raise ValueError(f'url: kind = "{self.kind}" takes no path ({form})')
        if self.kind == "grpc" and not all(map(importlib.util.find_spec, ("grpc", "grpc_health"))):
            raise ValueError("kind: \"grpc\" needs the grpc extra: pip install 'healthmon[grpc]'")
        return self

    @property
    def health_url(self) -> str:
        """What is checked: the health URL, or the tcp:// or grpc:// address."""
        return self.url + self.health_path if self.kind == "http" else self.url

    @property
    def data_url(self) -> str:
        return self.url + self.data_endpoint if self.kind == "http" else self.url

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)


def dependency_cycle(services: Sequence[ServiceSettings]) -> list[str] | None:
    """The first dependency cycle in config order, as a path back to its start; None if none.

    Depth-first without recursion: a long chain of services is no error.
    """
    needs = {service.name: service.depends_on for service in services}
    done: set[str] = set()
    for service in services:
        if service.name in done:
            continue
        path = [service.name]
        pending = [iter(needs[service.name])]
        while pending:
            dependency = next(pending[-1], None)
            if dependency is None:
                pending.pop()
                done.add(path.pop())
            elif dependency in path:
                return [*path[path.index(dependency) :], dependency]
            elif dependency not in done and dependency in needs:
                path.append(dependency)
                pending.append(iter(needs[dependency]))
    return None


ENV_PREFIX = "HEALTHMON_"


class _EnvironmentValueError(Exception):
    """A ``HEALTHMON_*`` value that cannot be read; ``str()`` names the variable."""


def _scalar_list(annotation: object) -> bool:
    """A list or tuple of plain values (strings, numbers), optional or not."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_list(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_scalar_list(a) for a in get_args(annotation) if a is not type(None))
    if origin not in (list, tuple):
        return False
    items = [a for a in get_args(annotation) if a is not Ellipsis]
    return not any(isinstance(a, type) and issubclass(a, BaseModel | dict) for a in items)


class _Environment(EnvSettingsSource):
    """``HEALTHMON_*`` as pydantic-settings reads them, with two rules of healthmon's own.

    A list of plain values also takes one value as it is:
    ``HEALTHMON_MONITOR__URLS=http://a:3000`` is ``["http://a:3000"]``; a
    value starting with ``[`` is JSON, and several values must be (a plain
    value with a comma is refused with its JSON form). A value that cannot
    be read names its variable in one line.
    """

    def decode_complex_value(self, field_name: str, field: FieldInfo | None, value: Any) -> Any:
        plain = isinstance(value, str) and not value.lstrip().startswith("[")
        if plain and field is not None and _scalar_list(field.annotation):
            if "," in value:
                items = json.dumps([part.strip() for part in value.split(",")])
                raise _EnvironmentValueError(
                    f"{self._variable(field_name, value)}: several values are written as "
                    f"JSON: {items} (one value may be written as it is)"
                )
            return [value]
        try:
            return super().decode_complex_value(field_name, field, value)  # type: ignore[arg-type]
        except ValueError as exc:
            wanted = "a JSON list" if value.lstrip().startswith("[") else "JSON"
            raise _EnvironmentValueError(
                f"{self._variable(field_name, value)}: is not {wanted} ({exc})"
            ) from None

    def _variable(self, key: str, value: str) -> str:
        """The variable that holds ``value`` for ``key`` (the source keeps no note of it)."""
        for name, held in self.env_vars.items():
            if held == value and name.lower().endswith(key.lower()):
                return name.upper()
        return f"{ENV_PREFIX}… {key}"


def _from_environment(data: dict[str, Any], loc: Sequence[str | int]) -> str | None:
    """The ``HEALTHMON_*`` variable that gave the value at ``loc``; None if the file did."""
    names = {name.upper() for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    keys: list[str] = []
    found: str | None = None
    held: object = data
    for part in loc:
        if isinstance(held, dict) and isinstance(part, str) and part in held:
            keys.append(part)
            held = held[part]
            name = ENV_PREFIX + "__".join(keys).upper()
            # A section given whole (HEALTHMON_WEB='{...}') or key by key.
            if name in names:
                found = name
        elif isinstance(held, list | tuple) and isinstance(part, int) and part < len(held):
            held = held[part]
        else:
            return None
    return found


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    web: WebSettings = WebSettings()
    monitor: MonitorSettings = MonitorSettings()
    broker: BrokerSettings = BrokerSettings()
    history: HistorySettings = HistorySettings()
    services: tuple[ServiceSettings, ...] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init values; the environment overrides it.
        return (_Environment(settings_cls), init_settings)

    @model_validator(mode="after")
    def _unique_services(self) -> Settings:
        names: set[str] = set()
        mock_ports: dict[int, str] = {}
        for index, service in enumerate(self.services):
            if service.name in names:
                raise ValueError(f"services[{index}].name: duplicate service name {service.name!r}")
            names.add(service.name)
            if service.mock:
                if service.port in mock_ports:
                    raise ValueError(
                        f"services[{index}].url: port {service.port} is already used by "
                        f"mock {mock_ports[service.port]!r}"
                    )
                if service.port == self.web.port:
                    raise ValueError(f"services[{index}].url: port {service.port} is the web port")
                mock_ports[service.port] = service.name
        return self

    @model_validator(mode="after")
    def _known_acyclic_dependencies(self) -> Settings:
        index = {service.name: i for i, service in enumerate(self.services)}
        for i, service in enumerate(self.services):
            for name in service.depends_on:
                if name not in index:
                    raise ValueError(f"services[{i}].depends_on: unknown service {name!r}")
        if (cycle := dependency_cycle(self.services)) is not None:
            path = " → ".join(cycle)
            raise ValueError(f"services[{index[cycle[0]]}].depends_on: cycle {path}")
        return self

    def service(self, name: str) -> ServiceSettings | None:
        return next((s for s in self.services if s.name == name), None)


@dataclass
class LiveConfig:
    """The configuration in force, replaced by a reload; the last reload's error."""

    settings: Settings
    path: Path | None = None
    error: str | None = None


def _location(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad dict key: the key says it
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _describe(error: ValidationError, source: str | Path) -> str:
    """One line: the file's mistakes after its name, each variable's after its own."""
    environment: dict[str, Any] | None = None
    in_file: list[str] = []
    by_variable: list[str] = []
    for err in error.errors(include_url=False):
        where = _location(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "missing required field"
        line = f"{where}: {msg}" if where else msg
        if environment is None:
            environment = _Environment(Settings)()
        variable = _from_environment(environment, err["loc"])
        if variable is None:
            in_file.append(line)
        else:
            by_variable.append(f"{variable}: {line}")
    file_part = [f"{source}: " + "; ".join(in_file)] if in_file else []
    return "; ".join(file_part + by_variable)


def starter_text() -> str:
    """The commented starter config.toml that ``healthmon init`` writes: the four-mock demo."""
    return (resources.files("healthmon") / "starter.toml").read_text(encoding="utf-8")


def parse_settings(text: str, source: str | Path) -> Settings:
    """Validate TOML ``text`` (with the environment over it), or raise ``ConfigError``."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    except _EnvironmentValueError as exc:
        raise ConfigError(str(exc)) from None
    except SettingsError as exc:
        # Any other value pydantic-settings cannot read: still one line, never a traceback.
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise ConfigError(f"environment: {exc}{cause}") from None


def demo_settings() -> Settings:
    """The built-in demo: the starter file's four mocks, environment overrides applied."""
    return parse_settings(starter_text(), "built-in demo")


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the configuration, or raise ``ConfigError``.

    With no ``path``, ``./config.toml`` is read when present and the defaults
    (no services) otherwise; a path that is given must exist.
    """
    source = path or DEFAULT_CONFIG
    text = ""
    if path is not None or source.exists():
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read: {exc}") from None
    return parse_settings(text, source)
