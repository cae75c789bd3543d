"""The directory of organisations and services, and the interim offers (support while waiting) of each service.

Anyone signed in reads the directory. A ``platform_admin`` registers and changes organisations and any service;
an organisation's ``admin`` changes only its own organisation's services. Neither reads a referral.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from referrals.domain.directory import DirectoryConflict, Organisation, Service
from referrals.domain.interim import InterimOffer
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
    InterimOfferIn,
    InterimOfferOut,
    OrganisationIn,
    OrganisationOut,
    ServiceIn,
    ServiceOut,
    offer_out,
    organisation_out,
    service_out,
)
from referrals.entrypoints.problems import forbidden
from referrals.entrypoints.schemas import IDENTIFIER_PATTERN
from referrals.service_layer import directory as directory_cases
from referrals.service_layer import interim as interim_cases
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
OfferId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="The interim offer's directory id.")
]


@router.get("/directory/organisations", response_model=list[OrganisationOut], summary="Every organisation")
async def organisations(_caller: Anyone, uow: Uow) -> list[OrganisationOut]:
    """Every organisation in the directory (schools, trusts, CAMHS, local authorities, ...), for anyone signed in."""
    return [organisation_out(o) for o in await directory_cases.all_organisations(uow)]


@router.get("/directory/services", response_model=list[ServiceOut], summary="Every service and its clocks")
async def services(_caller: Anyone, uow: Uow) -> list[ServiceOut]:
    """Every service in the directory, with the needs and urgencies it takes, the waiting-time clocks it runs and
    how long children wait there (`wait_estimate`, as waitlists last predicted it: median and 90th percentile to
    support starting, or not enough data yet): where to refer a child. For anyone signed in."""
    found = await directory_cases.all_services(uow)
    estimates = await interim_cases.estimates(uow)
    return [service_out(s, estimates.get(s.id), with_estimate=True) for s in found]


@router.get(
    "/directory/interim-offers", response_model=list[InterimOfferOut], summary="Support while waiting, by service"
)
async def interim_offers(_caller: Anyone, uow: Uow) -> list[InterimOfferOut]:
    """Every interim offer in the directory: support a child can have while waiting for a service (the service's
    own, a trust's in-house specialists, voluntary organisations'), with the needs it suits and how to reach it.
    Referrals are signposted to active offers fitting the child's needs, urgency and age, the service's own first.
    For anyone signed in."""
    return [offer_out(o) for o in await interim_cases.all_offers(uow)]


@router.put(
    "/directory/interim-offers/{offer_id}", response_model=InterimOfferOut, summary="List or change an interim offer"
)
async def put_interim_offer(
    offer_id: OfferId, body: InterimOfferIn, caller: PlatformOrAdmin, is_known: Lookup, uow: Uow
) -> InterimOfferOut:
    """List an interim offer of a service under this id, or change it. A platform admin for any service; an
    organisation's admin for its own organisation's services only (the provider may be another organisation,
    a voluntary one say). It needs a way in: a phone, an email or a web page."""
    await check_admin_of_known_organisation(caller, is_known)
    offer = InterimOffer(
        id=offer_id,
        service_id=body.service_id,
        provider_org_id=body.provider_org_id,
        name=body.name,
        description=body.description,
        needs=tuple(body.needs),
        urgencies=tuple(body.urgencies),
        min_age=body.min_age,
        max_age=body.max_age,
        contact_phone=body.contact_phone,
        contact_email=body.contact_email,
        contact_url=body.contact_url,
        active=body.active,
    )
    try:
        saved = await interim_cases.upsert_offer(
            offer, uow, owner=caller.organisation_id if caller.role is Role.ADMIN else None
        )
    except directory_cases.NotOwner as exc:
        raise forbidden(str(exc)) from exc
    except DirectoryConflict as exc:
        raise invalid_entry(exc) from exc
    return offer_out(saved)


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
