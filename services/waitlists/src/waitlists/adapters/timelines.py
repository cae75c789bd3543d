"""Reads timelines and the directory back out of the projection, for one scope."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from enum import StrEnum

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from waitlists.adapters.orm import organisations, referral_changes, referrals, services
from waitlists.domain.access import Parties
from waitlists.domain.clocks import ServiceClocks
from waitlists.domain.timeline import StatusChange, Timeline


class Scope(StrEnum):
    SERVICE = "service"
    ORGANISATION = "organisation"
    AREA = "area"


async def scope_services(session: AsyncSession, scope: Scope, scope_id: str) -> dict[str, ServiceClocks]:
    """The services in a scope, in id order, with the clocks each runs."""
    if scope is Scope.SERVICE:
        condition = services.c.service_id == scope_id
    elif scope is Scope.ORGANISATION:
        condition = services.c.organisation_id == scope_id
    else:
        orgs = select(organisations.c.organisation_id).where(organisations.c.area_id == scope_id)
        condition = services.c.organisation_id.in_(orgs)
    return await _clocks(session, condition)


async def service_clocks(session: AsyncSession, ids: Collection[str]) -> dict[str, ServiceClocks]:
    return await _clocks(session, services.c.service_id.in_(ids))


async def all_service_clocks(session: AsyncSession) -> dict[str, ServiceClocks]:
    return await _clocks(session, true())


async def _clocks(session: AsyncSession, condition: ColumnElement[bool]) -> dict[str, ServiceClocks]:
    rows = await session.execute(
        select(services.c.service_id, services.c.clocks, services.c.target_days)
        .where(condition)
        .order_by(services.c.service_id)
    )
    return {service_id: ServiceClocks.named(clocks, target_days) for service_id, clocks, target_days in rows}


async def timelines_for_children(session: AsyncSession, child_refs: Sequence[str]) -> dict[str, list[Timeline]]:
    found: list[Timeline] = []
    for start in range(0, len(child_refs), 500):
        found += await _timelines(session, referrals.c.child_ref.in_(child_refs[start : start + 500]))
    return _journeys(found)


async def timelines_for_referrals(session: AsyncSession, referral_ids: Sequence[str]) -> list[Timeline]:
    return await _timelines(session, referrals.c.referral_id.in_(referral_ids))


async def organisation_known(session: AsyncSession, organisation_id: str) -> bool:
    found = await session.execute(
        select(organisations.c.organisation_id).where(organisations.c.organisation_id == organisation_id)
    )
    return found.first() is not None


async def parties(session: AsyncSession, referral_id: str) -> Parties | None:
    found = (
        await session.execute(
            select(referrals.c.referrer_org_id, referrals.c.receiving_org_id).where(
                referrals.c.referral_id == referral_id
            )
        )
    ).first()
    return Parties(found.referrer_org_id, found.receiving_org_id) if found else None


async def timeline(session: AsyncSession, referral_id: str) -> Timeline | None:
    found = await _timelines(session, referrals.c.referral_id == referral_id)
    return found[0] if found else None


async def _timelines(session: AsyncSession, condition: ColumnElement[bool]) -> list[Timeline]:
    query = (
        select(
            referrals.c.referral_id,
            referrals.c.child_ref,
            referrals.c.service_id,
            referrals.c.urgency,
            referral_changes.c.version,
            referral_changes.c.status,
            referral_changes.c.occurred_on,
            referral_changes.c.reason_code,
            referral_changes.c.outcome_code,
        )
        .join(referral_changes, referral_changes.c.referral_id == referrals.c.referral_id)
        .where(condition)
        .order_by(referrals.c.referral_id, referral_changes.c.version)
    )
    grouped: dict[str, tuple[tuple[str, str, str], list[StatusChange]]] = {}
    for row in await session.execute(query):
        entry = grouped.setdefault(row.referral_id, ((row.child_ref, row.service_id, row.urgency), []))
        entry[1].append(StatusChange(row.version, row.status, row.occurred_on, row.reason_code, row.outcome_code))
    return [
        Timeline.of(referral_id, child_ref, service_id, urgency, changes)
        for referral_id, ((child_ref, service_id, urgency), changes) in grouped.items()
    ]


async def journeys_after(
    session: AsyncSession, after: str | None, children: int
) -> tuple[dict[str, list[Timeline]], str | None]:
    """The timelines of the next ``children`` children (in the database's order of child references)
    after ``after``, and the last of them: a rebuild walks every journey so, a range read at a time."""
    refs = select(referrals.c.child_ref).distinct().order_by(referrals.c.child_ref).limit(children)
    if after is not None:
        refs = refs.where(referrals.c.child_ref > after)
    chunk = list((await session.execute(refs)).scalars())
    if not chunk:
        return {}, None
    return _journeys(await _timelines(session, referrals.c.child_ref.between(chunk[0], chunk[-1]))), chunk[-1]


def _journeys(timelines: Iterable[Timeline]) -> dict[str, list[Timeline]]:
    journeys: defaultdict[str, list[Timeline]] = defaultdict(list)
    for timeline in timelines:
        journeys[timeline.child_ref].append(timeline)
    return dict(journeys)
