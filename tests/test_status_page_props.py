"""Property tests: any badge path, window, label or If-None-Match gives 200, 304 or 404.

The real app and its public listener run on loopback in a thread of their
own; Hypothesis sends each example over a real socket, to both listeners.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthmon.app import create_app
from healthmon.config import StatusPageSettings
from healthmon.public.site import create_public_app
from tests.support import free_ports, make_settings

SEGMENT = st.text(max_size=30)
WINDOW = st.one_of(st.sampled_from(["24h", "7d", "30d", "90d", "1h", ""]), SEGMENT)
NAME = st.one_of(st.sampled_from(["auth", "billing", "@all", "@group", "..", "."]), SEGMENT)
KIND = st.sampled_from(["svg", "json", "png", ""])
HEADER = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@pytest.fixture(scope="module")
def ports() -> Iterator[tuple[int, int]]:
    """The main and public ports of a real healthmon running in its own thread."""
    (public_port,) = free_ports(1)
    base = make_settings()
    page = StatusPageSettings(port=public_port, services=("auth", "billing"))
    app = create_app(base.model_copy(update={"status_page": page}))
    loop = asyncio.new_event_loop()
    servers: list[TestServer] = []
    started = threading.Event()
    stop = asyncio.Event()

    async def run() -> None:
        main = TestServer(app, host="127.0.0.1", port=base.web.port)
        await main.start_server()
        public = TestServer(create_public_app(app), host="127.0.0.1", port=public_port)
        await public.start_server()
        servers.extend([main, public])
        started.set()
        await stop.wait()
        await public.close()
        await main.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(20), "healthmon did not start"
    yield base.web.port, public_port
    loop.call_soon_threadsafe(stop.set)
    thread.join(20)
    loop.close()


def _get(port: int, path: str, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=NAME,
    middle=st.sampled_from(["status", "uptime", "latency", "x"]),
    window=WINDOW,
    kind=KIND,
    label=st.one_of(st.none(), st.text(max_size=60)),
    etag=st.one_of(st.none(), HEADER),
    raw=st.booleans(),
)
def test_any_badge_request_is_answered(
    ports: tuple[int, int],
    name: str,
    middle: str,
    window: str,
    kind: str,
    label: str | None,
    etag: str | None,
    raw: bool,
) -> None:
    """Whatever the path, window, label or ETag: 200, 304 or 404, never a 500."""
    parts = [name, middle] + ([window] if middle != "status" else [])
    tail = "/".join(quote(p, safe="" if not raw else "/@") for p in parts)
    path = f"/badge/{tail}.{kind}" if kind else f"/badge/{tail}"
    if label is not None:
        path += "?label=" + quote(label, safe="")
    headers = {"If-None-Match": etag} if etag is not None else {}
    for port in ports:
        assert _get(port, path, headers) in (200, 304, 404), path
