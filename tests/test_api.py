"""The HTTP API: the original's /statuses, the page's /api/services, and the controls."""

from __future__ import annotations

from typing import Any

import pytest

from healthmon.api import is_loopback
from healthmon.keys import BOARD, CONFIG
from tests.support import NAMES, System


async def test_statuses_is_the_originals_shape(system: System) -> None:
    """GET /statuses maps every service to a boolean, in config order."""
    messages = await system.connected()
    await system.set_mode("billing", "down")
    await messages.update_for("billing")
    body = await system.get("/statuses")
    assert body == {"auth": True, "billing": False, "notifications": True, "analytics": True}
    assert list(body) == list(NAMES)


async def test_api_services_describes_config_and_status(system: System) -> None:
    """GET /api/services gives each service's URLs, mode and full status, and the components."""
    await system.connected()
    document = await system.get("/api/services")
    services = {s["name"]: s for s in document["services"]}
    assert list(services) == list(NAMES)
    auth = services["auth"]
    configured = system.settings.service("auth")
    assert configured is not None
    assert auth["health_url"] == configured.health_url
    assert auth["data_url"] == configured.data_url
    assert (auth["mock"], auth["mode"], auth["status"], auth["up"]) == (True, "up", "up", True)
    assert isinstance(auth["since"], int)
    assert document["monitor"]["running"] is True
    assert document["monitor"]["alive"] is True
    assert document["ws"] == {"running": True, "clients": 1}
    assert document["interval_ms"] == system.settings.monitor.interval_ms


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/mocks/nope", {"mode": "down"}, 404, "no mock service named 'nope'"),
        ("/api/mocks/auth", {"mode": "sideways"}, 400, "'mode' must be one of"),
        ("/api/mocks/auth", {}, 400, "'mode' must be one of"),
        ("/api/mocks/auth", [1, 2], 400, "body must be a JSON object"),
        ("/api/components/database", {"running": False}, 404, "no component named"),
        ("/api/components/monitor", {"running": "no"}, 400, "'running' must be true or false"),
    ],
)
async def test_control_errors_are_json(
    system: System, path: str, body: Any, status: int, message: str
) -> None:
    """Unknown names are 404 and bad bodies 400, each with a JSON error, never a 500."""
    got, answer = await system.post(path, body)
    assert got == status
    assert message in answer["error"]


async def test_control_needs_json_and_our_origin(system: System) -> None:
    """Control calls must be JSON and, from a browser, come from the page's own origin."""
    url = f"{system.base}/api/mocks/auth"
    async with system.session.post(url, data="mode=down") as response:
        assert response.status == 415
        assert "application/json" in (await response.json())["error"]
    async with system.session.post(
        url, data="{oops", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
    foreign = {"Origin": "http://evil.example"}
    async with system.session.post(url, json={"mode": "down"}, headers=foreign) as response:
        assert response.status == 403
    own = {"Origin": f"http://localhost:{system.settings.web.port}"}
    async with system.session.post(url, json={"mode": "degraded"}, headers=own) as response:
        assert response.status == 200
        assert await response.json() == {"name": "auth", "mode": "degraded"}


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("192.168.1.20", False),
        ("2001:db8::1", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_detection(remote: str | None, expected: bool) -> None:
    """Only loopback addresses, in any notation, count as the local machine."""
    assert is_loopback(remote) is expected


async def test_services_document_tolerates_a_name_the_board_lacks(system: System) -> None:
    """GET /api/services shows a service the board does not know as unknown, not a 500."""
    board = system.app[BOARD]
    settings = system.app[CONFIG].settings
    board.set_services(settings.services[:1], settings.monitor)
    document = await system.get("/api/services")
    billing = document["services"][1]
    assert (billing["name"], billing["status"], billing["up"]) == ("billing", "unknown", False)
    async with system.session.get(f"{system.base}/") as response:
        assert response.status == 200
