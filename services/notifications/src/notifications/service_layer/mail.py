"""Email: intents queued with the event in the consumer's transaction, sent by a worker with retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.mailer import MailDeliveryError, SmtpMailer, render
from notifications.adapters.orm import contacts, emails, service_names
from notifications.domain.email_policy import EmailIntent, email_intents
from send_shared.db import upsert_insert

log = logging.getLogger(__name__)
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)


async def queue_emails(session: AsyncSession, event_id: str, event_type: str, data: Any) -> int:
    intents = email_intents(event_type, data)
    if not intents:
        return 0
    insert = upsert_insert(session)
    now = datetime.now(UTC)
    for intent in intents:
        await session.execute(
            insert(emails)
            .values(
                event_id=event_id,
                organisation_id=intent.organisation_id,
                template=str(intent.template),
                context=dict(intent.context),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
    return len(intents)


def endpoint_disabled_message(*, endpoint_url: str, reason: str, mail_from: str, to: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "A webhook endpoint of yours has been disabled"
    message["From"] = mail_from
    message["To"] = ", ".join(to)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"We have stopped sending events to {endpoint_url}: {reason}.\n\n"
        "Messages for it are kept. When the endpoint works again, resume it through the notifications API "
        "(POST /v1/endpoints/{id}/resume) and what is waiting will be delivered in order.\n"
    )
    return message


class MailWorker:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], mailer: SmtpMailer, *, mail_from: str, referral_url: str,
        poll_interval: float = 1.0,
    ) -> None:  # fmt: skip
        self.sessions = sessions
        self.mailer = mailer
        self.mail_from = mail_from
        self.referral_url = referral_url
        self.poll_interval = poll_interval

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.send_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)

    async def send_due(self) -> int:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            due = (
                (
                    await session.execute(
                        select(emails)
                        .where(emails.c.status == "pending", emails.c.next_attempt_at <= now)
                        .order_by(emails.c.id)
                        .limit(100)
                    )
                )
                .mappings()
                .all()
            )
            names = dict((await session.execute(select(service_names.c.service_id, service_names.c.name))).all())
            addresses = dict((await session.execute(select(contacts.c.organisation_id, contacts.c.emails))).all())
        sent = 0
        for row in due:
            to = list(addresses.get(row["organisation_id"]) or [])
            if not to:
                await self._finish(row["id"], status="no_contact")
                continue
            intent = EmailIntent(row["organisation_id"], row["template"], row["context"])
            message = render(
                intent, service_names=names, referral_url=self.referral_url, mail_from=self.mail_from, to=to
            )
            try:
                await self.mailer.send(message)
            except MailDeliveryError as exc:
                await self._failed(row, exc)
                continue
            await self._finish(row["id"], status="sent", sent_at=datetime.now(UTC))
            sent += 1
        return sent

    async def send_now(self, message: EmailMessage) -> None:
        try:
            await self.mailer.send(message)
        except MailDeliveryError:
            log.exception("email could not be sent")

    async def _failed(self, row: Any, exc: MailDeliveryError) -> None:
        attempts = row["attempts"] + 1
        if exc.transient and attempts <= len(RETRY_DELAYS):
            await self._finish(row["id"], status="pending", attempts=attempts, last_error=str(exc)[:500],
                               next_attempt_at=datetime.now(UTC) + RETRY_DELAYS[attempts - 1])  # fmt: skip
        else:
            await self._finish(row["id"], status="failed", attempts=attempts, last_error=str(exc)[:500])
        log.warning("email not sent", extra={"email_id": row["id"], "error": str(exc), "attempts": attempts})

    async def _finish(self, email_id: int, **values: Any) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(emails).where(emails.c.id == email_id).values(**values))
