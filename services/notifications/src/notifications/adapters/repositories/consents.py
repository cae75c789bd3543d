"""The family's consent in force per referral: the newest consent version wins, whatever order they come in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import consents
from notifications.domain.consent import ConsentState
from send_shared.db import upsert_insert
from send_shared.events.schemas import ConsentStatus


class SqlConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, referral_id: str) -> ConsentState | None:
        found = (
            await self.session.execute(
                select(consents.c.consent_version, consents.c.consent_status).where(
                    consents.c.referral_id == referral_id
                )
            )
        ).first()
        return ConsentState(referral_id, int(found[0]), ConsentStatus(found[1])) if found is not None else None

    async def record(self, state: ConsentState, now: datetime) -> bool:
        values = {"consent_version": state.version, "consent_status": state.status.value, "updated_at": now}
        stmt = upsert_insert(self.session)(consents).values(referral_id=state.referral_id, **values)
        result = await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[consents.c.referral_id],
                set_=values,
                where=consents.c.consent_version < stmt.excluded.consent_version,
            )
        )
        return bool(getattr(result, "rowcount", 0))
