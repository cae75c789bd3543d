"""The organisations of the directory as notifications knows them, from the directory's events.

A caller's token must name an organisation in the directory (issue #13): ``directory_member`` is the
lookup the API's ``require_known_roles`` uses. The newest version of an organisation wins; an event
seen again, or an older one, changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.orm import organisations
from send_shared.auth import OrganisationLookup
from send_shared.db import upsert_insert
from send_shared.events.schemas import OrganisationV1


async def record_organisation(session: AsyncSession, data: OrganisationV1) -> None:
    insert = upsert_insert(session)
    stmt = insert(organisations).values(organisation_id=data.organisation_id, version=data.version)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[organisations.c.organisation_id],
            set_={"version": data.version},
            where=organisations.c.version < stmt.excluded.version,
        )
    )


async def organisation_known(session: AsyncSession, organisation_id: str) -> bool:
    found = await session.execute(
        select(organisations.c.organisation_id).where(organisations.c.organisation_id == organisation_id)
    )
    return found.first() is not None


def directory_member(sessions: async_sessionmaker[AsyncSession]) -> OrganisationLookup:
    """Whether an organisation is in the directory as notifications has it from the directory's events."""

    async def is_known(organisation_id: str) -> bool:
        async with sessions() as session:
            return await organisation_known(session, organisation_id)

    return is_known
