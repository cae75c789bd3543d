"""A child's rights over the data held about them (UK GDPR): erasure (Article 17) and subject access (Article 15).

Erasure replaces the child's personal data in one referral by a tombstone (who erased it, and when). It keeps the
pseudonymous record: the referral's codes, its history, its consent codes, its child reference and the events
published, so every figure computed from them stays the same. It is refused while the referral is open (the
service still works with the child) and for a record the law requires to be kept (an EHC plan issued: the local
authority keeps the EHC plan record)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from referrals.domain.audit import AuditEntry
from referrals.domain.codes import Outcome
from referrals.domain.consent import ConsentRecord
from referrals.domain.errors import DomainError
from referrals.domain.family import FamilyLink
from referrals.domain.history import HistoryRecord
from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral


class ErasureRefused(DomainError):
    """Erasure is not allowed for this referral; ``rule`` says why (``referral_open``, ``statutory_record``)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


REFERRAL_OPEN = "referral_open"
STATUTORY_RECORD = "statutory_record"


def check_erasable(referral: Referral) -> None:
    """Erasure waits until the referral is closed, and never removes an EHC plan's record."""
    if referral.is_open:
        raise ErasureRefused(
            REFERRAL_OPEN,
            f"the referral is {referral.status.value}: close it (complete, withdraw or hand it off) before erasing",
        )
    if is_statutory_record(referral):
        raise ErasureRefused(
            STATUTORY_RECORD,
            "an EHC plan was issued on this referral: the local authority must keep the EHC plan record",
        )


def is_statutory_record(referral: Referral) -> bool:
    """An EHC needs assessment completed with a plan issued."""
    return (
        referral.is_ehc
        and referral.status is Status.COMPLETED
        and referral.last_details.outcome_code == Outcome.PLAN_ISSUED.value
    )


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What is left of an erased child's personal data in a referral: when, and which organisation erased it."""

    erased_at: datetime
    erased_by_org_id: str


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """Everything held about the child in one referral's personal data row, as stored (null once erased)."""

    given_name: str | None
    family_name: str | None
    date_of_birth: date | None
    nhs_number: str | None
    upn: str | None
    reason: str | None
    contact_email: str | None
    contact_phone: str | None
    contact_preference: str | None
    erased_at: datetime | None
    erased_by_org_id: str | None

    @property
    def tombstone(self) -> Tombstone | None:
        if self.erased_at is None:
            return None
        return Tombstone(self.erased_at, self.erased_by_org_id or "")


@dataclass(frozen=True)
class SubjectRecord:
    """Everything held about the child in one referral, for a subject access request."""

    referral: Referral
    person: PersonRecord | None
    history: list[HistoryRecord]
    consents: list[ConsentRecord]  # with the family's notes: theirs to see
    family_links: list[FamilyLink]  # issued on this referral (their token hashes are never shown)
    audit_log: list[AuditEntry]
