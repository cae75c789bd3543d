"""New-referral emails and each organisation's email preferences, on the in-memory unit of work: which email goes
at once, which waits for the daily digest, and what the digest holds."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from notifications.domain.digest import MAX_LISTED, DigestSchedule, digest_intent
from notifications.domain.email_policy import EmailIntent, Template
from notifications.domain.email_preferences import EmailPreferences, NewReferralEmails, Routing, routing
from notifications.service_layer.directory import set_contacts
from notifications.service_layer.fanout import fan_out
from notifications.service_layer.mail import MailWorker, queue_digests
from notifications.service_layer.preferences import preferences_of, set_preferences
from notifications.settings import NotificationsSettings
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    CLOCK_BREACH_IMMINENT,
    ClockAlertV1,
    ReferralEventV1,
    ReferralStatus,
    referral_event_type,
)

from .fakes import FakeUnitOfWork

SCHOOL, CAMHS = "org-school", "org-camhs"
LINK = "https://referrals.test/v1/referrals/{referral_id}"
LONDON = ZoneInfo("Europe/London")
EIGHT_IN_LONDON = DigestSchedule(time(8, 0), LONDON)
_ids = itertools.count(1)


def submitted(referral_id: str, urgency: str | None = "routine", **details: Any) -> CloudEvent:
    now = datetime.now(UTC)
    data = ReferralEventV1(
        referral_id=referral_id, version=1, status=ReferralStatus.SUBMITTED, child_ref="c" * 32,
        referrer_org_id=SCHOOL, service_id="svc-camhs-core", receiving_org_id=CAMHS, urgency=urgency,
        primary_need="SEMH", occurred_at=now, recorded_at=now, **details,
    )  # fmt: skip
    return CloudEvent(id=f"evt-{next(_ids)}", type=referral_event_type("submitted"), source="/send/referrals",
                      subject=referral_id, data=data.model_dump(mode="json"))  # fmt: skip


def breach_alert() -> CloudEvent:
    data = ClockAlertV1(
        referral_id="r-breach", clock="cypmh_4w", service_id="svc-camhs-core", receiving_org_id=CAMHS,
        referrer_org_id=SCHOOL, target_days=28, start_date=date(2026, 11, 1), breach_date=date(2026, 11, 29),
        waiting_days=25, raised_on=date(2026, 11, 26),
    )  # fmt: skip
    return CloudEvent(id=f"evt-{next(_ids)}", type=CLOCK_BREACH_IMMINENT, source="/send/waitlists",
                      subject="r-breach", data=data.model_dump(mode="json"))  # fmt: skip


async def consume(uow: FakeUnitOfWork, *events: CloudEvent) -> None:
    for event in events:
        async with uow:
            await fan_out(event, uow, referral_link_template=LINK)
            await uow.commit()


def queued(uow: FakeUnitOfWork) -> list[tuple[str, Template]]:
    return [(e.intent.organisation_id, e.intent.template) for e in uow.committed.emails.values()]


def waiting_for_digest(uow: FakeUnitOfWork) -> list[str]:
    return [str(w.entry.context["referral_id"]) for w in uow.committed.digest_entries.values() if not w.digest_date]


def recorded_yesterday(uow: FakeUnitOfWork) -> None:
    """As if the referrals waiting for a digest had come yesterday: before any time of today's digest."""
    for waiting in uow.committed.digest_entries.values():
        waiting.recorded_at -= timedelta(days=1)


def intent(template: Template, **context: Any) -> EmailIntent:
    return EmailIntent(CAMHS, template, context)


# What each choice means


@pytest.mark.parametrize(
    ("choice", "urgency", "expected"),
    [
        (NewReferralEmails.URGENT_AT_ONCE_OTHERS_IN_DIGEST, "very_urgent", Routing.AT_ONCE),
        (NewReferralEmails.URGENT_AT_ONCE_OTHERS_IN_DIGEST, "urgent", Routing.AT_ONCE),
        (NewReferralEmails.URGENT_AT_ONCE_OTHERS_IN_DIGEST, "routine", Routing.IN_DIGEST),
        (NewReferralEmails.URGENT_AT_ONCE_OTHERS_IN_DIGEST, None, Routing.IN_DIGEST),
        (NewReferralEmails.DIGEST_ONLY, "very_urgent", Routing.IN_DIGEST),
        (NewReferralEmails.OFF, "very_urgent", Routing.NOT_SENT),
        (NewReferralEmails.OFF, "routine", Routing.NOT_SENT),
    ],
)
def test_a_new_referral_goes_as_the_organisation_chose(
    choice: NewReferralEmails, urgency: str | None, expected: Routing
) -> None:
    assert routing(intent(Template.NEW_REFERRAL, urgency=urgency), EmailPreferences(choice)) is expected


