"""The dashboard's trend: ``GET /v1/dashboard/trend``, % within target per month."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from waitlists.domain.clocks import ClockKind
from waitlists.entrypoints.dependencies import Operations, UnitOfWorkDep
from waitlists.entrypoints.edge import AsOf, ScopeIdQuery, ScopeQuery, as_of_or_today, not_found
from waitlists.service_layer import dashboard
from waitlists.service_layer.reporting import UnknownScope

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])


class TrendOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"month_start": "2026-11-01", "month_end": "2026-11-30", "clock": "cypmh_4w", "stopped": 12,
                 "pct_within_target": 75.0, "pct_within_target_ex": 80.0, "withheld": []}
            ]
        }
    )  # fmt: skip

    month_start: date = Field(description="First day of the month, YYYY-MM-DD.")
    month_end: date = Field(description="Last day of the month (as_of for the current month), YYYY-MM-DD.")
    clock: ClockKind = Field(description="The clock the row counts.")
    stopped: int | None = Field(description="Clocks of this kind stopped in the month. Null when withheld.")
    pct_within_target: float | None = Field(
        description="Of those, the percentage within target, to one decimal place. Null when withheld or none."
    )
    pct_within_target_ex: float | None = Field(
        description="The same, excluding exception cases (DfE `_ex`). Null when withheld or none."
    )
    withheld: list[str] = Field(
        description="Fields withheld by disclosure control (each null): a month's count of 1-4, what would give one "
        "back (from the other scopes, clocks' parts or the months' total), and a percentage with its base. The "
        "organisation running the scope's services sees them in full."
    )


@router.get("/trend", response_model=list[TrendOut], summary="% within target per month, for 12 months")
async def trend(
    caller: Operations, uow: UnitOfWorkDep, scope: ScopeQuery, scope_id: ScopeIdQuery, as_of: AsOf = None,
    months: Annotated[int, Query(ge=1, le=36, description="How many months back from as_of, 1 to 36.")] = 12,
) -> list[TrendOut]:  # fmt: skip
    """For the dashboard (roles ops and admin): per month and clock, the clocks stopped in the month and the share
    within target, oldest month first. Under disclosure control as in the figures."""
    try:
        points = await dashboard.trend(scope, scope_id, as_of_or_today(as_of), months, uow,
                                       viewer=caller.organisation_id)  # fmt: skip
    except UnknownScope as exc:
        raise not_found(scope, scope_id) from exc
    return [TrendOut.model_validate(p, from_attributes=True) for p in points]
