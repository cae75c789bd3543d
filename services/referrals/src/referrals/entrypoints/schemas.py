"""Request and response bodies of the referrals API (v1)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from referrals.domain.child import PersonalDetails, is_valid_nhs_number, is_valid_upn
from referrals.domain.codes import EHC_OUTCOMES, HoldReason, NeedCode, Outcome, RejectionReason, Urgency
from referrals.domain.consent import ConsentGiver, ConsentRecord, ConsentScope, ConsentStatus
from referrals.domain.history import HistoryRecord
from referrals.domain.interim import InterimOffer, Signpost, SignpostTrigger, TakenUpBy, WaitEstimate, wait_words
from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral
from referrals.domain.privacy import Tombstone
from referrals.service_layer.consent import GivenConsent
from send_shared.events.schemas import DIRECTORY_ID_PATTERN

NAME_PATTERN = r"^[^\W\d_]+(?:[ '\u2019.\-][^\W\d_]+)*$"
NAME_RULE = "1 to 100 letters, with single spaces, hyphens, apostrophes or full stops between them."


# Every date and time a request carries is bounded here, at the edge, so that nothing downstream ever sees
# a year 0001 or 9999 (which overflow on conversion and poison consumers) or a naive time.
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
"""No business event of this service (referral, consent, move, appointment) is older than this."""
EARLIEST_BIRTH = date(1990, 1, 1)
CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a past event may be, for callers whose clocks run a little fast."""
PLANNING_HORIZON = timedelta(days=2 * 366)
"""How far ahead an appointment, an expected resume date or a list filter may be."""


def _now() -> datetime:
    return datetime.now(UTC)


def _past_instant(value: datetime) -> datetime:
    if value < EARLIEST_EVENT:
        raise ValueError(f"must not be before {EARLIEST_EVENT.date().isoformat()}")
    if value > _now() + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


def _planned_instant(value: datetime) -> datetime:
    if value < EARLIEST_EVENT:
        raise ValueError(f"must not be before {EARLIEST_EVENT.date().isoformat()}")
    if value > _now() + PLANNING_HORIZON:
        raise ValueError("must not be more than two years ahead")
    return value


def _planned_date(value: date) -> date:
    if value < EARLIEST_EVENT.date():
        raise ValueError(f"must not be before {EARLIEST_EVENT.date().isoformat()}")
    if value > (_now() + PLANNING_HORIZON).date():
        raise ValueError("must not be more than two years ahead")
    return value


def _birth_date(value: date) -> date:
    today = _now().date()
    if value < EARLIEST_BIRTH:
        raise ValueError(f"must not be before {EARLIEST_BIRTH.isoformat()}")
    if value > today:
        raise ValueError("must not be in the future")
    if value.year < today.year - 26:
        raise ValueError("must be a date in the past 26 years")
    return value


PastInstant = Annotated[AwareDatetime, AfterValidator(_past_instant)]
"""A time something happened: with a time zone, from 2000-01-01, not (beyond clock skew) in the future."""
PlannedInstant = Annotated[AwareDatetime, AfterValidator(_planned_instant)]
"""A time something is booked for: with a time zone, from 2000-01-01, at most two years ahead."""
PlannedDate = Annotated[date, AfterValidator(_planned_date)]
"""A day something is expected: from 2000-01-01, at most two years ahead."""
BirthDate = Annotated[date, AfterValidator(_birth_date)]
"""A child's date of birth: from 1990-01-01, within the past 26 years, not in the future."""
FilterInstant = Annotated[AwareDatetime, AfterValidator(_planned_instant)]
"""A bound of a list filter (`since`, `referred_from`, ...): with a time zone, 2000-01-01 to two years ahead."""


def _clean_text(value: str) -> str:
    """No control characters (but tab and line breaks) and no lone surrogates: they break storage and
    consumers, and never belong in a referral."""
    for ch in value:
        if ch in "\t\n\r":
            continue
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise ValueError("must not contain control characters or unpaired surrogates")
    return value


Text = Annotated[str, AfterValidator(_clean_text)]
"""Free text: any printable characters, tabs and line breaks."""
IDENTIFIER_PATTERN = DIRECTORY_ID_PATTERN
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
"""A directory id (service, organisation): lower-case ASCII letters, digits and hyphens."""
REFERRAL_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CODE_PATTERN = r"^[a-z0-9_]+$"
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=CODE_PATTERN)]
"""A coded value (reason, outcome): lower-case ASCII letters, digits and underscores."""


