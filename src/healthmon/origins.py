"""Which hosts a request may name and which browser origins may use the page's
channels: the same rules everywhere, from the configuration alone.

Nothing here is derived from the request: a page on ``http://evil.example:4000``
whose name resolves to 127.0.0.1 (DNS rebinding) chooses both its ``Host`` and
its ``Origin``, so neither can vouch for the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

from healthmon.config import MonitorSettings, WebSettings

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")
SCHEMES = ("http", "https")


def host_name(host: str) -> str:
    """``host`` as a Host header carries it (IPv6 in brackets), lower case, no port."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    if host.count(":") > 1:  # a bare IPv6 address, as in [web] host = "::1"
        return f"[{host}]"
    return host.partition(":")[0]


def _bound_host(web: WebSettings) -> str | None:
    host = host_name(web.host)
    return None if host in _ANY_ADDRESS else host


@lru_cache(maxsize=32)
def allowed_hosts(web: WebSettings, monitor: MonitorSettings | None = None) -> frozenset[str]:
    """Host names requests may name: loopback, the bound host, [monitor] urls, the configured."""
    hosts = set(LOOPBACK_HOSTS) | set(web.allowed_hosts)
    if (bound := _bound_host(web)) is not None:
        hosts.add(bound)
    if monitor is not None:
        # Where other processes are told to reach a monitor: the operator's names.
        hosts.update(host_name(urlsplit(url).netloc) for url in monitor.urls)
    return frozenset(hosts)


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    """Whether a request's Host header names this server (ports are not compared)."""
    if not host:
        return False
    name = host_name(host)
    for entry in allowed:
        if entry == "*" or entry == name:
            return True
        if entry.startswith("*.") and name.endswith(entry[1:]):
            return True
    return False


@lru_cache(maxsize=32)
def own_origins(web: WebSettings) -> frozenset[str]:
    """The page's own origins: every loopback name and configured host with the web port.

    A configured name (not loopback) also counts on the default ports, for a
    proxy in front of it (``https://healthmon.example.org``).
    """
    port = web.port
    names = {h for h in web.allowed_hosts if "*" not in h}
    if (bound := _bound_host(web)) is not None:
        names.add(bound)
    own = {f"http://{name}:{port}" for name in names | set(LOOPBACK_HOSTS)}
    own |= {f"{scheme}://{name}" for name in names - set(LOOPBACK_HOSTS) for scheme in SCHEMES}
    return frozenset(own)


@lru_cache(maxsize=32)
def page_origins(web: WebSettings) -> frozenset[str]:
    """The origins that may read the page's channels: its own, plus ``cors_origins``."""
    return own_origins(web) | frozenset(web.cors_origins)


def origin_allowed(origin: str, host: str | None, web: WebSettings) -> bool:
    """One of the origins that may read (``page_origins``): the socket, events, statuses.

    ``host`` is ignored: kept so that callers compile unchanged. A page's own
    ``Host`` says nothing about whether it is ours.
    """
    del host
    return origin in page_origins(web)


def control_origin_allowed(origin: str, web: WebSettings) -> bool:
    """The controls stay same-origin: the page's own origins only, never ``cors_origins``."""
    return origin in own_origins(web)
