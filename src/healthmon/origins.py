"""Which browser origins may use the page's channels: the same rule everywhere."""

from __future__ import annotations

from healthmon.config import WebSettings


def page_origins(web: WebSettings) -> frozenset[str]:
    """The page's own origins, by every loopback name, plus the configured ones."""
    port = web.port
    own = {f"http://localhost:{port}", f"http://127.0.0.1:{port}", f"http://[::1]:{port}"}
    if web.host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        own.add(f"http://{web.host}:{port}")
    return frozenset(own | set(web.cors_origins))


def origin_allowed(origin: str, host: str, web: WebSettings) -> bool:
    """The page's own origin (by whatever name the server was reached) or a configured one.

    ``host`` is the request's Host header: a page served from it is same-origin.
    """
    return origin in (f"http://{host}", f"https://{host}") or origin in page_origins(web)
