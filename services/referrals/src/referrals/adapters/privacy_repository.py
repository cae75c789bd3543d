"""Erasure and subject access over SQLAlchemy Core: the personal data row, its tombstone, and the export's reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update

from referrals.adapters.audit_log import _entry_from_row as entry_from_row
from referrals.adapters.orm import (
    audit_log,
    family_link_emails,
    family_links,
    referral_consents,
    referral_history,
    referral_people,
    referrals,
)
from referrals.adapters.referral_repository import _from_row as referral_from_row
from referrals.domain.audit import AuditEntry
from referrals.domain.model import Referral
from referrals.domain.privacy import PersonRecord
from send_shared.db import Db, as_utc

# Every column of referral_people that holds the child's or the family's personal data: erasure blanks them all.
ERASED_COLUMNS = (
    "given_name",
    "family_name",
    "date_of_birth",
    "nhs_number",
    "upn",
    "reason",
    "contact_email",
    "contact_phone",
    "contact_preference",
)


class SqlPrivacyRepository:
    def __init__(self, session: Db) -> None:
        self.session = session

    async def person_record(self, referral_id: str) -> PersonRecord | None:
        query = select(referral_people).where(referral_people.c.referral_id == referral_id)
        row = (await self.session.execute(query)).mappings().first()
        return None if row is None else _person_from_row(row)

    async def erase(self, referral_id: str, *, at: datetime, by_org_id: str) -> None:
        await self.session.execute(
            update(referral_people)
            .where(referral_people.c.referral_id == referral_id)
            .values(**dict.fromkeys(ERASED_COLUMNS), erased_at=at, erased_by_org_id=by_org_id)
        )
        await self.session.execute(
            update(referral_consents).where(referral_consents.c.referral_id == referral_id).values(note=None)
        )
        # Professionals' free text (a rejection's explanation) may name the child; no figure depends on it.
        await self.session.execute(
            update(referral_history).where(referral_history.c.referral_id == referral_id).values(explanation=None)
        )
        # The links stay (they are per child, and the family may still follow the child's other referrals); the
        # emails that carried them are the family's address, and go.
        issued_here = select(family_links.c.id).where(family_links.c.referral_id == referral_id)
        await self.session.execute(delete(family_link_emails).where(family_link_emails.c.link_id.in_(issued_here)))

    async def referrals_of_child(
        self, child_refs: Sequence[str], *, nhs_number: str | None, upn: str | None
    ) -> list[Referral]:
        people = referral_people.c
        matches = [referrals.c.child_ref.in_(list(child_refs))]
        if nhs_number:
            matches.append(referrals.c.id.in_(select(people.referral_id).where(people.nhs_number == nhs_number)))
        if upn:
            matches.append(referrals.c.id.in_(select(people.referral_id).where(people.upn == upn)))
        query = select(referrals).where(or_(*matches)).order_by(referrals.c.referred_at, referrals.c.id)
        return [referral_from_row(row) for row in (await self.session.execute(query)).mappings()]

    async def audit_entries(self, referral_ids: Sequence[str]) -> list[AuditEntry]:
        if not referral_ids:
            return []
        c = audit_log.c
        query = select(audit_log).where(c.referral_id.in_(list(referral_ids))).order_by(c.at, c.id)
        return [entry_from_row(row) for row in (await self.session.execute(query)).mappings()]


def _person_from_row(row: Any) -> PersonRecord:
    return PersonRecord(
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        nhs_number=row["nhs_number"],
        upn=row["upn"],
        reason=row["reason"],
        contact_email=row["contact_email"],
        contact_phone=row["contact_phone"],
        contact_preference=row["contact_preference"],
        erased_at=as_utc(row["erased_at"]) if row["erased_at"] else None,
        erased_by_org_id=row["erased_by_org_id"],
    )
