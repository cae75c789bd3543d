"""Versioned payload schemas of the public event contract (the CloudEvent ``data``).

No personal data ever appears here: no names, dates of birth, NHS numbers or
free text. The child is known only by a keyed pseudonymous reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ReferralStatus(StrEnum):
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    HANDED_OFF = "handed_off"
    COMPLETED = "completed"
    WITHDRAWN = "withdrawn"
    ENTERED_IN_ERROR = "entered_in_error"


def referral_event_type(status: ReferralStatus | str) -> str:
    known = _REFERRAL_TYPE_OF.get(status)  # a rebuild asks once an event: looked up, not formatted
    return known if known is not None else f"uk.send.referral.{ReferralStatus(status).value}.v1"


_REFERRAL_TYPE_OF: dict[str, str] = {}
_REFERRAL_TYPE_OF.update({s.value: referral_event_type(s) for s in ReferralStatus})
REFERRAL_EVENT_TYPES = frozenset(_REFERRAL_TYPE_OF.values())


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferralEventV1(EventPayload):
    """Data of every ``uk.send.referral.<status>.v1`` event."""

    referral_id: str = Field(description="Referral id; also the Kafka key and the CloudEvent subject.")
    version: int = Field(ge=1, description="Referral version after this change; +1 per change, so gaps are visible.")
    status: ReferralStatus = Field(description="The referral's status after this change (also in the event type).")
    previous_status: ReferralStatus | None = Field(
        None, description="The status before this change; null for the submission."
    )
    child_ref: str = Field(description="Pseudonymous child reference (keyed hash); never an identifier.")
    referrer_org_id: str = Field(description="The organisation that made the referral (directory id).")
    service_id: str = Field(description="The service the referral is at (directory id).")
    receiving_org_id: str = Field(description="The organisation that runs that service (directory id).")
    urgency: str | None = Field(None, description="routine, urgent or very_urgent.")
    primary_need: str | None = Field(None, description="DfE SEN need code, e.g. SEMH.")
    secondary_need: str | None = Field(None, description="A second DfE SEN need code, if any.")
    occurred_at: AwareDatetime = Field(description="Business time of the change, as given by the organisation.")
    recorded_at: AwareDatetime = Field(description="When the system recorded the change.")
    reason_code: str | None = Field(None, description="Rejection or hold reason code.")
    outcome_code: str | None = Field(None, description="The outcome code (completed), e.g. plan_issued.")
    signposted_service_id: str | None = Field(
        None, description="A rejection's service the family is pointed to instead (directory id)."
    )
    linked_referral_id: str | None = Field(None, description="Referral created by a hand-off, or the one it came from.")
    onward_service_id: str | None = Field(
        None, description="Service a hand-off or re-referral sent the child to (the linked referral's service)."
    )
    appointment_at: datetime | None = Field(None, description="Booked appointment (scheduled).")
    expected_resume: date | None = Field(None, description="Expected end of a hold (on_hold).")
    parallel_referral_ids: list[str] = Field(
        default_factory=list, description="Open referrals of the same child elsewhere."
    )


class ConsentStatus(StrEnum):
    """What a consent event did: the status code consent events carry (also in the event type)."""

    GIVEN = "given"
    CHANGED = "changed"
    WITHDRAWN = "withdrawn"


class ConsentGiver(StrEnum):
    """Who gave (or withdrew) consent: a parent or carer; the young person where the SEND Code of Practice gives
    them the decision (16 and over); a local authority with parental responsibility (a looked-after child)."""

    PARENT = "parent"
    CARER = "carer"
    YOUNG_PERSON = "young_person"
    LOCAL_AUTHORITY = "local_authority"


def consent_event_type(status: ConsentStatus | str) -> str:
    return f"uk.send.referral.consent.{ConsentStatus(status).value}.v1"


CONSENT_EVENT_TYPES = frozenset(consent_event_type(s) for s in ConsentStatus)


class ReferralConsentV1(EventPayload):
    """Data of every ``uk.send.referral.consent.<given|changed|withdrawn>.v1`` event: consent to share the
    referral, as codes and directory ids only (who gave it is a role, never a name)."""

    referral_id: str = Field(description="Referral id; also the Kafka key and the CloudEvent subject.")
    consent_version: int = Field(
        ge=1, description="The referral's consent record version after this event; +1 per consent event."
    )
    consent_status: ConsentStatus = Field(description="given, changed or withdrawn (also in the event type).")
    given_by: ConsentGiver = Field(description="Who gave, changed or withdrew consent, as a role.")
    scope_service_ids: list[str] = Field(
        default_factory=list,
        description="Services that may receive the referral (directory ids); empty once consent is withdrawn.",
    )
    scope_organisation_ids: list[str] = Field(
        default_factory=list,
        description="Agencies any of whose services may receive the referral (directory ids); empty once withdrawn.",
    )
    child_ref: str = Field(description="Pseudonymous child reference (keyed hash); never an identifier.")
    referrer_org_id: str = Field(description="The organisation that made the referral (directory id).")
    service_id: str = Field(description="The service the referral is at (directory id).")
    receiving_org_id: str = Field(description="The organisation that runs that service (directory id).")
    occurred_at: AwareDatetime = Field(description="Business time: when consent was given, changed or withdrawn.")
    recorded_at: AwareDatetime = Field(description="When the system recorded it.")


# A directory id (organisation, service, area): lower-case ASCII letters, digits and hyphens, at most 64.
DIRECTORY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
ORGANISATION_UPSERTED = "uk.send.directory.organisation.upserted.v1"
SERVICE_UPSERTED = "uk.send.directory.service.upserted.v1"


class OrganisationV1(EventPayload):
    """Data of ``uk.send.directory.organisation.upserted.v1``: the organisation as it now is."""

    organisation_id: str
    version: int = Field(ge=1)
    name: str
    kind: str = Field(description="school, trust, camhs, local_authority, health or voluntary")
    area_id: str = Field(description="Local authority area the organisation is in.")
    trust_id: str | None = Field(None, description="The multi-academy trust a school belongs to.")


class ServiceV1(EventPayload):
    """Data of ``uk.send.directory.service.upserted.v1``: the service as it now is."""

    service_id: str
    version: int = Field(ge=1)
    organisation_id: str
    name: str
    needs: list[str]
    urgencies: list[str]
    clocks: list[str] = Field(description="Clocks the service runs, e.g. ehc_plan_20w, cypmh_4w, service_target.")
    target_days: int | None = Field(None, description="Target of a service-defined clock, in days.")
    active: bool = True


CLOCK_BREACH_IMMINENT = "uk.send.waitlist.clock_breach_imminent.v1"
CLOCK_BREACHED = "uk.send.waitlist.clock_breached.v1"


class ClockAlertV1(EventPayload):
    """Data of ``uk.send.waitlist.clock_breach_imminent.v1`` and ``uk.send.waitlist.clock_breached.v1``."""

    referral_id: str = Field(description="The referral whose clock it is; also the CloudEvent subject.")
    clock: str = Field(description="e.g. ehc_plan_20w, cypmh_4w, rtt_18w, service_target.")
    service_id: str = Field(description="The service the referral waits at (directory id).")
    receiving_org_id: str = Field(description="The organisation that runs that service (directory id).")
    referrer_org_id: str = Field(description="The organisation that made the referral (directory id).")
    target_days: int = Field(description="The clock's target, in days from its start.")
    start_date: date = Field(description="Business date the clock started.")
    breach_date: date = Field(description="First date on which the wait exceeds the target.")
    waiting_days: int = Field(description="Waiting days on the date the alert was raised.")
    raised_on: date = Field(description="Europe/London date the alert was raised.")


CLOCKS_UPDATED = "uk.send.waitlist.clocks_updated.v1"


class ClockStateV1(EventPayload):
    """One clock of a referral as waitlists last derived it."""

    clock: str = Field(description="e.g. ehc_decision_6w, ehc_plan_20w, cypmh_4w, rtt_18w, service_target.")
    target_days: int = Field(description="The clock's target, in days from its start.")
    start_date: date = Field(description="Business date the clock started.")
    state: str = Field(description="running, paused, met, late or ended (stopped neither met nor late).")
    breach_date: date | None = Field(
        None, description="First date on which the wait exceeds the target; null while paused before it."
    )
    stopped_on: date | None = Field(None, description="The date the clock stopped (met, late or ended).")
    exception: bool = Field(False, description="An EHC clock whose case is an exception (a statutory hold).")


class ReferralClocksV1(EventPayload):
    """Data of ``uk.send.waitlist.clocks_updated.v1``: a referral's clocks after waitlists projected a change of it.
    Sent when they differ from those last sent; the newest ``referral_version`` wins."""

    referral_id: str = Field(description="The referral whose clocks these are; also the CloudEvent subject.")
    referral_version: int = Field(ge=1, description="The newest referral version these clocks were derived from.")
    service_id: str = Field(description="The service the referral waits at (directory id).")
    receiving_org_id: str = Field(description="The organisation that runs that service (directory id).")
    referrer_org_id: str = Field(description="The organisation that made the referral (directory id).")
    clocks: list[ClockStateV1] = Field(description="Every clock the service runs for the referral.")


WAIT_ESTIMATE = "uk.send.waitlist.wait_estimate.v1"


class WaitEstimateV1(EventPayload):
    """Data of ``uk.send.waitlist.wait_estimate.v1``: a service's predicted wait (Kaplan-Meier over the referrals
    submitted in the window before ``as_of``), sent when it changes, at most daily. The CloudEvent subject is the
    service id. Counts only: below the threshold ``enough_data`` is false and every figure null."""

    service_id: str = Field(description="The service the estimate is for (directory id); also the CloudEvent subject.")
    as_of: date = Field(description="The Europe/London date the estimate is for.")
    window_weeks: int = Field(
        ge=1, description="Weeks of referrals (by submission date) before as_of it is built from."
    )
    children: int | None = Field(
        ge=0, description="Referrals behind the estimate; null when 1 to 4 (disclosure control)."
    )
    enough_data: bool = Field(description="At least the threshold of referrals (default 20): the figures are given.")
    to_support_median_days: int | None = Field(None, description="Median days from submission to support starting.")
    to_support_p90_days: int | None = Field(
        None, description="Days within which 9 in 10 children start support; null if the curve never gets there."
    )
    to_support_p90_low_days: int | None = Field(None, description="Lower end of the 95% band of the p90.")
    to_support_p90_high_days: int | None = Field(
        None, description="Upper end of the 95% band of the p90; null when unbounded by the data."
    )
    to_clock_stop_median_days: int | None = Field(
        None, description="Median days from submission to the first clock's stop."
    )
    to_clock_stop_p90_days: int | None = Field(None, description="90th percentile days to the first clock's stop.")


SIGNPOSTED = "uk.send.referral.signposted.v1"
SIGNPOST_TAKEN_UP = "uk.send.referral.signpost_taken_up.v1"


class ReferralSignpostedV1(EventPayload):
    """Data of ``uk.send.referral.signposted.v1``: the referral was pointed to interim offers (support while
    waiting), because its service's predicted wait is long or a clock nears breach. Ids and codes only."""

    referral_id: str = Field(description="The referral; also the CloudEvent subject.")
    referrer_org_id: str = Field(description="The organisation that made the referral (directory id).")
    service_id: str = Field(description="The service the referral waits at (directory id).")
    receiving_org_id: str = Field(description="The organisation that runs that service (directory id).")
    trigger: str = Field(description="long_wait (accepted with a long predicted wait) or clock_breach_imminent.")
    offer_ids: list[str] = Field(description="The interim offers signposted (directory ids), the service's own first.")
    provider_org_ids: list[str] = Field(description="The organisations providing them, in the same order.")
    primary_need: str | None = Field(None, description="The referral's DfE SEN need code the offers suit.")
    occurred_at: AwareDatetime = Field(description="When the referral was signposted.")


