"""Keeps the date-ranged fact tables in step with the timelines, and adds them up for a date.

Writes replace every fact of the referrals concerned (a child's referrals depend on each other
through handoff gaps). Reads are grouped in SQL, so a request reads one row per distinct value
rather than one per referral, and the counting rules are applied by ``domain.metrics.Tally``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Table,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from send_shared.db import bulk_insert, dialect_name
from waitlists.adapters import timelines as store
from waitlists.adapters.orm import (
    FACT_TABLES,
    alerts_sent,
    clock_spells,
    clock_stops,
    handoff_gaps,
    referral_outcomes,
    referrals,
    waiting_spells,
)
from waitlists.domain.clocks import ServiceClocks
from waitlists.domain.facts import ReferralFacts, StopOutcome, derive
from waitlists.domain.metrics import FLOW_WEEKS, Period, Tally
from waitlists.domain.timeline import Timeline

_CHUNK = 500
# Set on a session by the consumer's handler; the refresh runs once per transaction, before commit.
DIRTY_CHILDREN = "waitlists.dirty_children"
DIRTY_SERVICES = "waitlists.dirty_services"


def mark_child(session: AsyncSession, child_ref: str) -> None:
    session.info.setdefault(DIRTY_CHILDREN, set()).add(child_ref)


def mark_service(session: AsyncSession, service_id: str) -> None:
    session.info.setdefault(DIRTY_SERVICES, set()).add(service_id)


async def refresh_marked(session: AsyncSession) -> None:
    children: set[str] = session.info.pop(DIRTY_CHILDREN, set())
    marked_services: set[str] = session.info.pop(DIRTY_SERVICES, set())
    if marked_services:
        rows = await session.execute(
            select(referrals.c.child_ref).where(referrals.c.service_id.in_(marked_services)).distinct()
        )
        children.update(rows.scalars())
    await refresh_children(session, children)


async def refresh_children(session: AsyncSession, child_refs: Collection[str]) -> None:
    """Re-derives every fact of these children's referrals."""
    if not child_refs:
        return
    journeys = await store.timelines_for_children(session, sorted(child_refs))
    clocks = await store.service_clocks(session, {t.service_id for j in journeys.values() for t in j})
    await _delete(session, [t.referral_id for j in journeys.values() for t in j])
    await insert(session, derive_journeys(journeys, clocks))


async def derive_everything(sessions: async_sessionmaker[AsyncSession], chunk: int = 5000) -> int:
    """Derives the facts of every referral into empty fact tables, ``chunk`` children per transaction
    read as one range. Returns how many referrals have facts."""
    derived = 0
    after: str | None = None
    async with sessions() as session:
        clocks = await store.all_service_clocks(session)
    while True:
        async with sessions() as session, session.begin():
            journeys, after = await store.journeys_after(session, after, chunk)
            if after is None:
                return derived
            found = derive_journeys(journeys, clocks)
            await insert(session, found)
        derived += len(found)


def derive_journeys(
    journeys: Mapping[str, Sequence[Timeline]], clocks: Mapping[str, ServiceClocks]
) -> list[ReferralFacts]:
    found: list[ReferralFacts] = []
    for journey in journeys.values():
        for timeline in journey:
            facts = derive(timeline, clocks.get(timeline.service_id, ServiceClocks(())), journey)
            if facts is not None:
                found.append(facts)
    return found


async def _delete(session: AsyncSession, referral_ids: Sequence[str]) -> None:
    for start in range(0, len(referral_ids), _CHUNK):
        chunk = referral_ids[start : start + _CHUNK]
        deletes = [delete(table).where(table.c.referral_id.in_(chunk)) for table in FACT_TABLES]
        if dialect_name(session) == "postgresql":  # one statement, one round trip: the others as CTEs
            last, *first = reversed(deletes)
            await session.execute(last.add_cte(*(d.cte(f"d{i}") for i, d in enumerate(first))))
        else:
            for statement in deletes:
                await session.execute(statement)


async def insert(db: AsyncSession | AsyncConnection, found: Sequence[ReferralFacts]) -> None:
    for table, records in fact_records(found).items():
        await bulk_insert(db, table, records)


