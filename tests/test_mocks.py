"""Mock services as a checker and a browser meet them: modes, payloads, CORS."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from structlog.testing import capture_logs
from yarl import URL

from healthmon.checks.base import CheckSpec
from healthmon.checks.http import check_once
from healthmon.config import MonitorSettings, ServiceSettings
from healthmon.errors import StartupError
from healthmon.mocks import MockService, Mode
from healthmon.models import Status
from tests.support import System, data_url


def solo(port: int) -> MockService:
    service = ServiceSettings(name="solo", url=f"http://127.0.0.1:{port}", mock=True)
    return MockService(service, cors_origins=(), slow_ms=10)


async def test_data_payloads_are_the_originals(system: System) -> None:
    """Each mock's data endpoint serves the original demo's payload."""
    expected_keys = {
        "auth": {"userCount", "lastSync"},
        "billing": {"totalInvoices", "revenue"},
        "notifications": {"pending", "lastSent"},
        "analytics": {"activeSessions", "pageViews"},
    }
    for service in system.settings.services:
        async with system.session.get(data_url(service)) as response:
            assert response.status == 200
            assert set(await response.json()) == expected_keys[service.name]
    billing = system.settings.service("billing")
    assert billing is not None
    async with system.session.get(data_url(billing), params={"q": "march"}) as response:
        body = await response.json()
    assert body["revenue"] == "$12,345.67"
    assert body["query"] == {"q": "march"}


async def test_health_is_health_json(system: System) -> None:
    """An up mock answers 200 application/health+json with status pass."""
    auth = system.settings.service("auth")
    assert auth is not None
    async with system.session.get(auth.health_url) as response:
        assert response.status == 200
        assert response.content_type == "application/health+json"
        assert (await response.json(content_type=None))["status"] == "pass"


async def test_down_refuses_connections_even_kept_alive_ones(system: System) -> None:
    """Down closes the listening socket and kept-alive connections, as a stopped container."""
    auth = system.settings.service("auth")
    assert auth is not None
    connector = aiohttp.TCPConnector(force_close=False)
    async with aiohttp.ClientSession(connector=connector) as client:
        async with client.get(auth.health_url) as response:
            assert response.status == 200
        await system.set_mode("auth", "down")
        with pytest.raises(aiohttp.ClientConnectionError):
            async with client.get(auth.health_url):
                pass
        with pytest.raises(aiohttp.ClientConnectorError):
            async with client.get(auth.health_url):
                pass
        await system.set_mode("auth", "up")
        async with client.get(auth.health_url) as response:
            assert response.status == 200


async def test_error_mode_answers_503_fail(system: System) -> None:
    """Error mode answers 503 with status fail on health and an error on data."""
    await system.set_mode("billing", "error")
    billing = system.settings.service("billing")
    assert billing is not None
    async with system.session.get(billing.health_url) as response:
        assert response.status == 503
        assert (await response.json(content_type=None))["status"] == "fail"
    async with system.session.get(data_url(billing)) as response:
        assert response.status == 503
        assert "error" in await response.json()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
async def test_cors_for_the_page_origins(system: System, host: str) -> None:
    """The mocks answer CORS, preflight included, for the page by every loopback name."""
    origin = f"http://{host}:{system.settings.web.port}"
    auth = system.settings.service("auth")
    assert auth is not None
    async with system.session.get(auth.health_url, headers={"Origin": origin}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == origin
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "cache-control",
    }
    async with system.session.options(data_url(auth), headers=preflight) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "GET" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"] == "cache-control"


async def test_cors_configured_origin_and_foreign_origin(system: System) -> None:
    """A configured origin (the original Svelte page) is allowed; a foreign one is not."""
    auth = system.settings.service("auth")
    assert auth is not None
    svelte = "http://localhost:5173"
    async with system.session.get(auth.health_url, headers={"Origin": svelte}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == svelte
    foreign = "http://evil.example"
    async with system.session.get(auth.health_url, headers={"Origin": foreign}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
    preflight = {"Origin": foreign, "Access-Control-Request-Method": "GET"}
    async with system.session.options(auth.health_url, headers=preflight) as response:
        assert response.status == 403


async def test_modes_set_together_apply_in_call_order(session: aiohttp.ClientSession) -> None:
    """set_mode calls made together apply one by one, in call order, and the last one stays."""
    mock = solo(unused_port())
    await mock.start()
    order = [Mode.DOWN, Mode.UP, Mode.DOWN, Mode.ERROR, Mode.DOWN, Mode.UP, Mode.DOWN]
    try:
        with capture_logs() as logs:
            await asyncio.gather(*(mock.set_mode(mode) for mode in order))
        assert [e["to"] for e in logs if e["event"] == "mock.mode"] == [m.value for m in order]
        assert (mock.mode, mock.listening) == (Mode.DOWN, False)
        with pytest.raises(aiohttp.ClientConnectorError):
            async with session.get(mock.service.health_url):
                pass
    finally:
        await mock.stop()


async def test_a_mode_that_cannot_listen_leaves_the_mock_as_it_was() -> None:
    """Switching up a mock whose port was taken fails and the mock still says down."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        mock = solo(taken.getsockname()[1])
        await mock.set_mode(Mode.DOWN)
        with pytest.raises(StartupError, match="cannot listen"):
            await mock.set_mode(Mode.UP)
    assert (mock.mode, mock.listening) == (Mode.DOWN, False)


