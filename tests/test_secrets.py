"""Secret check headers are sent, and never shown in logs, the API, the page or the socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from structlog.testing import capture_logs

from healthmon.app import create_app
from healthmon.config import Settings
from tests.support import Messages

SECRET = "hm-s3cret-value-42"


@pytest.fixture
async def protected() -> AsyncIterator[str]:
    """A service whose health answers only with the token, and warns on one check."""

    async def health(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET}":
            return web.json_response({"status": "fail", "output": "unauthorised"}, status=401)
        return web.json_response(
            {"status": "pass", "checks": {"db:ping": [{"status": "warn", "output": "slow ping"}]}},
            content_type="application/health+json",
        )

    app = web.Application()
    app.router.add_get("/health", health)
    server = TestServer(app, host="127.0.0.1", port=unused_port())
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_secret_header_never_shown(protected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token reaches the service (degraded, not down) and shows nowhere a person looks."""
    monkeypatch.setenv("HM_SECRET_TOKEN", SECRET)
    settings = Settings.model_validate(
        {
            "web": {"port": unused_port()},
            "monitor": {"interval_ms": 100, "heartbeat_ms": 200},
            "services": [
                {
                    "name": "orders",
                    "url": protected,
                    "headers": {"Authorization": "Bearer ${HM_SECRET_TOKEN}"},
                }
            ],
        }
    )
    server = TestServer(create_app(settings), host="127.0.0.1", port=settings.web.port)
    with capture_logs() as logs:
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                base = f"http://127.0.0.1:{settings.web.port}"
                ws = await session.ws_connect(f"{base}/ws")
                messages = Messages(ws)
                await messages.until(lambda m: m["type"] == "initialSnapshot")
                seen = [str(messages.seen)]
                for path in ("/api/services", "/statuses", "/", "/metrics"):
                    async with session.get(base + path) as response:
                        seen.append(await response.text())
                await ws.close()
        finally:
            await server.close()
    snapshot = messages.seen[-1]["services"]["orders"]
    assert snapshot["status"] == "degraded"
    assert snapshot["checks"][0]["name"] == "db:ping"
    assert snapshot["reason"] == "db:ping: warn: slow ping"
    everything = "\n".join(seen) + str(logs)
    assert "status.changed" in str(logs)
    assert SECRET not in everything
