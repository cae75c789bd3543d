"""Demand, capacity and the breach forecast (issue #18): ``GET /v1/capacity/{scope}/{scope_id}/...`` as JSON and
``GET /v1/exports/capacity-*.csv`` as CSV, for the same readers as the figures and under the same disclosure
control."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from waitlists.domain.capacity import HORIZONS, WEEKS_SHOWN, WINDOW_WEEKS
from waitlists.domain.disclosure import WITHHELD_CSV
from waitlists.domain.scope import Scope
from waitlists.entrypoints.dependencies import Reader, UnitOfWorkDep
from waitlists.entrypoints.edge import AsOf, ScopeIdPath, ScopeIdQuery, ScopePath, ScopeQuery, as_of_or_today, not_found
from waitlists.entrypoints.headers import content_disposition
from waitlists.service_layer import capacity, impact
from waitlists.service_layer.reporting import UnknownScope

router = APIRouter(prefix="/v1", tags=["capacity"])

_WITHHELD = " Null when withheld by disclosure control."
_HORIZONS: JsonDict = {"propertyNames": {"enum": [str(h) for h in HORIZONS]}}

ExtraStarts = Annotated[
    int, Query(ge=0, le=100, description="What if: this many more starts a week than now, 0 to 100 (default 1).")
]
WindowWeeks = Annotated[
    int,
    Query(ge=1, le=26, description=f"Weeks (seven-day windows ending on as_of) the rates are means over, 1 to 26 "
          f"(default {WINDOW_WEEKS})."),
]  # fmt: skip
Weeks = Annotated[
    int,
    Query(
        ge=1,
        le=52,
        description=f"Weeks shown (seven days each, the last ending on as_of), 1 to 52 (default {WEEKS_SHOWN}).",
    ),
]


class WeekOut(BaseModel):
    week_start: date = Field(description="The week's first day, YYYY-MM-DD (Europe/London).")
    week_end: date = Field(description="Its last day, six days later: as_of, or a multiple of seven days before it.")
    demand: int | None = Field(description="Referrals submitted in the week." + _WITHHELD)
    throughput: int | None = Field(description="Referrals whose support started (first in_progress) in the week."
                                   + _WITHHELD)  # fmt: skip
    net_change: int | None = Field(
        description="Children waiting at the end of the week less those waiting at the end of the day before it."
        + _WITHHELD
    )
    waiting_at_end: int | None = Field(description="Children waiting at the end of the week's last day." + _WITHHELD)
    withheld: list[str] = Field(description="The fields of this week withheld (each null).")


_WEEK_EXAMPLE: JsonDict = {"week_start": "2026-11-23", "week_end": "2026-11-29", "demand": 9,
                 "throughput": 7, "net_change": 2, "waiting_at_end": 41, "withheld": []}  # fmt: skip


class ServiceWeeksOut(BaseModel):
    service_id: str = Field(description="The service's directory id.")
    weeks: list[WeekOut] = Field(description="The service's weeks, oldest first.")


class WeeklyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"scope": "service", "scope_id": "svc-camhs-core", "as_of": "2026-11-29", "suppressed": True,
                 "weeks": [_WEEK_EXAMPLE], "services": [{"service_id": "svc-camhs-core", "weeks": [_WEEK_EXAMPLE]}]}
            ]
        }
    )  # fmt: skip

    scope: Scope = Field(description="What the figures cover: one service, an organisation's services, or an area's.")
    scope_id: str = Field(description="The directory id of that service, organisation or area.")
    as_of: date = Field(description="The reporting date, YYYY-MM-DD (Europe/London): only what happened by it counts.")
    suppressed: bool = Field(description="Disclosure control applies to the scope's figures for this caller.")
    weeks: list[WeekOut] = Field(description="The scope's weeks (its services added up), oldest first.")
    services: list[ServiceWeeksOut] = Field(description="Each service of the scope, by id.")


class ForecastRowOut(BaseModel):
    rank: int | None = Field(
        description="1 for the service where one more start a week avoids the most breaches in 12 weeks (ties: more "
        "breaches forecast, then id); null for the scope's total, and for a service whose breaches in 12 weeks or "
        "breaches avoided per extra start are withheld (listed after the ranked ones, by id: its place would tell "
        "of them)."
    )
    scope: Scope = Field(description="service for a service's row; the scope's level for its total.")
    scope_id: str = Field(description="The directory id of the service (or the scope, for the total).")
    name: str = Field(description="The service's name in the directory (the id for a total).")
    throughput_per_week: float | None = Field(
        description="Current throughput: mean starts a week over the window_weeks ending on as_of." + _WITHHELD
    )
    demand_per_week: float | None = Field(
        description="Recent demand: mean referrals submitted a week over the same weeks." + _WITHHELD
    )
    target_days: int | None = Field(
        description="The target new referrals are forecast against: the service's shortest clock target for a "
        "routine referral (null for a total, or a service with no target: its new referrals never breach)."
    )
    waiting: int | None = Field(description="Children waiting on as_of, the queue the forecast starts from."
                                + _WITHHELD)  # fmt: skip
    breaches: dict[str, int | None] = Field(
        description="Breaches forecast within 4 and 12 weeks after as_of at current throughput (keyed by weeks)."
        + _WITHHELD,
        json_schema_extra=_HORIZONS,
    )
    breaches_with_extra: dict[str, int | None] = Field(
        description="The same with extra_starts more starts a week." + _WITHHELD, json_schema_extra=_HORIZONS
    )
    avoided: dict[str, int | None] = Field(
        description="Breaches avoided by the extra starts: breaches less breaches_with_extra." + _WITHHELD,
        json_schema_extra=_HORIZONS,
    )
    avoided_per_extra_start: float | None = Field(
        description="Breaches avoided in 12 weeks by one more start a week, per extra start (12 of them); for a "
        "total, one more start a week at each of its services." + _WITHHELD
    )
    withheld: list[str] = Field(description="Dotted paths of this row's figures withheld (each null).")


_ROW_EXAMPLE: JsonDict = {"rank": 1, "scope": "service", "scope_id": "svc-camhs-core", "name": "CAMHS core",
                "throughput_per_week": 6.5, "demand_per_week": 8.0, "target_days": 28, "waiting": 41,
                "breaches": {"4": 6, "12": 19}, "breaches_with_extra": {"4": 5, "12": 11},
                "avoided": {"4": 1, "12": 8}, "avoided_per_extra_start": 0.667, "withheld": []}  # fmt: skip


class ForecastOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"scope": "area", "scope_id": "la-northshire", "as_of": "2026-11-29", "window_weeks": 8,
                 "extra_starts": 1, "suppressed": True, "model": "see the description", "total": {**_ROW_EXAMPLE,
                 "rank": None, "scope": "area", "scope_id": "la-northshire", "name": "la-northshire"},
                 "services": [_ROW_EXAMPLE]}
            ]
        }
    )  # fmt: skip

    scope: Scope = Field(description="What the forecast covers: one service, an organisation's services, or an area's.")
    scope_id: str = Field(description="The directory id of that service, organisation or area.")
    as_of: date = Field(description="The date the forecast is made on, YYYY-MM-DD (Europe/London).")
    window_weeks: int = Field(description="Weeks the throughput and demand rates are means over.")
    extra_starts: int = Field(description="The what-if: more starts a week than now.")
    suppressed: bool = Field(description="Disclosure control applies to the scope's figures for this caller.")
    model: str = Field(description="The queue model, in words.")
    total: ForecastRowOut = Field(description="The scope's services added up.")
    services: list[ForecastRowOut] = Field(
        description="The scope's services ranked by breaches avoided per extra start (for an area: where one more "
        "clinician would help most)."
    )


MODEL = (
    "Deterministic queue: the children waiting on as_of, longest-waiting first, each with its first running clock's "
    "breach date; new referrals join behind them at the recent demand rate, each due the service's shortest target "
    "after it arrives. Each week, on its first day, the service starts children at its current throughput "
    "(floor(k * rate) by week k); a child breaches when its breach date comes on or before its start, or within the "
    "horizon if not started."
)


async def _report(request: capacity.CapacityRequest, uow: UnitOfWorkDep, viewer: str) -> capacity.CapacityReport:
    try:
        return await capacity.capacity_report(request, uow, viewer=viewer)
    except UnknownScope as exc:
        raise not_found(request.scope, request.scope_id) from exc


def _week(w: capacity.WeekRow) -> WeekOut:
    return WeekOut.model_validate(w, from_attributes=True)


@router.get("/capacity/{scope}/{scope_id}/weekly", response_model=WeeklyOut, summary="Demand and throughput per week")
async def weekly(
    scope: ScopePath, scope_id: ScopeIdPath, caller: Reader, uow: UnitOfWorkDep, as_of: AsOf = None,
    weeks: Weeks = WEEKS_SHOWN,
) -> WeeklyOut:  # fmt: skip
    """Per week (seven days, Europe/London; the last ends on `as_of`, as the figures' weekly flows): referrals in (demand),
    support started (throughput) and the net change in the number waiting, for the scope and each of its services.
    Only what happened by `as_of` counts. Readers as for the figures; other organisations' counts under disclosure
    control, named in `withheld`."""
    found = await _report(capacity.CapacityRequest(scope, scope_id, as_of_or_today(as_of), weeks=weeks), uow,
                          caller.organisation_id)  # fmt: skip
    return WeeklyOut(
        scope=scope, scope_id=scope_id, as_of=found.as_of, suppressed=found.suppressed,
        weeks=[_week(w) for w in found.weeks],
        services=[ServiceWeeksOut(service_id=s, weeks=[_week(w) for w in rows])
                  for s, rows in found.service_weeks.items()],
    )  # fmt: skip


@router.get("/capacity/{scope}/{scope_id}/forecast", response_model=ForecastOut,
            summary="Breach forecast, what-if and where one more start helps most")  # fmt: skip
async def breach_forecast(
    scope: ScopePath, scope_id: ScopeIdPath, caller: Reader, uow: UnitOfWorkDep, as_of: AsOf = None,
    extra_starts: ExtraStarts = 1, window_weeks: WindowWeeks = WINDOW_WEEKS,
) -> ForecastOut:  # fmt: skip
    """Breaches expected in the 4 and 12 weeks after `as_of` at current throughput, by a deterministic queue model
    (`model`), with `extra_starts` more starts a week and the breaches that avoids; the scope's services ranked by
    breaches avoided per extra start. Readers as for the figures; other organisations' figures under disclosure
    control."""
    request = capacity.CapacityRequest(scope, scope_id, as_of_or_today(as_of), extra_starts, window_weeks)
    found = await _report(request, uow, caller.organisation_id)
    return ForecastOut(
        scope=scope, scope_id=scope_id, as_of=found.as_of, window_weeks=found.window_weeks,
        extra_starts=found.extra_starts, suppressed=found.suppressed, model=MODEL,
        total=ForecastRowOut.model_validate(found.total, from_attributes=True),
        services=[ForecastRowOut.model_validate(r, from_attributes=True) for r in found.services],
    )  # fmt: skip


def _cell(value: object, withheld: bool) -> str:
    if withheld:
        return WITHHELD_CSV
    if value is None:
        return "z"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _csv(header: list[str], rows: list[list[str]], filename: str) -> PlainTextResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return PlainTextResponse(out.getvalue(), media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": content_disposition(filename)})  # fmt: skip


@router.get(
    "/exports/capacity-weekly.csv",
    response_class=PlainTextResponse,
    summary="Demand, throughput and net change per service and week",
    responses={200: {"content": {"text/csv": {}}}},
)
async def weekly_csv(
    caller: Reader, uow: UnitOfWorkDep, scope: ScopeQuery, scope_id: ScopeIdQuery, as_of: AsOf = None,
    weeks: Weeks = WEEKS_SHOWN,
) -> PlainTextResponse:  # fmt: skip
    """One row per service of the scope and week, as in `/v1/capacity/{scope}/{scope_id}/weekly`; a
    withheld count is written `c`."""
    found = await _report(capacity.CapacityRequest(scope, scope_id, as_of_or_today(as_of), weeks=weeks), uow,
                          caller.organisation_id)  # fmt: skip
    header = ["as_of", "service_id", "week_start", "week_end", "demand", "throughput", "net_change", "waiting_at_end"]
    rows = [
        [
            found.as_of.isoformat(),
            service_id,
            w.week_start.isoformat(),
            w.week_end.isoformat(),
            *(_cell(getattr(w, name), name in w.withheld) for name in header[4:]),
        ]
        for service_id, weeks_of in found.service_weeks.items()
        for w in weeks_of
    ]
    return _csv(header, rows, f"capacity-weekly-{scope_id}-{found.as_of.isoformat()}.csv")


@router.get(
    "/exports/breach-forecast.csv",
    response_class=PlainTextResponse,
    summary="Breach forecast, what-if and ranking per service",
    responses={200: {"content": {"text/csv": {}}}},
)
async def forecast_csv(
    caller: Reader, uow: UnitOfWorkDep, scope: ScopeQuery, scope_id: ScopeIdQuery, as_of: AsOf = None,
    extra_starts: ExtraStarts = 1, window_weeks: WindowWeeks = WINDOW_WEEKS,
) -> PlainTextResponse:  # fmt: skip
    """One row per service of the scope, ranked, as in `/v1/capacity/{scope}/{scope_id}/forecast`; a withheld
    figure is written `c`, one not applicable `z`."""
    request = capacity.CapacityRequest(scope, scope_id, as_of_or_today(as_of), extra_starts, window_weeks)
    found = await _report(request, uow, caller.organisation_id)
    header = ["as_of", "rank", "service_id", "throughput_per_week", "demand_per_week", "target_days", "waiting"]
    for name in ("breaches", "breaches_with_extra", "avoided"):
        header += [f"{name}_{h}w" for h in HORIZONS]
    header += ["extra_starts", "avoided_per_extra_start"]
    rows = []
    for r in found.services:
        row = [found.as_of.isoformat(), _cell(r.rank, r.rank is None), r.scope_id]
        row += [_cell(getattr(r, name), name in r.withheld)
                for name in ("throughput_per_week", "demand_per_week", "target_days", "waiting")]  # fmt: skip
        for name in ("breaches", "breaches_with_extra", "avoided"):
            row += [_cell(getattr(r, name)[str(h)], f"{name}.{h}" in r.withheld) for h in HORIZONS]
        row += [str(found.extra_starts), _cell(r.avoided_per_extra_start, "avoided_per_extra_start" in r.withheld)]
        rows.append(row)
    return _csv(header, rows, f"breach-forecast-{scope_id}-{found.as_of.isoformat()}.csv")


class RereferralOut(BaseModel):
    completed: int | None = Field(
        description="Referrals completed in the 12 months ending one window before as_of (their window over)."
        + _WITHHELD
    )
    rereferred: int | None = Field(
        description="Of those, the ones whose child was referred again within the window to a service of the same "
        "kind (the first clock the service runs)." + _WITHHELD
    )
    pct: float | None = Field(description="rereferred as a percentage of completed, one decimal place." + _WITHHELD)


class TimeToSupportOut(BaseModel):
    referrer_kind: str = Field(
        description="The referring organisation's kind in the directory (school, trust, ...; unknown if not named)."
    )
    started: int | None = Field(description="Referrals whose support started in the 12 months to as_of." + _WITHHELD)
    median_days: int | None = Field(description="Median days from submission to support starting." + _WITHHELD)
    p90_days: int | None = Field(description="90th percentile of those days (nearest rank)." + _WITHHELD)


class NeedTimeToSupportOut(BaseModel):
    need_code: str = Field(
        description="A DfE SEN need code of the referral (SEMH, ASD, ...; unknown if none is held). A referral with a "
        "primary and a secondary need counts under both, so these rows add up to more than the referrals started."
    )
    started: int | None = Field(description="Referrals with this need whose support started in the 12 months to "
                                "as_of." + _WITHHELD)  # fmt: skip
    median_days: int | None = Field(description="Median days from submission to support starting." + _WITHHELD)
    p90_days: int | None = Field(description="90th percentile of those days (nearest rank)." + _WITHHELD)


class ImpactRowOut(BaseModel):
    scope: Scope = Field(description="service for a service's row; the scope's level for its total.")
    scope_id: str = Field(description="The directory id of the service (or the scope, for the total).")
    name: str = Field(description="The service's name in the directory (the id for a total).")
    service_kind: str | None = Field(
        description="The kind of service re-referrals are matched on: the first clock it runs (null for a total)."
    )
    rereferral: dict[str, RereferralOut] = Field(
        description="Re-referral within 6 months (182 days) and 12 months (365 days) of completion.",
        json_schema_extra={"propertyNames": {"enum": ["6m", "12m"]}},
    )
    outcomes: dict[str, int | None] = Field(
        description="Referrals completed in the 12 months to as_of by outcome code (`none` without one)." + _WITHHELD
    )
    completed: int | None = Field(description="Referrals completed in the 12 months to as_of." + _WITHHELD)
    time_to_support: list[TimeToSupportOut] = Field(description="Days to support by the referrer's kind.")
    time_to_support_by_need: list[NeedTimeToSupportOut] = Field(description="Days to support by need code.")
    withheld: list[str] = Field(description="Dotted paths of this row's figures withheld (each null).")


_IMPACT_ROW: JsonDict = {"scope": "service", "scope_id": "svc-camhs-core", "name": "CAMHS core", "service_kind": "cypmh_4w",
               "rereferral": {"6m": {"completed": 40, "rereferred": 6, "pct": 15.0},
                              "12m": {"completed": 35, "rereferred": None, "pct": None}},
               "outcomes": {"goals_met": 30, "none": 12}, "completed": 42,
               "time_to_support": [{"referrer_kind": "school", "started": 50, "median_days": 41, "p90_days": 90}],
               "time_to_support_by_need": [{"need_code": "SEMH", "started": 31, "median_days": 45, "p90_days": 97}],
               "withheld": ["rereferral.12m.rereferred", "rereferral.12m.pct"]}  # fmt: skip


class ImpactOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"scope": "service", "scope_id": "svc-camhs-core", "as_of": "2026-11-29", "suppressed": True,
                 "total": _IMPACT_ROW, "services": [_IMPACT_ROW]}
            ]
        }
    )  # fmt: skip

    scope: Scope = Field(description="What the figures cover: one service, an organisation's services, or an area's.")
    scope_id: str = Field(description="The directory id of that service, organisation or area.")
    as_of: date = Field(description="The reporting date, YYYY-MM-DD (Europe/London).")
    suppressed: bool = Field(description="Disclosure control applies to the scope's figures for this caller.")
    total: ImpactRowOut = Field(description="The scope's services added up.")
    services: list[ImpactRowOut] = Field(description="Each service of the scope, by id.")


async def _impact(scope: Scope, scope_id: str, day: date, uow: UnitOfWorkDep, viewer: str) -> impact.ImpactReport:
    try:
        return await impact.impact_report(scope, scope_id, day, uow, viewer=viewer)
    except UnknownScope as exc:
        raise not_found(scope, scope_id) from exc


@router.get("/impact/{scope}/{scope_id}", response_model=ImpactOut,
            summary="Re-referral, outcomes and time to support")  # fmt: skip
async def impact_figures(
    scope: ScopePath, scope_id: ScopeIdPath, caller: Reader, uow: UnitOfWorkDep, as_of: AsOf = None
) -> ImpactOut:
    """What support achieved, per service: re-referral of the same child to the same kind of service within 6 and
    12 months of completion, completions by outcome code, and days to support by the referring organisation's kind
    (schools beside trusts' in-house specialists) and by need code. Readers as for the figures; other organisations'
    figures under disclosure control."""
    found = await _impact(scope, scope_id, as_of_or_today(as_of), uow, caller.organisation_id)
    return ImpactOut.model_validate(found, from_attributes=True)


@router.get(
    "/exports/impact.csv",
    response_class=PlainTextResponse,
    summary="Re-referral, outcomes and time to support per service",
    responses={200: {"content": {"text/csv": {}}}},
)
async def impact_csv(
    caller: Reader, uow: UnitOfWorkDep, scope: ScopeQuery, scope_id: ScopeIdQuery, as_of: AsOf = None
) -> PlainTextResponse:
    """One row per service of the scope and figure (`measure`, `group`, `value`), as in
    `/v1/impact/{scope}/{scope_id}`; a withheld figure is written `c`, one not applicable `z`."""
    found = await _impact(scope, scope_id, as_of_or_today(as_of), uow, caller.organisation_id)
    rows = []
    for r in found.services:

        def put(measure: str, group: str, value: object, path: str, r: impact.ImpactRow = r) -> None:
            rows.append([found.as_of.isoformat(), r.scope_id, measure, group, _cell(value, path in r.withheld)])

        for window, x in r.rereferral.items():
            put("rereferral_completed", window, x.completed, f"rereferral.{window}.completed")
            put("rereferred", window, x.rereferred, f"rereferral.{window}.rereferred")
            put("pc_rereferred", window, x.pct, f"rereferral.{window}.pct")
        put("completed", "all", r.completed, "completed")
        for code, n in r.outcomes.items():
            put("completed", code, n, f"outcomes.{code}")
        for t in r.time_to_support:
            put("started", t.referrer_kind, t.started, f"time_to_support.{t.referrer_kind}.started")
            put("median_days_to_support", t.referrer_kind, t.median_days,
                f"time_to_support.{t.referrer_kind}.median_days")  # fmt: skip
            put("p90_days_to_support", t.referrer_kind, t.p90_days, f"time_to_support.{t.referrer_kind}.p90_days")
        for need in r.time_to_support_by_need:
            path = f"time_to_support_by_need.{need.need_code}"
            put("started_with_need", need.need_code, need.started, f"{path}.started")
            put("median_days_to_support_by_need", need.need_code, need.median_days, f"{path}.median_days")
            put("p90_days_to_support_by_need", need.need_code, need.p90_days, f"{path}.p90_days")
    return _csv(["as_of", "service_id", "measure", "group", "value"], rows,
                f"impact-{scope_id}-{found.as_of.isoformat()}.csv")  # fmt: skip
