"""The email that carries a family's link (plain text and HTML), sent over SMTP like notifications' emails."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from zoneinfo import ZoneInfo

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
