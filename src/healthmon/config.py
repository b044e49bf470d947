"""One validated ``Settings`` root, read from ``config.toml`` and ``HEALTHMON_*``.

The TOML file is parsed here (so a syntax error can name its line) and handed
to pydantic-settings as init values; environment variables take precedence
over the file, nested with ``__`` (``HEALTHMON_WEB__PORT=4001``). Values from
the file are taken as TOML typed them (``port = "4000"`` is a string, not a
port); a variable is text by nature and is parsed as before.

A mistake is told in one line: ``file:LINE: services[5] "billing".url: why``,
with a near-miss key's likely meaning, and a variable's name instead of the
file for what a variable set.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import os
import re
import tomllib
import types
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    TypeAdapter,
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

from healthmon.alerts.settings import (
    AlertSettings,
    ChannelSettings,
    MaintenanceWindow,
    alert_channel_problem,
)
from healthmon.fields import (
    KIND_KEYS,
    KIND_SCHEMES,
    AllowedHost,
    CspSource,
    Duration,
    HeaderName,
    HeaderValue,
    HttpUrl,
    Kind,
    Label,
    Method,
    Millis,
    Port,
    Section,
    ServiceName,
    ServiceUrl,
    StatusRanges,
    Threshold,
    UrlPath,
)
from healthmon.logs import visible
from healthmon.memo import per_object
from healthmon.toml_lines import Loc, key_line

DEFAULT_CONFIG = Path("config.toml")


class ConfigError(Exception):
    """The configuration cannot be used; the message names file, field and reason."""


class WebSettings(Section):
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


class MonitorSettings(Section):
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


class BrokerSettings(Section):
    kind: Literal["memory", "rabbitmq"] = "memory"
    url: str = "amqp://guest:guest@127.0.0.1:5672/"


class HistorySettings(Section):
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


class StatusPageSettings(Section):
    """The public status page and badges (``[status_page]``): what strangers may see.

    Reasons stay hidden by default: a reason such as "connect to
    10.0.3.7:5432 refused" names an internal host.
    """

    enabled: bool = True
    title: Label = "Service status"
    description: str = Field(default="", max_length=1000)
    # Which services and groups are shown (empty: all).
    services: tuple[ServiceName, ...] = ()
    groups: tuple[Label, ...] = ()
    show_reasons: bool = False
    show_latency: bool = True
    # A second listener serving only the public parts (none by default);
    # its host defaults to [web] host.
    host: str | None = None
    port: Port | None = None
    # How long a proxy or shields.io may cache a badge.
    badge_max_age_s: Annotated[int, Field(ge=0, le=3600)] = 5
    # Latency badge colours: up to ok is the "up" blue, up to warn yellow, then red.
    latency_ok_ms: Millis = 300
    latency_warn_ms: Millis = 1000
    # Who may frame the public page (CSP frame-ancestors); empty: [web] frame_ancestors.
    frame_ancestors: tuple[CspSource, ...] = ()

    @model_validator(mode="after")
    def _thresholds(self) -> StatusPageSettings:
        if self.latency_warn_ms <= self.latency_ok_ms:
            raise ValueError("latency_warn_ms: must be more than latency_ok_ms")
        return self


class ServiceSettings(Section):
    name: ServiceName
    url: ServiceUrl
    # "http" (the default), "tcp" (connect only) or "grpc" (grpc.health.v1.Health).
    kind: Kind = "http"
    # grpc: the service name asked of grpc.health.v1.Health ("": the whole server).
    grpc_service: str = Field(default="", max_length=200)
    health_path: UrlPath = "/health"
    # Where the service's data is (a mock serves it there): a page gets data
    # controls only for a service that has one.
    data_endpoint: UrlPath | None = None
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
    # How the public status page groups and names it (the name otherwise).
    group: Label | None = None
    display_name: Label | None = None
    # Labels alert rules and maintenance windows select by (tags = ["db"]).
    tags: tuple[str, ...] = ()

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
            kinds = KIND_KEYS.get(key)
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
    def data_url(self) -> str | None:
        """The data endpoint's URL (None: an http service without one); for tcp and
        grpc, their address."""
        if self.kind != "http":
            return self.url
        return None if self.data_endpoint is None else self.url + self.data_endpoint

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
    status_page: StatusPageSettings = StatusPageSettings()
    services: tuple[ServiceSettings, ...] = ()
    channels: tuple[ChannelSettings, ...] = ()
    alerts: AlertSettings = AlertSettings()
    maintenance: tuple[MaintenanceWindow, ...] = ()

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

    @model_validator(mode="after")
    def _shown_services_exist(self) -> Settings:
        page = self.status_page
        names = {s.name for s in self.services}
        groups = {s.group for s in self.services}
        for name in page.services:
            if name not in names:
                raise ValueError(f"status_page.services: unknown service {name!r}")
        for group in page.groups:
            if group not in groups:
                raise ValueError(f"status_page.groups: no service is in group {group!r}")
        if page.port is not None and page.port == self.web.port:
            raise ValueError(f"status_page.port: {page.port} is the web port")
        return self

    @model_validator(mode="after")
    def _known_channels(self) -> Settings:
        named = alert_channel_problem(self.channels, self.alerts)
        if named is not None:
            raise ValueError(named)
        return self

    def service(self, name: str) -> ServiceSettings | None:
        return _by_name(self.services).get(name)


@per_object
def _by_name(services: tuple[ServiceSettings, ...]) -> dict[str, ServiceSettings]:
    """The services by name, per services tuple: not cached on Settings, as
    model_copy(update={"services": ...}) would copy a stale one."""
    return {s.name: s for s in services}


@dataclass
class LiveConfig:
    """The configuration in force, replaced by a reload; the last reload's error.

    ``path`` is the file watched; ``from_file`` is False while the built-in
    demo runs (no file read yet), so ``file`` names no file then.
    """

    settings: Settings
    path: Path | None = None
    error: str | None = None
    # Keys saved in the file that wait for a restart, sorted ("web.port").
    restart_needed: tuple[str, ...] = ()
    from_file: bool = True

    @property
    def file(self) -> str | None:
        """The config file as the user named it; None for the built-in demo."""
        return str(self.path) if self.path is not None and self.from_file else None


# -- describing a mistake ----------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """The type under ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The settings model that holds the keys at ``loc`` (``("services", 5)``: a service)."""
    annotation: Any = Settings
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            if get_origin(annotation) not in (tuple, list):
                return None
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part)
            if info is None:
                return None
            annotation = info.annotation
        else:
            return None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


# A location our validators write at the start of their message: "services[1].url: ...".
_MESSAGE_LOCATION = re.compile(r"([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.+)")


def _split_location(loc: Loc, message: str) -> tuple[Loc, str]:
    """A validator's message that starts with a location: that location joined to ``loc``."""
    match = _MESSAGE_LOCATION.fullmatch(message)
    model = _model_at(loc)
    if match is None or model is None:
        return loc, message
    parts: list[str | int] = []
    for piece in match[1].split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    if parts[0] not in model.model_fields:
        return loc, message
    return (*loc, *parts), match[2]