def _code_list(codes: Iterable[StrEnum], title: str, when: str) -> dict[str, Any]:
    return {"title": title, "type": "string", "enum": [code.value for code in codes], "description": when}


_STATUS_CODE_FORMAT: dict[str, Any] = {"minLength": 1, "maxLength": 64, "pattern": CODE_PATTERN}
# The server checks reason_code and outcome_code against a list only for some statuses (domain/model.py,
# check_details); with any other status it records the code as given. The schemas say exactly that.
_REASON_LISTS = [
    _code_list(
        RejectionReason, "RejectionReason", "With status `rejected` (required): why the service did not accept."
    ),
    _code_list(HoldReason, "HoldReason", "With status `on_hold` (required): why the referral is paused."),
]
_OUTCOME_LISTS = [
    _code_list(
        sorted(EHC_OUTCOMES),
        "EhcOutcome",
        "With status `completed` at a service that runs an EHC clock (`ehc_...`; required): the decision.",
    ),
    _code_list(
        [o for o in Outcome if o not in EHC_OUTCOMES],
        "SupportOutcome",
        "With status `completed` at any other service (required): how the support ended.",
    ),
]
_OTHER_IN = {
    "type": "string",
    **_STATUS_CODE_FORMAT,
    "description": "With any other status (optional), e.g. a withdrawal reason: recorded as given.",
}
_OTHER_OUT = {"type": "string", "description": "With any other status: the code the mover gave."}
ReasonCodeIn = Annotated[Code, WithJsonSchema({"anyOf": [*_REASON_LISTS, {"title": "OtherReason", **_OTHER_IN}]})]
OutcomeCodeIn = Annotated[Code, WithJsonSchema({"anyOf": [*_OUTCOME_LISTS, {"title": "OtherOutcome", **_OTHER_IN}]})]
ReasonCodeOut = Annotated[str, WithJsonSchema({"anyOf": [*_REASON_LISTS, {"title": "OtherReason", **_OTHER_OUT}]})]
OutcomeCodeOut = Annotated[str, WithJsonSchema({"anyOf": [*_OUTCOME_LISTS, {"title": "OtherOutcome", **_OTHER_OUT}]})]


ScopeIds = Annotated[list[Identifier], Field(max_length=50)]


def scope_of(service_ids: list[str] | None, organisation_ids: list[str] | None) -> ConsentScope | None:
    """None when neither list is given (the default scope of the action)."""
    if service_ids is None and organisation_ids is None:
        return None
    return ConsentScope.of(service_ids or [], organisation_ids or [])


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_by: ConsentGiver = Field(
        description="Who gave consent to the referral: a parent, a carer, the young person (only if 16 or over on "
        "`given_at`), or the local authority (a looked-after child)."
    )
    given_at: PastInstant = Field(
        description="When consent was given: ISO 8601 date-time with a time zone, e.g. 2026-11-01T10:00:00Z."
    )
    scope: Text = Field(
        min_length=1,
        max_length=500,
        description="What the consent covers, in the family's words: kept as the consent's note, never leaves "
        "this service. Which services may receive the referral is `scope_service_ids` / `scope_organisation_ids`.",
    )
    scope_service_ids: ScopeIds | None = Field(
        None,
        description="Services (directory ids) the family agrees may receive the referral, e.g. a later hand-off. "
        "With neither this nor `scope_organisation_ids`, only the service referred to.",
    )
    scope_organisation_ids: ScopeIds | None = Field(
        None,
        description="Organisations (directory ids) any of whose services may receive the referral.",
    )

    def given(self) -> GivenConsent:
        return GivenConsent(
            given_by=self.given_by,
            occurred_at=self.given_at,
            scope=scope_of(self.scope_service_ids, self.scope_organisation_ids),
            note=self.scope,
        )


def checked_nhs_number(value: str | None) -> str | None:
    """An NHS number as the API takes it (ASCII digits, spaces allowed, a valid check digit), without spaces."""
    if value is not None and not is_valid_nhs_number(value):
        raise ValueError("not a valid NHS number (10 digits with a modulus 11 check digit)")
    return value.replace(" ", "") if value else value