def fact_records(found: Sequence[ReferralFacts]) -> dict[Table, list[tuple[Any, ...]]]:
    """The rows of every fact table, each a tuple in its table's column order (``adapters/orm.py``)."""
    outcomes: list[tuple[Any, ...]] = []
    waiting: list[tuple[Any, ...]] = []
    spells: list[tuple[Any, ...]] = []
    stops: list[tuple[Any, ...]] = []
    gaps: list[tuple[Any, ...]] = []
    for f in found:
        rid, sid, o = f.referral_id, f.service_id, f.outcome
        outcomes.append((rid, sid, o.submitted_on, o.started_on, o.closed_on, o.closed_status, o.closed_reason,
                         o.before_support))  # fmt: skip
        waiting += [
            (rid, w.valid_from, w.valid_to, sid, f.child_ref, w.waiting_since, w.paused_days) for w in f.waiting
        ]
        spells += [
            (rid, c.clock.value, c.valid_from, c.valid_to, sid, c.breach_on, c.exception) for c in f.clock_spells
        ]
        stops += [(rid, c.clock.value, sid, c.stopped_on, c.outcome.value, c.exception) for c in f.clock_stops]
        if f.gap is not None:
            gaps.append((rid, sid, f.gap.opened_on, f.gap.closed_on))
    return {referral_outcomes: outcomes, waiting_spells: waiting, clock_spells: spells, clock_stops: stops,
            handoff_gaps: gaps}  # fmt: skip


def _valid_on(table: Any, day: date) -> ColumnElement[bool]:
    return (table.c.valid_to > day) & (table.c.valid_from <= day)  # type: ignore[no-any-return]


def _days(session: AsyncSession, later: Any, earlier: Any) -> ColumnElement[int]:
    """Whole days from ``earlier`` to ``later`` (dates or date columns), in the dialect's own arithmetic."""
    later = later if isinstance(later, ColumnElement) else literal(later, Date)
    earlier = earlier if isinstance(earlier, ColumnElement) else literal(earlier, Date)
    if dialect_name(session) == "postgresql":
        return later - earlier  # type: ignore[no-any-return]
    return cast(func.julianday(later) - func.julianday(earlier), Integer)


async def tallies(
    session: AsyncSession, in_scope: Mapping[str, ServiceClocks], day: date, period: Period
) -> dict[str, Tally]:
    """One tally per service for ``day`` and ``period``, listing every clock the service runs; add
    them up for a wider scope."""
    found = {service_id: Tally(day, period) for service_id in in_scope}
    for service_id, service in in_scope.items():
        for kind in service.clocks:
            found[service_id].clock(kind.value)
    ids = list(in_scope)
    for reads in (_waiting_reads, _clock_reads, _flow_reads):
        await reads(session, ids, day, period, found)
    return found


async def _waiting_reads(
    session: AsyncSession, ids: list[str], day: date, period: Period, found: dict[str, Tally]
) -> None:
    ws = waiting_spells
    waited = case((ws.c.waiting_since.is_(None), ws.c.paused_days), else_=_days(session, day, ws.c.waiting_since))
    rows = await session.execute(
        select(ws.c.service_id, waited.label("days"), func.count().label("n"))
        .where(ws.c.service_id.in_(ids), _valid_on(ws, day))
        .group_by(ws.c.service_id, waited)
    )
    for r in rows:
        found[r.service_id].waiting(r.days, r.n)


async def _clock_reads(
    session: AsyncSession, ids: list[str], day: date, period: Period, found: dict[str, Tally]
) -> None:
    cs, st = clock_spells, clock_stops
    n = func.count().label("n")
    rows = await session.execute(
        select(cs.c.service_id, cs.c.clock, cs.c.breach_on, cs.c.exception, n)
        .where(cs.c.service_id.in_(ids), _valid_on(cs, day))
        .group_by(cs.c.service_id, cs.c.clock, cs.c.breach_on, cs.c.exception)
    )
    for r in rows:
        found[r.service_id].clock_spell(r.clock, r.breach_on, r.exception, r.n)
    # Exceptions count over all time, stops only in the period: one read for both.
    in_period = st.c.stopped_on >= period.start
    rows = await session.execute(
        select(st.c.service_id, st.c.clock, st.c.outcome, st.c.exception, in_period.label("in_period"), n)
        .where(st.c.service_id.in_(ids), st.c.stopped_on <= day, st.c.exception | in_period)
        .group_by(st.c.service_id, st.c.clock, st.c.outcome, st.c.exception, in_period)
    )
    for r in rows:
        if r.exception:
            found[r.service_id].exceptions_stopped(r.clock, r.n)
        if r.in_period:
            found[r.service_id].stopped_in_period(r.clock, StopOutcome(r.outcome), r.exception, r.n)


