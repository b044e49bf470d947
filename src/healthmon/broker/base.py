"""The broker seam: publish bytes on a topic, subscribe to a topic's bytes.

Topics are fanout: every subscription sees every message published after it
was opened. Bodies are opaque bytes here; parsing (and dropping garbage) is
the subscriber's job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

STATUS_TOPIC = "services.status"
HEARTBEAT_TOPIC = "services.heartbeat"


class BrokerUnavailable(RuntimeError):
    """The broker cannot take a message right now (e.g. RabbitMQ is down)."""


class Broker(Protocol):
    # Called when the connection to the broker is lost, and when it is back
    # after a loss (messages in between are gone: subscribers re-sync).
    on_disconnect: list[Callable[[], None]]
    on_reconnect: list[Callable[[], None]]

    async def publish(self, topic: str, body: bytes) -> None:
        """Send ``body`` to every current subscriber of ``topic``.

        Never blocks on a slow subscriber; raises ``BrokerUnavailable`` when
        the message cannot be handed over at all.
        """

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Open a subscription; iterate it for bodies, leave it to unsubscribe."""

    async def close(self) -> None:
        """Release connections; subscriptions end."""