def test_breach_alerts_can_be_turned_off_and_nothing_else_is_held_back() -> None:
    quiet = EmailPreferences(NewReferralEmails.OFF, breach_alerts=False)
    assert routing(intent(Template.BREACH_IMMINENT), quiet) is Routing.NOT_SENT
    assert routing(intent(Template.BREACH_IMMINENT), EmailPreferences()) is Routing.AT_ONCE
    for other in (Template.ACCEPTED, Template.REJECTED, Template.SCHEDULED, Template.HANDED_OFF):
        assert routing(intent(other), quiet) is Routing.AT_ONCE


def test_the_defaults_keep_breach_alerts_and_send_urgent_referrals_at_once() -> None:
    assert EmailPreferences() == EmailPreferences(NewReferralEmails.URGENT_AT_ONCE_OTHERS_IN_DIGEST, True)


# When the digest is due


def test_the_digest_is_due_from_its_local_time_in_summer_and_in_winter() -> None:
    # 08:00 in London is 07:00 UTC in summer (BST) and 08:00 UTC in winter (GMT).
    assert EIGHT_IN_LONDON.due_day(datetime(2026, 7, 1, 6, 59, tzinfo=UTC)) is None
    assert EIGHT_IN_LONDON.due_day(datetime(2026, 7, 1, 7, 0, tzinfo=UTC)) == date(2026, 7, 1)
    assert EIGHT_IN_LONDON.due_day(datetime(2026, 12, 7, 7, 59, tzinfo=UTC)) is None
    assert EIGHT_IN_LONDON.due_day(datetime(2026, 12, 7, 23, 30, tzinfo=UTC)) == date(2026, 12, 7)
    assert EIGHT_IN_LONDON.cutoff(date(2026, 7, 1)) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert EIGHT_IN_LONDON.cutoff(date(2026, 12, 7)) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_the_digest_time_and_zone_are_checked_when_the_service_starts() -> None:
    chosen = NotificationsSettings(new_referral_digest_time="07:30", new_referral_digest_timezone="Europe/Paris")
    assert (chosen.new_referral_digest_time, chosen.new_referral_digest_timezone) == (time(7, 30), "Europe/Paris")
    assert NotificationsSettings().new_referral_digest_time == time(8, 0)
    for wrong in ({"new_referral_digest_timezone": "Mars/Olympus"}, {"new_referral_digest_time": "08:00+01:00"}):
        with pytest.raises(ValidationError):
            NotificationsSettings(**wrong)  # type: ignore[arg-type]


def test_a_long_digest_lists_the_first_referrals_and_counts_the_rest() -> None:
    contexts = [{"referral_id": f"r{n}", "child_ref": "c" * 32} for n in range(MAX_LISTED + 5)]
    digest = digest_intent(CAMHS, date(2026, 12, 7), contexts)
    assert (digest.context["count"], digest.context["not_listed"]) == (MAX_LISTED + 5, 5)
    lines = digest.context["referrals"]
    assert isinstance(lines, list) and len(lines) == MAX_LISTED
    assert set(lines[0]) == {"referral_id", "service_id", "urgency", "primary_need", "occurred_at"}


# Through the use cases


async def test_an_urgent_referral_is_emailed_at_once_and_a_routine_one_waits_for_the_digest() -> None:
    uow = FakeUnitOfWork()
    await consume(uow, submitted("r-urgent", "urgent"), submitted("r-routine"), submitted("r-very", "very_urgent"))
    assert queued(uow) == [(CAMHS, Template.NEW_REFERRAL)] * 2
    assert sorted(str(e.intent.context["referral_id"]) for e in uow.committed.emails.values()) == [
        "r-urgent",
        "r-very",
    ]
    assert waiting_for_digest(uow) == ["r-routine"]


async def test_with_email_off_no_email_is_queued_or_kept_for_a_digest() -> None:
    """Email not sent at all (``EMAIL_ENABLED=false``): nothing piles up to go out, days late, once it is turned on,
    while the events still go on as messages for the organisations' webhooks."""
    uow = FakeUnitOfWork()
    events = (submitted("r-urgent", "urgent"), submitted("r-routine"), breach_alert())
    for event in events:
        async with uow:
            await fan_out(event, uow, referral_link_template=LINK, emails=False)
            await uow.commit()
    assert queued(uow) == []
    assert waiting_for_digest(uow) == []
    assert sorted(uow.committed.messages) == sorted(event.id for event in events)


async def test_a_referral_that_arrives_by_hand_off_is_new_for_its_receiver() -> None:
    uow = FakeUnitOfWork()
    await consume(uow, submitted("r-onward", "urgent", linked_referral_id="r-first"))
    assert queued(uow) == [(CAMHS, Template.NEW_REFERRAL)]


