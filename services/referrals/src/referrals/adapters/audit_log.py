"""The audit log table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from referrals.adapters.orm import audit_log
from referrals.domain.audit import AuditAction, AuditEntry, AuditQuery
from send_shared.db import Db


class SqlAuditLog:
    def __init__(self, session: Db) -> None:
        self.session = session

    async def add(self, entry: AuditEntry) -> None:
        await self.session.execute(
            insert(audit_log).values(
                at=entry.at,
                subject=entry.subject,
                organisation_id=entry.organisation_id,
                role=entry.role,
                action=entry.action.value,
                referral_id=entry.referral_id,
            )
        )

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        c = audit_log.c
        statement = select(audit_log).order_by(c.at.desc(), c.id.desc()).limit(query.limit)
        if query.referral_id:
            statement = statement.where(c.referral_id == query.referral_id)
        if query.organisation_id:
            statement = statement.where(c.organisation_id == query.organisation_id)
        if query.since:
            statement = statement.where(c.at >= query.since)
        return [_entry_from_row(row) for row in (await self.session.execute(statement)).mappings()]


def _entry_from_row(row: Any) -> AuditEntry:
    return AuditEntry(
        at=row["at"],
        subject=row["subject"],
        organisation_id=row["organisation_id"],
        role=row["role"],
        action=AuditAction(row["action"]),
        referral_id=row["referral_id"],
    )
