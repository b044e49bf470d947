"""The value types every settings table is built from: URLs, paths, durations,
``${VAR}`` secrets, header names, labels, ports.

One place for them, so ``config.py`` and the alerts' tables (``alerts/settings.py``)
validate the same value the same way and say the same thing about it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

CREDENTIALS_IN_URL = (
    "must not carry a user name or password (they would be shown on the page, "
    "in the API and in logs); send them as a header instead: "
    'headers = { Authorization = "Basic ${VAR}" }'
)


def http_url(value: str) -> str:
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


def expand_env(value: object) -> object:
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


def _one_line(value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ValueError("must be one line (no line break or NUL)")
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


def header_name(value: str) -> str:
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", value):
        raise ValueError(f"{value!r} is not a valid HTTP header name")
    return value


HttpUrl = Annotated[str, AfterValidator(http_url)]
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
        return http_url(value)
    if scheme not in ("tcp", "grpc", "grpcs"):
        raise ValueError(
            "must be an absolute http:// or https:// URL with a host "
            "(or tcp://, grpc://, grpcs:// for those kinds)"
        )
    # Host, port, credentials, query: checked as for http, on the rest of the URL.
    return scheme + http_url("http" + value[len(scheme) :])[len("http") :]


ServiceUrl = Annotated[str, AfterValidator(_service_url)]
# Service keys that only some kinds use: setting one for another kind is a mistake.
KIND_KEYS: dict[str, tuple[str, ...]] = {
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
HeaderValue = Annotated[SecretStr, BeforeValidator(expand_env)]
HeaderName = Annotated[str, AfterValidator(header_name)]
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
# Free text shown on the public page and badges (escaped there): one line.
Label = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_one_line)]

_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration(value: object) -> int:
    """``"500ms"``, ``"30s"``, ``"5m"``, ``"48h"`` or ``"90d"``, in milliseconds."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"(\d+)\s*(ms|s|m|h|d)", text)
    if match is None or isinstance(value, bool):
        raise ValueError(f'{value!r} is not a duration like "30s", "48h" or "90d"')
    return int(match[1]) * _DURATION_UNITS[match[2]]


Duration = Annotated[int, BeforeValidator(duration)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
