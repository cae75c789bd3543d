"""The operations dashboard: its page (served at /dashboard), the scopes to filter by and the services ranked
by breach risk (``GET /v1/dashboard/...``)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from waitlists.entrypoints.dependencies import Operations, UnitOfWorkDep
from waitlists.entrypoints.edge import AsOf, ScopeIdQuery, ScopeQuery, as_of_or_today, not_found
from waitlists.service_layer import dashboard
from waitlists.service_layer.reporting import UnknownScope

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])


class Choice(BaseModel):
    id: str = Field(description="The directory id of the area, organisation or service.")
    name: str = Field(description="Its name, to show.")
    parent: str = Field(description="The id of what it belongs to: an organisation's area, a service's organisation.")


class ScopesOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"areas": ["la-northshire"],
                 "area_choices": [{"id": "la-northshire", "name": "Northshire", "parent": ""}],
                 "organisations": [{"id": "org-northshire-camhs", "name": "Northshire CAMHS",
                                    "parent": "la-northshire"}],
                 "services": [{"id": "svc-camhs-core", "name": "CAMHS core", "parent": "org-northshire-camhs"}]}
            ]
        }
    )  # fmt: skip

    areas: list[str] = Field(description="The ids of the areas.")
    area_choices: list[Choice] = Field(
        description="The areas with names to show: an area is named after its local authority (parent is empty)."
    )
    organisations: list[Choice] = Field(description="The organisations, each with its area as parent.")
    services: list[Choice] = Field(description="The services, each with its organisation as parent.")


class ServiceRiskOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"service_id": "svc-camhs-core", "name": "CAMHS core", "organisation_id": "org-northshire-camhs",
                 "waiting": 42, "median_days": 61, "p90_days": 140, "breached_waiting": 9, "imminent": 5,
                 "breaches_next_4_weeks": [5, 3, None, 6], "pct_within_target": 70.0, "withheld": []}
            ]
        }
    )  # fmt: skip

    service_id: str = Field(description="The service's directory id.")
    name: str = Field(description="The service's name.")
    organisation_id: str = Field(description="The organisation that runs it (directory id).")
    waiting: int | None = Field(description="Referrals waiting on as_of. Null when withheld.")
    median_days: int | None = Field(
        description="Median days waited so far by those waiting on as_of. Null when withheld."
    )
    p90_days: int | None = Field(description="90th percentile of days waited so far. Null when withheld.")
    breached_waiting: int | None = Field(
        description="Clocks past their breach date on as_of, the child still waiting. Null when withheld."
    )
    imminent: int | None = Field(description="Clocks breaching within 7 days of as_of. Null when withheld.")
    breaches_next_4_weeks: list[int | None] = Field(
        description="Clocks breaching in each of the next 4 weeks after as_of (days 1-7, 8-14, 15-21, 22-28); each "
        "count null when withheld."
    )
    pct_within_target: float | None = Field(
        description="Of its clocks stopped in the 365 days to as_of, the percentage met. Null when withheld or none."
    )
    withheld: list[str] = Field(
        description="Fields withheld by disclosure control (each null); a service's own organisation sees it in full."
    )


def page() -> StaticFiles:
    return StaticFiles(directory=str(files("waitlists").joinpath("dashboard")), html=True)


@router.get("/scopes", response_model=ScopesOut, summary="Areas, organisations and services to filter by")
async def scopes(_caller: Operations, uow: UnitOfWorkDep) -> ScopesOut:
    """For the dashboard (roles ops and admin): every area, organisation and service there are figures for,
    with the names to show."""
    found = await dashboard.scope_choices(uow)
    return ScopesOut(
        areas=found.areas,
        area_choices=[Choice(id=a, name=found.area_names[a], parent="") for a in found.areas],
        organisations=[Choice(id=o.organisation_id, name=o.name, parent=o.area_id) for o in found.organisations],
        services=[Choice(id=s.service_id, name=s.name, parent=s.organisation_id) for s in found.services],
    )


@router.get("/services", response_model=list[ServiceRiskOut], summary="Services ranked by breach risk")
async def services(
    caller: Operations, uow: UnitOfWorkDep, scope: ScopeQuery, scope_id: ScopeIdQuery, as_of: AsOf = None
) -> list[ServiceRiskOut]:
    """For the dashboard (roles ops and admin): the services in scope, most at risk of breaching first, with
    their waiting figures and breaches due in each of the next 4 weeks. Under disclosure control as in the
    figures."""
    try:
        rows = await dashboard.services_by_risk(scope, scope_id, as_of_or_today(as_of), uow,
                                                viewer=caller.organisation_id)  # fmt: skip
    except UnknownScope as exc:
        raise not_found(scope, scope_id) from exc
    return [ServiceRiskOut.model_validate(r, from_attributes=True) for r in rows]
