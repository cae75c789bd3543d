"""Organisations and service names from the directory's events, and each organisation's email contacts, in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import contacts, organisations, service_names
from send_shared.db import ByDialect, upsert_insert


def _record_organisation(insert: Any) -> Any:
    stmt = insert(organisations)
    return stmt.on_conflict_do_update(
        index_elements=[organisations.c.organisation_id],
        set_={"version": stmt.excluded.version},
        where=organisations.c.version < stmt.excluded.version,
    )


def _record_service_name(insert: Any) -> Any:
    stmt = insert(service_names)
    return stmt.on_conflict_do_update(
        index_elements=[service_names.c.service_id],
        set_={"name": stmt.excluded.name, "version": stmt.excluded.version},
        where=service_names.c.version < stmt.excluded.version,
    )


# Built once (the directory's events, and every request's check that its organisation is known): a statement built
# per call costs its construction and its cache key every time.
_RECORD_ORGANISATION = ByDialect(_record_organisation)
_RECORD_SERVICE_NAME = ByDialect(_record_service_name)
_ORGANISATION_KNOWN = select(organisations.c.organisation_id).where(
    organisations.c.organisation_id == bindparam("organisation_id")
)


class SqlDirectoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record_organisation(self, organisation_id: str, version: int) -> None:
        row = {"organisation_id": organisation_id, "version": version}
        await self.session.execute(_RECORD_ORGANISATION(self.session), row)

    async def organisation_known(self, organisation_id: str) -> bool:
        found = await self.session.execute(_ORGANISATION_KNOWN, {"organisation_id": organisation_id})
        return found.first() is not None

    async def record_service_name(self, service_id: str, name: str, version: int) -> None:
        row = {"service_id": service_id, "name": name, "version": version}
        await self.session.execute(_RECORD_SERVICE_NAME(self.session), row)

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