def _suggestion(loc: Loc) -> str:
    """For an unknown key: the known key it most likely means, said as a question."""
    model = _model_at(loc[:-1])
    if model is None or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _written(value: object) -> str:
    """A value as TOML writes it, short and on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _strict_message(error: Any) -> str:
    """What a value of another TOML type than its key's should have been written as."""
    value, kind = error["input"], error["type"]
    key = next((p for p in reversed(error["loc"]) if isinstance(p, str)), None)
    fix: str | None = None
    if kind == "int_type":
        wanted = "a whole number" if isinstance(value, float) else "a number"
        whole = isinstance(value, float) and value.is_integer()
        if whole or (isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value)):
            fix = str(int(value))
    elif kind == "bool_type":
        wanted = "true or false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            fix = value.strip().lower()
    else:
        return str(error["msg"])
    shown = f"the string {_written(value)}" if isinstance(value, str) else _written(value)
    hint = f" (write {key} = {fix})" if fix is not None and key is not None else ""
    return f"must be {wanted}, not {shown}{hint}"


# The errors that only strict validation finds: a value of another TOML type.
_STRICT_TYPES = frozenset({"int_type", "bool_type", "float_type", "string_type"})


@functools.cache
def _section_adapter(section: str) -> TypeAdapter[Any]:
    """A validator of one section alone, built once."""
    annotation = Settings.model_fields[section].annotation
    assert annotation is not None, "every settings section is typed"
    return TypeAdapter(annotation)


def _as_written(value: object) -> object:
    """TOML arrays as tuples: in strict mode a tuple field takes only a tuple."""
    if isinstance(value, list):
        return tuple(_as_written(item) for item in value)
    if isinstance(value, dict):
        return {key: _as_written(item) for key, item in value.items()}
    return value


def _strict_errors(data: dict[str, Any]) -> Iterator[Any]:
    """Each value of the file's known sections whose TOML type is not the key's type."""
    for section in Settings.model_fields:
        if section not in data:
            continue
        try:
            _section_adapter(section).validate_python(_as_written(data[section]), strict=True)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                if error["type"] in _STRICT_TYPES:
                    yield {**error, "loc": (section, *error["loc"])}


def _service_label(held: object, index: int) -> str:
    """``services[5] "billing"``: the index, and the name when the table has one."""
    label = f"services[{index}]"
    services = held.get("services") if isinstance(held, dict) else None
    if isinstance(services, list | tuple) and index < len(services):
        name = services[index].get("name") if isinstance(services[index], dict) else None
        if isinstance(name, str):
            shown = name if len(name) <= 40 else name[:39] + "…"
            label += " " + visible(json.dumps(shown, ensure_ascii=False))
    return label