class SignpostTakenUpV1(EventPayload):
    """Data of ``uk.send.referral.signpost_taken_up.v1``: an interim offer the referral was signposted to was taken
    up, as its referrer, its receiver or the family recorded. Ids and codes only."""

    referral_id: str = Field(description="The referral; also the CloudEvent subject.")
    referrer_org_id: str = Field(description="The organisation that made the referral (directory id).")
    service_id: str = Field(description="The service the referral waits at (directory id).")
    receiving_org_id: str = Field(description="The organisation that runs that service (directory id).")
    offer_id: str = Field(description="The interim offer taken up (directory id).")
    provider_org_id: str = Field(description="The organisation providing it (directory id).")
    recorded_by: str = Field(description="Who recorded it: referrer, receiver or family.")
    occurred_at: AwareDatetime = Field(description="When it was recorded.")


WEBHOOK_PING = "uk.send.webhook.ping.v1"


class WebhookPingV1(EventPayload):
    """Data of ``uk.send.webhook.ping.v1``: sent on request to one webhook endpoint, never on Kafka."""

    endpoint_id: str = Field(description="The endpoint being tested (also the CloudEvent subject).")


class ContractViolation(ValueError):
    """An event whose attributes disagree with its data (type, subject or version): never worth retrying."""


EventPayloadV1 = (
    ReferralEventV1
    | ReferralConsentV1
    | ClockAlertV1
    | ReferralClocksV1
    | ServiceV1
    | OrganisationV1
    | WaitEstimateV1
    | ReferralSignpostedV1
    | SignpostTakenUpV1
)
SCHEMAS: dict[str, type[EventPayloadV1]] = {
    **dict.fromkeys(REFERRAL_EVENT_TYPES, ReferralEventV1),
    **dict.fromkeys(CONSENT_EVENT_TYPES, ReferralConsentV1),
    CLOCK_BREACH_IMMINENT: ClockAlertV1,
    CLOCK_BREACHED: ClockAlertV1,
    CLOCKS_UPDATED: ReferralClocksV1,
    WAIT_ESTIMATE: WaitEstimateV1,
    SIGNPOSTED: ReferralSignpostedV1,
    SIGNPOST_TAKEN_UP: SignpostTakenUpV1,
    SERVICE_UPSERTED: ServiceV1,
    ORGANISATION_UPSERTED: OrganisationV1,
}


