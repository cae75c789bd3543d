"""Directory use cases: register or change organisations and services; each change is an event."""

from __future__ import annotations

from collections.abc import Sequence

from referrals.adapters.event_mapping import organisation_event, service_event
from referrals.domain.directory import DirectoryConflict, Organisation, OrganisationKind, Service, check_service
from referrals.domain.errors import DomainError
from referrals.domain.interim import WaitEstimate
from referrals.service_layer.errors import UnknownService
from referrals.service_layer.repositories import DirectoryRepository
from referrals.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory


class NotOwner(DomainError):
    """An organisation's admin tried to change a service of another organisation."""


async def find_service(directory: DirectoryRepository, service_id: str, field: str) -> Service:
    """The active service, or UnknownService naming the request's ``field``."""
    service = await directory.service(service_id)
    if service is None:
        raise UnknownService(field, service_id)
    return service


async def find_service_with_estimate(
    directory: DirectoryRepository, service_id: str, field: str
) -> tuple[Service, WaitEstimate | None]:
    """The active service and the wait last predicted there, or UnknownService naming the request's ``field``."""
    found = await directory.service_with_estimate(service_id)
    if found is None:
        raise UnknownService(field, service_id)
    return found


async def upsert_organisation(org: Organisation, uow: UnitOfWork, *, source: str) -> Organisation:
    async with uow:
        saved = await _save_organisation(org, uow)
        uow.emit(organisation_event(saved, source), saved.id)
        await uow.commit()
    return saved


async def upsert_service(service: Service, uow: UnitOfWork, *, source: str, owner: str | None = None) -> Service:
    """Registers or changes a service; with ``owner`` (an organisation's admin), only a service that is and
    stays that organisation's, checked in the same transaction as the change."""
    if owner is not None and service.organisation_id != owner:
        raise NotOwner("an organisation's admin registers services of its own organisation only")
    check_service(service)
    async with uow:
        if owner is not None:
            current = await uow.directory.service(service.id, include_inactive=True)
            if current is not None and current.organisation_id != owner:
                raise NotOwner("an organisation's admin changes its own organisation's services only")
        saved = await _save_service(service, uow)
        uow.emit(service_event(saved, source), saved.id)
        await uow.commit()
    return saved


async def seed_if_empty(
    orgs: Sequence[Organisation], services: Sequence[Service], uow: UnitOfWork, *, source: str
) -> int:
    """Loads the seed directory into an empty directory (first start); returns how many entries it added."""
    async with uow:
        if await uow.directory.all_organisations():
            return 0
        for org in orgs:
            uow.emit(organisation_event(await _save_organisation(org, uow), source), org.id)
        for service in services:
            uow.emit(service_event(await _save_service(service, uow), source), service.id)
        await uow.commit()
    return len(orgs) + len(services)


async def _save_organisation(org: Organisation, uow: UnitOfWork) -> Organisation:
    if org.trust_id:
        trust = await uow.directory.organisation(org.trust_id)
        if trust is None or trust.kind is not OrganisationKind.TRUST:
            raise DirectoryConflict("trust_id", "trust_id must name an organisation of kind trust")
    return await uow.directory.save_organisation(org)


async def _save_service(service: Service, uow: UnitOfWork) -> Service:
    if await uow.directory.organisation(service.organisation_id) is None:
        raise DirectoryConflict("organisation_id", "organisation_id must name an organisation in the directory")
    current = await uow.directory.service(service.id, include_inactive=True)
    if current is not None and current.organisation_id != service.organisation_id:
        raise DirectoryConflict("organisation_id", "a service cannot move to another organisation")
    return await uow.directory.save_service(service)


async def all_organisations(uow: UnitOfWork) -> list[Organisation]:
    async with uow:
        return await uow.directory.all_organisations()


async def all_services(uow: UnitOfWork) -> list[Service]:
    async with uow:
        return await uow.directory.all_services()


async def is_registered(organisation_id: str, uow: UnitOfWork) -> bool:
    async with uow:
        return await uow.directory.organisation(organisation_id) is not None


class KnownOrganisations:
    """Whether an organisation is in the directory (every authenticated request asks), remembering those that are:
    the directory never removes an organisation, so a yes stays true. An unknown organisation is looked up again
    each time, since any process may register it meanwhile."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow
        self._known: set[str] = set()  # no larger than the directory

    async def __call__(self, organisation_id: str) -> bool:
        if organisation_id in self._known:
            return True
        if await is_registered(organisation_id, self._uow()):
            self._known.add(organisation_id)
            return True
        return False
