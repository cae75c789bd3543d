"""Consent events of referrals over SQLAlchemy Core: one row per event in ``referral_consents``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from referrals.adapters.orm import referral_consents
from referrals.domain.consent import ConsentGiver, ConsentRecord, ConsentScope, ConsentStatus, RecordedVia
from referrals.domain.model import Referral
from send_shared.db import Db, as_utc


class SqlConsentRepository:
    def __init__(self, session: Db) -> None:
        self.session = session
        self.added: list[tuple[Referral, ConsentRecord]] = []

    async def add(self, referral: Referral, record: ConsentRecord) -> None:
        """Kept for the unit of work's commit, which writes the row with the referral's events; two writers of
        the same consent version collide on the primary key there."""
        self.added.append((referral, record))

    async def history(self, referral_id: str) -> list[ConsentRecord]:
        query = select(referral_consents).where(referral_consents.c.referral_id == referral_id)
        rows = (await self.session.execute(query.order_by(referral_consents.c.consent_version))).mappings()
        return [consent_from_row(row) for row in rows]


def consent_row(r: ConsentRecord) -> dict[str, Any]:
    return {
        "referral_id": r.referral_id,
        "consent_version": r.version,
        "event_id": r.event_id,
        "consent_status": r.status.value,
        "given_by": r.given_by.value,
        "scope_service_ids": list(r.scope.service_ids),
        "scope_organisation_ids": list(r.scope.organisation_ids),
        "note": r.note,
        "recorded_by_org_id": r.recorded_by_org_id,
        "recorded_via": r.recorded_via.value,
        "occurred_at": r.occurred_at,
        "recorded_at": r.recorded_at,
    }


def consent_from_row(row: Any) -> ConsentRecord:
    return ConsentRecord(
        referral_id=row["referral_id"],
        version=row["consent_version"],
        status=ConsentStatus(row["consent_status"]),
        given_by=ConsentGiver(row["given_by"]),
        scope=ConsentScope(tuple(row["scope_service_ids"]), tuple(row["scope_organisation_ids"])),
        occurred_at=as_utc(row["occurred_at"]),
        recorded_at=as_utc(row["recorded_at"]),
        event_id=row["event_id"],
        recorded_via=RecordedVia(row["recorded_via"]),
        recorded_by_org_id=row["recorded_by_org_id"],
        note=row["note"],
    )
