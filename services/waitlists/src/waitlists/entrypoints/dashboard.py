"""The operations dashboard: its page (served at /dashboard), the scopes to filter by and the services ranked
by breach risk (``GET /v1/dashboard/...``)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from waitlists.domain.scope import Scope
from waitlists.entrypoints.dependencies import Operations, UnitOfWorkDep
from waitlists.entrypoints.edge import ReportDate, ScopeIdQuery, as_of_or_today, not_found
from waitlists.service_layer import dashboard
from waitlists.service_layer.reporting import UnknownScope

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])


class Choice(BaseModel):
    id: str
    name: str
    parent: str


class ScopesOut(BaseModel):
    areas: list[str]
    area_choices: list[Choice] = Field(
        description="The areas with names to show: an area is named after its local authority (parent is empty)."
    )
    organisations: list[Choice]
    services: list[Choice]


class ServiceRiskOut(BaseModel):
    service_id: str
    name: str
    organisation_id: str
    waiting: int | None
    median_days: int | None
    p90_days: int | None
    breached_waiting: int | None
    imminent: int | None
    breaches_next_4_weeks: list[int | None]
    pct_within_target: float | None
    withheld: list[str] = Field(
        description="Fields withheld by disclosure control (each null); a service's own organisation sees it in full."
    )


def page() -> StaticFiles:
    return StaticFiles(directory=str(files("waitlists").joinpath("dashboard")), html=True)


@router.get("/scopes", response_model=ScopesOut, summary="Areas, organisations and services to filter by")
async def scopes(_caller: Operations, uow: UnitOfWorkDep) -> ScopesOut:
    found = await dashboard.scope_choices(uow)
    return ScopesOut(
        areas=found.areas,
        area_choices=[Choice(id=a, name=found.area_names[a], parent="") for a in found.areas],
        organisations=[Choice(id=o.organisation_id, name=o.name, parent=o.area_id) for o in found.organisations],
        services=[Choice(id=s.service_id, name=s.name, parent=s.organisation_id) for s in found.services],
    )


@router.get("/services", response_model=list[ServiceRiskOut], summary="Services ranked by breach risk")
async def services(
    caller: Operations, uow: UnitOfWorkDep, scope: Scope, scope_id: ScopeIdQuery, as_of: ReportDate | None = None
) -> list[ServiceRiskOut]:
    try:
        rows = await dashboard.services_by_risk(scope, scope_id, as_of_or_today(as_of), uow,
                                                viewer=caller.organisation_id)  # fmt: skip
    except UnknownScope as exc:
        raise not_found(scope, scope_id) from exc
    return [ServiceRiskOut.model_validate(r, from_attributes=True) for r in rows]