async def test_digest_only_and_off_are_respected_and_breach_alerts_can_be_turned_off() -> None:
    uow = FakeUnitOfWork()
    await set_preferences(uow, CAMHS, EmailPreferences(NewReferralEmails.DIGEST_ONLY, breach_alerts=False))
    await consume(uow, submitted("r1", "very_urgent"), breach_alert())
    assert queued(uow) == [(SCHOOL, Template.BREACH_IMMINENT)], "the school still hears of the breach"
    assert waiting_for_digest(uow) == ["r1"]

    await set_preferences(uow, CAMHS, EmailPreferences(NewReferralEmails.OFF))
    await consume(uow, submitted("r2", "very_urgent"))
    assert waiting_for_digest(uow) == ["r1"] and len(queued(uow)) == 1


async def test_preferences_read_back_with_the_defaults_until_chosen() -> None:
    uow = FakeUnitOfWork()
    assert await preferences_of(uow, CAMHS) == EmailPreferences()
    chosen = EmailPreferences(NewReferralEmails.DIGEST_ONLY, breach_alerts=False)
    await set_preferences(uow, CAMHS, chosen)
    assert await preferences_of(uow, CAMHS) == chosen
    assert await preferences_of(uow, SCHOOL) == EmailPreferences(), "one organisation's choice is its own"


async def test_one_digest_a_day_lists_the_referrals_since_the_last_one() -> None:
    uow = FakeUnitOfWork()
    await consume(uow, submitted("r1"), submitted("r2"), submitted("r3", "urgent"))
    recorded_yesterday(uow)
    today = datetime.now(LONDON).date()
    schedule = DigestSchedule(time(0, 0), LONDON)  # today's digest is due
    tomorrow = today + timedelta(days=1)

    assert await queue_digests(uow, schedule, today) == 1
    [digest] = [e for e in uow.committed.emails.values() if e.intent.template is Template.NEW_REFERRALS_DIGEST]
    lines = digest.intent.context["referrals"]
    assert isinstance(lines, list) and [line["referral_id"] for line in lines] == ["r1", "r2"]
    assert (digest.intent.organisation_id, digest.intent.context["digest_date"]) == (CAMHS, today.isoformat())
    assert await queue_digests(uow, schedule, today) == 0, "one a day"

    await consume(uow, submitted("r4"))
    assert await queue_digests(uow, schedule, today) == 0, "r4 came after today's digest: it waits for tomorrow's"
    later = DigestSchedule(time(23, 59, 59), LONDON)
    assert await queue_digests(uow, later, tomorrow) == 1
    digests = [e for e in uow.committed.emails.values() if e.intent.template is Template.NEW_REFERRALS_DIGEST]
    lines = digests[-1].intent.context["referrals"]
    assert isinstance(lines, list) and [line["referral_id"] for line in lines] == ["r4"]
    assert waiting_for_digest(uow) == []


async def test_turning_new_referral_emails_off_drops_those_waiting_for_the_digest() -> None:
    uow = FakeUnitOfWork()
    await consume(uow, submitted("r1"))
    recorded_yesterday(uow)
    await set_preferences(uow, CAMHS, EmailPreferences(NewReferralEmails.OFF))
    assert await queue_digests(uow, DigestSchedule(time(0, 0), LONDON), datetime.now(LONDON).date()) == 0
    assert waiting_for_digest(uow) == [] and queued(uow) == []


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> list[str]:
        self.sent.append(message)
        return []


async def test_the_mail_worker_sends_the_digest_once_its_time_has_come() -> None:
    uow = FakeUnitOfWork()
    await set_contacts(uow, CAMHS, ["duty@camhs.example"])
    await consume(uow, submitted("3f2a1b2c-0000-4000-8000-000000000001"))
    recorded_yesterday(uow)
    mailer = RecordingMailer()
    not_yet = MailWorker(
        lambda: uow, mailer, mail_from="SEND <no-reply@send.test>", referral_url=LINK,
        digest=DigestSchedule(time(23, 59, 59, 999999), LONDON),
    )  # fmt: skip
    assert await not_yet.queue_digests_due() == 0
    worker = MailWorker(
        lambda: uow, mailer, mail_from="SEND <no-reply@send.test>", referral_url=LINK,
        digest=DigestSchedule(time(0, 0), LONDON),
    )  # fmt: skip
    assert await worker.queue_digests_due() == 1
    assert await worker.queue_digests_due() == 0
    assert await worker.send_due() == 1
    [message] = mailer.sent
    assert message["To"] == "duty@camhs.example"
    assert message["Subject"].startswith("1 new referral since the last summary (")
    assert LINK.format(referral_id="3f2a1b2c-0000-4000-8000-000000000001") in str(message)
