"""Each organisation's email preferences in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import email_preferences
from notifications.adapters.repositories.read_ahead import PREFERENCES, kept
from notifications.domain.email_preferences import EmailPreferences, NewReferralEmails
from send_shared import direct
from send_shared.db import InList, upsert_insert

# Built once (every event with emails reads its organisations' preferences): a statement built per call costs its
# construction and its cache key every time.
_OF = select(email_preferences).where(InList(email_preferences.c.organisation_id, "organisation_ids"))


class SqlPreferenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, organisation_ids: Sequence[str]) -> dict[str, EmailPreferences]:
        ahead = kept(self.session, PREFERENCES)
        if all(organisation_id in ahead for organisation_id in organisation_ids):
            return {org: ahead[org] for org in organisation_ids if ahead[org] is not None}
        return await self._read(organisation_ids)

    async def read_ahead(self, organisation_ids: Collection[str]) -> None:
        """``of`` these organisations in one statement, for the rest of this transaction."""
        if organisation_ids:
            found = await self._read(sorted(organisation_ids))
            kept(self.session, PREFERENCES).update({org: found.get(org) for org in organisation_ids})

    async def _read(self, organisation_ids: Sequence[str]) -> dict[str, EmailPreferences]:
        rows = await direct.execute(self.session, _OF, {"organisation_ids": list(organisation_ids)})
        return {
            row.organisation_id: EmailPreferences(NewReferralEmails(row.new_referrals), bool(row.breach_alerts))
            for row in rows
        }

    async def set(self, organisation_id: str, preferences: EmailPreferences, now: datetime) -> None:
        stmt = upsert_insert(self.session)(email_preferences).values(
            organisation_id=organisation_id,
            new_referrals=preferences.new_referrals.value,
            breach_alerts=preferences.breach_alerts,
            updated_at=now,
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[email_preferences.c.organisation_id],
                set_={
                    "new_referrals": stmt.excluded.new_referrals,
                    "breach_alerts": stmt.excluded.breach_alerts,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )
