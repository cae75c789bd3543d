"""The SQL unit of work: one database transaction holding the state change, its history rows and its
outbox events."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Self

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from referrals.adapters.audit_log import SqlAuditLog
from referrals.adapters.directory_repository import SqlDirectoryRepository
from referrals.adapters.event_mapping import to_cloud_event
from referrals.adapters.orm import outbox, referral_history
from referrals.adapters.referral_repository import SqlReferralRepository, history_row
from referrals.domain.history import history_record
from send_shared.events.envelope import CloudEvent
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter


class SqlUnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, event_source: str) -> None:
        self.sessions = sessions
        self.event_source = event_source
        self.writer = OutboxWriter(outbox)

    async def __aenter__(self) -> Self:
        self.session = self.sessions()
        await self.session.begin()
        self.referrals = SqlReferralRepository(self.session)
        self.directory = SqlDirectoryRepository(self.session)
        self.audit_log = SqlAuditLog(self.session)
        self.pending: list[tuple[CloudEvent, str]] = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()
        await self.session.close()

    def emit(self, event: CloudEvent, key: str) -> None:
        self.pending.append((event, key))

    async def commit(self) -> None:
        """Write every recorded domain event to history and outbox, then commit all of it at once."""
        items = []
        history = []
        for referral in self.referrals.seen:
            for change in referral.events:
                event_id = str(uuid.uuid4())
                event = to_cloud_event(referral, change, source=self.event_source, event_id=event_id)
                items.append((event, Topics.REFERRAL_EVENTS, referral.id))
                history.append(history_row(history_record(referral, change, event_id)))
            referral.events.clear()
        items += [(event, Topics.REFERRAL_EVENTS, key) for event, key in self.pending]
        self.pending = []
        if history:
            await self.session.execute(insert(referral_history), history)
        await self.writer.add_many(self.session, items)
        await self.session.commit()

    async def rollback(self) -> None:
        if self.session.in_transaction():
            await self.session.rollback()
