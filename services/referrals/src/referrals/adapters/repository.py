"""Referral repository over SQLAlchemy Core, with optimistic concurrency on the version column."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from referrals.adapters.orm import referrals
from referrals.domain.lifecycle import Status
from referrals.domain.model import Referral


class ConcurrentUpdate(Exception):
    """Someone else changed the referral since it was read."""


class ReferralRepository(Protocol):
    seen: set[Referral]

    async def add(self, referral: Referral) -> None: ...
    async def get(self, referral_id: str) -> Referral | None: ...
    async def save(self, referral: Referral, *, expected_version: int) -> None: ...


class SqlReferralRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.seen: set[Referral] = set()

    async def add(self, referral: Referral) -> None:
        await self.session.execute(insert(referrals).values(**_row(referral)))
        self.seen.add(referral)

    async def get(self, referral_id: str) -> Referral | None:
        row = (await self.session.execute(select(referrals).where(referrals.c.id == referral_id))).mappings().first()
        if row is None:
            return None
        referral = _from_row(row)
        self.seen.add(referral)
        return referral

    async def save(self, referral: Referral, *, expected_version: int) -> None:
        values = _row(referral)
        values.pop("id")
        result = await self.session.execute(
            update(referrals)
            .where(referrals.c.id == referral.id, referrals.c.version == expected_version)
            .values(**values)
        )
        if cast("CursorResult[Any]", result).rowcount != 1:
            raise ConcurrentUpdate(referral.id)


def _row(r: Referral) -> dict[str, Any]:
    return {
        "id": r.id,
        "child_ref": r.child_ref,
        "referrer_org_id": r.referrer_org_id,
        "service_id": r.service_id,
        "receiving_org_id": r.receiving_org_id,
        "urgency": r.urgency,
        "status": r.status.value,
        "held_from": r.held_from.value if r.held_from else None,
        "version": r.version,
        "referred_at": r.referred_at,
        "updated_at": datetime.now(UTC),
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _from_row(row: Any) -> Referral:
    return Referral(
        id=row["id"],
        child_ref=row["child_ref"],
        referrer_org_id=row["referrer_org_id"],
        service_id=row["service_id"],
        receiving_org_id=row["receiving_org_id"],
        urgency=row["urgency"],
        referred_at=_aware(row["referred_at"]),
        status=Status(row["status"]),
        held_from=Status(row["held_from"]) if row["held_from"] else None,
        version=row["version"],
    )
