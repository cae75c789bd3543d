"""The SQL unit of work: one database transaction holding the state change, its history rows and its
outbox events."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from referrals.adapters.audit_log import SqlAuditLog
from referrals.adapters.clocks_repository import SqlReferralClocksRepository
from referrals.adapters.consent_repository import SqlConsentRepository, consent_row
from referrals.adapters.directory_repository import SqlDirectoryRepository
from referrals.adapters.event_mapping import consent_cloud_event, ordered_events, to_cloud_event
from referrals.adapters.family_links import SqlFamilyLinkRepository
from referrals.adapters.interim_repository import SqlInterimRepository
from referrals.adapters.orm import outbox, referral_consents, referral_history
from referrals.adapters.privacy_repository import SqlPrivacyRepository
from referrals.adapters.referral_repository import SqlReferralRepository, history_row
from referrals.domain.consent import ConsentRecord
from referrals.domain.history import history_record
from referrals.domain.model import Referral
from send_shared.conflicts import WriteConflict
from send_shared.db import is_unique_violation
from send_shared.events.envelope import CloudEvent
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine, *, event_source: str) -> None:
        self.engine = engine
        self.event_source = event_source
        self.writer = OutboxWriter(outbox)

    async def __aenter__(self) -> Self:
        # A connection, not an ORM session: no object is tracked here, and a session's transaction costs more CPU
        # (bench/ingest_instructions.py: about 2% of a submission's instructions).
        self.connection: AsyncConnection = await self.engine.connect()
        await self.connection.begin()
        self.referrals = SqlReferralRepository(self.connection)
        self.consents = SqlConsentRepository(self.connection)
        self.directory = SqlDirectoryRepository(self.connection)
        self.audit_log = SqlAuditLog(self.connection)
        self.privacy = SqlPrivacyRepository(self.connection)
        self.family_links = SqlFamilyLinkRepository(self.connection)
        self.referral_clocks = SqlReferralClocksRepository(self.connection)
        self.interim = SqlInterimRepository(self.connection)
        self.pending: list[tuple[CloudEvent, str]] = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()
        await self.connection.close()
        if exc is not None and is_unique_violation(exc):
            raise WriteConflict(str(exc)) from exc

    def emit(self, event: CloudEvent, key: str) -> None:
        self.pending.append((event, key))

    async def commit(self) -> None:
        """Write every recorded domain event to history and outbox, and every consent event to the outbox in its
        place among them, with the consent rows and stored responses kept till now, then commit all of it at once
        (on PostgreSQL the writes are one statement)."""
        items = []
        history = []
        consents: dict[str, list[ConsentRecord]] = {}
        holders: dict[str, Referral] = {}
        consent_rows = []
        for holder, record in self.consents.added:
            consents.setdefault(record.referral_id, []).append(record)
            holders.setdefault(record.referral_id, holder)
            consent_rows.append(consent_row(record))
        self.consents.added = []
        seen = list(self.referrals.seen)
        seen_ids = {r.id for r in seen}
        for referral in [*seen, *(r for i, r in holders.items() if i not in seen_ids)]:
            for item in ordered_events(referral, referral.events, consents.pop(referral.id, [])):
                if isinstance(item, ConsentRecord):
                    event = consent_cloud_event(referral, item, source=self.event_source)
                    items.append((event, Topics.REFERRAL_EVENTS, referral.id))
                    continue
                event_id = str(uuid.uuid4())
                event = to_cloud_event(referral, item, source=self.event_source, event_id=event_id)
                items.append((event, Topics.REFERRAL_EVENTS, referral.id))
                history.append(history_row(history_record(referral, item, event_id)))
            referral.events.clear()
        items += [(event, Topics.REFERRAL_EVENTS, key) for event, key in self.pending]
        self.pending = []
        also = [*self.referrals.kept(), (referral_consents, consent_rows), (referral_history, history)]
        await self.writer.add_many(self.connection, items, also=also)
        await self.connection.commit()

    async def rollback(self) -> None:
        if self.connection.in_transaction():
            await self.connection.rollback()
