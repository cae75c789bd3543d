"""Directory use cases: register or change organisations and services; each change is an event."""

from __future__ import annotations

from referrals.adapters.directory import seed_file
from referrals.domain.directory import Organisation, Service
from referrals.domain.model import DomainError
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import ORGANISATION_UPSERTED, SERVICE_UPSERTED, OrganisationV1, ServiceV1


class DirectoryConflict(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotOwner(DomainError):
    """An organisation's admin tried to change a service of another organisation."""


async def upsert_organisation(org: Organisation, uow: UnitOfWork, *, source: str) -> Organisation:
    async with uow:
        saved = await _save_organisation(org, uow)
        uow.emit(_organisation_event(saved, source), saved.id)
        await uow.commit()
    return saved


async def upsert_service(service: Service, uow: UnitOfWork, *, source: str, owner: str | None = None) -> Service:
    """Registers or changes a service; with ``owner`` (an organisation's admin), only a service that is and
    stays that organisation's, checked in the same transaction as the change."""
    async with uow:
        if owner is not None:
            current = await uow.directory.service(service.id, include_inactive=True)
            if service.organisation_id != owner or (current is not None and current.organisation_id != owner):
                raise NotOwner("an organisation's admin changes its own organisation's services only")
        saved = await _save_service(service, uow)
        uow.emit(_service_event(saved, source), saved.id)
        await uow.commit()
    return saved


async def seed_if_empty(uow: UnitOfWork, *, source: str) -> int:
    """Loads the seed file into an empty directory (first start); returns how many entries it added."""
    orgs, services = seed_file()
    async with uow:
        if await uow.directory.all_organisations():
            return 0
        for org in orgs:
            uow.emit(_organisation_event(await _save_organisation(org, uow), source), org.id)
        for service in services:
            uow.emit(_service_event(await _save_service(service, uow), source), service.id)
        await uow.commit()
    return len(orgs) + len(services)


async def _save_organisation(org: Organisation, uow: UnitOfWork) -> Organisation:
    if org.trust_id:
        trust = await uow.directory.organisation(org.trust_id)
        if trust is None or trust.kind != "trust":
            raise DirectoryConflict("trust_id", "trust_id must name an organisation of kind trust")
    return await uow.directory.save_organisation(org)


async def _save_service(service: Service, uow: UnitOfWork) -> Service:
    if await uow.directory.organisation(service.organisation_id) is None:
        raise DirectoryConflict("organisation_id", "organisation_id must name an organisation in the directory")
    current = await uow.directory.service(service.id, include_inactive=True)
    if current is not None and current.organisation_id != service.organisation_id:
        raise DirectoryConflict("organisation_id", "a service cannot move to another organisation")
    return await uow.directory.save_service(service)


def _organisation_event(org: Organisation, source: str) -> CloudEvent:
    data = OrganisationV1(
        organisation_id=org.id,
        version=org.version,
        name=org.name,
        kind=org.kind.value,
        area_id=org.area_id,
        trust_id=org.trust_id,
    )
    return CloudEvent(type=ORGANISATION_UPSERTED, source=source, subject=org.id, data=data.model_dump(mode="json"))


def _service_event(service: Service, source: str) -> CloudEvent:
    data = ServiceV1(
        service_id=service.id,
        version=service.version,
        organisation_id=service.organisation_id,
        name=service.name,
        needs=list(service.needs),
        urgencies=list(service.urgencies),
        clocks=list(service.clocks),
        target_days=service.target_days,
        active=service.active,
    )
    return CloudEvent(type=SERVICE_UPSERTED, source=source, subject=service.id, data=data.model_dump(mode="json"))
