"""The organisations of the directory as notifications knows them (from the directory's events), and where
each wants email.

A caller's token must name an organisation in the directory (issue #13): ``directory_member`` is the
lookup the API's ``require_known_roles`` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from notifications.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory
from send_shared.auth import OrganisationLookup


def directory_member(unit_of_work: UnitOfWorkFactory) -> OrganisationLookup:
    """Whether an organisation is in the directory as notifications has it from the directory's events."""

    async def is_known(organisation_id: str) -> bool:
        async with unit_of_work() as uow:
            return await uow.directory.organisation_known(organisation_id)

    return is_known


async def set_contacts(uow: UnitOfWork, organisation_id: str, emails: Sequence[str]) -> None:
    """The addresses that get the organisation's email from now on (replacing those it gave before)."""
    async with uow:
        await uow.directory.set_contacts(organisation_id, emails, datetime.now(UTC))
        await uow.commit()
