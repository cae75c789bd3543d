"""The date-ranged fact tables: written as ``domain.facts`` derives them, and added up for a date.

Writes replace every fact of the referrals concerned (a child's referrals depend on each other
through handoff gaps). Reads are grouped in SQL, so a request reads one row per distinct value
rather than one per referral, and the counting rules are applied by ``domain.metrics.Tally``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from send_shared import direct
from send_shared.db import InList, bulk_insert, dialect_name
from waitlists.adapters.orm import (
    FACT_TABLES,
    alerts_sent,
    clock_spells,
    clock_stops,
    handoff_gaps,
    referral_outcomes,
    waiting_spells,
)
from waitlists.domain.alerts import AlertKind
from waitlists.domain.capacity import ServiceActivity
from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.facts import ReferralFacts, StopCount, StopOutcome
from waitlists.domain.impact import ImpactRead
from waitlists.domain.metrics import FLOW_WEEKS, Period, Tally
from waitlists.domain.timeline import Status

_CHUNK = 500
# Each consumer batch replaces its referrals' facts: the deletes built once (on PostgreSQL one statement, one round
# trip, the others as CTEs).
_DELETES = [delete(table).where(InList(table.c.referral_id, "ids")) for table in FACT_TABLES]
_DELETE_ALL_AT_ONCE = _DELETES[-1].add_cte(*(d.cte(f"d{i}") for i, d in enumerate(reversed(_DELETES[:-1]))))


class SqlFacts:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def any(self) -> bool:
        found = await self._session.execute(select(referral_outcomes.c.referral_id).limit(1))
        return found.first() is not None

    async def replace(self, referral_ids: Sequence[str], found: Sequence[ReferralFacts]) -> None:
        """Every fact of these referrals replaced by ``found``."""
        await _delete(self._session, referral_ids)
        await insert(self._session, found)

    async def add(self, found: Sequence[ReferralFacts]) -> None:
        await insert(self._session, found)

    async def tallies(self, in_scope: Mapping[str, ServiceClocks], day: date, period: Period) -> dict[str, Tally]:
        return await _tallies(self._session, in_scope, day, period)

    async def children_on_several_lists(self, service_ids: Sequence[str], day: date) -> int:
        return await _children_on_several_lists(self._session, service_ids, day)

    async def stops_between(self, service_ids: Sequence[str], first: date, last: date) -> list[StopCount]:
        return await _stops_between(self._session, service_ids, first, last)

    async def due_for_alert(self, day: date, lead_days: int) -> list[str]:
        return await _due_for_alert(self._session, day, lead_days)

    async def activity(
        self, service_ids: Sequence[str], first: date, day: date, boundaries: Sequence[date]
    ) -> dict[str, ServiceActivity]:
        from waitlists.adapters.capacity import activity  # it imports this module's date rules

        return await activity(self._session, service_ids, first, day, boundaries)

    async def impact(self, service_ids: Sequence[str], first: date, day: date) -> ImpactRead:
        from waitlists.adapters.impact import impact_read  # it imports this module's date rules

        return await impact_read(self._session, service_ids, first, day)


async def _delete(session: AsyncSession, referral_ids: Sequence[str]) -> None:
    for start in range(0, len(referral_ids), _CHUNK):
        chunk = {"ids": list(referral_ids[start : start + _CHUNK])}
        if dialect_name(session) == "postgresql":
            await direct.execute(session, _DELETE_ALL_AT_ONCE, chunk)
        else:
            for statement in _DELETES:
                await session.execute(statement, chunk)


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


async def _tallies(
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
        found[r.service_id].closed_in_period(Status(r.closed_status), r.closed_reason, r.before_support, r.n)

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


async def _children_on_several_lists(session: AsyncSession, service_ids: Sequence[str], day: date) -> int:
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


async def _stops_between(session: AsyncSession, service_ids: Sequence[str], first: date, last: date) -> list[StopCount]:
    """Clock stops from ``first`` to ``last``, counted by service, clock, day, outcome and exception."""
    st = clock_stops
    rows = await session.execute(
        select(st.c.service_id, st.c.clock, st.c.stopped_on, st.c.outcome, st.c.exception, func.count().label("n"))
        .where(st.c.service_id.in_(service_ids), st.c.stopped_on.between(first, last))
        .group_by(st.c.service_id, st.c.clock, st.c.stopped_on, st.c.outcome, st.c.exception)
    )
    return [
        StopCount(r.service_id, ClockKind(r.clock), r.stopped_on, StopOutcome(r.outcome), r.exception, r.n)
        for r in rows
    ]


async def _due_for_alert(session: AsyncSession, day: date, lead_days: int) -> list[str]:
    """Referrals with a clock running on ``day`` that breaches within ``lead_days`` or already has,
    less those whose breach has already been announced."""
    cs = clock_spells
    announced = exists().where(
        alerts_sent.c.referral_id == cs.c.referral_id,
        alerts_sent.c.clock == cs.c.clock,
        alerts_sent.c.kind == AlertKind.BREACHED.value,
    )
    rows = await session.execute(
        select(cs.c.referral_id)
        .where(_valid_on(cs, day), cs.c.breach_on <= day + timedelta(days=lead_days), ~announced)
        .distinct()
    )
    return sorted(rows.scalars())
