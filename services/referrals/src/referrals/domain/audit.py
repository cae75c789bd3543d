"""The audit log: who read a child's personal details, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuditAction(StrEnum):
    READ_REFERRAL = "read_referral"
    READ_CONSENT = "read_consent"
    ERASED = "erased"  # the child's personal data in a referral replaced by a tombstone
    SUBJECT_ACCESS = "subject_access"  # everything held about a child exported for a subject access request
    FAMILY_VIEW = "family_view"  # a family opened its private link (subject family-link:<id>)
    FAMILY_CONTACT = "family_contact"  # a family changed its contact details through its link


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    subject: str
    organisation_id: str
    role: str
    action: AuditAction
    referral_id: str | None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Entries newest first, at most ``limit``, narrowed by whichever of the other fields are set."""

    limit: int
    referral_id: str | None = None
    organisation_id: str | None = None
    since: datetime | None = None
