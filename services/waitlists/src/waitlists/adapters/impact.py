"""Reads for the impact figures (``domain.impact``): completions, the same children's referrals, and starts by
the referrer's kind and the referral's need codes, grouped in SQL where they can be."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from waitlists.adapters.facts import _days  # one copy of the date rules
from waitlists.adapters.orm import organisations, referral_changes, referral_outcomes, referrals
from waitlists.domain.impact import YEAR_DAYS, Completion, ImpactRead, Start, Submission, need_codes
from waitlists.domain.timeline import Status


async def impact_read(session: AsyncSession, service_ids: Sequence[str], first: date, day: date) -> ImpactRead:
    """Completions at the services from ``first`` to ``day`` with their outcome codes, every referral (any service)
    of those children submitted after ``first``, and starts at the services in the 12 months to ``day`` by the
    referring organisation's kind, need codes and days to support."""
    found = ImpactRead()
    if not service_ids:
        return found
    ro, r, rc, o = referral_outcomes, referrals, referral_changes, organisations
    ids = list(service_ids)
    completed = Status.COMPLETED.value
    rows = await session.execute(
        select(r.c.child_ref, ro.c.service_id, ro.c.closed_on, func.min(rc.c.outcome_code).label("outcome_code"))
        .select_from(
            ro.join(r, r.c.referral_id == ro.c.referral_id).outerjoin(
                rc, and_(rc.c.referral_id == ro.c.referral_id, rc.c.status == completed)
            )
        )
        .where(ro.c.service_id.in_(ids), ro.c.closed_status == completed, ro.c.closed_on.between(first, day))
        .group_by(ro.c.referral_id, r.c.child_ref, ro.c.service_id, ro.c.closed_on)
    )
    found.completions = [Completion(x.child_ref, x.service_id, x.closed_on, x.outcome_code) for x in rows]
    children = sorted({c.child_ref for c in found.completions})
    for start in range(0, len(children), 500):
        chunk = children[start : start + 500]
        rows = await session.execute(
            select(r.c.child_ref, ro.c.service_id, ro.c.submitted_on)
            .select_from(ro.join(r, r.c.referral_id == ro.c.referral_id))
            .where(r.c.child_ref.in_(chunk), ro.c.submitted_on > first, ro.c.submitted_on <= day)
        )
        found.submissions += [Submission(x.child_ref, x.service_id, x.submitted_on) for x in rows]
    waited = _days(session, ro.c.started_on, ro.c.submitted_on)
    kind = func.coalesce(o.c.kind, "unknown")
    needs = (r.c.primary_need, r.c.secondary_need)
    rows = await session.execute(
        select(ro.c.service_id, kind.label("kind"), *needs, waited.label("days"), func.count().label("n"))
        .select_from(
            ro.join(r, r.c.referral_id == ro.c.referral_id).outerjoin(o, o.c.organisation_id == r.c.referrer_org_id)
        )
        .where(ro.c.service_id.in_(ids), ro.c.started_on.between(day - timedelta(days=YEAR_DAYS), day))
        .group_by(ro.c.service_id, kind, *needs, waited)
    )
    found.starts = [Start(x.service_id, x.kind, int(x.days), x.n, need_codes(x.primary_need, x.secondary_need))
                    for x in rows]  # fmt: skip
    return found