async def _flow_reads(
    session: AsyncSession, ids: list[str], day: date, period: Period, found: dict[str, Tally]
) -> None:
    ro, hg = referral_outcomes, handoff_gaps
    n = func.count().label("n")
    rows = await session.execute(
        select(ro.c.service_id, ro.c.closed_status, ro.c.closed_reason, ro.c.before_support, n)
        .where(ro.c.service_id.in_(ids), ro.c.closed_on.between(period.start, day))
        .group_by(ro.c.service_id, ro.c.closed_status, ro.c.closed_reason, ro.c.before_support)
    )
    for r in rows:
        found[r.service_id].closed_in_period(r.closed_status, r.closed_reason, r.before_support, r.n)

    # A gap closed in the period counts its length; one still open on the day, how long it has been open.
    closed = hg.c.closed_on <= day
    days = case((closed, _days(session, hg.c.closed_on, hg.c.opened_on)), else_=_days(session, day, hg.c.opened_on))
    rows = await session.execute(
        select(hg.c.service_id, closed.label("closed"), days.label("days"), n)
        .where(hg.c.service_id.in_(ids), hg.c.closed_on >= period.start, hg.c.opened_on <= day)
        .group_by(hg.c.service_id, closed, days)
    )
    for r in rows:
        if r.closed:
            found[r.service_id].gap_closed(r.days, r.n)
        else:
            found[r.service_id].gap_open(r.days, r.n)

    first = day - timedelta(days=7 * FLOW_WEEKS - 1)
    flows = []
    for kind, column in (("arrived", ro.c.submitted_on), ("started", ro.c.started_on), ("closed", ro.c.closed_on)):
        weeks_back = _days(session, day, column) // 7
        flows.append(
            select(
                ro.c.service_id, literal(kind).label("kind"), weeks_back.label("weeks_back"), func.count().label("n")
            )
            .where(ro.c.service_id.in_(ids), column.between(first, day))
            .group_by(ro.c.service_id, weeks_back)
        )
    for r in await session.execute(union_all(*flows)):
        found[r.service_id].flow(r.kind, r.weeks_back, r.n)


async def children_on_several_lists(session: AsyncSession, service_ids: Sequence[str], day: date) -> int:
    ws = waiting_spells
    several = (
        select(ws.c.child_ref)
        .where(ws.c.service_id.in_(service_ids), _valid_on(ws, day))
        .group_by(ws.c.child_ref)
        .having(
            func.min(ws.c.service_id) != func.max(ws.c.service_id)
        )  # two services at least; hashes, unlike DISTINCT
        .subquery()
    )
    return int((await session.execute(select(func.count()).select_from(several))).scalar_one())


async def stops_between(
    session: AsyncSession, service_ids: Sequence[str], first: date, last: date
) -> list[tuple[str, str, date, StopOutcome, bool, int]]:
    """Clock stops from ``first`` to ``last``, counted by service, clock, day, outcome and exception."""
    st = clock_stops
    rows = await session.execute(
        select(st.c.service_id, st.c.clock, st.c.stopped_on, st.c.outcome, st.c.exception, func.count().label("n"))
        .where(st.c.service_id.in_(service_ids), st.c.stopped_on.between(first, last))
        .group_by(st.c.service_id, st.c.clock, st.c.stopped_on, st.c.outcome, st.c.exception)
    )
    return [(r.service_id, r.clock, r.stopped_on, StopOutcome(r.outcome), r.exception, r.n) for r in rows]


async def due_for_alert(session: AsyncSession, day: date, lead_days: int) -> list[str]:
    """Referrals with a clock running on ``day`` that breaches within ``lead_days`` or already has,
    less those whose breach has already been announced."""
    cs = clock_spells
    announced = exists().where(
        alerts_sent.c.referral_id == cs.c.referral_id,
        alerts_sent.c.clock == cs.c.clock,
        alerts_sent.c.kind == "breached",
    )
    rows = await session.execute(
        select(cs.c.referral_id)
        .where(_valid_on(cs, day), cs.c.breach_on <= day + timedelta(days=lead_days), ~announced)
        .distinct()
    )
    return sorted(rows.scalars())
