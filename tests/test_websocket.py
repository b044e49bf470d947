"""The WebSocket hub as a browser meets it: snapshot, changes, heartbeats, limits."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import WSCloseCode

from healthmon.keys import HUB
from tests.support import NAMES, System


async def test_first_snapshot_is_complete_and_correct(system: System) -> None:
    """A new client gets welcome, then a snapshot of every service as it really is."""
    await system.set_mode("notifications", "down")
    messages = await system.connect()
    welcome = await messages.next()
    assert welcome["type"] == "welcome"
    assert welcome["clients"] == 1
    snapshot = await messages.next()
    assert snapshot["type"] == "initialSnapshot"
    assert snapshot["data"] == {
        "auth": True,
        "billing": True,
        "notifications": False,
        "analytics": True,
    }
    assert list(snapshot["services"]) == list(NAMES)
    billing = snapshot["services"]["billing"]
    assert billing["status"] == "up"
    assert billing["url"] == system.settings.service("billing").url  # type: ignore[union-attr]
    assert billing["data_endpoint"] == "/billing"
    assert billing["health_url"] == billing["url"] + "/health"
    assert billing["mock"] is True
    assert snapshot["services"]["notifications"]["reason"] == "connection refused"


async def test_mock_down_gives_exactly_one_update(system: System) -> None:
    """Switching a mock down yields one statusUpdate, and none more while it stays down."""
    messages = await system.connected()
    await system.set_mode("billing", "down")
    data = await messages.update_for("billing")
    assert data["up"] is False
    assert data["status"] == "down"
    assert isinstance(data["ts"], int)
    # Several checks of the down service happen during five heartbeats.
    beats = 0
    while beats < 5:
        message = await messages.next()
        assert message["type"] != "statusUpdate", message
        beats += message["type"] == "heartbeat"
    await system.set_mode("billing", "up")
    assert (await messages.update_for("billing"))["up"] is True


@pytest.mark.parametrize(
    ("mode", "status", "up"),
    [("error", "down", False), ("degraded", "degraded", True)],
)
async def test_error_and_degraded_modes(system: System, mode: str, status: str, up: bool) -> None:
    """An erroring mock is down, a degraded one is degraded yet up, each with a reason."""
    messages = await system.connected()
    await system.set_mode("auth", mode)
    data = await messages.update_for("auth")
    assert (data["status"], data["up"]) == (status, up)
    assert "auth was switched to" in data["reason"]


async def test_hung_service_does_not_delay_the_others(system: System) -> None:
    """While one mock hangs, another's failure is reported before the hung one times out."""
    messages = await system.connected()
    await system.set_mode("analytics", "slow")
    await system.set_mode("billing", "down")
    first = await messages.until(lambda m: m["type"] == "statusUpdate")
    assert first["data"]["service"] == "billing"
    hung = await messages.update_for("analytics")
    assert hung["status"] == "down"
    assert hung["reason"] == "no answer within 1000 ms"


async def test_heartbeats_say_whether_the_monitor_is_alive(system: System) -> None:
    """Heartbeats report the monitor alive, then dead once it is switched off, and alive again."""
    messages = await system.connected()
    beat = await messages.until(lambda m: m["type"] == "heartbeat")
    assert beat["monitor"]["alive"] is True
    status, _ = await system.post("/api/components/monitor", {"running": False})
    assert status == 200
    dead = await messages.until(lambda m: m["type"] == "heartbeat" and not m["monitor"]["alive"])
    assert dead["monitor"]["last_seen"] is not None
    await system.post("/api/components/monitor", {"running": True})
    await messages.until(lambda m: m["type"] == "heartbeat" and m["monitor"]["alive"])


async def test_client_frames_are_ignored(system: System) -> None:
    """Garbage text and binary frames from a client change nothing and close nothing."""
    messages = await system.connected()
    await messages.ws.send_str("not json {")
    await messages.ws.send_bytes(b"\x00\xff" * 100)
    await system.set_mode("billing", "down")
    assert (await messages.update_for("billing"))["up"] is False


async def test_oversized_client_frame_closes_with_1009(system: System) -> None:
    """A client frame over the limit closes that socket with 1009 and no other."""
    other = await system.connected()
    messages = await system.connected()
    await messages.ws.send_str("x" * 10_000)
    closed = await messages.ws.receive(timeout=5)
    assert closed.type is aiohttp.WSMsgType.CLOSE
    assert closed.data == WSCloseCode.MESSAGE_TOO_BIG
    await system.set_mode("billing", "down")
    assert (await other.update_for("billing"))["up"] is False


async def test_ws_switched_off_closes_with_1001_and_refuses_upgrades(system: System) -> None:
    """The ws switch closes sockets with 1001, refuses new ones with 503, and restores them."""
    messages = await system.connected()
    status, body = await system.post("/api/components/ws", {"running": False})
    assert (status, body) == (200, {"component": "ws", "running": False})
    closed = await messages.ws.receive(timeout=5)
    assert closed.type is aiohttp.WSMsgType.CLOSE
    assert closed.data == WSCloseCode.GOING_AWAY
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await system.connect()
    assert refused.value.status == 503
    await system.post("/api/components/ws", {"running": True})
    again = await system.connected()
    await system.set_mode("auth", "down")
    assert (await again.update_for("auth"))["up"] is False


async def test_foreign_origin_is_refused(system: System) -> None:
    """A page on another site cannot open the WebSocket; the page's own origins can."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await system.connect(Origin="http://evil.example")
    assert refused.value.status == 403
    for origin in (f"http://localhost:{system.settings.web.port}", system.base):
        messages = await system.connect(Origin=origin)
        assert (await messages.next())["type"] == "welcome"


async def test_slow_reader_does_not_delay_a_fast_one(system: System) -> None:
    """A client that stops reading is dropped at its backlog bound; others get every message."""
    fast = await system.connected()
    # A raw client that upgrades and then never reads, with a tiny receive buffer.
    port = system.settings.web.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b"101" in await reader.readline()
    # Once its snapshot has arrived, the hub broadcasts to it too.
    await asyncio.wait_for(reader.readuntil(b"initialSnapshot"), 5)
    hub = system.app[HUB]
    blob = "y" * 60_000
    # The kernel absorbs some megabytes first; the bound must trip well before 1,000.
    for index in range(1000):
        hub.broadcast({"type": "bulk", "index": index, "blob": blob})
        received = await fast.until(lambda m: m["type"] == "bulk")
        assert received["index"] == index
        if hub.dropped:
            break
    assert hub.dropped == 1
    assert len(hub.clients) == 1
    writer.close()
