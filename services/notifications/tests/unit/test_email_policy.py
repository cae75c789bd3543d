from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from notifications.domain.email_policy import Template, email_intents
from send_shared.events.schemas import (
    CLOCK_BREACH_IMMINENT,
    CLOCK_BREACHED,
    ClockAlertV1,
    ReferralEventV1,
    ReferralStatus,
    referral_event_type,
)

# Everything an email may mention: ids, codes, dates and counts. Never child_ref or anything personal.
ALLOWED_KEYS = {
    "referral_id",
    "status",
    "previous_status",
    "service_id",
    "referrer_org_id",
    "receiving_org_id",
    "occurred_at",
    "reason_code",
    "signposted_service_id",
    "linked_referral_id",
    "onward_service_id",
    "appointment_at",
    "clock",
    "target_days",
    "start_date",
    "breach_date",
    "waiting_days",
    "raised_on",
    "audience",
    "urgency",
    "primary_need",
}


def referral_event(status: ReferralStatus, **details: Any) -> dict[str, Any]:
    event = ReferralEventV1(
        referral_id="3f2a1b2c-0000-4000-8000-000000000001",
        version=4,
        status=status,
        previous_status=ReferralStatus.ACKNOWLEDGED,
        child_ref="chd_9c1e0f",
        referrer_org_id="org-school",
        service_id="svc-camhs-core",
        receiving_org_id="org-camhs",
        urgency="routine",
        primary_need="SEMH",
        occurred_at=datetime(2026, 3, 3, 10, 0, tzinfo=UTC),
        recorded_at=datetime(2026, 3, 3, 10, 1, tzinfo=UTC),
        **details,
    )
    return event.model_dump(mode="json")


def clock_alert(clock: str) -> dict[str, Any]:
    alert = ClockAlertV1(
        referral_id="3f2a1b2c-0000-4000-8000-000000000001",
        clock=clock,
        service_id="svc-ehc",
        receiving_org_id="org-la",
        referrer_org_id="org-school",
        target_days=140,
        start_date=date(2025, 11, 1),
        breach_date=date(2026, 3, 22),
        waiting_days=135,
        raised_on=date(2026, 3, 16),
    )
    return alert.model_dump(mode="json")


def test_the_referrer_hears_of_an_acceptance() -> None:
    [intent] = email_intents(referral_event_type("accepted"), referral_event(ReferralStatus.ACCEPTED))
    assert intent.organisation_id == "org-school"
    assert intent.template is Template.ACCEPTED
    assert intent.context["referral_id"] == "3f2a1b2c-0000-4000-8000-000000000001"
    assert intent.context["service_id"] == "svc-camhs-core"
    assert intent.context["audience"] == "referrer"


def test_a_rejection_carries_reason_signposting_and_re_referral() -> None:
    data = referral_event(
        ReferralStatus.REJECTED,
        reason_code="threshold_not_met",
        signposted_service_id="svc-trust-ep",
        linked_referral_id="7d00aa11-0000-4000-8000-000000000002",
    )
    [intent] = email_intents(referral_event_type("rejected"), data)
    assert intent.organisation_id == "org-school"
    assert intent.template is Template.REJECTED
    assert intent.context["reason_code"] == "threshold_not_met"
    assert intent.context["signposted_service_id"] == "svc-trust-ep"
    assert intent.context["linked_referral_id"] == "7d00aa11-0000-4000-8000-000000000002"


def test_a_rejection_without_signposting_still_names_the_missing_fields() -> None:
    [intent] = email_intents(referral_event_type("rejected"), referral_event(ReferralStatus.REJECTED))
    assert intent.context["signposted_service_id"] is None
    assert intent.context["linked_referral_id"] is None


def test_a_booking_carries_the_appointment_time() -> None:
    data = referral_event(ReferralStatus.SCHEDULED, appointment_at=datetime(2026, 4, 14, 9, 30, tzinfo=UTC))
    [intent] = email_intents(referral_event_type("scheduled"), data)
    assert intent.organisation_id == "org-school"
    assert intent.template is Template.SCHEDULED
    assert intent.context["appointment_at"] == "2026-04-14T09:30:00Z"


def test_a_hand_off_tells_the_referrer_where_the_referral_went() -> None:
    data = referral_event(ReferralStatus.HANDED_OFF, linked_referral_id="7d00aa11-0000-4000-8000-000000000002")
    [intent] = email_intents(referral_event_type("handed_off"), data)
    assert intent.organisation_id == "org-school"
    assert intent.template is Template.HANDED_OFF
    assert intent.context["linked_referral_id"] == "7d00aa11-0000-4000-8000-000000000002"


