"""The email and Apprise channels against real receivers: an SMTP server and the sink."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import unused_port
from aiosmtpd.controller import Controller

from healthmon.alerts.channels import channel_for
from healthmon.alerts.rules import Item, Message
from healthmon.alerts.settings import ChannelSettings
from healthmon.models import Status, now_ms
from tests.alerts.sink import Sink


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(message_from_bytes(envelope.content))
        return "250 queued as 42"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def smtp(inbox: Inbox, ca: trustme.CA, *, implicit_tls: bool) -> Iterator[int]:
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    port = unused_port()
    kwargs: dict[str, Any] = (
        {"ssl_context": context}
        if implicit_tls
        else {"tls_context": context, "require_starttls": False}
    )
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def message() -> Message:
    item = Item("billing", "down", Status.DOWN, "connection refused", now_ms(), now_ms())
    return Message("k-mail-1", "mail", now_ms(), (item,))


@pytest.mark.parametrize("security", ["plain", "starttls", "tls"])
async def test_email_arrives_with_the_key_as_message_id(
    security: str, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An alert arrives as one email over plain SMTP, STARTTLS or TLS, its key as Message-ID."""
    inbox = Inbox()
    ports = smtp(inbox, ca, implicit_tls=security == "tls")
    port = next(ports)
    try:
        # The test CA is trusted the way an operator's own CA would be.
        with ca.cert_pem.tempfile() as ca_file:
            monkeypatch.setenv("SSL_CERT_FILE", ca_file)
            settings = ChannelSettings.model_validate(
                {
                    "name": "mail",
                    "kind": "email",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": security,
                    "from": "healthmon@example.org",
                    "to": ["oncall@example.org"],
                }
            )
            answer = await channel_for(settings).send(message())
        assert answer.ok, answer.detail
        assert "queued as 42" in answer.detail
        (mail,) = inbox.mails
        assert mail["Message-ID"] == "<k-mail-1@healthmon>"
        assert "billing is down: connection refused" in mail["Subject"]
    finally:
        next(ports, None)


async def test_apprise_posts_through_its_json_url() -> None:
    """An Apprise json:// URL posts the alert to the receiver, off the event loop."""
    async with Sink() as sink:
        url = sink.url("ok").replace("http://", "json://")
        channel = channel_for(
            ChannelSettings.model_validate({"name": "ap", "kind": "apprise", "urls": [url]})
        )
        answer = await channel.send(message())
        got = await sink.next()
    assert answer.ok, answer.detail
    assert "billing is down" in got.json["title"]
    assert asyncio.get_running_loop().is_running()
