"""``healthmon alert test CHANNEL``: one test message, and what the receiver answered."""

from __future__ import annotations

import uuid

from healthmon.alerts.channels import Answer, channel_for
from healthmon.alerts.rules import Item, Message
from healthmon.config import Settings
from healthmon.models import Status, now_ms


def trial_message(channel: str) -> Message:
    now = now_ms()
    item = Item(
        "healthmon", "test", Status.UP, "a test message from healthmon alert test", now, now
    )
    return Message(f"test-{uuid.uuid4().hex[:16]}", channel, now, (item,))


async def send_test(settings: Settings, name: str) -> tuple[Message, Answer]:
    """Send one test message through the channel named ``name`` (it must exist)."""
    found = next(c for c in settings.channels if c.name == name)
    channel = channel_for(found)
    message = trial_message(name)
    try:
        return message, await channel.send(message)
    finally:
        await channel.aclose()