@pytest.mark.parametrize(
    "clock", ["ehc_decision_6w", "ehc_no_plan_16w", "ehc_plan_20w", "rtt_18w", "cypmh_4w", "cypmh_ed", "cypmh_crisis"]
)
def test_an_imminent_statutory_breach_reaches_both_sides(clock: str) -> None:
    intents = email_intents(CLOCK_BREACH_IMMINENT, clock_alert(clock))
    assert [(i.organisation_id, i.context["audience"]) for i in intents] == [
        ("org-school", "referrer"),
        ("org-la", "receiver"),
    ]
    for intent in intents:
        assert intent.template is Template.BREACH_IMMINENT
        assert intent.context["clock"] == clock
        assert intent.context["breach_date"] == "2026-03-22"
        assert intent.context["waiting_days"] == 135
        assert intent.context["target_days"] == 140


def test_a_service_defined_target_sends_no_email() -> None:
    assert email_intents(CLOCK_BREACH_IMMINENT, clock_alert("service_target")) == []


def test_a_breach_that_has_happened_sends_no_email() -> None:
    assert email_intents(CLOCK_BREACHED, clock_alert("ehc_plan_20w")) == []


@pytest.mark.parametrize(
    "status",
    [
        ReferralStatus.ACKNOWLEDGED,
        ReferralStatus.IN_PROGRESS,
        ReferralStatus.ON_HOLD,
        ReferralStatus.COMPLETED,
        ReferralStatus.WITHDRAWN,
        ReferralStatus.ENTERED_IN_ERROR,
    ],
)
def test_other_referral_events_send_no_email(status: ReferralStatus) -> None:
    assert email_intents(referral_event_type(status), referral_event(status)) == []


def test_a_submitted_referral_is_new_for_its_receiver_only() -> None:
    data = {**referral_event(ReferralStatus.SUBMITTED), "urgency": "urgent"}
    [intent] = email_intents(referral_event_type("submitted"), data)
    assert (intent.organisation_id, intent.template) == ("org-camhs", Template.NEW_REFERRAL)
    assert intent.context == {
        "referral_id": "3f2a1b2c-0000-4000-8000-000000000001", "service_id": "svc-camhs-core",
        "receiving_org_id": "org-camhs", "urgency": "urgent", "primary_need": "SEMH",
        "occurred_at": "2026-03-03T10:00:00Z", "audience": "receiver",
    }  # fmt: skip


def test_unknown_event_types_send_no_email() -> None:
    assert email_intents("uk.send.directory.service.upserted.v1", {"referrer_org_id": "org-school"}) == []
    assert email_intents("uk.send.referral.accepted.v2", referral_event(ReferralStatus.ACCEPTED)) == []


def test_an_organisation_on_both_sides_gets_one_email() -> None:
    data = {**clock_alert("rtt_18w"), "receiving_org_id": "org-school"}
    [intent] = email_intents(CLOCK_BREACH_IMMINENT, data)
    assert intent.organisation_id == "org-school"


def test_no_organisation_no_email() -> None:
    data = {**referral_event(ReferralStatus.ACCEPTED), "referrer_org_id": None}
    assert email_intents(referral_event_type("accepted"), data) == []


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (referral_event_type("accepted"), referral_event(ReferralStatus.ACCEPTED)),
        (referral_event_type("rejected"), referral_event(ReferralStatus.REJECTED, reason_code="duplicate")),
        (referral_event_type("scheduled"), referral_event(ReferralStatus.SCHEDULED)),
        (referral_event_type("handed_off"), referral_event(ReferralStatus.HANDED_OFF)),
        (referral_event_type("submitted"), referral_event(ReferralStatus.SUBMITTED)),
        (CLOCK_BREACH_IMMINENT, clock_alert("ehc_plan_20w")),
    ],
)
def test_no_personal_data_reaches_an_email(event_type: str, data: dict[str, Any]) -> None:
    # Even if a producer wrongly added personal fields, only the listed non-personal fields pass.
    leaky = {**data, "child_name": "Amelia Jones", "date_of_birth": "2015-02-01", "nhs_number": "9434765919"}
    intents = email_intents(event_type, leaky)
    assert intents
    for intent in intents:
        assert set(intent.context) <= ALLOWED_KEYS
        values = {str(v) for v in intent.context.values()}
        assert not values & {"Amelia Jones", "2015-02-01", "9434765919", "chd_9c1e0f"}


def test_python_values_are_made_plain() -> None:
    event = ReferralEventV1.model_validate(referral_event(ReferralStatus.SCHEDULED, appointment_at="2026-04-14T09:30Z"))
    [intent] = email_intents(referral_event_type("scheduled"), event.model_dump())
    assert intent.context["status"] == "scheduled"
    assert type(intent.context["status"]) is str
    assert intent.context["appointment_at"] == "2026-04-14T09:30:00+00:00"