@pytest.mark.parametrize(
    ("health_path", "data_endpoint"),
    [
        ("/readyz?verbose", "/data?limit=5"),
        ("/he{alth", "/{name}"),
        ("/caf\u00e9/sant\u00e9", "/a%20b/%7Bc%7D"),
        ("/same?a", "/same?b"),
    ],
)
async def test_a_mock_serves_its_paths_as_written_and_sees_the_query(
    session: aiohttp.ClientSession, health_path: str, data_endpoint: str
) -> None:
    """A mock answers its own check on any valid path (queries, braces, unicode) and is up."""
    service = ServiceSettings(
        name="odd",
        url=f"http://127.0.0.1:{unused_port()}",
        mock=True,
        health_path=health_path,
        data_endpoint=data_endpoint,
    )
    mock = MockService(service, cors_origins=(), slow_ms=10)
    await mock.start()
    try:
        result = await check_once(session, CheckSpec.resolve(service, MonitorSettings()))
        assert (result.status, result.reason) == (Status.UP, None)
        async with session.get(URL(data_url(service))) as response:
            assert response.status == 200
            body = await response.json(content_type=None)
        if data_url(service).rpartition("?")[0] != service.health_url.rpartition("?")[0]:
            assert body["query"] == dict(URL(data_url(service)).query)
        async with session.get(URL(service.url + "/elsewhere?verbose")) as response:
            assert response.status == 404
    finally:
        await mock.stop()


@pytest.mark.parametrize("turns", range(8))
async def test_a_connection_made_as_a_mock_goes_down_is_closed_at_once(turns: int) -> None:
    """A client that connects the moment its mock switches down is refused or closed, never left
    hanging.

    asyncio gives an accepted connection to its server one loop turn after accepting it; a
    server closed in between left it open and unanswered (CPython gh-109564, its socket leak
    gh-155934), so a health check made then hung until its timeout instead of seeing "down".
    On Python 3.11 three turns land in that gap.
    """
    mock = solo(unused_port())
    await mock.start()
    try:
        connecting = asyncio.create_task(asyncio.open_connection("127.0.0.1", mock.service.port))
        for _ in range(turns):
            await asyncio.sleep(0)  # where in the hand-over the switch lands, not a wait
        await mock.set_mode(Mode.DOWN)
        try:
            reader, writer = await connecting
        except (ConnectionRefusedError, ConnectionResetError):
            return  # refused, or reset while still waiting to be accepted: as good
        writer.write(b"GET /health HTTP/1.1\r\nHost: solo\r\n\r\n")
        async with asyncio.timeout(3):
            try:
                answer = await reader.read()
            except ConnectionResetError:
                answer = b""
        writer.close()
        assert answer == b"", "a mock switched down answered"
    finally:
        await mock.stop()
