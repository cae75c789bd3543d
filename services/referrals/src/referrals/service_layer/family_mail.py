"""Sends the queued emails that carry family links, with retries and backoff; each token is forgotten once its
email is sent or given up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol

from referrals.adapters.family_mailer import link_email
from referrals.domain.family import LinkEmail, next_email_try
from referrals.service_layer.unit_of_work import UnitOfWorkFactory
from send_shared.smtp import MailDeliveryError
from send_shared.waiting import woken_or_stopped

log = logging.getLogger(__name__)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> list[str]:
        """Returns the recipients refused (a family link has one); raises ``MailDeliveryError`` when the message
        was not sent."""
        ...


class FamilyLinkMailer:
    """The worker: every ``poll_interval`` sends what is due. ``status`` (readiness) reports SMTP failing for
    longer than ``failing_after`` seconds."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        mailer: Mailer,
        *,
        url_template: str,
        mail_from: str,
        poll_interval: float = 1.0,
        failing_after: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.unit_of_work = unit_of_work
        self.mailer = mailer
        self.url_template = url_template
        self.mail_from = mail_from
        self.poll_interval = poll_interval
        self.failing_after = failing_after
        self.clock = clock
        self.wake = asyncio.Event()
        self._failing_since: float | None = None
        self._last_error: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.send_due()
            self.wake.clear()
            await woken_or_stopped(self.wake, stop, self.poll_interval)

    def status(self) -> str | None:
        """None while emails go out (or none are due); a reason once sending has failed for a while."""
        if self._failing_since is None or time.monotonic() - self._failing_since < self.failing_after:
            return None
        return f"family link emails failing for {time.monotonic() - self._failing_since:.0f} s: {self._last_error}"

    async def send_due(self, limit: int = 50) -> int:
        """Sends the emails that are due; returns how many were sent."""
        async with self.unit_of_work() as uow:
            due = await uow.family_links.due_emails(self.clock(), limit=limit)
            links = {email.link_id: await uow.family_links.get(email.link_id) for email in due}
        sent = 0
        for email in due:
            link = links.get(email.link_id)
            if link is None or link.revoked_at is not None or link.expires_at <= self.clock():
                await self._record_failure(email, "the link stopped working before it was sent", transient=False)
                continue
            message = link_email(
                to=email.to_address,
                url=self.url_template.format(token=email.token),
                expires_at=link.expires_at,
                mail_from=self.mail_from,
            )
            try:
                await self.mailer.send(message)
            except MailDeliveryError as exc:
                self._failing_since = self._failing_since or time.monotonic()
                self._last_error = str(exc)[:200]
                await self._record_failure(email, str(exc), transient=exc.transient)
                continue
            self._failing_since = None
            async with self.unit_of_work() as uow:
                await uow.family_links.email_sent(email.id, self.clock())
                await uow.commit()
            sent += 1
        return sent

    async def _record_failure(self, email: LinkEmail, error: str, *, transient: bool) -> None:
        attempts = email.attempts + 1
        retry = next_email_try(attempts, transient=transient, now=self.clock())
        async with self.unit_of_work() as uow:
            await uow.family_links.email_failed(email.id, attempts, error, retry)
            await uow.commit()
        log.warning(
            "family link email not sent",
            extra={"email_id": email.id, "attempts": attempts, "error": error[:200], "gave_up": retry is None},
        )