def checked_upn(value: str | None) -> str | None:
    """A unique pupil number as the API takes it, in capitals."""
    if value is not None and not is_valid_upn(value):
        raise ValueError("not a valid unique pupil number")
    return value.strip().upper() if value else value


class ChildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_name: str = Field(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="The child's first name. " + NAME_RULE,
    )
    family_name: str = Field(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="The child's last name. " + NAME_RULE,
    )
    date_of_birth: BirthDate = Field(
        description="YYYY-MM-DD: from 1990-01-01, within the past 26 years, not in the future."
    )
    nhs_number: str | None = Field(
        None,
        max_length=20,
        description="The child's NHS number: 10 ASCII digits (spaces allowed) with a modulus 11 check digit. "
        "Give this or `upn`.",
    )
    upn: str | None = Field(
        None,
        max_length=20,
        description="The child's unique pupil number (ASCII), when the NHS number is not known. Give this or "
        "`nhs_number`.",
    )

    _nhs = field_validator("nhs_number")(checked_nhs_number)
    _upn = field_validator("upn")(checked_upn)

    @model_validator(mode="after")
    def _identified(self) -> ChildIn:
        if not (self.nhs_number or self.upn):
            raise ValueError("give the child's nhs_number or upn")
        return self


class ReferralCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "service_id": "svc-camhs-core",
                    "child": {
                        "given_name": "Sam",
                        "family_name": "Taylor",
                        "date_of_birth": "2015-04-12",
                        "nhs_number": "9434765919",
                    },
                    "primary_need": "SEMH",
                    "reason": "Persistent anxiety affecting attendance since spring term.",
                    "urgency": "routine",
                    "consent": {"given_by": "parent", "given_at": "2026-11-01T10:00:00Z", "scope": "Referral to CAMHS"},
                    "referred_at": "2026-11-02T09:30:00Z",
                }
            ]
        },
    )

    service_id: Identifier = Field(
        description="The service you refer the child to: its id in the directory (GET /v1/directory/services)."
    )
    child: ChildIn = Field(
        description="Who the child is. Only your organisation and the receiving service's organisation see it."
    )
    primary_need: NeedCode = Field(description="The child's main special educational need: a DfE SEN need code.")
    secondary_need: NeedCode | None = Field(None, description="A second DfE SEN need code, if there is one.")
    reason: Text = Field(
        min_length=1,
        max_length=4000,
        description="Why you refer the child, in plain words. Seen only by your organisation and the receiving "
        "service's; it never leaves this service.",
    )
    urgency: Urgency = Field(Urgency.ROUTINE, description="How soon the child needs to be seen; default routine.")
    consent: ConsentIn = Field(description="The consent the referral rests on.")
    referred_at: PastInstant | None = Field(
        None,
        description="When you referred the child, if earlier than now (ISO 8601 with a time zone, from "
        "2000-01-01, not in the future); default now.",
    )

    def person(self) -> PersonalDetails:
        return PersonalDetails(
            given_name=self.child.given_name,
            family_name=self.child.family_name,
            date_of_birth=self.child.date_of_birth,
            nhs_number=self.child.nhs_number,
            upn=self.child.upn,
            reason=self.reason,
        )


class StatusChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "accepted"},
                {
                    "status": "rejected",
                    "reason_code": "outside_remit",
                    "explanation": "Needs are educational rather than clinical.",
                    "signposted_service_id": "svc-trust-ed-psych",
                },
                {"status": "on_hold", "reason_code": "family_unavailable", "expected_resume": "2026-12-01"},
                {"status": "scheduled", "appointment_at": "2026-12-03T14:00:00Z"},
                {"status": "handed_off", "target_service_id": "svc-ehc-assessment"},
                {"status": "completed", "outcome_code": "support_completed"},
            ]
        },
    )

    status: Status = Field(
        description="The status to move the referral to: one of the referral's `allowed_moves`. Which other fields "
        "a move needs depends on it (see each field)."
    )
    occurred_at: PastInstant | None = Field(
        None,
        description="When the move happened, if earlier than now (ISO 8601 with a time zone, from 2000-01-01, "
        "not in the future); default now.",
    )
    reason_code: ReasonCodeIn | None = Field(
        None,
        description="Why: a rejection reason code with status `rejected`, a hold reason code with `on_hold` (both "
        "required then); with any other status, e.g. `withdrawn`, an optional code of your own, recorded as given.",
    )
    explanation: Text | None = Field(
        None,
        max_length=4000,
        description="Why, in plain words (required with `rejected`). Seen by the referrer and the receiver only; "
        "it never leaves this service.",
    )
    signposted_service_id: Identifier | None = Field(
        None,
        description="With `rejected`: a directory service the family is pointed to instead. A rejection needs "
        "this or `rereferral_service_id`.",
    )
    rereferral_service_id: Identifier | None = Field(
        None, description="With `rejected`: a directory service the referral is sent on to, as a new referral."
    )
    target_service_id: Identifier | None = Field(
        None, description="With `handed_off` (required): the directory service that takes the referral over."
    )
    appointment_at: PlannedInstant | None = Field(
        None,
        description="With `scheduled` (required): the appointment, ISO 8601 with a time zone, at most two years ahead.",
    )
    expected_resume: PlannedDate | None = Field(
        None, description="With `on_hold` (required): the day the hold should end, YYYY-MM-DD, at most two years ahead."
    )
    outcome_code: OutcomeCodeIn | None = Field(
        None,
        description="With `completed` (required): the outcome code; a service that runs an EHC clock uses "
        "plan_issued or no_plan, any other service support_completed, discharged or disengaged.",
    )


