"""New referrals waiting for their organisation's daily digest, in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import digest_entries
from notifications.domain.digest import DigestEntry
from notifications.domain.email_policy import EmailIntent
from send_shared import direct
from send_shared.db import ByDialect

# Built once (every new referral an organisation wants in its digest): a statement built per call costs its
# construction and its cache key every time.
_ADD = ByDialect(lambda insert: insert(digest_entries).on_conflict_do_nothing())


class SqlDigestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event_id: str, intent: EmailIntent, now: datetime) -> None:
        row = {
            "event_id": event_id,
            "organisation_id": intent.organisation_id,
            "context": dict(intent.context),
            "recorded_at": now,
            "digest_date": None,
        }
        await direct.execute(self.session, _ADD(self.session), row)

    async def waiting(self, before: datetime) -> list[DigestEntry]:
        rows = await self.session.execute(
            select(digest_entries.c.id, digest_entries.c.organisation_id, digest_entries.c.context)
            .where(digest_entries.c.digest_date.is_(None), digest_entries.c.recorded_at < before)
            .order_by(digest_entries.c.id)
        )
        return [DigestEntry(row.id, row.organisation_id, dict(row.context)) for row in rows]

    async def mark_digested(self, entry_ids: Sequence[int], day: date) -> None:
        await self.session.execute(
            update(digest_entries)
            .where(digest_entries.c.id.in_(entry_ids), digest_entries.c.digest_date.is_(None))
            .values(digest_date=day)
        )
