"""Who still hears after the family withdraws consent (issue #17), on the in-memory unit of work.

The consent events themselves and the referral's withdrawal that a withdrawal before acceptance causes reach the
referrer and the receiving organisation; while consent stays withdrawn every other event and clock alert of the
referral reaches only the receiving organisation, by webhook and by email alike; consent given again, both.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifications.domain.consent import ConsentState, supersedes
from notifications.domain.digest import DigestSchedule
from notifications.domain.email_policy import Template, email_intents
from notifications.domain.email_preferences import EmailPreferences, NewReferralEmails
from notifications.domain.endpoints import EndpointSpec
from notifications.domain.subscriptions import organisations_concerned
from notifications.service_layer import endpoints
from notifications.service_layer.fanout import fan_out
from notifications.service_layer.mail import queue_digests
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ClockAlertV1,
    ConsentGiver,
    ConsentStatus,
    ReferralConsentV1,
    ReferralEventV1,
    ReferralStatus,
)

from .fakes import FakeUnitOfWork

SCHOOL, CAMHS = "org-school", "org-camhs"
LINK = "https://referrals.test/v1/referrals/{referral_id}"
LOCAL = endpoints.UrlPolicy(require_https=False, allow_private=True)
_ids = itertools.count(1)
NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def referral_data(referral_id: str, version: int, status: str, **details: Any) -> dict[str, Any]:
    return ReferralEventV1(
        referral_id=referral_id, version=version, status=ReferralStatus(status), child_ref="c" * 32,
        referrer_org_id=SCHOOL, service_id="svc-camhs-core", receiving_org_id=CAMHS, urgency="routine",
        occurred_at=NOW, recorded_at=NOW, **details,
    ).model_dump(mode="json")  # fmt: skip


def referral_event(referral_id: str, version: int, status: str, **details: Any) -> CloudEvent:
    return CloudEvent(id=f"evt-{next(_ids)}", type=f"uk.send.referral.{status}.v1", source="/send/referrals",
                      subject=referral_id, data=referral_data(referral_id, version, status, **details))  # fmt: skip


def consent_data(referral_id: str, version: int, status: str) -> dict[str, Any]:
    scope = [] if status == "withdrawn" else ["svc-camhs-core"]
    return ReferralConsentV1(
        referral_id=referral_id, consent_version=version, consent_status=ConsentStatus(status),
        given_by=ConsentGiver.PARENT, scope_service_ids=scope, child_ref="c" * 32, referrer_org_id=SCHOOL,
        service_id="svc-camhs-core", receiving_org_id=CAMHS, occurred_at=NOW, recorded_at=NOW,
    ).model_dump(mode="json")  # fmt: skip


def consent_event(referral_id: str, version: int, status: str) -> CloudEvent:
    return CloudEvent(id=f"evt-{next(_ids)}", type=f"uk.send.referral.consent.{status}.v1",
                      source="/send/referrals", subject=referral_id,
                      data=consent_data(referral_id, version, status))  # fmt: skip


def alert_data(referral_id: str, clock: str = "cypmh_4w") -> dict[str, Any]:
    return ClockAlertV1(
        referral_id=referral_id, clock=clock, service_id="svc-camhs-core", receiving_org_id=CAMHS,
        referrer_org_id=SCHOOL, target_days=28, start_date=date(2026, 2, 10), breach_date=date(2026, 3, 10),
        waiting_days=21, raised_on=date(2026, 3, 3),
    ).model_dump(mode="json")  # fmt: skip


def alert_event(referral_id: str, kind: str = "clock_breach_imminent") -> CloudEvent:
    return CloudEvent(id=f"evt-{next(_ids)}", type=f"uk.send.waitlist.{kind}.v1", source="/send/waitlists",
                      subject=referral_id, data=alert_data(referral_id))  # fmt: skip


WITHDRAWN = ConsentState("r1", 2, ConsentStatus.WITHDRAWN)
GIVEN_AGAIN = ConsentState("r1", 3, ConsentStatus.GIVEN)


# The rule (domain)


@pytest.mark.parametrize("status", ["accepted", "scheduled", "in_progress", "on_hold", "completed", "rejected",
                                    "entered_in_error", "acknowledged"])  # fmt: skip
def test_after_a_withdrawal_a_referral_event_concerns_the_receiving_organisation_only(status: str) -> None:
    data = referral_data("r1", 5, status)
    assert organisations_concerned(f"uk.send.referral.{status}.v1", data, WITHDRAWN) == [CAMHS]


@pytest.mark.parametrize("kind", ["clock_breach_imminent", "clock_breached"])
def test_after_a_withdrawal_a_clock_alert_concerns_the_receiving_organisation_only(kind: str) -> None:
    assert organisations_concerned(f"uk.send.waitlist.{kind}.v1", alert_data("r1"), WITHDRAWN) == [CAMHS]


@pytest.mark.parametrize("status", ["given", "changed", "withdrawn"])
def test_every_consent_event_concerns_both_whatever_the_consent_in_force(status: str) -> None:
    data = consent_data("r1", 2, status)
    for consent in (None, WITHDRAWN, GIVEN_AGAIN):
        assert organisations_concerned(f"uk.send.referral.consent.{status}.v1", data, consent) == [CAMHS, SCHOOL]


def test_the_withdrawal_a_withdrawal_of_consent_causes_concerns_both_and_no_other_withdrawal_does() -> None:
    caused = referral_data("r1", 3, "withdrawn", reason_code="consent_withdrawn")
    other = referral_data("r1", 3, "withdrawn", reason_code="no_longer_needed")
    assert organisations_concerned("uk.send.referral.withdrawn.v1", caused, WITHDRAWN) == [CAMHS, SCHOOL]
    assert organisations_concerned("uk.send.referral.withdrawn.v1", other, WITHDRAWN) == [CAMHS]
    # the reason code counts only on a withdrawal: an entered-in-error carrying it is no exception
    odd = referral_data("r1", 3, "entered_in_error", reason_code="consent_withdrawn")
    assert organisations_concerned("uk.send.referral.entered_in_error.v1", odd, WITHDRAWN) == [CAMHS]


def test_with_consent_given_or_unknown_both_hear() -> None:
    data = referral_data("r1", 5, "scheduled")
    for consent in (None, ConsentState("r1", 1, ConsentStatus.GIVEN), ConsentState("r1", 2, ConsentStatus.CHANGED),
                    GIVEN_AGAIN):  # fmt: skip
        assert organisations_concerned("uk.send.referral.scheduled.v1", data, consent) == [CAMHS, SCHOOL]
    assert organisations_concerned("uk.send.waitlist.clock_breached.v1", alert_data("r1"), None) == [CAMHS, SCHOOL]


def test_events_outside_referrals_and_alerts_concern_no_one_even_after_a_withdrawal() -> None:
    assert (
        organisations_concerned("uk.send.directory.service.upserted.v1", {"receiving_org_id": CAMHS}, WITHDRAWN) == []
    )


def test_only_a_newer_consent_version_supersedes() -> None:
    assert supersedes(ConsentState("r1", 1, ConsentStatus.GIVEN), None)
    assert supersedes(GIVEN_AGAIN, WITHDRAWN)
    assert not supersedes(WITHDRAWN, GIVEN_AGAIN), "a stale version never overrides a newer one"
    assert not supersedes(ConsentState("r1", 2, ConsentStatus.GIVEN), WITHDRAWN), "a repeat changes nothing"


def test_emails_go_only_to_the_organisations_concerned() -> None:
    data = referral_data("r1", 4, "scheduled", appointment_at=datetime(2026, 4, 1, 9, tzinfo=UTC))
    assert [i.organisation_id for i in email_intents("uk.send.referral.scheduled.v1", data)] == [SCHOOL]
    assert email_intents("uk.send.referral.scheduled.v1", data, [CAMHS]) == []
    alert = {**alert_data("r1"), "clock": "ehc_plan_20w"}
    intents = email_intents("uk.send.waitlist.clock_breach_imminent.v1", alert, [CAMHS])
    assert [(i.organisation_id, i.template) for i in intents] == [(CAMHS, Template.BREACH_IMMINENT)]


def test_a_withdrawal_of_consent_emails_both_with_their_own_next_steps_and_nothing_personal() -> None:
    intents = email_intents("uk.send.referral.consent.withdrawn.v1", consent_data("r1", 2, "withdrawn"))
    assert {(i.organisation_id, i.template, i.context["audience"]) for i in intents} == {
        (SCHOOL, Template.CONSENT_WITHDRAWN, "referrer"), (CAMHS, Template.CONSENT_WITHDRAWN, "receiver"),
    }  # fmt: skip
    for intent in intents:
        assert "child_ref" not in intent.context
        assert intent.context["given_by"] == "parent"
    assert email_intents("uk.send.referral.consent.given.v1", consent_data("r1", 1, "given")) == []
    assert email_intents("uk.send.referral.consent.changed.v1", consent_data("r1", 2, "changed")) == []


# Fan-out (service layer, fake unit of work)


async def consume(uow: FakeUnitOfWork, *events: CloudEvent) -> int:
    queued = 0
    for event in events:
        async with uow:
            queued += await fan_out(event, uow, referral_link_template=LINK)
            await uow.commit()
    return queued


async def hooks(uow: FakeUnitOfWork) -> dict[str, str]:
    """One endpoint of each party subscribed to everything; endpoint id -> organisation."""
    found = {}
    for org in (SCHOOL, CAMHS):
        spec = EndpointSpec(f"http://127.0.0.1:9/{org}", ("*",), (), (), "")
        found[(await endpoints.register(uow, org, spec, policy=LOCAL)).endpoint.id] = org
    return found


def heard(uow: FakeUnitOfWork, owners: dict[str, str], event: CloudEvent) -> set[str]:
    """The organisations whose endpoints got ``event``."""
    return {owners[d.endpoint_id] for d in uow.committed.deliveries.values() if d.event_id == event.id}


def emailed(uow: FakeUnitOfWork, event: CloudEvent) -> set[tuple[str, Template]]:
    return {
        (e.intent.organisation_id, e.intent.template) for e in uow.committed.emails.values() if e.event_id == event.id
    }


async def test_a_withdrawal_after_acceptance_leaves_only_the_receiver_hearing_until_consent_is_given_again() -> None:
    uow = FakeUnitOfWork()
    owners = await hooks(uow)
    submitted, given = referral_event("r1", 1, "submitted"), consent_event("r1", 1, "given")
    accepted = referral_event("r1", 2, "accepted")
    await consume(uow, submitted, given, accepted)
    assert heard(uow, owners, given) == heard(uow, owners, accepted) == {SCHOOL, CAMHS}

    withdrawn = consent_event("r1", 2, "withdrawn")
    assert await consume(uow, withdrawn) == 2
    assert heard(uow, owners, withdrawn) == {SCHOOL, CAMHS}
    assert emailed(uow, withdrawn) == {(SCHOOL, Template.CONSENT_WITHDRAWN), (CAMHS, Template.CONSENT_WITHDRAWN)}

    later = [referral_event("r1", 3, "scheduled", appointment_at=datetime(2026, 4, 1, 9, tzinfo=UTC)),
             referral_event("r1", 4, "in_progress"), alert_event("r1"), alert_event("r1", "clock_breached")]  # fmt: skip
    await consume(uow, *later)
    for event in later:
        assert heard(uow, owners, event) == {CAMHS}, event.type
        assert {org for org, _ in emailed(uow, event)} <= {CAMHS}, event.type
        assert uow.committed.messages[event.id].organisation_ids == (CAMHS,), "refused to others at delivery too"
    assert emailed(uow, later[0]) == set(), "the scheduled email goes to the referrer only, so to no one now"

    again = consent_event("r1", 3, "given")
    completed = referral_event("r1", 5, "completed", outcome_code="discharged")
    await consume(uow, again, completed)
    assert heard(uow, owners, again) == heard(uow, owners, completed) == {SCHOOL, CAMHS}


async def test_a_withdrawal_before_acceptance_and_the_withdrawal_it_causes_reach_both() -> None:
    uow = FakeUnitOfWork()
    owners = await hooks(uow)
    await consume(uow, referral_event("r2", 1, "submitted"), consent_event("r2", 1, "given"))
    withdrawn = consent_event("r2", 2, "withdrawn")
    ended = referral_event("r2", 2, "withdrawn", reason_code="consent_withdrawn")
    assert await consume(uow, withdrawn, ended) == 4
    assert heard(uow, owners, withdrawn) == heard(uow, owners, ended) == {SCHOOL, CAMHS}
    error = referral_event("r2", 3, "entered_in_error")
    await consume(uow, error)
    assert heard(uow, owners, error) == {CAMHS}


async def test_consent_events_are_idempotent_and_a_stale_version_never_overrides_a_newer_one() -> None:
    uow = FakeUnitOfWork()
    owners = await hooks(uow)
    submitted, given = referral_event("r3", 1, "submitted"), consent_event("r3", 1, "given")
    withdrawn, again = consent_event("r3", 2, "withdrawn"), consent_event("r3", 3, "given")
    await consume(uow, submitted, given)
    assert await consume(uow, again) == 2, "a newer version goes on even when one before it is missing"
    assert await consume(uow, withdrawn) == 0, "the late withdrawal is older than the consent in force"
    assert await consume(uow, again, given) == 0, "repeats change nothing and are not sent twice"
    assert uow.committed.consents["r3"] == ConsentState("r3", 3, ConsentStatus.GIVEN)
    accepted = referral_event("r3", 2, "accepted")
    await consume(uow, accepted)
    assert heard(uow, owners, accepted) == {SCHOOL, CAMHS}
    assert heard(uow, owners, withdrawn) == set()


async def test_consent_events_are_never_held_and_a_held_event_goes_out_under_the_consent_in_force() -> None:
    uow = FakeUnitOfWork()
    owners = await hooks(uow)
    await consume(uow, referral_event("r4", 1, "submitted"), consent_event("r4", 1, "given"))
    acknowledged, accepted = referral_event("r4", 2, "acknowledged"), referral_event("r4", 3, "accepted")
    await consume(uow, accepted)  # early: version 2 is missing
    assert heard(uow, owners, accepted) == set() and len(uow.committed.held) == 1
    withdrawn = consent_event("r4", 2, "withdrawn")
    assert await consume(uow, withdrawn) == 2, "a consent event goes on at once, even with a version held"
    assert len(uow.committed.held) == 1
    await consume(uow, acknowledged)  # the lost version comes back: both held-back versions go on now
    assert heard(uow, owners, acknowledged) == heard(uow, owners, accepted) == {CAMHS}


@pytest.mark.parametrize("choice", list(NewReferralEmails))
async def test_after_a_withdrawal_the_referrer_gets_no_email_and_no_digest_line_about_the_referral(
    choice: NewReferralEmails,
) -> None:
    uow = FakeUnitOfWork()
    for org in (SCHOOL, CAMHS):
        uow.committed.preferences[org] = EmailPreferences(new_referrals=choice)
    await consume(uow, referral_event("r5", 1, "submitted"), consent_event("r5", 1, "given"),
                  referral_event("r5", 2, "accepted"))  # fmt: skip
    before = {e.id for e in uow.committed.emails.values()}
    await consume(uow, consent_event("r5", 2, "withdrawn"))
    everything_after = [
        referral_event("r5", 3, "scheduled", appointment_at=datetime(2026, 4, 1, 9, tzinfo=UTC)),
        referral_event("r5", 4, "on_hold", reason_code="family_unavailable"),
        referral_event("r5", 5, "in_progress"),
        referral_event("r5", 6, "handed_off", onward_service_id="svc-ep", linked_referral_id="r6"),
        alert_event("r5"),
        referral_event("r5", 7, "rejected", reason_code="threshold_not_met"),
        referral_event("r5", 8, "withdrawn", reason_code="no_longer_needed"),
    ]
    await consume(uow, *everything_after)
    await queue_digests(uow, DigestSchedule(time(8, 0), ZoneInfo("Europe/London")), date(2099, 1, 1))
    new = [e for e in uow.committed.emails.values() if e.id not in before]
    assert {(e.intent.organisation_id, e.intent.template) for e in new if e.intent.organisation_id == SCHOOL} == {
        (SCHOOL, Template.CONSENT_WITHDRAWN)
    }
    assert all(w.entry.organisation_id != SCHOOL for w in uow.committed.digest_entries.values())
    assert any(e.intent.organisation_id == CAMHS and e.intent.template is Template.BREACH_IMMINENT for e in new), (
        "the receiver is still told"
    )
