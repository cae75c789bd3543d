"""The directory of organisations and services.

Anyone signed in reads the directory. A ``platform_admin`` registers and changes organisations and any service;
an organisation's ``admin`` changes only its own organisation's services. Neither reads a referral.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from referrals.domain.directory import DirectoryConflict, Organisation, Service
from referrals.entrypoints.dependencies import (
    Anyone,
    Lookup,
    PlatformAdmin,
    PlatformOrAdmin,
    Settings,
    Uow,
    check_admin_of_known_organisation,
)
from referrals.entrypoints.directory_schemas import (
    OrganisationIn,
    OrganisationOut,
    ServiceIn,
    ServiceOut,
    organisation_out,
    service_out,
)
from referrals.entrypoints.problems import forbidden
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN
from referrals.service_layer import directory as directory_cases
from send_shared.auth import Role
from send_shared.web.problems import Problem

router = APIRouter(prefix="/v1", tags=["directory and audit"])

OrganisationId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="The organisation's directory id."),
]
ServiceId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="The service's directory id.")
]


@router.get("/directory/organisations", response_model=list[OrganisationOut], summary="Every organisation")
async def organisations(_caller: Anyone, uow: Uow) -> list[OrganisationOut]:
    """Every organisation in the directory (schools, trusts, CAMHS, local authorities, ...), for anyone signed in."""
    return [organisation_out(o) for o in await directory_cases.all_organisations(uow)]


@router.get("/directory/services", response_model=list[ServiceOut], summary="Every service and its clocks")
async def services(_caller: Anyone, uow: Uow) -> list[ServiceOut]:
    """Every service in the directory, with the needs and urgencies it takes and the waiting-time clocks it runs:
    where to refer a child. For anyone signed in."""
    return [service_out(s) for s in await directory_cases.all_services(uow)]


@router.put("/directory/organisations/{organisation_id}", response_model=OrganisationOut, summary="Register or change")
async def put_organisation(
    organisation_id: OrganisationId, body: OrganisationIn, _caller: PlatformAdmin, uow: Uow, settings: Settings
) -> OrganisationOut:
    """Register an organisation under this id, or change it. Platform admins only."""
    org = Organisation(organisation_id, body.name, body.kind, body.area_id, body.trust_id)
    try:
        saved = await directory_cases.upsert_organisation(org, uow, source=settings.event_source)
    except DirectoryConflict as exc:
        raise invalid_entry(exc) from exc
    return organisation_out(saved)


@router.put("/directory/services/{service_id}", response_model=ServiceOut, summary="Register or change a service")
async def put_service(
    service_id: ServiceId, body: ServiceIn, caller: PlatformOrAdmin, is_known: Lookup, uow: Uow, settings: Settings
) -> ServiceOut:
    """Register a service under this id, or change it. A platform admin for any organisation; an
    organisation's admin for its own organisation's services only."""
    await check_admin_of_known_organisation(caller, is_known)
    service = Service(
        service_id,
        body.organisation_id,
        body.name,
        tuple(body.needs),
        tuple(body.urgencies),
        tuple(body.clocks),
        body.target_days,
        body.active,
        contact_phone=body.contact_phone,
        contact_email=body.contact_email,
        contact_url=body.contact_url,
    )
    try:
        saved = await directory_cases.upsert_service(
            service,
            uow,
            source=settings.event_source,
            owner=caller.organisation_id if caller.role is Role.ADMIN else None,
        )
    except directory_cases.NotOwner as exc:
        raise forbidden(str(exc)) from exc
    except DirectoryConflict as exc:
        raise invalid_entry(exc) from exc
    return service_out(saved)


def invalid_entry(exc: DirectoryConflict) -> Problem:
    return Problem(
        422,
        "Validation failed",
        str(exc),
        kind="validation",
        errors=[{"field": exc.field, "rule": "directory", "message": str(exc)}],
    )
