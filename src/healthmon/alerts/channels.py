"""Where a message goes: the ``Channel`` protocol; webhook, email and Apprise beside it.

A channel's ``send`` is total: whatever the receiver does (an error status, a
refused connection, garbage) it returns an ``Answer``, never raises, so the
delivery loop only decides when to try again. Each is chosen by
``[[channels]] kind`` and imported lazily, so the email and Apprise extras
stay optional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from healthmon.alerts.rules import Item, Message
from healthmon.alerts.settings import ChannelSettings

#: The ``source`` of our CloudEvents, and the ``type`` of an alert event.
EVENT_SOURCE = "healthmon"
EVENT_TYPE = "io.healthmon.alert"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver said: delivered or not, and its words (status and body start)."""

    ok: bool
    detail: str


class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> Answer:
        """Deliver ``message`` once; never raises (cancellation aside)."""

    async def aclose(self) -> None: ...


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def item_json(item: Item) -> dict[str, Any]:
    return {
        "service": item.service,
        "kind": item.kind,
        "status": item.status.value,
        "reason": item.reason,
        "since": iso(item.since),
        "at": iso(item.at),
        "description": item.description,
        "cause": item.cause,
        "affected": list(item.affected),
    }


def message_json(message: Message) -> dict[str, Any]:
    """The webhook body (documented in README "Alerts"); also what the outbox keeps."""
    return {
        "key": message.key,
        "channel": message.channel,
        "created": iso(message.created_ms),
        "title": message.title,
        "text": message.text,
        "alerts": [item_json(i) for i in message.items],
    }


def body_text(message: Message) -> str:
    """The message as the outbox keeps it."""
    return json.dumps(message_json(message), separators=(",", ":"))


def cloud_event(message: Message) -> dict[str, Any]:
    """CloudEvents 1.0, structured mode: the body above as ``data``, the key as ``id``."""
    return {
        "specversion": "1.0",
        "id": message.key,
        "source": EVENT_SOURCE,
        "type": EVENT_TYPE,
        "time": iso(message.created_ms),
        "datacontenttype": "application/json",
        "data": message_json(message),
    }


def message_from_json(body: str) -> Message:
    """A message as the outbox kept it (what a restarted deliverer resends)."""
    from healthmon.models import Status

    data = json.loads(body)
    items = tuple(
        Item(
            service=i["service"],
            kind=i["kind"],
            status=Status(i["status"]),
            reason=i["reason"],
            since=_ms(i["since"]),
            at=_ms(i["at"]) or 0,
            description=i["description"],
            cause=i["cause"],
            affected=tuple(i["affected"]),
        )
        for i in data["alerts"]
    )
    return Message(data["key"], data["channel"], _ms(data["created"]) or 0, items)


def _ms(text: str | None) -> int | None:
    return None if text is None else round(datetime.fromisoformat(text).timestamp() * 1000)


def channel_for(settings: ChannelSettings) -> Channel:
    """The channel ``settings`` describe, its library imported only now."""
    if settings.kind == "webhook":
        from healthmon.alerts.webhook import WebhookChannel

        return WebhookChannel(settings)
    if settings.kind == "email":
        from healthmon.alerts.email import EmailChannel

        return EmailChannel(settings)
    from healthmon.alerts.apprise import AppriseChannel

    return AppriseChannel(settings)
