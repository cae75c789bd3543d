"""Organisations and service names from the directory's events, and each organisation's email contacts, in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import contacts, organisations, service_names
from send_shared.db import upsert_insert


class SqlDirectoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_organisation(self, organisation_id: str, version: int) -> None:
        stmt = upsert_insert(self.session)(organisations).values(organisation_id=organisation_id, version=version)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[organisations.c.organisation_id],
                set_={"version": version},
                where=organisations.c.version < stmt.excluded.version,
            )
        )

    async def organisation_known(self, organisation_id: str) -> bool:
        found = await self.session.execute(
            select(organisations.c.organisation_id).where(organisations.c.organisation_id == organisation_id)
        )
        return found.first() is not None

    async def record_service_name(self, service_id: str, name: str, version: int) -> None:
        stmt = upsert_insert(self.session)(service_names).values(service_id=service_id, name=name, version=version)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[service_names.c.service_id],
                set_={"name": name, "version": version},
                where=service_names.c.version < stmt.excluded.version,
            )
        )

    async def service_names(self) -> dict[str, str]:
        rows = await self.session.execute(select(service_names.c.service_id, service_names.c.name))
        return {row.service_id: row.name for row in rows}

    async def set_contacts(self, organisation_id: str, emails: Sequence[str], now: datetime) -> None:
        stmt = upsert_insert(self.session)(contacts).values(
            organisation_id=organisation_id, emails=list(emails), updated_at=now
        )
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[contacts.c.organisation_id],
                set_={"emails": stmt.excluded.emails, "updated_at": stmt.excluded.updated_at},
            )
        )

    async def contacts(self) -> dict[str, list[str]]:
        rows = await self.session.execute(select(contacts.c.organisation_id, contacts.c.emails))
        return {organisation_id: list(emails or []) for organisation_id, emails in rows}
