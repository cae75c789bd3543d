"""Unit of work: one transaction holding the state change, its history rows and its outbox events."""

from __future__ import annotations

import abc
import uuid
from types import TracebackType
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from referrals.adapters.directory import SqlDirectory
from referrals.adapters.event_mapping import to_cloud_event
from referrals.adapters.orm import outbox, referral_history
from referrals.adapters.repository import ReferralRepository, SqlReferralRepository
from referrals.domain.lifecycle import Actor
from referrals.domain.model import Referral, StatusChanged
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import referral_event_type
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter


class UnitOfWork(abc.ABC):
    referrals: ReferralRepository
    directory: SqlDirectory
    pending: list[tuple[CloudEvent, str]]

    def emit(self, event: CloudEvent, key: str) -> None:
        """Publish an event that is not a referral change (directory events) with this transaction."""
        self.pending.append((event, key))

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()

    @abc.abstractmethod
    async def commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, event_source: str) -> None:
        self.sessions = sessions
        self.event_source = event_source
        self.writer = OutboxWriter(outbox)

    async def __aenter__(self) -> UnitOfWork:
        self.session = self.sessions()
        await self.session.begin()
        self.referrals = SqlReferralRepository(self.session)
        self.directory = SqlDirectory(self.session)
        self.pending = []
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        await self.session.close()

    async def commit(self) -> None:
        """Write every recorded domain event to history and outbox, then commit all of it at once."""
        items = []
        history = []
        for referral in self.referrals.seen:
            for change in referral.events:
                event_id = str(uuid.uuid4())
                event = to_cloud_event(referral, change, source=self.event_source, event_id=event_id)
                items.append((event, Topics.REFERRAL_EVENTS, referral.id))
                history.append(_history_row(referral, change, event_id))
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


def _history_row(referral: Referral, change: StatusChanged, event_id: str) -> dict[str, Any]:
    return {
        "referral_id": referral.id,
        "version": change.version,
        "event_id": event_id,
        "event_type": referral_event_type(change.status),
        "status": change.status.value,
        "previous_status": change.previous_status.value if change.previous_status else None,
        "reason_code": change.details.reason_code,
        "outcome_code": change.details.outcome_code,
        "explanation": change.details.explanation,
        "linked_referral_id": change.linked_referral_id,
        "actor_org_id": change.recorded_by
        or (referral.referrer_org_id if change.actor is Actor.REFERRER else referral.receiving_org_id),
        "occurred_at": change.occurred_at,
        "recorded_at": change.recorded_at,
    }
