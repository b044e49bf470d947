"""Apprise's many services (Slack, Matrix, ntfy, json://…), run off the event loop."""

from __future__ import annotations

import asyncio
import warnings

from healthmon.alerts.channels import Answer
from healthmon.alerts.rules import Message
from healthmon.alerts.settings import ChannelSettings


class AppriseChannel:
    def __init__(self, settings: ChannelSettings) -> None:
        self.name = settings.name
        self.settings = settings
        # Apprise loads its plugins, which import the stdlib's deprecated imghdr:
        # that warning is not ours to show.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import apprise

            self._apprise = apprise.Apprise()
            for url in settings.urls:
                self._apprise.add(url.get_secret_value())

    async def send(self, message: Message) -> Answer:
        # Apprise is blocking (requests): a thread keeps the loop free.
        try:
            ok = await asyncio.to_thread(
                self._apprise.notify, title=f"[healthmon] {message.title}", body=message.text
            )
        except Exception as exc:  # a plugin's own error is still only an answer
            return Answer(False, f"{type(exc).__name__}: {exc}")
        return Answer(bool(ok), "notified" if ok else "apprise reported a failure")

    async def aclose(self) -> None:
        return None
