"""Reading the audit log: a platform admin reads every entry, an organisation's admin its own organisation's."""

from __future__ import annotations

from referrals.domain.audit import AuditEntry, AuditQuery
from referrals.domain.errors import DomainError
from referrals.service_layer.callers import Caller
from referrals.service_layer.unit_of_work import UnitOfWork

ORGANISATION_ADMIN = "admin"


class NotYourOrganisation(DomainError):
    """An organisation's admin asked for another organisation's entries."""


async def audit_entries(query: AuditQuery, caller: Caller, uow: UnitOfWork) -> list[AuditEntry]:
    if caller.role == ORGANISATION_ADMIN:
        if query.organisation_id not in (None, caller.organisation_id):
            raise NotYourOrganisation("an organisation's admin reads its own organisation's audit entries only")
        query = AuditQuery(query.limit, query.referral_id, caller.organisation_id, query.since)
    async with uow:
        return await uow.audit_log.entries(query)
