"""Request and response bodies of the referrals API (v1)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from referrals.domain.child import Consent, PersonalDetails, is_valid_nhs_number, is_valid_upn
from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.history import HistoryRecord
from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral
from send_shared.events.schemas import DIRECTORY_ID_PATTERN

Name = Field(
    min_length=1,
    max_length=100,
    pattern=r"^[^\W\d_]+(?:[ '\u2019.\-][^\W\d_]+)*$",
    description="Letters, with single spaces, hyphens, apostrophes or full stops between them.",
)


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
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
"""A coded value (reason, outcome): lower-case ASCII letters, digits and underscores."""


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_by: Literal["parent", "carer", "young_person", "local_authority"]
    given_at: PastInstant
    scope: Text = Field(min_length=1, max_length=500, description="What the consent covers.")


class ChildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_name: str = Name
    family_name: str = Name
    date_of_birth: BirthDate
    nhs_number: str | None = Field(
        None, max_length=20, description="10 ASCII digits (spaces allowed) with a modulus 11 check digit."
    )
    upn: str | None = Field(
        None, max_length=20, description="Unique pupil number (ASCII), when the NHS number is not known."
    )

    @field_validator("nhs_number")
    @classmethod
    def _nhs(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_nhs_number(value):
            raise ValueError("not a valid NHS number (10 digits with a modulus 11 check digit)")
        return value.replace(" ", "") if value else value

    @field_validator("upn")
    @classmethod
    def _upn(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_upn(value):
            raise ValueError("not a valid unique pupil number")
        return value.strip().upper() if value else value

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

    service_id: Identifier = Field(description="Receiving service, from the directory.")
    child: ChildIn
    primary_need: NeedCode
    secondary_need: NeedCode | None = None
    reason: Text = Field(min_length=1, max_length=4000, description="Why the child is referred (kept here only).")
    urgency: Urgency = Urgency.ROUTINE
    consent: ConsentIn
    referred_at: PastInstant | None = Field(None, description="Business time of the referral; defaults to now.")

    def person(self) -> PersonalDetails:
        return PersonalDetails(
            given_name=self.child.given_name,
            family_name=self.child.family_name,
            date_of_birth=self.child.date_of_birth,
            nhs_number=self.child.nhs_number,
            upn=self.child.upn,
            reason=self.reason,
            consent=Consent(self.consent.given_by, self.consent.given_at, self.consent.scope),
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

    status: Status
    occurred_at: PastInstant | None = Field(None, description="Business time of the move; defaults to now.")
    reason_code: Code | None = Field(None, description="Rejection, hold or withdrawal reason code.")
    explanation: Text | None = Field(None, max_length=4000, description="Why (rejections); never leaves this service.")
    signposted_service_id: Identifier | None = None
    rereferral_service_id: Identifier | None = Field(None, description="Rejection with a re-referral there.")
    target_service_id: Identifier | None = Field(None, description="Hand-off: the receiving service.")
    appointment_at: PlannedInstant | None = None
    expected_resume: PlannedDate | None = None
    outcome_code: Code | None = None


class ChildOut(BaseModel):
    given_name: str
    family_name: str
    date_of_birth: date
    nhs_number: str | None
    upn: str | None


class ParallelReferral(BaseModel):
    referral_id: str | None = Field(
        description="Null when the caller is neither that referral's referrer nor receiver."
    )
    service_id: str
    status: Status


class ReferralOut(BaseModel):
    id: str
    status: Status
    version: int
    service_id: str
    referrer_org_id: str
    receiving_org_id: str
    urgency: str
    primary_need: str
    secondary_need: str | None
    referred_at: datetime
    status_at: datetime | None
    linked_from_id: str | None
    linked_to_id: str | None
    reason_code: str | None = None
    outcome_code: str | None = None
    signposted_service_id: str | None = None
    appointment_at: datetime | None = None
    expected_resume: date | None = None
    allowed_moves: list[Status]
    child: ChildOut | None = Field(None, description="Only on a single referral, for its referrer and receiver.")
    reason: str | None = None
    parallel_referrals: list[ParallelReferral] = Field(
        default_factory=list, description="The child's other open referrals, at other services."
    )

    @classmethod
    def of(
        cls,
        referral: Referral,
        person: PersonalDetails | None = None,
        parallel: list[Referral] | None = None,
        *,
        viewer: tuple[str, str] | None = None,
    ) -> ReferralOut:
        """``viewer`` is the (organisation, role) reading: it sees the ids of the parallel referrals it may read."""
        d = referral.last_details
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
            else None,
            reason=person.reason if person else None,
            parallel_referrals=[
                ParallelReferral(
                    referral_id=r.id if viewer is not None and r.readable_by(*viewer) else None,
                    service_id=r.service_id,
                    status=r.status,
                )
                for r in (parallel if parallel is not None else [])
            ],
        )


class ReferralPage(BaseModel):
    items: list[ReferralOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class HistoryEntry(BaseModel):
    version: int
    event_id: str
    event_type: str
    status: Status
    previous_status: Status | None
    reason_code: str | None
    outcome_code: str | None
    explanation: str | None
    linked_referral_id: str | None
    actor_org_id: str | None
    occurred_at: datetime
    recorded_at: datetime

    @classmethod
    def of(cls, record: HistoryRecord) -> HistoryEntry:
        return cls.model_validate(record, from_attributes=True)
