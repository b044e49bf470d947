"""One email per message over SMTP (plain, STARTTLS or TLS), through aiosmtplib."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from healthmon.alerts.channels import Answer
from healthmon.alerts.rules import Message
from healthmon.alerts.settings import ChannelSettings


class EmailChannel:
    def __init__(self, settings: ChannelSettings) -> None:
        self.name = settings.name
        self.settings = settings

    def compose(self, message: Message) -> EmailMessage:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.from_ or ""
        mail["To"] = ", ".join(s.to)
        mail["Subject"] = f"[healthmon] {message.title}"
        mail["Date"] = formatdate(message.created_ms / 1000, usegmt=True)
        # The key, so a receiver (or its mail server) drops a second copy.
        mail["Message-ID"] = f"<{message.key}@healthmon>"
        mail.set_content(message.text + "\n")
        return mail

    async def send(self, message: Message) -> Answer:
        s = self.settings
        try:
            _, answer = await aiosmtplib.send(
                self.compose(message),
                hostname=s.host,
                port=s.smtp_port,
                username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                use_tls=s.security == "tls",
                start_tls=s.security == "starttls",
                timeout=s.timeout / 1000,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Answer(False, f"{type(exc).__name__}: {exc}")
        return Answer(True, answer)

    async def aclose(self) -> None:
        return None
