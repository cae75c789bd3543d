"""The figures read from the fact tables in SQL equal the rules evaluated on every timeline, for a
seeded random history on several dates and at every scope (the unit property test holds the
in-memory facts to the same oracle; this holds the SQL reads to it)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.db import session_factory
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ORGANISATION_UPSERTED, SERVICE_UPSERTED, OrganisationV1, ServiceV1
from waitlists.adapters.facts import refresh_marked
from waitlists.adapters.timelines import Scope
from waitlists.domain.metrics import Period
from waitlists.domain.timeline import Timeline
from waitlists.entrypoints.consumers import on_referral_event
from waitlists.service_layer.reporting import FigureRequest, figures_for

from ..unit import oracle
from ..unit.histories import EPOCH, SERVICES, build, random_specs
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
                                  urgencies=["routine"], clocks=[k.value for k in clocks.clocks],
                                  target_days=clocks.target_days).model_dump(mode="json"))
        for svc, clocks in SERVICES.items()
    ]  # fmt: skip
    return events


def events_of(t: Timeline) -> list[CloudEvent]:
    changes = [(c.status, c.on.isoformat(), c.reason_code, c.outcome_code) for c in t.changes]
    return referral_events(t.referral_id, t.child_ref, t.service_id, *changes, urgency=t.urgency,
                           receiving=ORG_OF[t.service_id])  # fmt: skip


@pytest.mark.slow
async def test_sql_figures_equal_the_rules(engine: AsyncEngine) -> None:
    timelines = [build(i, spec) for i, spec in enumerate(random_specs(random.Random(20261123), 150, 40))]
    sessions = session_factory(engine)
    # Directory first in one transaction, then the referrals in a few batches: each batch refreshes
    # the facts of the children it touched once, as the live consumer does.
    async with sessions() as session, session.begin():
        for event in directory():
            await on_referral_event(event, session)
        await refresh_marked(session)
    for start in range(0, len(timelines), 40):
        async with sessions() as session, session.begin():
            for t in timelines[start : start + 40]:
                for event in events_of(t):
                    await on_referral_event(event, session)
            await refresh_marked(session)
    journeys: dict[str, list[Timeline]] = {}
    for t in timelines:
        journeys.setdefault(t.child_ref, []).append(t)
    scopes = [(Scope.AREA, "la-random", set(SERVICES)), (Scope.ORGANISATION, "org-la", {"ehc", "rtt"})]
    scopes += [(Scope.SERVICE, s, {s}) for s in sorted(SERVICES)]
    for offset in (0, 45, 180, 300, 420, 610, 900):
        day = EPOCH + timedelta(days=offset)
        period = Period(day - timedelta(days=200), day)
        for scope, scope_id, ids in scopes:
            in_scope = [t for t in timelines if t.service_id in ids]
            expected = oracle.figures(in_scope, journeys, SERVICES, day, period)
            found = await figures_for(FigureRequest(scope, scope_id, day, period.start), sessions)
            assert oracle.comparable(found) == oracle.comparable(expected), (scope, scope_id, day)