class ChildOut(BaseModel):
    given_name: str = Field(description="The child's first name.")
    family_name: str = Field(description="The child's last name.")
    date_of_birth: date = Field(description="The child's date of birth, YYYY-MM-DD.")
    nhs_number: str | None = Field(description="The child's NHS number (10 digits), or null if not given.")
    upn: str | None = Field(description="The child's unique pupil number, or null if not given.")


class ErasedChildOut(BaseModel):
    """The tombstone of an erased child's personal data (UK GDPR Article 17): the referral stays, who the child
    was does not."""

    erased_at: datetime = Field(description="When the child's personal data was erased (ISO 8601 with a time zone).")
    erased_by_org_id: str = Field(description="The organisation that erased it (directory id).")


class ParallelReferral(BaseModel):
    referral_id: str | None = Field(
        description="That referral's id; null when the caller is neither that referral's referrer nor receiver."
    )
    service_id: str = Field(description="The service that referral is at.")
    status: Status = Field(description="That referral's status.")


_CONSENT_EXAMPLE: JsonDict = {
    "consent_version": 1,
    "status": "given",
    "given_by": "parent",
    "scope_service_ids": ["svc-camhs-core"],
    "scope_organisation_ids": [],
    "occurred_at": "2026-11-01T10:00:00Z",
}


