"""The figures read from the fact tables in SQL equal the figures the independent oracle works out from
the brief, for many seeded random histories, on many dates (near the histories' own dates, where
figures change), at every scope, on PostgreSQL and on SQLite (the unit property test holds the
in-memory facts to the same oracle; this holds the SQL reads to it)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import session_factory
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ORGANISATION_UPSERTED, SERVICE_UPSERTED, OrganisationV1, ServiceV1
from waitlists.adapters.unit_of_work import SqlUnitOfWork
from waitlists.bootstrap import handle_referral_event, refresh_facts
from waitlists.domain.scope import Scope
from waitlists.service_layer.reporting import FigureRequest, figures_for

from ..unit import oracle, shapes
from ..unit.histories import SERVICES, build, random_specs
from .conftest import referral_events

ORG_OF = {"camhs": "org-health", "crisis": "org-health", "slt": "org-health", "ehc": "org-la", "rtt": "org-la"}


def directory() -> list[CloudEvent]:
    events = [
        CloudEvent(type=ORGANISATION_UPSERTED, source="/t", subject=org,
                   data=OrganisationV1(organisation_id=org, version=1, name=org, kind=kind,
                                       area_id="la-random").model_dump(mode="json"))
        for org, kind in (("org-health", "camhs"), ("org-la", "local_authority"))
    ]  # fmt: skip
    events += [
        CloudEvent(type=SERVICE_UPSERTED, source="/t", subject=svc,
                   data=ServiceV1(service_id=svc, version=1, organisation_id=ORG_OF[svc], name=svc, needs=["SEMH"],
                                  urgencies=["routine"], clocks=list(clocks.clocks),
                                  target_days=clocks.target_days).model_dump(mode="json"))
        for svc, clocks in SERVICES.items()
    ]  # fmt: skip
    return events


def events_of(r: oracle.Referral) -> list[CloudEvent]:
    changes = [(c.status, c.on.isoformat(), c.reason, c.outcome) for c in r.changes]
    return referral_events(r.referral_id, r.child, r.service, *changes, urgency=r.urgency,
                           receiving=ORG_OF[r.service])  # fmt: skip


SEED = 20261123
REFERRALS = 240
CHILDREN = 72
DATES = 8


@pytest.mark.slow
async def test_sql_figures_equal_the_rules(engine: AsyncEngine) -> None:
    rng = random.Random(SEED)
    referrals = [build(i, spec) for i, spec in enumerate(random_specs(rng, REFERRALS, CHILDREN))]
    sessions = session_factory(engine)
    # Directory first in one transaction, then the referrals in a few batches: each batch refreshes
    # the facts of the children it touched once, as the live consumer does.
    async with sessions() as session, session.begin():
        for event in directory():
            await handle_referral_event(event, session)
        await refresh_facts(session)
    for start in range(0, len(referrals), 60):
        async with sessions() as session, session.begin():
            for r in referrals[start : start + 60]:
                for event in events_of(r):
                    await handle_referral_event(event, session)
            await refresh_facts(session)
    # Reporting dates: the histories' own dates moved a little either way (where figures change),
    # one before everything and one long after.
    change_days = sorted({c.on for r in referrals for c in r.changes})
    days = {d + timedelta(days=rng.randrange(-2, 30)) for d in rng.sample(change_days, DATES)}
    days |= {change_days[0] - timedelta(days=1), change_days[-1] + timedelta(days=400)}
    walks = oracle.walk_all(referrals, SERVICES, days)
    # The area and both organisations on every date; the services in turn, two a date.
    services = [(Scope.SERVICE, s, {s}) for s in sorted(SERVICES)]
    for n, day in enumerate(sorted(days)):
        period_start = day - timedelta(days=rng.choice((0, 6, 90, 200, 364)))
        scopes = [
            (Scope.AREA, "la-random", None),
            (Scope.ORGANISATION, "org-la", {"ehc", "rtt"}),
            (Scope.ORGANISATION, "org-health", {"camhs", "crisis", "slt"}),
            services[2 * n % len(services)],
            services[(2 * n + 1) % len(services)],
        ]
        for scope, scope_id, ids in scopes:
            expected = oracle.figures(walks, SERVICES, ids, day, period_start)
            found = await figures_for(FigureRequest(scope, scope_id, day, period_start), SqlUnitOfWork(sessions))
            assert shapes.plain(found) == expected, (scope, scope_id, day, period_start)
