"""Every figure for a scope on a date: ``GET /v1/metrics/{scope}/{scope_id}``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from waitlists.domain.disclosure import Controlled, Withheld
from waitlists.domain.metrics import Figures
from waitlists.domain.scope import Scope
from waitlists.domain.stats import SMALL_NUMBER
from waitlists.entrypoints.dependencies import Reader, UnitOfWorkDep
from waitlists.entrypoints.edge import ReportDate, ScopeIdPath, as_of_or_today, not_found, validation_problem
from waitlists.service_layer import reporting

router = APIRouter(prefix="/v1", tags=["waitlists"])


class WaitingOut(BaseModel):
    waiting: int | None
    distribution: dict[str, int | None] = Field(description="Completed weeks: [0,4), [4,18), [18,52), 52+.")
    median_days: int | None
    p90_days: int | None
    long_waiters: dict[str, int | None] = Field(description="Waiting at least 52, 65, 78 and 104 weeks.")


class ClockOut(BaseModel):
    stopped_in_period: int | None
    met_in_period: int | None
    pct_within_target: float | None = Field(description="Of clocks stopped in the period, the share met.")
    pct_within_target_ex: float | None = Field(description="The same, excluding exception cases (DfE `_ex`).")
    breached_and_waiting: int | None
    imminent_breaches: int | None = Field(description="Running clocks breaching within 7 days of as_of.")
    exceptions: int | None


class GapsOut(BaseModel):
    closed_in_period: int | None
    median_days: int | None
    p90_days: int | None
    open: int | None
    open_median_days: int | None


class FlowOut(BaseModel):
    week_start: date
    week_end: date
    referrals_in: int | None
    started: int | None
    closed: int | None


class FiguresOut(BaseModel):
    scope: Scope
    scope_id: str
    as_of: date
    period_start: date
    period_end: date
    suppressed: bool = Field(
        description="Disclosure control applies: true except for the caller's own organisation and its services."
    )
    withheld: list[str] = Field(
        description="Dotted paths of the figures withheld (each null): counts of 1 to 4, counts from which one could "
        "be worked out again, and percentages, medians and percentiles over a withheld base."
    )
    waiting: WaitingOut
    clocks: dict[str, ClockOut]
    closed_in_period: int | None
    rejected_in_period: int | None
    rejection_rate: float | None
    rejections_by_reason: dict[str, int | None]
    closed_before_support: int | None
    handoff_gaps: GapsOut
    children_on_several_lists: int | None
    weekly_flows: list[FlowOut]


def _present(f: Figures, scope: Scope, scope_id: str, controlled: Controlled, node: str) -> FiguresOut:
    w = Withheld(controlled, node)

    def counts(path: str, prefix: str, values: dict[str, int]) -> dict[str, int | None]:
        return {k: w(f"{path}.{k}", f"{prefix}{k}", v) for k, v in values.items()}

    full = controlled.full(node)
    several = f.children_on_several_lists
    if not full and 0 < several < SMALL_NUMBER:  # counted per scope, not a sum: withheld when small
        w.paths.append("children_on_several_lists")
        several_out: int | None = None
    else:
        several_out = several
    out = FiguresOut(
        scope=scope,
        scope_id=scope_id,
        as_of=f.as_of,
        period_start=f.period.start,
        period_end=f.period.end,
        suppressed=not full,
        withheld=[],
        waiting=WaitingOut(
            waiting=w("waiting.waiting", "waiting", f.waiting.waiting),
            distribution=counts("waiting.distribution", "dist.", f.waiting.distribution),
            median_days=w("waiting.median_days", "waiting.median", f.waiting.median_days),
            p90_days=w("waiting.p90_days", "waiting.p90", f.waiting.p90_days),
            long_waiters=counts("waiting.long_waiters", "long.", f.waiting.long_waiters),
        ),
        clocks={
            kind: ClockOut(
                stopped_in_period=w(f"clocks.{kind}.stopped_in_period", f"clock.{kind}.stopped", c.stopped),
                met_in_period=w(f"clocks.{kind}.met_in_period", f"clock.{kind}.met", c.met),
                pct_within_target=w(f"clocks.{kind}.pct_within_target", f"clock.{kind}.pct", c.pct_within_target),
                pct_within_target_ex=w(
                    f"clocks.{kind}.pct_within_target_ex", f"clock.{kind}.pct_ex", c.pct_within_target_ex
                ),
                breached_and_waiting=w(
                    f"clocks.{kind}.breached_and_waiting", f"clock.{kind}.breached", c.breached_waiting
                ),
                imminent_breaches=w(f"clocks.{kind}.imminent_breaches", f"clock.{kind}.imminent", c.imminent),
                exceptions=w(f"clocks.{kind}.exceptions", f"clock.{kind}.exceptions", c.exceptions),
            )
            for kind, c in sorted(f.clocks.items())
        },
        closed_in_period=w("closed_in_period", "closed", f.closed_in_period),
        rejected_in_period=w("rejected_in_period", "rejected", f.rejected),
        rejection_rate=w("rejection_rate", "rejection_rate", f.rejection_rate),
        rejections_by_reason=counts("rejections_by_reason", "reason.", f.rejections_by_reason),
        closed_before_support=w("closed_before_support", "before_support", f.closed_before_support),
        handoff_gaps=GapsOut(
            closed_in_period=w("handoff_gaps.closed_in_period", "gaps.closed", f.handoff_gaps.closed),
            median_days=w("handoff_gaps.median_days", "gaps.median", f.handoff_gaps.median_days),
            p90_days=w("handoff_gaps.p90_days", "gaps.p90", f.handoff_gaps.p90_days),
            open=w("handoff_gaps.open", "gaps.open", f.handoff_gaps.open),
            open_median_days=w("handoff_gaps.open_median_days", "gaps.open_median", f.handoff_gaps.open_median_days),
        ),
        children_on_several_lists=several_out,
        weekly_flows=[
            FlowOut(
                week_start=x.week_start,
                week_end=x.week_end,
                referrals_in=w(f"weekly_flows.{i}.referrals_in", f"flow.{i}.arrived", x.arrived),
                started=w(f"weekly_flows.{i}.started", f"flow.{i}.started", x.started),
                closed=w(f"weekly_flows.{i}.closed", f"flow.{i}.closed", x.closed),
            )
            for i, x in enumerate(f.weekly_flows)
        ],
    )
    out.withheld = w.paths
    return out


@router.get("/metrics/{scope}/{scope_id}", response_model=FiguresOut, summary="Every figure for a scope on a date")
async def metrics(
    scope: Scope,
    scope_id: ScopeIdPath,
    caller: Reader,
    uow: UnitOfWorkDep,
    as_of: Annotated[ReportDate | None, Query(description="Reporting date (Europe/London); default today.")] = None,
    period_start: Annotated[
        ReportDate | None,
        Query(description="First day of the period for flow figures; default 364 days before as_of."),
    ] = None,
) -> FiguresOut:
    day = as_of_or_today(as_of)
    if period_start is not None and period_start > day:
        raise validation_problem("period_start", "before_as_of", "period_start must not be after as_of")
    try:
        found = await reporting.controlled_figures(reporting.FigureRequest(scope, scope_id, day, period_start), uow)
    except reporting.UnknownScope as exc:
        raise not_found(scope, scope_id) from exc
    return _present(found.figures, scope, scope_id, found.controlled.for_viewer(caller.organisation_id), found.node)
