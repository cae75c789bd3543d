"""The directory in the projection: organisations and services as their newest events gave them, and the
services of a scope with the clocks each runs."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared import direct
from send_shared.db import InList, upsert_insert
from waitlists.adapters.orm import organisations, services
from waitlists.domain.clocks import ServiceClocks
from waitlists.domain.directory import OrganisationEntry, ServiceEntry
from waitlists.domain.scope import Scope

_LOCAL_AUTHORITY = "local_authority"
_CLOCKS = select(services.c.service_id, services.c.clocks, services.c.target_days).order_by(services.c.service_id)
# Every consumer batch reads its services' clocks: built once.
_CLOCKS_OF = _CLOCKS.where(InList(services.c.service_id, "ids"))


class SqlDirectory:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def service(self, service_id: str) -> ServiceEntry | None:
        found = await self.services([service_id])
        return found.get(service_id)

    async def services(self, service_ids: Collection[str] | None = None) -> dict[str, ServiceEntry]:
        """These services (every one for None), in name order."""
        query = select(services).order_by(services.c.name)
        if service_ids is not None:
            query = query.where(services.c.service_id.in_(service_ids))
        return {r.service_id: _service(r) for r in await self._session.execute(query)}

    async def save_service(self, entry: ServiceEntry) -> None:
        values = {"organisation_id": entry.organisation_id, "name": entry.name, "clocks": list(entry.clocks),
                  "target_days": entry.target_days, "active": entry.active, "version": entry.version}  # fmt: skip
        await self._upsert(services, services.c.service_id, entry.service_id, values)

    async def organisation(self, organisation_id: str) -> OrganisationEntry | None:
        found = await self._organisations(organisations.c.organisation_id == organisation_id)
        return found[0] if found else None

    async def save_organisation(self, entry: OrganisationEntry) -> None:
        values = {"name": entry.name, "kind": entry.kind, "area_id": entry.area_id, "version": entry.version}
        await self._upsert(organisations, organisations.c.organisation_id, entry.organisation_id, values)

    async def organisation_known(self, organisation_id: str) -> bool:
        found = await self._session.execute(
            select(organisations.c.organisation_id).where(organisations.c.organisation_id == organisation_id)
        )
        return found.first() is not None

    async def providers(self) -> list[OrganisationEntry]:
        """The organisations that run services, in name order."""
        return await self._organisations(organisations.c.organisation_id.in_(select(services.c.organisation_id)))

    async def local_authorities(self) -> list[OrganisationEntry]:
        return await self._organisations(organisations.c.kind == _LOCAL_AUTHORITY, organisations.c.organisation_id)

    async def areas(self) -> list[str]:
        return sorted((await self._session.execute(select(organisations.c.area_id).distinct())).scalars())

    async def scope_services(self, scope: Scope, scope_id: str) -> dict[str, ServiceClocks]:
        """The services in a scope, in id order, with the clocks each runs."""
        if scope is Scope.SERVICE:
            condition = services.c.service_id == scope_id
        elif scope is Scope.ORGANISATION:
            condition = services.c.organisation_id == scope_id
        else:
            orgs = select(organisations.c.organisation_id).where(organisations.c.area_id == scope_id)
            condition = services.c.organisation_id.in_(orgs)
        return await self._clocks(condition)

    async def service_clocks(self, service_ids: Collection[str] | None = None) -> dict[str, ServiceClocks]:
        """The clocks of these services (every one for None), in id order."""
        if service_ids is None:
            return await self._clocks(true())
        rows = await direct.execute(self._session, _CLOCKS_OF, {"ids": list(service_ids)})
        return {service_id: ServiceClocks.named(clocks, target_days) for service_id, clocks, target_days in rows}

    async def area_services(self, scope: Scope, scope_id: str) -> tuple[str, dict[str, str]]:
        """The area holding a scope, and each of the area's services with its organisation."""
        if scope is Scope.AREA:
            area_id = scope_id
        else:
            org = select(services.c.organisation_id).where(services.c.service_id == scope_id).scalar_subquery()
            org_id = scope_id if scope is Scope.ORGANISATION else org
            found = (
                await self._session.execute(
                    select(organisations.c.area_id).where(organisations.c.organisation_id == org_id)
                )
            ).first()
            area_id = found.area_id if found else ""
        rows = await self._session.execute(
            select(services.c.service_id, services.c.organisation_id).where(
                services.c.organisation_id.in_(
                    select(organisations.c.organisation_id).where(organisations.c.area_id == area_id)
                )
            )
        )
        return area_id, {r.service_id: r.organisation_id for r in rows}

    async def _clocks(self, condition: ColumnElement[bool]) -> dict[str, ServiceClocks]:
        rows = await self._session.execute(_CLOCKS.where(condition))
        return {service_id: ServiceClocks.named(clocks, target_days) for service_id, clocks, target_days in rows}

    async def _organisations(self, condition: ColumnElement[bool], order: Any = None) -> list[OrganisationEntry]:
        o = organisations
        rows = await self._session.execute(select(o).where(condition).order_by(o.c.name if order is None else order))
        return [OrganisationEntry(r.organisation_id, r.name, r.kind, r.area_id, r.version) for r in rows]

    async def _upsert(self, table: Any, key: Any, key_value: str, values: dict[str, Any]) -> None:
        insert = upsert_insert(self._session)
        stmt = insert(table).values({key.name: key_value, **values})
        await self._session.execute(stmt.on_conflict_do_update(index_elements=[key], set_=values))


def _service(r: Any) -> ServiceEntry:
    return ServiceEntry(r.service_id, r.organisation_id, r.name, tuple(r.clocks), r.target_days, r.active, r.version)
