"""Render every email, send it over real SMTP to the development sink, and read the .eml files back."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from notifications.adapters.mailer import render
from notifications.domain.digest import digest_intent
from notifications.domain.email_policy import EmailIntent, Template, email_intents
from send_devkit.broker import wait_for_port
from send_devkit.ports import free_port
from send_devkit.smtp_sink import SmtpSink
from send_shared.events.schemas import (
    CLOCK_BREACH_IMMINENT,
    ClockAlertV1,
    ConsentGiver,
    ConsentStatus,
    ReferralConsentV1,
    ReferralEventV1,
    ReferralStatus,
    referral_event_type,
)
from send_shared.smtp import MailDeliveryError, SmtpMailer

REFERRAL_ID = "3f2a1b2c-0000-4000-8000-000000000001"
LINKED_ID = "7d00aa11-0000-4000-8000-000000000002"
REFERRAL_URL = "https://referrals.example/v1/referrals/{referral_id}"
SERVICE_NAMES = {
    "svc-camhs-core": "CAMHS core",
    "svc-trust-ep": "Trust educational psychology",
    "svc-ehc": "EHC needs assessment",
}
MAIL_FROM = "SEND referrals <no-reply@send.example>"
# What a careless producer might add; none of it may reach an email.
PERSONAL = {"child_name": "Amelia Jones", "date_of_birth": "2015-02-01", "nhs_number": "9434765919"}


def referral_event(status: ReferralStatus, **details: Any) -> dict[str, Any]:
    event = ReferralEventV1(
        referral_id=REFERRAL_ID,
        version=4,
        status=status,
        child_ref="chd_9c1e0f",
        referrer_org_id="org-school",
        service_id="svc-camhs-core",
        receiving_org_id="org-camhs",
        occurred_at=datetime(2026, 3, 3, 10, 0, tzinfo=UTC),
        recorded_at=datetime(2026, 3, 3, 10, 1, tzinfo=UTC),
        **details,
    )
    return {**event.model_dump(mode="json"), **PERSONAL}


def breach_alert() -> dict[str, Any]:
    alert = ClockAlertV1(
        referral_id=REFERRAL_ID,
        clock="ehc_plan_20w",
        service_id="svc-ehc",
        receiving_org_id="org-la",
        referrer_org_id="org-school",
        target_days=140,
        start_date=date(2025, 11, 1),
        breach_date=date(2026, 3, 22),
        waiting_days=135,
        raised_on=date(2026, 3, 16),
    )
    return {**alert.model_dump(mode="json"), **PERSONAL}


def consent_withdrawn() -> dict[str, Any]:
    event = ReferralConsentV1(
        referral_id=REFERRAL_ID,
        consent_version=2,
        consent_status=ConsentStatus.WITHDRAWN,
        given_by=ConsentGiver.PARENT,
        child_ref="chd_9c1e0f",
        referrer_org_id="org-school",
        service_id="svc-camhs-core",
        receiving_org_id="org-camhs",
        occurred_at=datetime(2026, 3, 3, 10, 0, tzinfo=UTC),
        recorded_at=datetime(2026, 3, 3, 10, 1, tzinfo=UTC),
    )
    return {**event.model_dump(mode="json"), **PERSONAL}


EVENTS: dict[Template, tuple[str, dict[str, Any]]] = {
    Template.ACCEPTED: (referral_event_type("accepted"), referral_event(ReferralStatus.ACCEPTED)),
    Template.REJECTED: (
        referral_event_type("rejected"),
        referral_event(
            ReferralStatus.REJECTED,
            reason_code="threshold_not_met",
            signposted_service_id="svc-trust-ep",
            linked_referral_id=LINKED_ID,
        ),
    ),
    Template.SCHEDULED: (
        referral_event_type("scheduled"),
        referral_event(ReferralStatus.SCHEDULED, appointment_at=datetime(2026, 4, 14, 13, 30, tzinfo=UTC)),
    ),
    Template.HANDED_OFF: (
        referral_event_type("handed_off"),
        referral_event(ReferralStatus.HANDED_OFF, linked_referral_id=LINKED_ID),
    ),
    Template.BREACH_IMMINENT: (CLOCK_BREACH_IMMINENT, breach_alert()),
    Template.NEW_REFERRAL: (
        referral_event_type("submitted"),
        referral_event(ReferralStatus.SUBMITTED, urgency="very_urgent", primary_need="SEMH"),
    ),
    Template.CONSENT_WITHDRAWN: ("uk.send.referral.consent.withdrawn.v1", consent_withdrawn()),
}
# Every email caused by one event; the digest gathers several (test_the_digest_lists_each_new_referral_with_its_link).
ONE_EVENT_TEMPLATES = [template for template in Template if template is not Template.NEW_REFERRALS_DIGEST]
SUBJECTS = {
    Template.ACCEPTED: "Referral accepted by CAMHS core (ref 3f2a1b2c)",
    Template.REJECTED: "Referral not accepted by CAMHS core (ref 3f2a1b2c)",
    Template.SCHEDULED: "Appointment booked with CAMHS core (ref 3f2a1b2c)",
    Template.HANDED_OFF: "Referral passed on by CAMHS core (ref 3f2a1b2c)",
    Template.BREACH_IMMINENT: "Deadline on Sunday 22 March 2026 at EHC needs assessment (ref 3f2a1b2c)",
    Template.NEW_REFERRAL: "New very urgent referral for CAMHS core (ref 3f2a1b2c)",
    Template.CONSENT_WITHDRAWN: "Consent withdrawn for a referral to CAMHS core (ref 3f2a1b2c)",
}
# What each email must tell its reader, in both parts.
FACTS = {
    Template.ACCEPTED: ["added it to its waiting list", "Tuesday 3 March 2026"],
    Template.REJECTED: [
        "the referral does not meet the service's threshold",
        "Trust educational psychology",
        REFERRAL_URL.format(referral_id=LINKED_ID),
    ],
    Template.SCHEDULED: ["Tuesday 14 April 2026 at 2:30pm"],  # 13:30 UTC is 14:30 BST
    Template.HANDED_OFF: ["This referral is now closed", REFERRAL_URL.format(referral_id=LINKED_ID)],
    Template.BREACH_IMMINENT: ["20-week deadline to issue a final EHC plan", "135 days", "140 days"],
    Template.NEW_REFERRAL: [
        "CAMHS core has received a new",
        "very urgent",
        "SEMH (social, emotional and mental health)",
        "Tuesday 3 March 2026",
        "Please review the referral and acknowledge it",
    ],
    Template.CONSENT_WITHDRAWN: ["withdrawn by the child's parent on Tuesday 3 March 2026"],
}


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink(tmp_path / "mail") as running:
        yield running


def mailer_for(sink: SmtpSink) -> SmtpMailer:
    return SmtpMailer(host=sink.host, port=sink.port, timeout=5.0)


def read(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    plain, html = list(message.iter_parts())
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    return str(plain.get_content()), str(html.get_content())


def rendered(intent: EmailIntent, to: list[str], service_names: dict[str, str] = SERVICE_NAMES) -> EmailMessage:
    return render(intent, service_names=service_names, referral_url=REFERRAL_URL, mail_from=MAIL_FROM, to=to)


@pytest.mark.parametrize("template", ONE_EVENT_TEMPLATES)
async def test_every_email_arrives_with_both_parts_a_link_and_no_personal_data(
    sink: SmtpSink, template: Template
) -> None:
    event_type, data = EVENTS[template]
    intents = email_intents(event_type, data)
    assert {i.template for i in intents} == {template}
    for intent in intents:
        assert await mailer_for(sink).send(rendered(intent, [f"contact@{intent.organisation_id}.example"])) == []

    files = sink.messages()
    assert len(files) == len(intents)
    for path, intent in zip(files, intents, strict=True):
        assert re.fullmatch(r"\d{8}T\d{12}Z-\d+\.eml", path.name)
        raw = path.read_bytes().decode("ascii")
        message = read(path)
        assert message["To"] == f"contact@{intent.organisation_id}.example"
        # strip(): CPython may fold a 70-78 character subject onto the next line and its parser keeps that
        # line's leading space; RFC 5322 readers (mail clients) drop it.
        assert message["Subject"].strip() == SUBJECTS[template]
        assert message["Auto-Submitted"] == "auto-generated"
        plain, html = parts(message)
        link = REFERRAL_URL.format(referral_id=REFERRAL_ID)
        assert link in plain
        assert f'href="{link}"' in html
        assert "available to authorised users" in plain
        assert "What happens next" in plain
        assert '<html lang="en-GB">' in html
        assert "<img" not in html
        for fact in FACTS[template]:
            assert fact in plain
            assert fact.replace("'", "&#39;") in html
        for secret in [*PERSONAL.values(), "chd_9c1e0f"]:
            assert secret not in raw
            assert secret not in plain
            assert secret not in html


async def test_the_digest_lists_each_new_referral_with_its_link_and_no_personal_data(sink: SmtpSink) -> None:
    second = "5e6f7a8b-0000-4000-8000-000000000003"
    new_referrals = [
        referral_event(ReferralStatus.SUBMITTED, urgency="routine", primary_need="SLCN"),
        {**referral_event(ReferralStatus.SUBMITTED, primary_need="ASD"), "referral_id": second},
    ]
    contexts = [email_intents(referral_event_type("submitted"), data)[0].context for data in new_referrals]
    digest = digest_intent("org-camhs", date(2026, 3, 4), contexts)
    assert await mailer_for(sink).send(rendered(digest, ["duty@camhs.example"])) == []

    [path] = sink.messages()
    raw = path.read_bytes().decode("ascii")
    message = read(path)
    assert message["Subject"].strip() == "2 new referrals since the last summary (Wednesday 4 March 2026)"
    assert message["To"] == "duty@camhs.example"
    plain, html = parts(message)
    for referral_id in (REFERRAL_ID, second):
        link = REFERRAL_URL.format(referral_id=referral_id)
        assert link in plain
        assert f'href="{link}"' in html
    for short_ref, fact in [
        ("3f2a1b2c", "to CAMHS core: routine, primary need SLCN (speech, language and communication needs)"),
        ("5e6f7a8b", "to CAMHS core: urgency not given, primary need ASD (autistic spectrum disorder)"),
    ]:
        assert f"Referral {short_ref} {fact}, received Tuesday 3 March 2026" in plain
        assert f"Referral {short_ref}</a> {fact}, received Tuesday 3 March 2026" in html
    assert "Please review each referral and acknowledge it" in plain
    assert "Please review each referral and acknowledge it" in html
    assert '<html lang="en-GB">' in html and "<img" not in html
    for secret in [*PERSONAL.values(), "chd_9c1e0f"]:
        assert secret not in raw


async def test_the_agency_and_the_school_are_told_different_next_steps(sink: SmtpSink) -> None:
    for intent in email_intents(CLOCK_BREACH_IMMINENT, breach_alert()):
        await mailer_for(sink).send(rendered(intent, [f"contact@{intent.organisation_id}.example"]))
    to_school, to_la = (read(path) for path in sink.messages())
    assert to_school["To"] == "contact@org-school.example"
    assert "You do not need to do anything" in parts(to_school)[0]
    assert "Please review the referral and take the next step before Sunday 22 March 2026" in parts(to_la)[0]


async def test_after_a_withdrawal_of_consent_the_agency_closes_the_work_and_the_school_stops_sharing(
    sink: SmtpSink,
) -> None:
    for intent in email_intents(*EVENTS[Template.CONSENT_WITHDRAWN]):
        await mailer_for(sink).send(rendered(intent, [f"contact@{intent.organisation_id}.example"]))
    by_recipient = {str(m["To"]): parts(m) for m in (read(path) for path in sink.messages())}
    assert set(by_recipient) == {"contact@org-school.example", "contact@org-camhs.example"}
    school_plain, school_html = by_recipient["contact@org-school.example"]
    camhs_plain, camhs_html = by_recipient["contact@org-camhs.example"]
    assert "Do not share any more information" in school_plain and "Do not share any more information" in school_html
    assert "You will hear nothing more about it unless consent is given again" in school_plain
    assert "record the statutory basis" in camhs_plain and "record the statutory basis" in camhs_html
    assert "Do not share any more information" not in camhs_plain


async def test_html_is_escaped(sink: SmtpSink) -> None:
    script = "<script>alert(1)</script>"
    event_type, data = EVENTS[Template.REJECTED]
    [intent] = email_intents(event_type, {**data, "reason_code": script})
    names = {**SERVICE_NAMES, "svc-trust-ep": script}
    await mailer_for(sink).send(rendered(intent, ["senco@school.example"], names))

    plain, html = parts(read(sink.messages()[0]))
    assert script not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert script in plain  # plain text is not markup


def test_a_second_booking_is_called_a_rebooking() -> None:
    event_type, data = EVENTS[Template.SCHEDULED]
    [intent] = email_intents(event_type, {**data, "previous_status": "scheduled"})
    plain, html = parts(rendered(intent, ["senco@school.example"]))
    assert "CAMHS core has rebooked the appointment for referral 3f2a1b2c on Tuesday 14 April 2026" in plain
    assert "has rebooked the appointment" in html


def test_a_subject_stays_one_line_whatever_the_directory_says() -> None:
    event_type, data = EVENTS[Template.ACCEPTED]
    [intent] = email_intents(event_type, data)
    message = rendered(intent, ["senco@school.example"], {"svc-camhs-core": "CAMHS\r\nBcc: everyone@example.org"})
    assert message["Subject"] == "Referral accepted by CAMHS Bcc: everyone@example.org (ref 3f2a1b2c)"
    assert message["Bcc"] is None


async def test_one_message_to_several_contacts(sink: SmtpSink) -> None:
    event_type, data = EVENTS[Template.ACCEPTED]
    [intent] = email_intents(event_type, data)
    await mailer_for(sink).send(rendered(intent, ["senco@school.example", "office@school.example"]))
    [path] = sink.messages()
    assert read(path)["To"] == "senco@school.example, office@school.example"


def test_render_needs_a_recipient() -> None:
    [intent] = email_intents(*EVENTS[Template.ACCEPTED])
    with pytest.raises(ValueError, match="recipient"):
        rendered(intent, [])


async def test_no_server_is_a_transient_failure() -> None:
    [intent] = email_intents(*EVENTS[Template.ACCEPTED])
    mailer = SmtpMailer(host="127.0.0.1", port=free_port(), timeout=2.0)
    with pytest.raises(MailDeliveryError) as failure:
        await mailer.send(rendered(intent, ["senco@school.example"]))
    assert failure.value.transient


async def test_the_sink_numbers_messages_and_keeps_the_bytes(sink: SmtpSink) -> None:
    [intent] = email_intents(*EVENTS[Template.ACCEPTED])
    sent = [rendered(intent, ["senco@school.example"]) for _ in range(3)]
    for message in sent:
        await mailer_for(sink).send(message)
    files = sink.messages()
    assert [path.name.rsplit("-", 1)[1] for path in files] == ["1.eml", "2.eml", "3.eml"]
    assert [read(path)["Message-ID"] for path in files] == [message["Message-ID"] for message in sent]
    assert all(b"\r\n" in path.read_bytes() for path in files)  # as received on the wire


def test_the_sink_command_runs_until_terminated(tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "mail"
    process = subprocess.Popen(
        [sys.executable, "-m", "send_devkit.smtp_sink", "--dir", str(folder), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=15)
        [intent] = email_intents(*EVENTS[Template.ACCEPTED])
        asyncio.run(SmtpMailer(host="127.0.0.1", port=port).send(rendered(intent, ["senco@school.example"])))
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert f"listening on 127.0.0.1:{port}" in out
    [path] = folder.glob("*.eml")
    assert read(path)["Subject"] == SUBJECTS[Template.ACCEPTED]


def test_a_hand_off_email_names_the_receiving_service() -> None:
    from notifications.adapters.mailer import render
    from notifications.domain.email_policy import email_intents

    data = {
        "referral_id": "3f2a1b2c-0000-4000-8000-000000000001", "status": "handed_off", "service_id": "svc-camhs-core",
        "referrer_org_id": "org-school", "receiving_org_id": "org-camhs", "occurred_at": "2026-03-02T10:00:00Z",
        "linked_referral_id": "9b8c7d6e-0000-4000-8000-000000000002", "onward_service_id": "svc-ehc-assessment",
    }  # fmt: skip
    (intent,) = email_intents("uk.send.referral.handed_off.v1", data)
    message = render(
        intent, service_names={"svc-camhs-core": "CAMHS core", "svc-ehc-assessment": "EHC needs assessment"},
        referral_url="https://referrals.test/v1/referrals/{referral_id}", mail_from="x@send.test", to=["senco@s.test"],
    )  # fmt: skip
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "to EHC needs assessment" in text
