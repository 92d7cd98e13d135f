"""``email``: one message per batch over SMTP, STARTTLS and login when configured.

STARTTLS verifies the server's certificate against the system CAs, or ``ca_file``.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from .base import DeliveryError
from .message import Batch, subject, text_body


class EmailNotifier:
    wants_resends = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        to = options["to"]
        self.to = [to] if isinstance(to, str) else [str(t) for t in to]
        self.sender = str(options["from"])
        host, _, port = str(options["smarthost"]).rpartition(":")
        self.host, self.port = host, int(port)
        self.starttls = bool(options.get("starttls", False))
        self.ca_file = options.get("ca_file")
        self.username = options.get("username")
        self.password = options.get("password")
        self.timeout = float(options.get("timeout", 10))

    def message(self, batch: Batch) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = subject(batch)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(batch.now)
        msg["Message-ID"] = make_msgid("otel-hms")
        msg.set_content(text_body(batch))
        return msg

    def send(self, batch: Batch) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if self.username:
                    smtp.login(str(self.username), str(self.password or ""))
                smtp.send_message(self.message(batch))
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {exc}") from None
