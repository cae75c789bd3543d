"""The directory of organisations and services, in its tables."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from referrals.adapters.interim_repository import ESTIMATE_COLUMNS, estimate_from_row
from referrals.adapters.orm import directory_services, organisations, service_wait_estimates
from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import Clock, Organisation, OrganisationKind, Service
from referrals.domain.interim import WaitEstimate
from send_shared import direct
from send_shared.db import Db

# Built once (every request reads the directory): see referral_repository.
_SERVICE = select(directory_services).where(directory_services.c.id == bindparam("id"))
_ACTIVE_SERVICE = _SERVICE.where(directory_services.c.active)
_ORGANISATION = select(organisations).where(organisations.c.id == bindparam("id"))
# A submission's service and the wait waitlists last predicted there, in one round trip.
_ACTIVE_SERVICE_WITH_ESTIMATE = (
    select(directory_services, *(service_wait_estimates.c[name].label(f"estimate_{name}") for name in ESTIMATE_COLUMNS))
    .outerjoin(service_wait_estimates, service_wait_estimates.c.service_id == directory_services.c.id)
    .where(directory_services.c.id == bindparam("id"), directory_services.c.active)
)


class SqlDirectoryRepository:
    def __init__(self, session: Db) -> None:
        self.session = session

    async def service(self, service_id: str, *, include_inactive: bool = False) -> Service | None:
        query = _SERVICE if include_inactive else _ACTIVE_SERVICE
        row = (await direct.execute(self.session, query, {"id": service_id})).first_mapping()
        return _service_from_row(row) if row else None

    async def service_with_estimate(self, service_id: str) -> tuple[Service, WaitEstimate | None] | None:
        row = (await direct.execute(self.session, _ACTIVE_SERVICE_WITH_ESTIMATE, {"id": service_id})).first_mapping()
        if row is None:
            return None
        estimate = estimate_from_row(row, "estimate_") if row["estimate_service_id"] is not None else None
        return _service_from_row(row), estimate

    async def organisation(self, organisation_id: str) -> Organisation | None:
        row = (await self.session.execute(_ORGANISATION, {"id": organisation_id})).mappings().first()
        return _organisation_from_row(row) if row else None

    async def all_services(self) -> list[Service]:
        rows = (await self.session.execute(select(directory_services).order_by(directory_services.c.id))).mappings()
        return [_service_from_row(r) for r in rows]

    async def all_organisations(self) -> list[Organisation]:
        rows = (await self.session.execute(select(organisations).order_by(organisations.c.id))).mappings()
        return [_organisation_from_row(r) for r in rows]

    async def save_organisation(self, org: Organisation) -> Organisation:
        """Insert or replace; returns it with its new version."""
        current = await self.organisation(org.id)
        version = 1 if current is None else current.version + 1
        values = {
            "name": org.name,
            "kind": org.kind.value,
            "area_id": org.area_id,
            "trust_id": org.trust_id,
            "version": version,
        }
        if current is None:
            await self.session.execute(insert(organisations).values(id=org.id, **values))
        else:
            await self.session.execute(update(organisations).where(organisations.c.id == org.id).values(**values))
        return replace(org, version=version)

    async def save_service(self, service: Service) -> Service:
        """Insert or replace; returns it with its new version."""
        current = await self.service(service.id, include_inactive=True)
        version = 1 if current is None else current.version + 1
        values = {
            "organisation_id": service.organisation_id,
            "name": service.name,
            "needs": list(service.needs),
            "urgencies": list(service.urgencies),
            "clocks": list(service.clocks),
            "target_days": service.target_days,
            "active": service.active,
            "version": version,
            "contact_phone": service.contact_phone,
            "contact_email": service.contact_email,
            "contact_url": service.contact_url,
        }
        if current is None:
            await self.session.execute(insert(directory_services).values(id=service.id, **values))
        else:
            await self.session.execute(
                update(directory_services).where(directory_services.c.id == service.id).values(**values)
            )
        return replace(service, version=version)


def _service_from_row(row: Any) -> Service:
    return Service(
        id=row["id"],
        organisation_id=row["organisation_id"],
        name=row["name"],
        needs=tuple(NeedCode(n) for n in row["needs"]),
        urgencies=tuple(Urgency(u) for u in row["urgencies"]),
        clocks=tuple(Clock(c) for c in row["clocks"]),
        target_days=row["target_days"],
        active=row["active"],
        version=row["version"],
        contact_phone=row["contact_phone"],
        contact_email=row["contact_email"],
        contact_url=row["contact_url"],
    )


def _organisation_from_row(row: Any) -> Organisation:
    return Organisation(
        id=row["id"],
        name=row["name"],
        kind=OrganisationKind(row["kind"]),
        area_id=row["area_id"],
        trust_id=row["trust_id"],
        version=row["version"],
    )
