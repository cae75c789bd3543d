"""Dashboard data endpoints (v1) and the dashboard page itself (served at /dashboard)."""

from datetime import date
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from send_shared.auth import Principal, Role, TokenVerifier, require_known_roles
from send_shared.web.problems import Problem
from waitlists.adapters.timelines import Scope
from waitlists.entrypoints.edge import ReportDate, ScopeIdQuery, as_of_or_today, directory_member
from waitlists.service_layer import dashboard
from waitlists.service_layer.reporting import UnknownScope


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


def dashboard_page() -> StaticFiles:
    return StaticFiles(directory=str(files("waitlists").joinpath("dashboard")), html=True)


def build_dashboard_router(*, sessions: async_sessionmaker[AsyncSession], verifier: TokenVerifier) -> APIRouter:
    router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])
    ops = Annotated[Principal, Depends(require_known_roles(verifier, directory_member(sessions), Role.OPS, Role.ADMIN))]

    @router.get("/scopes", response_model=ScopesOut, summary="Areas, organisations and services to filter by")
    async def scopes(_caller: ops) -> ScopesOut:
        found = await dashboard.scope_choices(sessions)
        return ScopesOut(
            areas=found.areas,
            area_choices=[Choice(id=a, name=found.area_names[a], parent="") for a in found.areas],
            organisations=[Choice(id=i, name=n, parent=p) for i, n, p in found.organisations],
            services=[Choice(id=i, name=n, parent=p) for i, n, p in found.services],
        )

    @router.get("/trend", response_model=list[TrendOut], summary="% within target per month, for 12 months")
    async def trend(
        caller: ops, scope: Scope, scope_id: ScopeIdQuery, as_of: ReportDate | None = None,
        months: Annotated[int, Query(ge=1, le=36)] = 12,
    ) -> list[TrendOut]:  # fmt: skip
        try:
            points = await dashboard.trend(
                scope, scope_id, as_of_or_today(as_of), months, sessions, viewer=caller.organisation_id
            )
        except UnknownScope as exc:
            raise Problem(404, "Not found", f"no {scope.value} {scope_id!r} is known", kind="not-found") from exc
        return [TrendOut.model_validate(p, from_attributes=True) for p in points]

    @router.get("/services", response_model=list[ServiceRiskOut], summary="Services ranked by breach risk")
    async def services(
        caller: ops, scope: Scope, scope_id: ScopeIdQuery, as_of: ReportDate | None = None
    ) -> list[ServiceRiskOut]:
        try:
            rows = await dashboard.services_by_risk(
                scope, scope_id, as_of_or_today(as_of), sessions, viewer=caller.organisation_id
            )
        except UnknownScope as exc:
            raise Problem(404, "Not found", f"no {scope.value} {scope_id!r} is known", kind="not-found") from exc
        return [ServiceRiskOut.model_validate(r, from_attributes=True) for r in rows]

    return router
