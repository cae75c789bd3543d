"""Directory and audit endpoints (v1).

Anyone signed in reads the directory. A ``platform_admin`` registers and changes organisations and any service,
and reads the whole audit log; an organisation's ``admin`` changes only its own organisation's services and
reads only its own organisation's audit entries. Neither reads a referral (see the referrals API).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from referrals.adapters.directory import SqlDirectory
from referrals.adapters.orm import audit_log
from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import Clock, Organisation, OrganisationKind, Service
from referrals.entrypoints.api import known_organisation
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN, REFERRAL_ID_PATTERN, FilterInstant, Text
from referrals.service_layer import directory as directory_cases
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.auth import Principal, Role, TokenVerifier, principal_dependency, require_roles
from send_shared.web.problems import Problem


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    kind: OrganisationKind
    area_id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="Local authority area.")
    trust_id: str | None = Field(
        None, max_length=64, pattern=IDENTIFIER_PATTERN, description="The trust a school belongs to."
    )


class OrganisationOut(OrganisationIn):
    id: str
    version: int


class ServiceIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "organisation_id": "org-northshire-camhs",
                    "name": "CAMHS neurodevelopmental",
                    "needs": ["ASD", "SEMH"],
                    "urgencies": ["routine"],
                    "clocks": ["service_target"],
                    "target_days": 126,
                }
            ]
        },
    )

    organisation_id: str = Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)
    name: Text = Field(min_length=1, max_length=200)
    needs: list[NeedCode] = Field(min_length=1)
    urgencies: list[Urgency] = Field(min_length=1)
    clocks: list[Clock] = Field(default_factory=list)
    target_days: int | None = Field(None, ge=1, le=3650, description="Target of the service_target clock.")
    active: bool = True


class ServiceOut(ServiceIn):
    id: str
    version: int


class AuditEntry(BaseModel):
    at: datetime
    subject: str
    organisation_id: str
    role: str
    action: str
    referral_id: str | None


def _org_out(o: Organisation) -> OrganisationOut:
    return OrganisationOut(id=o.id, version=o.version, name=o.name, kind=o.kind, area_id=o.area_id, trust_id=o.trust_id)


def _service_out(s: Service) -> ServiceOut:
    return ServiceOut.model_validate(
        {
            "id": s.id,
            "version": s.version,
            "organisation_id": s.organisation_id,
            "name": s.name,
            "needs": list(s.needs),
            "urgencies": list(s.urgencies),
            "clocks": list(s.clocks),
            "target_days": s.target_days,
            "active": s.active,
        }
    )


def build_admin_router(
    *,
    make_uow: Callable[[], UnitOfWork],
    sessions: async_sessionmaker[AsyncSession],
    verifier: TokenVerifier,
    event_source: str,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["directory and audit"])
    anyone = Annotated[Principal, Depends(principal_dependency(verifier))]
    platform_admin = Annotated[Principal, Depends(require_roles(verifier, Role.PLATFORM_ADMIN))]
    # A platform admin keeps the directory whatever its token's organisation (it registers organisations); an
    # organisation's admin acts for an organisation that must be in the directory.
    platform_or_admin = Annotated[Principal, Depends(require_roles(verifier, Role.PLATFORM_ADMIN, Role.ADMIN))]
    known_admin = known_organisation(verifier, make_uow, Role.ADMIN)

    async def admin_of_known_organisation(caller: Principal) -> None:
        if caller.role is Role.ADMIN:
            await known_admin(caller)

    item_id = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]

    @router.get("/directory/organisations", response_model=list[OrganisationOut], summary="Every organisation")
    async def organisations(_caller: anyone) -> list[OrganisationOut]:
        async with sessions() as session:
            return [_org_out(o) for o in await SqlDirectory(session).all_organisations()]

    @router.get("/directory/services", response_model=list[ServiceOut], summary="Every service and its clocks")
    async def services(_caller: anyone) -> list[ServiceOut]:
        async with sessions() as session:
            return [_service_out(s) for s in await SqlDirectory(session).all_services()]

    @router.put(
        "/directory/organisations/{organisation_id}", response_model=OrganisationOut, summary="Register or change"
    )
    async def put_organisation(
        organisation_id: item_id, body: OrganisationIn, _caller: platform_admin
    ) -> OrganisationOut:
        org = Organisation(organisation_id, body.name, body.kind, body.area_id, body.trust_id)
        try:
            saved = await directory_cases.upsert_organisation(org, make_uow(), source=event_source)
        except directory_cases.DirectoryConflict as exc:
            raise _invalid(exc) from exc
        return _org_out(saved)

    @router.put("/directory/services/{service_id}", response_model=ServiceOut, summary="Register or change a service")
    async def put_service(service_id: item_id, body: ServiceIn, caller: platform_or_admin) -> ServiceOut:
        await admin_of_known_organisation(caller)
        if caller.role is Role.ADMIN and body.organisation_id != caller.organisation_id:
            raise _not_yours("an organisation's admin registers services of its own organisation only")
        if Clock.SERVICE_TARGET in body.clocks and body.target_days is None:
            raise _invalid(directory_cases.DirectoryConflict("target_days", "a service_target clock needs target_days"))
        service = Service(
            service_id,
            body.organisation_id,
            body.name,
            tuple(n.value for n in body.needs),
            tuple(u.value for u in body.urgencies),
            tuple(c.value for c in body.clocks),
            body.target_days,
            body.active,
        )
        try:
            saved = await directory_cases.upsert_service(
                service,
                make_uow(),
                source=event_source,
                owner=caller.organisation_id if caller.role is Role.ADMIN else None,
            )
        except directory_cases.NotOwner as exc:
            raise _not_yours(str(exc)) from exc
        except directory_cases.DirectoryConflict as exc:
            raise _invalid(exc) from exc
        return _service_out(saved)

    @router.get("/audit", response_model=list[AuditEntry], summary="Who read personal data, newest first")
    async def audit(
        caller: platform_or_admin,
        referral_id: Annotated[str | None, Query(max_length=36, pattern=REFERRAL_ID_PATTERN)] = None,
        organisation_id: Annotated[str | None, Query(max_length=64, pattern=IDENTIFIER_PATTERN)] = None,
        since: FilterInstant | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AuditEntry]:
        """A platform admin reads every entry; an organisation's admin only its own organisation's."""
        await admin_of_known_organisation(caller)
        if caller.role is Role.ADMIN:
            if organisation_id not in (None, caller.organisation_id):
                raise _not_yours("an organisation's admin reads its own organisation's audit entries only")
            organisation_id = caller.organisation_id
        query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
        if referral_id:
            query = query.where(audit_log.c.referral_id == referral_id)
        if organisation_id:
            query = query.where(audit_log.c.organisation_id == organisation_id)
        if since:
            query = query.where(audit_log.c.at >= since)
        async with sessions() as session:
            rows = (await session.execute(query)).mappings()
            return [AuditEntry.model_validate(dict(r)) for r in rows]

    return router


def _not_yours(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, kind="forbidden")


def _invalid(exc: directory_cases.DirectoryConflict) -> Problem:
    return Problem(
        422,
        "Validation failed",
        str(exc),
        kind="validation",
        errors=[{"field": exc.field, "rule": "directory", "message": str(exc)}],
    )
