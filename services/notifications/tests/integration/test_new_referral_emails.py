"""New-referral emails and email preferences on the real database, through the API and real SMTP to the sink."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from notifications.domain.digest import DigestSchedule
from notifications.service_layer.mail import MailWorker
from send_devkit.smtp_sink import SmtpSink
from send_shared.smtp import SmtpMailer

from .conftest import CAMHS, SCHOOL, bearer, consume, consume_batch, referral_event

LINK = "http://referrals.test/v1/referrals/{referral_id}"
DEFAULTS = {"new_referrals": "urgent_at_once_others_in_digest", "breach_alerts": True}


def worker(app: Any, sink: SmtpSink, digest: DigestSchedule | None = None) -> MailWorker:
    mailer = SmtpMailer(host=sink.host, port=sink.port, timeout=5.0)
    return MailWorker(app.state.unit_of_work, mailer, mail_from="SEND <no-reply@send.test>", referral_url=LINK,
                      digest=digest)  # fmt: skip


def read(path: Path) -> Message:
    return message_from_bytes(path.read_bytes())


def due_now() -> DigestSchedule:
    """A schedule whose digest for today is due from this moment: it covers what was recorded before now."""
    return DigestSchedule(datetime.now(UTC).time(), ZoneInfo("UTC"))


@pytest.mark.parametrize("batched", [False, True], ids=["one-transaction-each", "one-batch-read-ahead"])
async def test_an_urgent_referral_comes_at_once_and_the_rest_in_the_daily_digest(
    app: Any, api: httpx.AsyncClient, tmp_path: Path, batched: bool
) -> None:
    await api.put("/v1/contacts", json={"emails": ["duty@camhs.example"]}, headers=bearer(CAMHS))
    assert (await api.get("/v1/email-preferences", headers=bearer(CAMHS))).json() == DEFAULTS
    await (consume_batch if batched else consume)(
        app,
        referral_event("r-urgent", 1, "submitted", urgency="urgent"),
        referral_event("r-routine-1", 1, "submitted"),
        referral_event("r-routine-2", 1, "submitted"),
    )
    with SmtpSink(tmp_path / "mail") as sink:
        assert await worker(app, sink).send_due() == 1
        [urgent] = [read(path) for path in sink.messages()]
        mail = worker(app, sink, due_now())
        assert await mail.queue_digests_due() == 1
        assert await mail.send_due() == 1
        assert await mail.queue_digests_due() == 0, "one digest a day"
        _, digest = (read(path) for path in sink.messages())
    assert urgent["To"] == "duty@camhs.example"
    assert urgent["Subject"] == "New urgent referral for svc-camhs-core (ref r-urgent)"
    assert LINK.format(referral_id="r-urgent") in urgent.as_string()
    assert digest["Subject"].startswith("2 new referrals since the last summary")
    text = digest.get_payload()[0].get_payload(decode=True).decode()  # type: ignore[index, union-attr]
    assert LINK.format(referral_id="r-routine-1") in text and LINK.format(referral_id="r-routine-2") in text
    assert "r-urgent" not in text, "an urgent referral already emailed is not listed again"
    assert "c" * 32 not in text, "no child reference"


async def test_an_organisation_chooses_its_emails_and_only_its_own(
    app: Any, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    quiet = {"new_referrals": "off", "breach_alerts": False}
    put = await api.put("/v1/email-preferences", json=quiet, headers=bearer(CAMHS, "admin"))
    assert (put.status_code, put.json()) == (200, quiet)
    assert (await api.get("/v1/email-preferences", headers=bearer(CAMHS))).json() == quiet
    assert (await api.get("/v1/email-preferences", headers=bearer(SCHOOL, "referrer"))).json() == DEFAULTS
    await api.put("/v1/contacts", json={"emails": ["duty@camhs.example"]}, headers=bearer(CAMHS))
    await consume(app, referral_event("r-quiet", 1, "submitted", urgency="very_urgent"))
    await consume_batch(app, referral_event("r-quiet-too", 1, "submitted", urgency="urgent"))  # read ahead: off too
    with SmtpSink(tmp_path / "mail") as sink:
        mail = worker(app, sink, due_now())
        assert (await mail.queue_digests_due(), await mail.send_due()) == (0, 0)
        assert sink.messages() == []

    digest_only = {"new_referrals": "digest_only", "breach_alerts": True}
    assert (await api.put("/v1/email-preferences", json=digest_only, headers=bearer(CAMHS))).json() == digest_only


async def test_bad_preferences_are_a_problem_and_change_nothing(api: httpx.AsyncClient) -> None:
    for body in (
        {"new_referrals": "sometimes", "breach_alerts": True},
        {"new_referrals": "off"},
        {"new_referrals": "off", "breach_alerts": True, "sms": True},
        {"new_referrals": "off", "breach_alerts": "maybe"},
    ):
        refused = await api.put("/v1/email-preferences", json=body, headers=bearer(CAMHS))
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await api.get("/v1/email-preferences", headers=bearer(CAMHS))).json() == DEFAULTS
    assert (await api.put("/v1/email-preferences", json=DEFAULTS, headers=bearer(CAMHS, "ops"))).status_code == 403
