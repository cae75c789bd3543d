"""Support while waiting in its tables: interim offers, each service's wait estimate as waitlists last told it,
and the signposts of each referral."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import insert, select, update
from sqlalchemy.engine import CursorResult

from referrals.adapters.orm import interim_offers, referral_signposts, service_wait_estimates
from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.interim import InterimOffer, Signpost, SignpostTrigger, TakenUpBy, WaitEstimate
from send_shared import direct
from send_shared.db import Db, InList, upsert_insert

_ESTIMATE_FIGURES = (
    "window_weeks",
    "children",
    "enough_data",
    "to_support_median_days",
    "to_support_p90_days",
    "to_support_p90_low_days",
    "to_support_p90_high_days",
    "to_clock_stop_median_days",
    "to_clock_stop_p90_days",
)
ESTIMATE_COLUMNS = ("service_id", "as_of", *_ESTIMATE_FIGURES)


def estimate_from_row(row: Mapping[str, Any], prefix: str = "") -> WaitEstimate:
    """The estimate in ``row``, its columns (``ESTIMATE_COLUMNS``) named with ``prefix``."""
    return WaitEstimate(**{name: row[prefix + name] for name in ESTIMATE_COLUMNS})


# Built once (every submission reads its service's estimate): see referral_repository.
_ESTIMATES = select(service_wait_estimates)
_ESTIMATES_OF = _ESTIMATES.where(InList(service_wait_estimates.c.service_id, "ids"))


class SqlInterimRepository:
    def __init__(self, session: Db) -> None:
        self._session = session

    # Interim offers
    async def offer(self, offer_id: str) -> InterimOffer | None:
        row = (
            (await self._session.execute(select(interim_offers).where(interim_offers.c.id == offer_id)))
            .mappings()
            .first()
        )
        return _offer(row) if row else None

    async def all_offers(self) -> list[InterimOffer]:
        rows = (await self._session.execute(select(interim_offers).order_by(interim_offers.c.id))).mappings()
        return [_offer(r) for r in rows]

    async def save_offer(self, offer: InterimOffer) -> InterimOffer:
        current = await self.offer(offer.id)
        version = 1 if current is None else current.version + 1
        values = {
            "service_id": offer.service_id,
            "provider_org_id": offer.provider_org_id,
            "name": offer.name,
            "description": offer.description,
            "needs": [n.value for n in offer.needs],
            "urgencies": [u.value for u in offer.urgencies],
            "min_age": offer.min_age,
            "max_age": offer.max_age,
            "contact_phone": offer.contact_phone,
            "contact_email": offer.contact_email,
            "contact_url": offer.contact_url,
            "active": offer.active,
            "version": version,
        }
        if current is None:
            await self._session.execute(insert(interim_offers).values(id=offer.id, **values))
        else:
            await self._session.execute(update(interim_offers).where(interim_offers.c.id == offer.id).values(**values))
        return replace(offer, version=version)

    # Wait estimates
    async def keep_estimate(self, estimate: WaitEstimate) -> bool:
        """Holds it in place of the service's estimate unless that one is of a later ``as_of``."""
        values = {name: getattr(estimate, name) for name in _ESTIMATE_FIGURES}
        stmt = upsert_insert(self._session)(service_wait_estimates).values(
            service_id=estimate.service_id, as_of=estimate.as_of, received_at=datetime.now(UTC), **values
        )
        result = await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[service_wait_estimates.c.service_id],
                set_={name: stmt.excluded[name] for name in (*_ESTIMATE_FIGURES, "as_of", "received_at")},
                where=service_wait_estimates.c.as_of <= stmt.excluded.as_of,
            )
        )
        return bool(cast("CursorResult[Any]", result).rowcount)

    async def estimates(self, service_ids: Sequence[str] | None = None) -> dict[str, WaitEstimate]:
        if service_ids is None:
            rows = (await direct.execute(self._session, _ESTIMATES)).mappings()
        else:
            rows = (await direct.execute(self._session, _ESTIMATES_OF, {"ids": list(service_ids)})).mappings()
        return {r["service_id"]: estimate_from_row(r) for r in rows}

    # Signposts
    async def signposts_of(self, referral_id: str) -> list[Signpost]:
        rows = (
            await self._session.execute(
                select(referral_signposts)
                .where(referral_signposts.c.referral_id == referral_id)
                .order_by(referral_signposts.c.signposted_at, referral_signposts.c.position)
            )
        ).mappings()
        return [_signpost(r) for r in rows]

    async def add_signposts(self, signposts: Sequence[Signpost]) -> None:
        # A signpost made at the same moment by another transaction (an acceptance and a clock alert) stays as it
        # is: never an error.
        for s in signposts:
            stmt = upsert_insert(self._session)(referral_signposts).values(
                referral_id=s.referral_id,
                offer_id=s.offer_id,
                provider_org_id=s.provider_org_id,
                trigger=s.trigger.value,
                signposted_at=s.signposted_at,
                position=s.position,
            )
            await self._session.execute(stmt.on_conflict_do_nothing())

    async def take_up(self, referral_id: str, offer_id: str, at: datetime, by: TakenUpBy) -> None:
        await self._session.execute(
            update(referral_signposts)
            .where(referral_signposts.c.referral_id == referral_id, referral_signposts.c.offer_id == offer_id)
            .values(taken_up_at=at, taken_up_by=by.value)
        )


def _offer(row: Any) -> InterimOffer:
    return InterimOffer(
        id=row["id"],
        service_id=row["service_id"],
        provider_org_id=row["provider_org_id"],
        name=row["name"],
        description=row["description"],
        needs=tuple(NeedCode(n) for n in row["needs"]),
        urgencies=tuple(Urgency(u) for u in row["urgencies"]),
        min_age=row["min_age"],
        max_age=row["max_age"],
        contact_phone=row["contact_phone"],
        contact_email=row["contact_email"],
        contact_url=row["contact_url"],
        active=row["active"],
        version=row["version"],
    )


def _signpost(row: Any) -> Signpost:
    return Signpost(
        referral_id=row["referral_id"],
        offer_id=row["offer_id"],
        provider_org_id=row["provider_org_id"],
        trigger=SignpostTrigger(row["trigger"]),
        signposted_at=row["signposted_at"],
        taken_up_at=row["taken_up_at"],
        taken_up_by=TakenUpBy(row["taken_up_by"]) if row["taken_up_by"] else None,
        position=row["position"],
    )
