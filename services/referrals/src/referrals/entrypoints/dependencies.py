"""What the routers depend on, as FastAPI dependencies that tests may swap with ``app.dependency_overrides``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from referrals.service_layer.callers import Caller
from referrals.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory
from referrals.settings import ReferralsSettings
from send_shared.auth import (
    CurrentPrincipal,
    OrganisationLookup,
    Principal,
    Role,
    organisation_lookup,
    require_known_roles,
    require_roles,
)


async def get_settings(request: Request) -> ReferralsSettings:
    settings: ReferralsSettings = request.app.state.settings
    return settings


async def get_uow(request: Request) -> UnitOfWork:
    """A new unit of work from the factory bootstrap put in ``app.state.uow_factory``."""
    factory: UnitOfWorkFactory = request.app.state.uow_factory
    return factory()


async def get_uow_factory(request: Request) -> UnitOfWorkFactory:
    """For a route that runs more than one use case (each its own unit of work)."""
    factory: UnitOfWorkFactory = request.app.state.uow_factory
    return factory


Settings = Annotated[ReferralsSettings, Depends(get_settings)]
Uow = Annotated[UnitOfWork, Depends(get_uow)]
UowFactory = Annotated[UnitOfWorkFactory, Depends(get_uow_factory)]

Anyone = CurrentPrincipal
# Only these two roles ever read or change a referral, and only for an organisation in the directory; which
# referral each may read is the domain's rule (Referral.readable_by).
Party = Annotated[Principal, Depends(require_known_roles(Role.REFERRER, Role.RECEIVER))]
Referrer = Annotated[Principal, Depends(require_known_roles(Role.REFERRER))]
PlatformAdmin = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN))]
# A platform admin keeps the directory whatever its token's organisation (it registers organisations); an
# organisation's admin acts for an organisation that must be in the directory (check_admin_of_known_organisation).
PlatformOrAdmin = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN, Role.ADMIN))]
Lookup = Annotated[OrganisationLookup, Depends(organisation_lookup)]
_known_admin = require_known_roles(Role.ADMIN)


async def check_admin_of_known_organisation(caller: Principal, is_known: OrganisationLookup) -> None:
    """An organisation's admin acts for an organisation in the directory (a 403 otherwise). The routes call it
    once the request is valid, so a bad request is a 422 whoever sends it."""
    if caller.role is Role.ADMIN:
        await _known_admin(caller, is_known)


def caller_of(principal: Principal) -> Caller:
    return Caller(principal.organisation_id, principal.role.value, principal.subject)
