"""A JSON POST per message, optionally as a CloudEvent and signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json

import aiohttp

from healthmon.alerts.channels import Answer, cloud_event, message_json
from healthmon.alerts.rules import Message
from healthmon.alerts.settings import ChannelSettings
from healthmon.checks.http import USER_AGENT

SIGNATURE_HEADER = "X-Healthmon-Signature"
# What of the receiver's body is kept as its answer.
ANSWER_CHARS = 200


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: what a receiver recomputes over the raw body to trust it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, settings: ChannelSettings) -> None:
        assert settings.url is not None
        self.name = settings.name
        self.settings = settings
        self.url = settings.url
        self._session: aiohttp.ClientSession | None = None

    def request(self, message: Message) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers sent (the signature covers these bytes)."""
        s = self.settings
        if s.cloudevents:
            payload, kind = cloud_event(message), "application/cloudevents+json"
        else:
            payload, kind = message_json(message), "application/json"
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {k: v.get_secret_value() for k, v in s.headers.items()}
        headers.update({"Content-Type": kind, "Idempotency-Key": message.key})
        if s.secret is not None:
            headers[SIGNATURE_HEADER] = signature(s.secret.get_secret_value(), body)
        return body, headers

    async def send(self, message: Message) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        body, headers = self.request(message)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout / 1000)
        try:
            async with self._session.post(
                self.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                text = (await response.content.read(ANSWER_CHARS)).decode("utf-8", "replace")
                return Answer(200 <= response.status < 300, f"{response.status} {text}".strip())
        except TimeoutError:
            return Answer(False, f"no answer in {self.settings.timeout / 1000:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Answer(False, f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