def validated_payload(
    event_type: str, data: Mapping[str, Any], *, subject: str | None, extensions: Mapping[str, str]
) -> EventPayloadV1 | None:
    """The event's data checked against its type's schema, and against the event's own attributes;
    None for a type outside this contract. Raises ``pydantic.ValidationError`` or ``ContractViolation``.
    Consumers act only on what this returns: fields a schema does not know never go further."""
    schema = SCHEMAS.get(event_type)
    if schema is None:
        return None
    payload = schema.model_validate(data)
    check_attributes(event_type, payload, subject=subject, extensions=extensions)
    return payload


def check_attributes(
    event_type: str, payload: EventPayloadV1, *, subject: str | None, extensions: Mapping[str, str]
) -> None:
    """The CloudEvent's type, subject and ``referralversion`` must say what its data says."""
    if isinstance(payload, ReferralEventV1):
        if event_type != referral_event_type(payload.status):
            raise ContractViolation(f"type {event_type} carries status {payload.status.value}")
        version = extensions.get("referralversion")
        if version is not None and version != str(payload.version):
            raise ContractViolation(f"referralversion {version} disagrees with data version {payload.version}")
    if isinstance(payload, ReferralConsentV1) and event_type != consent_event_type(payload.consent_status):
        raise ContractViolation(f"type {event_type} carries consent status {payload.consent_status.value}")
    if (
        isinstance(
            payload,
            ReferralEventV1
            | ReferralConsentV1
            | ClockAlertV1
            | ReferralClocksV1
            | ReferralSignpostedV1
            | SignpostTakenUpV1,
        )
        and subject is not None
        and subject != payload.referral_id
    ):
        raise ContractViolation(f"subject {subject} is not referral {payload.referral_id}")
    if isinstance(payload, WaitEstimateV1) and subject is not None and subject != payload.service_id:
        raise ContractViolation(f"subject {subject} is not service {payload.service_id}")
