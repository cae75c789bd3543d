"""Every figure for a scope on a date: ``GET /v1/metrics/{scope}/{scope_id}``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.config import JsonDict

from waitlists.domain.clocks import ClockKind
from waitlists.domain.disclosure import Controlled, Withheld
from waitlists.domain.metrics import Figures
from waitlists.domain.scope import Scope
from waitlists.domain.stats import SMALL_NUMBER
from waitlists.entrypoints.dependencies import Reader, UnitOfWorkDep
from waitlists.entrypoints.edge import (
    AsOf,
    ReportDate,
    ScopeIdPath,
    ScopePath,
    as_of_or_today,
    not_found,
    validation_problem,
)
from waitlists.service_layer import reporting

router = APIRouter(prefix="/v1", tags=["waitlists"])


_WITHHELD = " Null when withheld."


class WaitingOut(BaseModel):
    waiting: int | None = Field(
        description="Referrals waiting on as_of: submitted, acknowledged, accepted, scheduled or on hold." + _WITHHELD
    )
    distribution: dict[str, int | None] = Field(
        description="Referrals waiting by completed weeks: [0,4), [4,18), [18,52), 52+; each count null when withheld."
    )
    median_days: int | None = Field(
        description="Median days waited so far by those waiting (nearest rank; a family hold stops the count)."
        + _WITHHELD
    )
    p90_days: int | None = Field(description="90th percentile of days waited so far." + _WITHHELD)
    long_waiters: dict[str, int | None] = Field(
        description="Referrals waiting at least 52, 65, 78 and 104 completed weeks; each count null when withheld."
    )


class ClockOut(BaseModel):
    stopped_in_period: int | None = Field(
        description="Clocks of this kind stopped (met or breached) in the period." + _WITHHELD
    )
    met_in_period: int | None = Field(description="Of those, the ones stopped within target." + _WITHHELD)
    pct_within_target: float | None = Field(
        description="Of clocks stopped in the period, the percentage met, to one decimal place." + _WITHHELD
    )
    pct_within_target_ex: float | None = Field(description="The same, excluding exception cases (DfE `_ex`).")
    breached_and_waiting: int | None = Field(
        description="Clocks past their breach date on as_of, the child still waiting (running or on hold)." + _WITHHELD
    )
    imminent_breaches: int | None = Field(description="Running clocks breaching within 7 days of as_of.")
    exceptions: int | None = Field(
        description="Clocks that are exception cases (e.g. school closed 4 weeks): waiting on as_of or stopped by "
        "it." + _WITHHELD
    )


class GapsOut(BaseModel):
    closed_in_period: int | None = Field(
        description="Handoff gaps closed in the period: from a child's rejection, withdrawal or hand-off at one "
        "service to the first acceptance at another (a referral submitted on or after it)." + _WITHHELD
    )
    median_days: int | None = Field(description="Median days of those gaps." + _WITHHELD)
    p90_days: int | None = Field(description="90th percentile days of those gaps." + _WITHHELD)
    open: int | None = Field(description="Gaps still open on as_of: no acceptance at another service yet." + _WITHHELD)
    open_median_days: int | None = Field(description="Median days the open gaps have lasted by as_of." + _WITHHELD)


class FlowOut(BaseModel):
    week_start: date = Field(description="First day of the seven-day window, YYYY-MM-DD.")
    week_end: date = Field(description="Last day of the seven-day window, YYYY-MM-DD.")
    referrals_in: int | None = Field(description="Referrals submitted in the week." + _WITHHELD)
    started: int | None = Field(description="Referrals whose support started (in_progress) in the week." + _WITHHELD)
    closed: int | None = Field(description="Referrals closed (their first final status) in the week." + _WITHHELD)


# Rejection reasons are the referrals service's codes (its domain/codes.py, RejectionReason): it checks every
# rejection against them, and it is the only producer of referral events; "unknown" counts rejections without one.
REJECTION_REASONS: list[JsonValue] = ["duplicate", "insufficient_information", "needs_met_elsewhere", "outside_remit",
                     "threshold_not_met", "unknown"]  # fmt: skip


_FIGURES_EXAMPLE: JsonDict = {
    "scope": "service", "scope_id": "svc-camhs-core", "as_of": "2026-12-01", "period_start": "2025-12-02",
    "period_end": "2026-12-01", "suppressed": True, "withheld": ["rejections_by_reason.duplicate"],
    "waiting": {"waiting": 42, "distribution": {"0-4": 10, "4-18": 20, "18-52": 12, "52+": 0}, "median_days": 61,
                "p90_days": 140, "long_waiters": {"52": 0, "65": 0, "78": 0, "104": 0}},
    "clocks": {"cypmh_4w": {"stopped_in_period": 120, "met_in_period": 84, "pct_within_target": 70.0,
                            "pct_within_target_ex": 72.4, "breached_and_waiting": 9, "imminent_breaches": 5,
                            "exceptions": 4}},
    "closed_in_period": 150, "rejected_in_period": 30, "rejection_rate": 20.0,
    "rejections_by_reason": {"outside_remit": 18, "threshold_not_met": 10, "duplicate": None},
    "closed_before_support": 35,
    "handoff_gaps": {"closed_in_period": 12, "median_days": 20, "p90_days": 55, "open": 6, "open_median_days": 31},
    "children_on_several_lists": 0,
    "weekly_flows": [{"week_start": "2026-11-23", "week_end": "2026-11-29", "referrals_in": 7, "started": 5,
                      "closed": 6}],
}  # fmt: skip


class FiguresOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_FIGURES_EXAMPLE]})

    scope: Scope = Field(description="What the figures cover: one service, an organisation's services, or an area's.")
    scope_id: str = Field(description="The directory id of that service, organisation or area.")
    as_of: date = Field(description="The reporting date the figures are for, YYYY-MM-DD (Europe/London).")
    period_start: date = Field(
        description="First day of the period the period figures (clocks stopped, closures, gaps closed) count, YYYY-MM-DD."
    )
    period_end: date = Field(description="Last day of the period (as_of), YYYY-MM-DD.")
    suppressed: bool = Field(
        description="Disclosure control applies: true except for the caller's own organisation and its services."
    )
    withheld: list[str] = Field(
        description="Dotted paths of the figures withheld (each null): counts of 1 to 4, counts from which one could "
        "be worked out again, and percentages, medians and percentiles over a withheld base."
    )
    waiting: WaitingOut = Field(description="Who is waiting on as_of, and for how long.")
    clocks: dict[str, ClockOut] = Field(
        description="Per statutory or service clock the scope's services run (keyed by clock code).",
        json_schema_extra={"propertyNames": {"enum": [kind.value for kind in ClockKind]}},
    )
    closed_in_period: int | None = Field(description="Referrals that reached a final status in the period." + _WITHHELD)
    rejected_in_period: int | None = Field(description="Referrals rejected in the period." + _WITHHELD)
    rejection_rate: float | None = Field(
        description="Rejections as a percentage of referrals closed in the period, to one decimal place." + _WITHHELD
    )
    rejections_by_reason: dict[str, int | None] = Field(
        description="Rejections in the period per rejection reason code (`unknown` for none); each count null when "
        "withheld.",
        json_schema_extra={"propertyNames": {"enum": REJECTION_REASONS}},
    )
    closed_before_support: int | None = Field(
        description="Referrals closed in the period before their support started." + _WITHHELD
    )
    handoff_gaps: GapsOut = Field(description="The gaps children fall into between services.")
    children_on_several_lists: int | None = Field(
        description="Children on the waiting lists of two or more services in scope on as_of." + _WITHHELD
    )
    weekly_flows: list[FlowOut] = Field(
        description="Referrals in, started and closed in each of the 12 seven-day windows ending on as_of, oldest first."
    )


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
    scope: ScopePath,
    scope_id: ScopeIdPath,
    caller: Reader,
    uow: UnitOfWorkDep,
    as_of: AsOf = None,
    period_start: Annotated[
        ReportDate | None,
        Query(description="First day of the period for flow figures; default 364 days before as_of."),
    ] = None,
) -> FiguresOut:
    """Waiting, clock, rejection, hand-off gap and weekly flow figures for a service, an organisation's services
    or an area's, on `as_of`. Anyone from an organisation in the directory may read them; figures of other
    organisations are under disclosure control: small counts, and what would give them back, are null and named
    in `withheld`. Counts only: no child is identifiable."""
    day = as_of_or_today(as_of)
    if period_start is not None and period_start > day:
        raise validation_problem("period_start", "before_as_of", "period_start must not be after as_of")
    try:
        found = await reporting.controlled_figures(reporting.FigureRequest(scope, scope_id, day, period_start), uow)
    except reporting.UnknownScope as exc:
        raise not_found(scope, scope_id) from exc
    return _present(found.figures, scope, scope_id, found.controlled.for_viewer(caller.organisation_id), found.node)
