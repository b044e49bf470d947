"""Resume: numbered messages, ``/ws?since=<stream>:<seq>`` replay, and the old clients' order."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthmon.hub import JOURNAL_SIZE, Since, parse_since
from healthmon.keys import HUB
from tests.support import Messages, System

NUMBERED = ("initialSnapshot", "statusUpdate", "configError")


def numbered(message: dict[str, Any]) -> bool:
    return message["type"] in NUMBERED


async def resume(system: System, since: str) -> Messages:
    """A WebSocket client that asks to resume from ``since``."""
    ws = await system.session.ws_connect(f"{system.base}/ws", params={"since": since})
    system.sockets.append(ws)
    return Messages(ws)


async def left_at(system: System) -> tuple[str, int]:
    """A client that read its snapshot and left: the stream and seq it held."""
    messages = await system.connected()
    snapshot = messages.seen[-1]
    await messages.ws.close()
    return snapshot["stream"], snapshot["seq"]


async def test_old_clients_see_the_original_order_with_numbers_added(system: System) -> None:
    """Without since: welcome, a snapshot numbered with the latest seq, updates counting on."""
    messages = await system.connect()
    welcome = await messages.next()
    assert welcome["type"] == "welcome"
    assert isinstance(welcome["clients"], int)
    assert "seq" in welcome
    assert len(welcome["stream"]) == 12
    snapshot = await messages.next()
    assert snapshot["type"] == "initialSnapshot"
    assert {"data", "services", "monitor", "ts"} <= set(snapshot)
    assert snapshot["stream"] == welcome["stream"]
    assert snapshot["seq"] >= welcome["seq"]
    await system.set_mode("billing", "down")
    update = await messages.until(lambda m: m["type"] != "heartbeat")
    assert update["type"] == "statusUpdate"
    assert (update["data"]["service"], update["seq"]) == ("billing", snapshot["seq"] + 1)
    beat = await messages.until(lambda m: m["type"] == "heartbeat")
    assert "seq" not in beat
    assert "stream" not in beat


async def test_since_replays_exactly_the_missed_messages(system: System) -> None:
    """Back with since=<stream>:<seq>, a client gets welcome, exactly what it missed, then live."""
    watcher = await system.connected()
    stream, seq = await left_at(system)
    await system.set_mode("billing", "down")
    await watcher.update_for("billing")
    await system.set_mode("auth", "error")
    await watcher.update_for("auth")
    missed = [m for m in watcher.seen if numbered(m) and m["seq"] > seq]
    assert [m["seq"] for m in missed] == list(range(seq + 1, seq + 1 + len(missed)))
    back = await resume(system, f"{stream}:{seq}")
    welcome = await back.next()
    assert welcome["type"] == "welcome"
    assert (welcome["stream"], welcome["seq"]) == (stream, missed[-1]["seq"])
    for expected in missed:
        got = await back.until(lambda m: m["type"] != "heartbeat")
        assert got == expected
    # Nothing else was replayed: the next numbered message is the next change.
    await system.set_mode("billing", "up")
    live = await back.until(numbered)
    assert live["type"] == "statusUpdate"
    assert (live["data"]["service"], live["seq"]) == ("billing", missed[-1]["seq"] + 1)
    assert not any(m["type"] == "initialSnapshot" for m in back.seen)


async def test_changes_while_no_client_is_connected_are_kept(system: System) -> None:
    """A change made while no one is connected is replayed to the client that resumes."""
    stream, seq = await left_at(system)
    await system.set_mode("notifications", "down")
    back = await resume(system, f"{stream}:{seq}")
    assert (await back.next())["type"] == "welcome"
    replayed = await back.until(lambda m: m["type"] != "heartbeat")
    assert replayed["type"] == "statusUpdate"
    assert replayed["seq"] == seq + 1
    assert replayed["data"]["service"] == "notifications"


async def test_up_to_date_since_gets_no_snapshot_and_no_replay(system: System) -> None:
    """Resuming at the latest seq sends welcome only, then the next live change."""
    stream, seq = await left_at(system)
    back = await resume(system, f"{stream}:{seq}")
    assert (await back.next())["type"] == "welcome"
    await system.set_mode("analytics", "down")
    live = await back.until(lambda m: m["type"] != "heartbeat")
    assert (live["type"], live["seq"]) == ("statusUpdate", seq + 1)


@pytest.mark.parametrize(
    "since",
    [
        "other-stream",
        "0123456789ab:1",
        "garbage",
        "",
        ":",
        "STREAM:1",
        "{stream}:-1",
        "{stream}:+1",
        "{stream}:{future}",
        "{stream}:1e3",
        "{stream}:01",
        "{stream}:\uff11",  # a full-width digit one
    ],
)
async def test_other_stream_or_garbage_since_gets_a_fresh_snapshot(
    system: System, since: str
) -> None:
    """A since from another hub, from the future, or not a resume point at all: a snapshot."""
    stream, seq = await left_at(system)
    back = await resume(system, since.format(stream=stream, future=seq + 5))
    assert (await back.next())["type"] == "welcome"
    snapshot = await back.next()
    assert snapshot["type"] == "initialSnapshot"
    assert (snapshot["stream"], snapshot["seq"]) == (stream, system.app[HUB].seq)


async def test_too_old_since_gets_a_fresh_snapshot(system: System) -> None:
    """A client that missed more than the journal holds gets a snapshot, not a partial replay."""
    stream, seq = await left_at(system)
    hub = system.app[HUB]
    for _ in range(JOURNAL_SIZE + 1):
        hub.show_config_error(None)
    back = await resume(system, f"{stream}:{seq}")
    assert (await back.next())["type"] == "welcome"
    snapshot = await back.next()
    assert (snapshot["type"], snapshot["seq"]) == ("initialSnapshot", hub.seq)
    # The oldest the journal still covers is replayed in full.
    oldest = hub.seq - JOURNAL_SIZE
    again = await resume(system, f"{stream}:{oldest}")
    assert (await again.next())["type"] == "welcome"
    first = await again.next()
    assert (first["type"], first["seq"]) == ("configError", oldest + 1)


@given(st.text())
def test_since_parsing_is_total(value: str) -> None:
    """Any string is a resume point that prints back as itself, or None (a snapshot)."""
    since = parse_since(value)
    assert since is None or str(since) == value.strip()


@given(st.text(alphabet="0123456789abcdef", min_size=1, max_size=32), st.integers(0, 10**18 - 1))
def test_every_resume_point_parses_back(stream: str, seq: int) -> None:
    """A stream id and seq as the hub writes them parse back to the same point."""
    assert parse_since(f"{stream}:{seq}") == Since(stream, seq)
    assert parse_since(None) is None