class ConsentInForce(BaseModel):
    """The consent the referral rests on now: the newest consent event."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CONSENT_EXAMPLE]})

    consent_version: int = Field(
        description="The consent event's number: 1 at submission, +1 per give, change, withdraw."
    )
    status: ConsentStatus = Field(description="given, changed (a new scope or giver) or withdrawn.")
    given_by: ConsentGiver = Field(description="Who gave, changed or withdrew consent, as a role.")
    scope_service_ids: list[str] = Field(
        description="Services that may receive the referral (directory ids); empty once withdrawn. The referral's "
        "own service is always in scope while consent is given."
    )
    scope_organisation_ids: list[str] = Field(
        description="Organisations any of whose services may receive the referral (directory ids); empty once withdrawn."
    )
    occurred_at: datetime = Field(description="When consent was given, changed or withdrawn (business time).")

    @classmethod
    def of(cls, record: ConsentRecord) -> ConsentInForce:
        return cls(
            consent_version=record.version,
            status=record.status,
            given_by=record.given_by,
            scope_service_ids=list(record.scope.service_ids),
            scope_organisation_ids=list(record.scope.organisation_ids),
            occurred_at=record.occurred_at,
        )


_ESTIMATE_EXAMPLE: JsonDict = {
    "enough_data": True,
    "as_of": "2026-11-30",
    "window_weeks": 26,
    "children": 148,
    "to_support_median_days": 61,
    "to_support_p90_days": 118,
    "to_support_p90_low_days": 104,
    "to_support_p90_high_days": 131,
    "to_clock_stop_median_days": 55,
    "to_clock_stop_p90_days": 112,
    "summary": "Most children wait about 9 weeks; 9 in 10 start within 17 weeks.",
}


class WaitEstimateOut(BaseModel):
    """How long children wait at the service, as waitlists last predicted it (Kaplan-Meier over its recent
    referrals, those still waiting counted too)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ESTIMATE_EXAMPLE]})

    enough_data: bool = Field(description="False: too few referrals to say (every figure is null then).")
    as_of: date | None = Field(description="The day the estimate is for; null if none was made yet.")
    window_weeks: int | None = Field(description="Weeks of referrals it is built from.")
    children: int | None = Field(description="Referrals behind it; null when 1 to 4 (disclosure control).")
    to_support_median_days: int | None = Field(description="Median days from referral to support starting.")
    to_support_p90_days: int | None = Field(description="Days within which 9 in 10 children start support.")
    to_support_p90_low_days: int | None = Field(description="Lower end of the 95% band of that 90th percentile.")
    to_support_p90_high_days: int | None = Field(
        description="Upper end of the band; null when the data does not bound it."
    )
    to_clock_stop_median_days: int | None = Field(description="Median days to the first clock's stop.")
    to_clock_stop_p90_days: int | None = Field(description="90th percentile of days to the first clock's stop.")
    summary: str = Field(description="The same in plain English, as the family view says it.")

    @classmethod
    def of(cls, estimate: WaitEstimate | None) -> WaitEstimateOut:
        if estimate is None:
            return cls(
                enough_data=False, as_of=None, window_weeks=None, children=None, to_support_median_days=None,
                to_support_p90_days=None, to_support_p90_low_days=None, to_support_p90_high_days=None,
                to_clock_stop_median_days=None, to_clock_stop_p90_days=None, summary=wait_words(None),
            )  # fmt: skip
        return cls(
            enough_data=estimate.enough_data,
            as_of=estimate.as_of,
            window_weeks=estimate.window_weeks,
            children=estimate.children,
            to_support_median_days=estimate.to_support_median_days,
            to_support_p90_days=estimate.to_support_p90_days,
            to_support_p90_low_days=estimate.to_support_p90_low_days,
            to_support_p90_high_days=estimate.to_support_p90_high_days,
            to_clock_stop_median_days=estimate.to_clock_stop_median_days,
            to_clock_stop_p90_days=estimate.to_clock_stop_p90_days,
            summary=wait_words(estimate),
        )


