"""The last version of each referral sent on, and the events held until the versions before them are in."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import consents, held_events, referral_versions
from notifications.adapters.repositories.consents import consent_in_force
from notifications.adapters.repositories.read_ahead import LAST_SENT_AND_CONSENT, UNWRITTEN_VERSIONS, kept
from notifications.domain.consent import ConsentState
from notifications.domain.ordering import HeldEvent
from send_shared import direct
from send_shared.db import ByDialect, as_utc, dialect_name, json_rows, json_rows_insert


def _set_last_sent(insert: Any) -> Any:
    return _never_back(insert(referral_versions))


def _never_back(stmt: Any) -> Any:
    """The last version sent only moves on: a transaction that set an older one (the consumer's, written at its
    end, beside the held-events worker's) leaves a newer one as it is."""
    return stmt.on_conflict_do_update(
        index_elements=[referral_versions.c.referral_id],
        set_={"version": stmt.excluded.version},
        where=referral_versions.c.version < stmt.excluded.version,
    )


# Built once (every referral event reads and sets its referral's last version): a statement built per call costs
# its construction and its cache key every time.
_LAST_SENT = select(referral_versions.c.version).where(referral_versions.c.referral_id == bindparam("referral_id"))
_ASKED = select(bindparam("referral_id", type_=referral_versions.c.referral_id.type).label("referral_id")).subquery()
_LAST_SENT_AND_CONSENT = select(
    referral_versions.c.version, consents.c.consent_version, consents.c.consent_status
).select_from(
    _ASKED.outerjoin(referral_versions, referral_versions.c.referral_id == _ASKED.c.referral_id).outerjoin(
        consents, consents.c.referral_id == _ASKED.c.referral_id
    )
)
_ASKED_MANY = (
    func.unnest(bindparam("referral_ids", type_=ARRAY(referral_versions.c.referral_id.type)))
    .table_valued("referral_id")
    .render_derived("asked")
)
_LAST_SENT_AND_CONSENT_MANY = select(
    _ASKED_MANY.c.referral_id, referral_versions.c.version, consents.c.consent_version, consents.c.consent_status
).select_from(
    _ASKED_MANY.outerjoin(referral_versions, referral_versions.c.referral_id == _ASKED_MANY.c.referral_id).outerjoin(
        consents, consents.c.referral_id == _ASKED_MANY.c.referral_id
    )
)
_SET_LAST_SENT = ByDialect(_set_last_sent)
_WRITE_VERSIONS = _never_back(json_rows_insert(referral_versions, "versions"))
_HOLD = ByDialect(lambda insert: insert(held_events).on_conflict_do_nothing())
_HELD_FOR = (
    select(held_events.c.event_id, held_events.c.version, held_events.c.event)
    .where(held_events.c.referral_id == bindparam("referral_id"))
    .order_by(held_events.c.version)
)
_RELEASE = delete(held_events).where(held_events.c.event_id.in_(bindparam("event_ids", expanding=True)))


class SqlReferralOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def last_sent(self, referral_id: str) -> int | None:
        if (unwritten := self.session.info.get(UNWRITTEN_VERSIONS, {}).get(referral_id)) is not None:
            return int(unwritten)
        found = (await direct.execute(self.session, _LAST_SENT, {"referral_id": referral_id})).scalar()
        return int(found) if found is not None else None

    async def last_sent_and_consent(self, referral_id: str) -> tuple[int | None, ConsentState | None]:
        ahead: tuple[int | None, ConsentState | None] | None = kept(self.session, LAST_SENT_AND_CONSENT).get(
            referral_id
        )
        if ahead is not None:
            return ahead
        version, consent_version, status = (
            await direct.execute(self.session, _LAST_SENT_AND_CONSENT, {"referral_id": referral_id})
        ).first()
        return self._as_set(referral_id, version), consent_in_force(referral_id, consent_version, status)

    async def read_ahead(self, referral_ids: Collection[str]) -> None:
        """``last_sent_and_consent`` of these referrals in one statement, for the rest of this transaction (kept
        as ``set_last_sent`` sets it, read again after a consent is recorded; PostgreSQL, elsewhere each is read
        when asked)."""
        if not referral_ids or dialect_name(self.session) != "postgresql":
            return
        found = await direct.execute(self.session, _LAST_SENT_AND_CONSENT_MANY, {"referral_ids": sorted(referral_ids)})
        kept(self.session, LAST_SENT_AND_CONSENT).update({
            referral_id: (self._as_set(referral_id, version), consent_in_force(referral_id, consent_version, status))
            for referral_id, version, consent_version, status in found
        })  # fmt: skip

    def _as_set(self, referral_id: str, stored: int | None) -> int | None:
        """The last version sent as this transaction set it, or else as ``stored``."""
        version = self.session.info.get(UNWRITTEN_VERSIONS, {}).get(referral_id, stored)
        return int(version) if version is not None else None

    async def set_last_sent(self, referral_id: str, version: int) -> None:
        """Kept, and written with the transaction's others by ``write_kept`` at its end."""
        kept(self.session, UNWRITTEN_VERSIONS)[referral_id] = version
        ahead = kept(self.session, LAST_SENT_AND_CONSENT)
        if referral_id in ahead:
            ahead[referral_id] = (version, ahead[referral_id][1])

    async def write_kept(self) -> None:
        """Writes the last versions sent that this transaction set, in one statement."""
        unwritten: dict[str, int] = self.session.info.pop(UNWRITTEN_VERSIONS, {})
        if not unwritten:
            return
        rows = [{"referral_id": referral_id, "version": version} for referral_id, version in unwritten.items()]
        if dialect_name(self.session) == "postgresql":
            await direct.execute(self.session, _WRITE_VERSIONS, {"versions": json_rows(rows)})
        else:
            await direct.execute(self.session, _SET_LAST_SENT(self.session), rows)

    async def hold(self, event_id: str, referral_id: str, version: int, event: dict[str, Any], now: datetime) -> bool:
        row = {"event_id": event_id, "referral_id": referral_id, "version": version, "event": event, "held_at": now}
        result = await self.session.execute(_HOLD(self.session), row)
        return bool(getattr(result, "rowcount", 0))

    async def held_for(self, referral_id: str) -> list[HeldEvent]:
        rows = await self.session.execute(_HELD_FOR, {"referral_id": referral_id})
        return [HeldEvent(event_id, version, event) for event_id, version, event in rows]

    async def release(self, event_ids: Sequence[str]) -> None:
        await self.session.execute(_RELEASE, {"event_ids": list(event_ids)})

    async def referrals_held_since(self, cutoff: datetime) -> list[str]:
        found = await self.session.execute(
            select(held_events.c.referral_id).where(held_events.c.held_at <= cutoff).distinct()
        )
        return list(found.scalars())

    async def referrals_ready(self) -> list[str]:
        found = await self.session.execute(
            select(held_events.c.referral_id)
            .join(referral_versions, referral_versions.c.referral_id == held_events.c.referral_id)
            .where(held_events.c.version <= referral_versions.c.version + 1)
            .distinct()
        )
        return list(found.scalars())

    async def held_summary(self) -> tuple[int, datetime | None]:
        count, oldest = (await self.session.execute(select(func.count(), func.min(held_events.c.held_at)))).one()
        return int(count), as_utc(oldest) if oldest is not None else None
