"""Sending email through one SMTP server: the one copy both services that send email use."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib


class MailDeliveryError(Exception):
    """The message was not sent; ``transient`` says whether trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class SmtpMailer:
    """Sends messages through one SMTP server (a relay in production, the development sink locally)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> list[str]:
        """Send; returns the recipients the server refused when it accepted the others.

        Raises ``MailDeliveryError`` when no recipient got the message: transient for 4xx replies,
        connection failures and timeouts, permanent for 5xx replies.
        """
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            transient = all(400 <= refusal.code < 500 for refusal in error.recipients)
            raise MailDeliveryError(f"all recipients refused: {error}", transient=transient) from error
        except aiosmtplib.SMTPResponseException as error:
            raise MailDeliveryError(f"SMTP {error.code}: {error.message}", transient=error.code < 500) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise MailDeliveryError(f"SMTP connection failed: {error}", transient=True) from error
        return sorted(refused)