class SignpostOut(BaseModel):
    """An interim offer (support while waiting) the referral was signposted to."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "offer_id": "io-family-voice-peer-support",
                    "name": "Parent peer support group",
                    "provider_org_id": "org-family-voice",
                    "description": "Meet other parents whose children are waiting for help.",
                    "contact_phone": "01632 960 400",
                    "contact_email": None,
                    "contact_url": "https://family-voice.example/groups",
                    "trigger": "long_wait",
                    "signposted_at": "2026-11-09T11:00:00Z",
                    "taken_up_at": None,
                    "taken_up_by": None,
                }
            ]
        }
    )

    offer_id: str = Field(description="The interim offer (directory id).")
    name: str | None = Field(description="The offer's name; null if it left the directory.")
    provider_org_id: str = Field(description="Who provides it (directory id).")
    description: str | None = Field(description="What it is, in plain English.")
    contact_phone: str | None = Field(description="How to reach it: phone.")
    contact_email: str | None = Field(description="How to reach it: email.")
    contact_url: str | None = Field(description="How to reach it: web page.")
    trigger: SignpostTrigger = Field(
        description="Why: long_wait (accepted with a long predicted wait) or clock_breach_imminent."
    )
    signposted_at: datetime = Field(description="When the referral was signposted to it.")
    taken_up_at: datetime | None = Field(description="When it was recorded as taken up; null if not.")
    taken_up_by: TakenUpBy | None = Field(description="Who recorded the take-up: referrer, receiver or family.")

    @classmethod
    def of(cls, signpost: Signpost, offer: InterimOffer | None) -> SignpostOut:
        return cls(
            offer_id=signpost.offer_id,
            name=offer.name if offer else None,
            provider_org_id=signpost.provider_org_id,
            description=offer.description if offer else None,
            contact_phone=offer.contact_phone if offer else None,
            contact_email=offer.contact_email if offer else None,
            contact_url=offer.contact_url if offer else None,
            trigger=signpost.trigger,
            signposted_at=signpost.signposted_at,
            taken_up_at=signpost.taken_up_at,
            taken_up_by=signpost.taken_up_by,
        )


_REFERRAL_EXAMPLE: JsonDict = {
    "id": "3f2b8a4e-1c7d-4e5f-9a0b-6c1d2e3f4a5b",
    "status": "accepted",
    "version": 3,
    "service_id": "svc-camhs-core",
    "referrer_org_id": "org-oakfield-primary",
    "receiving_org_id": "org-northshire-camhs",
    "urgency": "routine",
    "primary_need": "SEMH",
    "secondary_need": None,
    "referred_at": "2026-11-02T09:30:00Z",
    "status_at": "2026-11-09T11:00:00Z",
    "linked_from_id": None,
    "linked_to_id": None,
    "reason_code": None,
    "outcome_code": None,
    "signposted_service_id": None,
    "appointment_at": None,
    "expected_resume": None,
    "allowed_moves": ["completed", "handed_off", "in_progress", "on_hold", "scheduled", "withdrawn"],
    "child": {
        "given_name": "Sam",
        "family_name": "Taylor",
        "date_of_birth": "2015-04-12",
        "nhs_number": "9434765919",
        "upn": None,
    },
    "reason": "Persistent anxiety affecting attendance since spring term.",
    "consent": _CONSENT_EXAMPLE,
    "parallel_referrals": [],
    "wait_estimate": _ESTIMATE_EXAMPLE,
    "signposts": [],
}


class ReferralOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_REFERRAL_EXAMPLE]})

    id: str = Field(description="The referral's id (a UUID); use it in /v1/referrals/{referral_id}.")
    status: Status = Field(description="Where the referral is now.")
    version: int = Field(
        description="Goes up by one with every change; the ETag is this number in quotes. Send it as If-Match "
        "when you move the referral."
    )
    service_id: str = Field(description="The service the child is referred to (directory id).")
    referrer_org_id: str = Field(description="The organisation that made the referral (directory id).")
    receiving_org_id: str = Field(description="The organisation that runs the service (directory id).")
    urgency: Urgency = Field(description="How soon the child needs to be seen.")
    primary_need: NeedCode = Field(description="The child's main special educational need (DfE SEN code).")
    secondary_need: NeedCode | None = Field(description="A second DfE SEN need code, or null.")
    referred_at: datetime = Field(description="When the child was referred (ISO 8601, with a time zone).")
    status_at: datetime | None = Field(description="When the referral reached its current status; null if submitted.")
    linked_from_id: str | None = Field(
        description="The referral this one continues (a re-referral or hand-off from another service), or null."
    )
    linked_to_id: str | None = Field(
        description="The referral that continues this one at another service (re-referral or hand-off), or null."
    )
    reason_code: ReasonCodeOut | None = Field(
        None, description="The reason code of the last move: a rejection or hold reason, or a withdrawal's code."
    )
    outcome_code: OutcomeCodeOut | None = Field(None, description="The outcome code, once completed.")
    signposted_service_id: str | None = Field(
        None, description="After a rejection: the service the family was pointed to instead."
    )
    appointment_at: datetime | None = Field(None, description="When scheduled: the booked appointment.")
    expected_resume: date | None = Field(None, description="When on hold: the day the hold should end, YYYY-MM-DD.")
    allowed_moves: list[Status] = Field(
        description="The statuses the referral may move to next (by its referrer or its receiver, as each may)."
    )
    child: ChildOut | ErasedChildOut | None = Field(
        None,
        description="Who the child is: only on a single referral, and only for its referrer and receiver; once the "
        "child's data is erased, the tombstone (`erased_at`, `erased_by_org_id`) instead.",
    )
    reason: str | None = Field(
        None, description="Why the child was referred: only on a single referral, for its referrer and receiver."
    )
    consent: ConsentInForce | None = Field(
        None,
        description="The consent in force (history: GET /v1/referrals/{referral_id}/consent): only on a single "
        "referral, for its referrer and receiver.",
    )
    parallel_referrals: list[ParallelReferral] = Field(
        default_factory=list, description="The child's other open referrals, at other services."
    )
    wait_estimate: WaitEstimateOut | None = Field(
        None,
        description="How long children wait at the service (waitlists' prediction): on a single referral and on the "
        "submission's answer.",
    )
    signposts: list[SignpostOut] = Field(
        default_factory=list,
        description="Support while waiting the referral was signposted to (only on a single referral).",
    )

    @classmethod
    def of(
        cls,
        referral: Referral,
        person: PersonalDetails | Tombstone | None = None,
        parallel: list[Referral] | None = None,
        *,
        viewer: tuple[str, str] | None = None,
        consent: ConsentRecord | None = None,
        estimate: WaitEstimate | None = None,
        with_estimate: bool = False,
        signposts: Iterable[SignpostOut] = (),
    ) -> ReferralOut:
        """``viewer`` is the (organisation, role) reading: it sees the ids of the parallel referrals it may read."""
        d = referral.last_details
        erased: ErasedChildOut | None = None
        if isinstance(person, Tombstone):
            erased = ErasedChildOut(erased_at=person.erased_at, erased_by_org_id=person.erased_by_org_id)
            person = None
        return cls(
            id=referral.id,
            status=referral.status,
            version=referral.version,
            service_id=referral.service_id,
            referrer_org_id=referral.referrer_org_id,
            receiving_org_id=referral.receiving_org_id,
            urgency=referral.urgency,
            primary_need=referral.primary_need,
            secondary_need=referral.secondary_need,
            referred_at=referral.referred_at,
            status_at=referral.status_at,
            linked_from_id=referral.linked_from_id,
            linked_to_id=referral.linked_to_id,
            reason_code=d.reason_code,
            outcome_code=d.outcome_code,
            signposted_service_id=d.signposted_service_id,
            appointment_at=d.appointment_at,
            expected_resume=d.expected_resume,
            allowed_moves=sorted(referral.allowed_moves()),
            child=ChildOut(
                given_name=person.given_name,
                family_name=person.family_name,
                date_of_birth=person.date_of_birth,
                nhs_number=person.nhs_number,
                upn=person.upn,
            )
            if person
            else erased,
            reason=person.reason if person else None,
            consent=ConsentInForce.of(consent) if consent else None,
            parallel_referrals=[
                ParallelReferral(
                    referral_id=r.id if viewer is not None and r.readable_by(*viewer) else None,
                    service_id=r.service_id,
                    status=r.status,
                )
                for r in (parallel if parallel is not None else [])
            ],
            wait_estimate=WaitEstimateOut.of(estimate) if with_estimate or estimate is not None else None,
            signposts=list(signposts),
        )


class ReferralPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_REFERRAL_EXAMPLE], "next_cursor": "eyJhdCI6IjIwMjYtMTEtMDIifQ"}]}
    )

    items: list[ReferralOut] = Field(
        description="Up to `limit` referrals, newest first, without the child's details (read one referral for them)."
    )
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": 2,
                    "event_id": "5d1c0f3e-8b7a-4c2d-9e1f-0a1b2c3d4e5f",
                    "event_type": "uk.send.referral.rejected.v1",
                    "status": "rejected",
                    "previous_status": "acknowledged",
                    "reason_code": "outside_remit",
                    "outcome_code": None,
                    "explanation": "Needs are educational rather than clinical.",
                    "linked_referral_id": None,
                    "actor_org_id": "org-northshire-camhs",
                    "occurred_at": "2026-11-09T11:00:00Z",
                    "recorded_at": "2026-11-09T11:00:02Z",
                }
            ]
        }
    )

    version: int = Field(description="The referral's version after this change (1 is the submission).")
    event_id: str = Field(description="The id of the event that announced this change to other services.")
    event_type: str = Field(description="The type of that event, e.g. uk.send.referral.accepted.v1.")
    status: Status = Field(description="The status the change moved the referral to.")
    previous_status: Status | None = Field(description="The status before the change; null for the submission.")
    reason_code: ReasonCodeOut | None = Field(description="The reason code the change carried, if any.")
    outcome_code: OutcomeCodeOut | None = Field(description="The outcome code the change carried, if any.")
    explanation: str | None = Field(description="The explanation the change carried (rejections), if any.")
    linked_referral_id: str | None = Field(
        description="The referral at another service this change created or came from (re-referral, hand-off)."
    )
    actor_org_id: str | None = Field(description="The organisation that recorded the change.")
    occurred_at: datetime = Field(description="When the change happened (business time, ISO 8601 with a time zone).")
    recorded_at: datetime = Field(description="When this service recorded it (ISO 8601 with a time zone).")

    @classmethod
    def of(cls, record: HistoryRecord) -> HistoryEntry:
        return cls.model_validate(record, from_attributes=True)
