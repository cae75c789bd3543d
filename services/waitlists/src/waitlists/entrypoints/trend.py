"""The dashboard's trend: ``GET /v1/dashboard/trend``, % within target per month."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from waitlists.domain.scope import Scope
from waitlists.entrypoints.dependencies import Operations, UnitOfWorkDep
from waitlists.entrypoints.edge import ReportDate, ScopeIdQuery, as_of_or_today, not_found
from waitlists.service_layer import dashboard
from waitlists.service_layer.reporting import UnknownScope

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])


class TrendOut(BaseModel):
    month_start: date
    month_end: date
    clock: str
    stopped: int | None
    pct_within_target: float | None
    pct_within_target_ex: float | None
    withheld: list[str] = Field(
        description="Fields withheld by disclosure control (each null): a month's count of 1-4, what would give one "
        "back (from the other scopes, clocks' parts or the months' total), and a percentage with its base. The "
        "organisation running the scope's services sees them in full."
    )


@router.get("/trend", response_model=list[TrendOut], summary="% within target per month, for 12 months")
async def trend(
    caller: Operations, uow: UnitOfWorkDep, scope: Scope, scope_id: ScopeIdQuery, as_of: ReportDate | None = None,
    months: Annotated[int, Query(ge=1, le=36)] = 12,
) -> list[TrendOut]:  # fmt: skip
    try:
        points = await dashboard.trend(scope, scope_id, as_of_or_today(as_of), months, uow,
                                       viewer=caller.organisation_id)  # fmt: skip
    except UnknownScope as exc:
        raise not_found(scope, scope_id) from exc
    return [TrendOut.model_validate(p, from_attributes=True) for p in points]
