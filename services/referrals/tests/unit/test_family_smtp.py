"""The family link email over real SMTP, into the development sink: what arrives, and how failures are told."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from referrals.adapters.family_mailer import link_email
from send_devkit.ports import free_port
from send_devkit.smtp_sink import SmtpSink
from send_shared.smtp import MailDeliveryError, SmtpMailer

URL = "http://127.0.0.1:8001/family/" + "T" * 43


async def test_the_link_email_arrives_readable_and_without_personal_details(tmp_path: Path) -> None:
    with SmtpSink(tmp_path / "mail") as sink:
        message = link_email(to="parent@example.com", url=URL, expires_at=datetime(2026, 12, 9, 11, tzinfo=UTC),
                             mail_from="SEND referrals <no-reply@send.example>")  # fmt: skip
        await SmtpMailer(host="127.0.0.1", port=sink.port).send(message)
        [path] = sink.messages()
    received = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(received, EmailMessage)
    assert received["To"] == "parent@example.com" and received["Auto-Submitted"] == "auto-generated"
    plain, html = received.get_body(("plain",)), received.get_body(("html",))
    assert plain is not None and html is not None
    assert URL in plain.get_content() and f'href="{URL}"' in html.get_content()
    assert "Wednesday 9 December 2026" in plain.get_content()
    assert "keep this link to yourself" in plain.get_content()


async def test_an_unreachable_relay_is_a_transient_failure() -> None:
    message = link_email(to="a@example.com", url=URL, expires_at=datetime.now(UTC), mail_from="a@send.example")
    with pytest.raises(MailDeliveryError) as failed:
        await SmtpMailer(host="127.0.0.1", port=free_port(), timeout=2).send(message)
    assert failed.value.transient
