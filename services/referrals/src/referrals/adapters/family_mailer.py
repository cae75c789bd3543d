"""The email that carries a family's link (plain text and HTML), sent over SMTP like notifications' emails."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from zoneinfo import ZoneInfo

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from referrals.domain.family import day_words

LONDON = ZoneInfo("Europe/London")
SUBJECT = "Your private link to see your child's referrals"

_environment = Environment(
    loader=PackageLoader("referrals", "templates/family"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def link_email(*, to: str, url: str, expires_at: datetime, mail_from: str) -> EmailMessage:
    """The message: the link, until when it works, and what to do if it was not expected. No child's name, no
    service: an email can be read by others, the page behind the link says the rest."""
    values = {"url": url, "until": day_words(expires_at.astimezone(LONDON)), "subject": SUBJECT}
    message = EmailMessage()
    message["Subject"] = SUBJECT
    message["From"] = mail_from
    message["To"] = _one_line(to)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=parseaddr(mail_from)[1].rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(_environment.get_template("link_email.txt").render(values))
    message.add_alternative(_environment.get_template("link_email.html").render(values), subtype="html")
    return message


def _one_line(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


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

    async def send(self, message: EmailMessage) -> None:
        """Raises ``MailDeliveryError``: transient for 4xx replies, connection failures and timeouts; permanent
        for 5xx replies."""
        try:
            await aiosmtplib.send(
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
            raise MailDeliveryError(f"recipient refused: {error}", transient=transient) from error
        except aiosmtplib.SMTPResponseException as error:
            raise MailDeliveryError(f"SMTP {error.code}: {error.message}", transient=error.code < 500) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise MailDeliveryError(f"SMTP connection failed: {error}", transient=True) from error
