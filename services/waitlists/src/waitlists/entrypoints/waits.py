"""Predicted waits: ``GET /v1/services/{service_id}/predicted-wait`` and ``GET /v1/predicted-waits``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from send_shared.web.problems import Problem
from waitlists.domain.clocks import ClockKind
from waitlists.domain.waits import Quantiles, WaitEstimate, WaitPolicy
from waitlists.entrypoints.dependencies import Reader, UnitOfWorkDep, WaitPolicyDep
from waitlists.entrypoints.edge import ID_PATTERN, AsOf, as_of_or_today
from waitlists.service_layer import waits

router = APIRouter(prefix="/v1", tags=["predicted waits"])

ServiceIdPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=ID_PATTERN, description="The service's directory id.")
]


class QuantilesOut(BaseModel):
    median_days: int | None = Field(
        description="Days from submission by which half the children had it (Kaplan-Meier median). Null without "
        "enough data, or when the curve never gets there."
    )
    p90_days: int | None = Field(description="Days by which 9 in 10 had it (90th percentile). Null likewise.")
    p90_low_days: int | None = Field(
        description="Lower end of the 95% band of the 90th percentile (Greenwood, log-log, Brookmeyer-Crowley)."
    )
    p90_high_days: int | None = Field(
        description="Upper end of that band; null when the data do not bound it above (or without enough data)."
    )


_EXAMPLE: JsonDict = {
    "service_id": "svc-camhs-core", "as_of": "2026-12-01", "window_weeks": 26, "window_start": "2026-06-03",
    "children": 143, "enough_data": True, "min_children": 20, "clock": "cypmh_4w",
    "to_support": {"median_days": 41, "p90_days": 97, "p90_low_days": 84, "p90_high_days": 120},
    "to_clock_stop": {"median_days": 25, "p90_days": 44, "p90_low_days": 39, "p90_high_days": 52},
}  # fmt: skip


class PredictedWaitOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    service_id: str = Field(description="The service's directory id.")
    as_of: date = Field(description="The date the estimate is for, YYYY-MM-DD (Europe/London).")
    window_weeks: int = Field(description="Weeks of referrals, by submission date, the estimate is built from.")
    window_start: date = Field(description="First submission date in the window, YYYY-MM-DD; the last is as_of.")
    children: int | None = Field(
        description="Referrals behind the estimate (submitted in the window, none entered in error). Null when 1 to "
        "4, except for the service's own organisation."
    )
    enough_data: bool = Field(description="Whether there are at least min_children referrals; if not, no figures.")
    min_children: int = Field(description="Fewest referrals an estimate is given from.")
    clock: ClockKind | None = Field(
        description="The service's first clock, whose stop to_clock_stop counts; null for none."
    )
    to_support: QuantilesOut = Field(
        description="From submission to support starting (in_progress). Children still waiting, and those closed "
        "without support (at their closure), count as censored."
    )
    to_clock_stop: QuantilesOut | None = Field(
        description="From submission to the first clock's stop (met or late); null for a service with no clock."
    )


def _quantiles(q: Quantiles) -> QuantilesOut:
    return QuantilesOut(median_days=q.median_days, p90_days=q.p90_days, p90_low_days=q.p90_low_days,
                        p90_high_days=q.p90_high_days)  # fmt: skip


def _present(e: WaitEstimate, policy: WaitPolicy, *, own: bool) -> PredictedWaitOut:
    return PredictedWaitOut(
        service_id=e.service_id, as_of=e.as_of, window_weeks=e.window_weeks, window_start=e.window_start,
        children=e.children if own else e.children_shown, enough_data=e.enough_data,
        min_children=policy.min_children, clock=ClockKind(e.clock) if e.clock else None, to_support=_quantiles(e.to_support),
        to_clock_stop=_quantiles(e.to_clock_stop) if e.to_clock_stop is not None else None,
    )  # fmt: skip


@router.get(
    "/services/{service_id}/predicted-wait", response_model=PredictedWaitOut, summary="A service's predicted wait"
)
async def predicted_wait(
    service_id: ServiceIdPath, caller: Reader, uow: UnitOfWorkDep, policy: WaitPolicyDep, as_of: AsOf = None
) -> PredictedWaitOut:
    """How long a child referred to the service on `as_of` will likely wait, from the referrals submitted to it in
    the window before: the median and 90th percentile days to support starting and to the first clock's stop
    (Kaplan-Meier: children still waiting count as censored), with a band on the 90th percentile. Anyone from an
    organisation in the directory may read it. Counts only."""
    day = as_of_or_today(as_of)
    try:
        found, organisation_id = await waits.service_estimate(service_id, day, uow, policy)
    except waits.UnknownService as exc:
        raise Problem(404, "Not found", f"no service {service_id!r} is known", kind="not-found") from exc
    return _present(found, policy, own=caller.organisation_id == organisation_id)


@router.get("/predicted-waits", response_model=list[PredictedWaitOut], summary="Every service's predicted wait")
async def predicted_waits(
    caller: Reader, uow: UnitOfWorkDep, policy: WaitPolicyDep, as_of: AsOf = None
) -> list[PredictedWaitOut]:
    """The predicted wait of every service in the directory on `as_of`, in service id order, as for one service."""
    day = as_of_or_today(as_of)
    found, organisation_of = await waits.all_estimates(day, uow, policy)
    return [_present(e, policy, own=caller.organisation_id == organisation_of.get(e.service_id)) for e in found]
