"""The email queue in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import emails
from notifications.domain.email_policy import EmailIntent, EmailStatus, QueuedEmail, Template
from send_shared.db import ByDialect

# Built once (every event with emails queues them): a statement built per call costs its construction and its cache
# key every time.
_QUEUE = ByDialect(lambda insert: insert(emails).on_conflict_do_nothing())


class SqlEmailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queue(self, event_id: str, intent: EmailIntent, now: datetime) -> None:
        await self.session.execute(
            _QUEUE(self.session),
            {
                "event_id": event_id,
                "organisation_id": intent.organisation_id,
                "template": intent.template.value,
                "context": dict(intent.context),
                "status": EmailStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )

    async def has(self, event_id: str, organisation_id: str, template: Template) -> bool:
        found = await self.session.execute(
            select(emails.c.id)
            .where(
                emails.c.event_id == event_id,
                emails.c.organisation_id == organisation_id,
                emails.c.template == template.value,
            )
            .limit(1)
        )
        return found.first() is not None

    async def due(self, now: datetime, *, limit: int) -> list[QueuedEmail]:
        rows = await self.session.execute(
            select(emails.c.id, emails.c.organisation_id, emails.c.template, emails.c.context, emails.c.attempts)
            .where(emails.c.status == EmailStatus.PENDING.value, emails.c.next_attempt_at <= now)
            .order_by(emails.c.id)
            .limit(limit)
        )
        return [
            QueuedEmail(r.id, EmailIntent(r.organisation_id, Template(r.template), r.context), r.attempts) for r in rows
        ]

    async def mark_sent(self, email_id: int, now: datetime) -> None:
        await self._set(email_id, status=EmailStatus.SENT.value, sent_at=now)

    async def mark_no_contact(self, email_id: int) -> None:
        await self._set(email_id, status=EmailStatus.NO_CONTACT.value)

    async def retry_at(self, email_id: int, attempts: int, error: str, when: datetime) -> None:
        await self._set(
            email_id, status=EmailStatus.PENDING.value, attempts=attempts, last_error=error, next_attempt_at=when
        )

    async def mark_failed(self, email_id: int, attempts: int, error: str) -> None:
        await self._set(email_id, status=EmailStatus.FAILED.value, attempts=attempts, last_error=error)

    async def _set(self, email_id: int, **values: Any) -> None:
        await self.session.execute(update(emails).where(emails.c.id == email_id).values(**values))
