"""The family's consent in force per referral: the newest consent version wins, whatever order they come in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import consents
from notifications.adapters.repositories.read_ahead import forget_referral
from notifications.domain.consent import ConsentState
from send_shared import direct
from send_shared.db import ByDialect
from send_shared.events.schemas import ConsentStatus

_UPDATED = ("consent_version", "consent_status", "updated_at")


def _record(insert: Any) -> Any:
    stmt = insert(consents)
    return stmt.on_conflict_do_update(
        index_elements=[consents.c.referral_id],
        set_={name: stmt.excluded[name] for name in _UPDATED},
        where=consents.c.consent_version < stmt.excluded.consent_version,
    )


# Built once (every event going on reads the consent in force): a statement built per call costs its construction
# and its cache key every time.
_OF = select(consents.c.consent_version, consents.c.consent_status).where(
    consents.c.referral_id == bindparam("referral_id")
)
_RECORD = ByDialect(_record)


def consent_in_force(referral_id: str, version: int | None, status: str | None) -> ConsentState | None:
    """The consent a row holds (its version and status), None where there is none (an outer join's nulls)."""
    if version is None or status is None:
        return None
    return ConsentState(referral_id, int(version), ConsentStatus(status))


class SqlConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, referral_id: str) -> ConsentState | None:
        found = (await direct.execute(self.session, _OF, {"referral_id": referral_id})).first()
        return consent_in_force(referral_id, *found) if found is not None else None

    async def record(self, state: ConsentState, now: datetime) -> bool:
        forget_referral(self.session, state.referral_id)
        row = {
            "referral_id": state.referral_id,
            "consent_version": state.version,
            "consent_status": state.status.value,
            "updated_at": now,
        }
        return bool((await direct.execute(self.session, _RECORD(self.session), row)).rowcount)
