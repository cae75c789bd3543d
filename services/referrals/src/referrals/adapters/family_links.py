"""Family view links, the emails that carry them, and the family's contact details, in their tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from referrals.adapters.orm import family_link_emails, family_links, referral_people, referrals
from referrals.adapters.referral_repository import _from_row as referral_from_row
from referrals.domain.family import ContactPreference, FamilyContact, FamilyLink, LinkEmail
from referrals.domain.model import Referral
from send_shared.db import Db, as_utc


class SqlFamilyLinkRepository:
    def __init__(self, session: Db) -> None:
        self.session = session

    async def add(self, link: FamilyLink, *, email_to: str, token: str) -> None:
        await self.session.execute(
            insert(family_links).values(
                id=link.id,
                token_hash=link.token_hash,
                child_ref=link.child_ref,
                referral_id=link.referral_id,
                issued_by_org_id=link.issued_by_org_id,
                created_at=link.created_at,
                expires_at=link.expires_at,
            )
        )
        await self.session.execute(
            insert(family_link_emails).values(
                link_id=link.id,
                to_address=email_to,
                token=token,
                queued_at=link.created_at,
                attempts=0,
                next_attempt_at=link.created_at,
            )
        )

    async def get(self, link_id: str) -> FamilyLink | None:
        return await self._one(family_links.c.id == link_id)

    async def by_token_hash(self, token_hash: str) -> FamilyLink | None:
        return await self._one(family_links.c.token_hash == token_hash)

    async def _one(self, where: Any) -> FamilyLink | None:
        row = (await self.session.execute(select(family_links).where(where))).mappings().first()
        return _link(row) if row else None

    async def of_referral(self, referral_id: str) -> list[FamilyLink]:
        c = family_links.c
        query = select(family_links).where(c.referral_id == referral_id).order_by(c.created_at.desc(), c.id)
        return [_link(row) for row in (await self.session.execute(query)).mappings()]

    async def revoke(self, link_id: str, at: datetime, by: str) -> None:
        c = family_links.c
        await self.session.execute(
            update(family_links).where(c.id == link_id, c.revoked_at.is_(None)).values(revoked_at=at, revoked_by=by)
        )
        # An email not yet sent must not carry a revoked link.
        e = family_link_emails.c
        await self.session.execute(
            update(family_link_emails)
            .where(e.link_id == link_id, e.sent_at.is_(None))
            .values(token=None, next_attempt_at=None, last_error="link revoked before it was sent")
        )

    async def used(self, link_id: str, at: datetime) -> None:
        await self.session.execute(update(family_links).where(family_links.c.id == link_id).values(last_used_at=at))

    async def child_referrals(self, child_ref: str) -> list[Referral]:
        c = referrals.c
        query = select(referrals).where(c.child_ref == child_ref).order_by(c.referred_at, c.id)
        return [referral_from_row(row) for row in (await self.session.execute(query)).mappings()]

    async def contact(self, referral_id: str) -> FamilyContact | None:
        p = referral_people.c
        query = select(p.contact_email, p.contact_phone, p.contact_preference, p.erased_at).where(
            p.referral_id == referral_id
        )
        row = (await self.session.execute(query)).mappings().first()
        if row is None or row["erased_at"] is not None:
            return None
        preference = row["contact_preference"]
        return FamilyContact(
            row["contact_email"], row["contact_phone"], ContactPreference(preference) if preference else None
        )

    async def set_contact(self, referral_ids: list[str], contact: FamilyContact) -> None:
        p = referral_people.c
        await self.session.execute(
            update(referral_people)
            .where(p.referral_id.in_(referral_ids), p.erased_at.is_(None))
            .values(
                contact_email=contact.email,
                contact_phone=contact.phone,
                contact_preference=contact.preference.value if contact.preference else None,
            )
        )

    async def due_emails(self, now: datetime, *, limit: int) -> list[LinkEmail]:
        e = family_link_emails.c
        query = (
            select(family_link_emails)
            .where(e.sent_at.is_(None), e.token.is_not(None), e.next_attempt_at <= now)
            .order_by(e.next_attempt_at, e.id)
            .limit(limit)
        )
        return [
            LinkEmail(r["id"], r["link_id"], r["to_address"], r["token"], r["attempts"], as_utc(r["queued_at"]))
            for r in (await self.session.execute(query)).mappings()
        ]

    async def email_sent(self, email_id: int, at: datetime) -> None:
        await self.session.execute(
            update(family_link_emails)
            .where(family_link_emails.c.id == email_id)
            .values(sent_at=at, token=None, next_attempt_at=None, attempts=family_link_emails.c.attempts + 1)
        )

    async def email_failed(self, email_id: int, attempts: int, error: str, retry_at: datetime | None) -> None:
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:500], "next_attempt_at": retry_at}
        if retry_at is None:
            values["token"] = None
        await self.session.execute(
            update(family_link_emails).where(family_link_emails.c.id == email_id).values(**values)
        )


def _link(row: Any) -> FamilyLink:
    def at(value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    return FamilyLink(
        id=row["id"],
        token_hash=row["token_hash"],
        child_ref=row["child_ref"],
        referral_id=row["referral_id"],
        issued_by_org_id=row["issued_by_org_id"],
        created_at=as_utc(row["created_at"]),
        expires_at=as_utc(row["expires_at"]),
        revoked_at=at(row["revoked_at"]),
        revoked_by=row["revoked_by"],
        last_used_at=at(row["last_used_at"]),
    )
