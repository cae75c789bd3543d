"""Email: intents queued with the event in the consumer's transaction, sent by a worker with retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from notifications.adapters.mailer import render
from notifications.domain.digest import DigestEntry, DigestSchedule, digest_event_id, digest_intent
from notifications.domain.email_policy import QueuedEmail, Template, email_intents, next_try
from notifications.domain.email_preferences import EmailPreferences, NewReferralEmails, Routing, routing
from notifications.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory
from send_shared.smtp import MailDeliveryError

log = logging.getLogger(__name__)
_ERROR_CHARS = 500  # emails.last_error is String(500)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> list[str]:
        """Raises ``MailDeliveryError`` when no recipient got the message."""
        ...


async def queue_emails(
    uow: UnitOfWork, event_id: str, event_type: str, data: Mapping[str, Any], concerned: Collection[str]
) -> int:
    """Queues the event's emails to the organisations ``concerned`` that they want at once, and keeps those they
    want in their daily digest; returns how many were queued or kept."""
    intents = email_intents(event_type, data, concerned)
    if not intents:
        return 0
    now = datetime.now(UTC)
    chosen = await uow.preferences.of([intent.organisation_id for intent in intents])
    kept = 0
    for intent in intents:
        match routing(intent, chosen.get(intent.organisation_id, EmailPreferences())):
            case Routing.AT_ONCE:
                await uow.emails.queue(event_id, intent, now)
            case Routing.IN_DIGEST:
                await uow.digests.add(event_id, intent, now)
            case Routing.NOT_SENT:
                continue
        kept += 1
    return kept


async def queue_digests(uow: UnitOfWork, schedule: DigestSchedule, day: date) -> int:
    """Queues ``day``'s digest for each organisation with new referrals waiting for it (unless it has had
    that day's digest already); returns how many. An organisation that has since turned new-referral emails
    off gets none, and its waiting referrals are dropped."""
    event_id = digest_event_id(day)
    queued = 0
    async with uow:
        by_organisation: dict[str, list[DigestEntry]] = {}
        for entry in await uow.digests.waiting(schedule.cutoff(day)):
            by_organisation.setdefault(entry.organisation_id, []).append(entry)
        chosen = await uow.preferences.of(list(by_organisation))
        now = datetime.now(UTC)
        for organisation_id, entries in by_organisation.items():
            if await uow.emails.has(event_id, organisation_id, Template.NEW_REFERRALS_DIGEST):
                continue  # another process sent today's; these wait for tomorrow's
            if chosen.get(organisation_id, EmailPreferences()).new_referrals is not NewReferralEmails.OFF:
                intent = digest_intent(organisation_id, day, [entry.context for entry in entries])
                await uow.emails.queue(event_id, intent, now)
                queued += 1
            await uow.digests.mark_digested([entry.id for entry in entries], day)
        await uow.commit()
    return queued


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
        self, unit_of_work: UnitOfWorkFactory, mailer: Mailer, *, mail_from: str, referral_url: str,
        digest: DigestSchedule | None = None, poll_interval: float = 1.0,
    ) -> None:  # fmt: skip
        self.unit_of_work = unit_of_work
        self.mailer = mailer
        self.mail_from = mail_from
        self.referral_url = referral_url
        self.digest = digest
        self.poll_interval = poll_interval
        self._digested_day: date | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.queue_digests_due()
            await self.send_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)

    async def queue_digests_due(self) -> int:
        """Queues today's digests once their time has come (once a day per process; ``queue_digests`` makes
        a second process's look harmless); returns how many."""
        day = self.digest.due_day(datetime.now(UTC)) if self.digest is not None else None
        if self.digest is None or day is None or day == self._digested_day:
            return 0
        queued = await queue_digests(self.unit_of_work(), self.digest, day)
        self._digested_day = day
        return queued

    async def send_due(self) -> int:
        """Sends the queued emails that are due; returns how many were sent."""
        async with self.unit_of_work() as uow:
            due = await uow.emails.due(datetime.now(UTC), limit=100)
            if not due:  # the usual look: no need for the directory
                return 0
            names = await uow.directory.service_names()
            addresses = await uow.directory.contacts()
        sent = 0
        for email in due:
            to = addresses.get(email.intent.organisation_id) or []
            if not to:
                async with self.unit_of_work() as uow:
                    await uow.emails.mark_no_contact(email.id)
                    await uow.commit()
                continue
            message = render(
                email.intent, service_names=names, referral_url=self.referral_url, mail_from=self.mail_from, to=to
            )
            try:
                await self.mailer.send(message)
            except MailDeliveryError as exc:
                await self._failed(email, exc)
                continue
            async with self.unit_of_work() as uow:
                await uow.emails.mark_sent(email.id, datetime.now(UTC))
                await uow.commit()
            sent += 1
        return sent

    async def send_now(self, message: EmailMessage) -> None:
        try:
            await self.mailer.send(message)
        except MailDeliveryError:
            log.exception("email could not be sent")

    async def tell_endpoint_disabled(self, endpoint_id: str, organisation_id: str, reason: str) -> None:
        """Emails the organisation's contacts (if it gave any) that its endpoint was disabled, and why."""
        async with self.unit_of_work() as uow:
            endpoint = await uow.endpoints.get(endpoint_id)
            to = (await uow.directory.contacts()).get(organisation_id)
        if endpoint is not None and to:
            await self.send_now(
                endpoint_disabled_message(endpoint_url=endpoint.url, reason=reason, mail_from=self.mail_from, to=to)
            )

    async def _failed(self, email: QueuedEmail, exc: MailDeliveryError) -> None:
        attempts = email.attempts + 1
        error = str(exc)[:_ERROR_CHARS]
        retry = next_try(attempts, transient=exc.transient, now=datetime.now(UTC))
        async with self.unit_of_work() as uow:
            if retry is None:
                await uow.emails.mark_failed(email.id, attempts, error)
            else:
                await uow.emails.retry_at(email.id, attempts, error, retry)
            await uow.commit()
        log.warning("email not sent", extra={"email_id": email.id, "error": str(exc), "attempts": attempts})