def _location(loc: Loc, held: object = None) -> str:
    out = ""
    for position, part in enumerate(loc):
        if part == "[key]":  # pydantic's marker for a bad dict key: the key says it
            continue
        if isinstance(part, int):
            if position == 1 and loc[0] == "services":
                out = _service_label(held, part)
            else:
                out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True)
class _Problem:
    loc: Loc
    message: str
    missing: bool = False


def _problems(error: ValidationError | None, strict: Sequence[Any]) -> list[_Problem]:
    """Strict-type mistakes first, then the rest, one per location."""
    found: dict[Loc, _Problem] = {}
    for err in strict:
        found.setdefault(err["loc"], _Problem(err["loc"], _strict_message(err)))
    for err in error.errors(include_url=False) if error is not None else ():
        msg = err["msg"].removeprefix("Value error, ")
        loc: Loc = tuple(err["loc"])
        if err["type"] == "value_error":
            loc, msg = _split_location(loc, msg)
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _suggestion(loc)
        elif err["type"] == "missing":
            msg = "missing required field"
        found.setdefault(loc, _Problem(loc, msg, err["type"] == "missing"))
    return list(found.values())


def _describe(
    error: ValidationError | None,
    source: str | Path,
    data: dict[str, Any],
    text: str,
    strict: Sequence[Any] = (),
) -> str:
    """One line: each mistake in the file after ``file:LINE``, each variable's after its name."""
    environment: dict[str, Any] = _Environment(Settings)()
    in_file: list[str] = []
    by_variable: list[str] = []
    for problem in _problems(error, strict):
        variable = _from_environment(environment, problem.loc)
        where = _location(problem.loc, environment if variable else data)
        line = f"{where}: {problem.message}" if where else problem.message
        if variable is not None:
            by_variable.append(f"{variable}: {line}")
            continue
        number = key_line(text, problem.loc, missing=problem.missing)
        in_file.append(f"{source}:{number}: {line}" if number else f"{source}: {line}")
    return "; ".join(in_file + by_variable)


def starter_text(web_port: int = 4000, mock_ports: int = 3001) -> str:
    """The commented starter config.toml that ``healthmon init`` writes: the four-mock demo.

    ``web_port`` is the page's; the mocks listen on ``mock_ports`` and the three after it.
    """
    text = (resources.files("healthmon") / "starter.toml").read_text(encoding="utf-8")
    text, found = re.subn(r"(?m)^port = 4000\b", f"port = {web_port}", text)
    assert found == 1, "starter.toml: no [web] port = 4000 line"
    mocks = iter(range(mock_ports, mock_ports + 4))
    text, found = re.subn(
        r'(?m)^url = "http://127\.0\.0\.1:\d+"',
        lambda _: f'url = "http://127.0.0.1:{next(mocks)}"',
        text,
    )
    assert found == 4, "starter.toml: not four mock urls"
    return text


def _toml_error(exc: tomllib.TOMLDecodeError, source: str | Path) -> str:
    """``file:LINE: invalid TOML: why (column N)``, as tomllib tells it."""
    match = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", str(exc))
    if match is None:
        return f"{source}: invalid TOML: {exc}"
    return f"{source}:{match[2]}: invalid TOML: {match[1]} (column {match[3]})"


def parse_settings(
    text: str, source: str | Path, *, only: Collection[str] | None = None
) -> Settings:
    """Validate TOML ``text`` (with the environment over it), or raise ``ConfigError``.

    With ``only``, the file's other sections are not read (the environment's still are).
    """
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error(exc, source)) from None
    if only is not None:
        data = {key: value for key, value in data.items() if key in only}
    strict = list(_strict_errors(data))
    error: ValidationError | None = None
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        error = exc
    except _EnvironmentValueError as exc:
        raise ConfigError(str(exc)) from None
    except SettingsError as exc:
        # Any other value pydantic-settings cannot read: still one line, never a traceback.
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise ConfigError(f"environment: {exc}{cause}") from None
    if strict:
        # A value a variable replaces is the variable's: its type in the file does not count.
        environment = _Environment(Settings)()
        strict = [e for e in strict if _from_environment(environment, e["loc"]) is None]
    if error is not None or strict:
        raise ConfigError(_describe(error, source, data, text, strict))
    return settings


def demo_settings() -> Settings:
    """The built-in demo: the starter file's four mocks, environment overrides applied."""
    return parse_settings(starter_text(), "built-in demo")


def load_settings(path: Path | None = None, *, only: Collection[str] | None = None) -> Settings:
    """Read and validate the configuration, or raise ``ConfigError``.

    With no ``path``, ``./config.toml`` is read when present and the defaults
    (no services) otherwise; a path that is given must exist. ``only``: the
    file's sections to read (the others are left out, as if not written).
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
    return parse_settings(text, source, only=only)
