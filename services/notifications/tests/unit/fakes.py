"""In-memory repositories and unit of work: the use cases without a database.

Each ``async with`` works on a copy of the committed state; ``commit`` makes the copy the committed state,
and leaving without committing drops it (as the SQL unit of work rolls back).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self

from notifications.domain.consent import ConsentState, supersedes
from notifications.domain.delivery import (
    AttemptRecord,
    Backlog,
    DeliveryLogEntry,
    DeliveryStatus,
    Message,
    PendingDelivery,
)
from notifications.domain.digest import DigestEntry
from notifications.domain.email_policy import EmailIntent, EmailStatus, QueuedEmail, Template
from notifications.domain.email_preferences import EmailPreferences
from notifications.domain.endpoints import EndpointSpec, RegisteredEndpoint
from notifications.domain.ordering import HeldEvent
from notifications.domain.subscriptions import EndpointStatus


@dataclass
class Delivery:
    id: int
    endpoint_id: str
    event_id: str
    round: int
    order_key: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    succeeded_at: datetime | None = None
    attempt_log: list[AttemptRecord] = field(default_factory=list)


@dataclass
class Email:
    id: int
    event_id: str
    intent: EmailIntent
    status: EmailStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None = None
    sent_at: datetime | None = None


@dataclass
class Waiting:
    """A new referral waiting for its organisation's digest."""

    event_id: str
    entry: DigestEntry
    recorded_at: datetime
    digest_date: date | None = None


@dataclass
class Held:
    referral_id: str
    event: HeldEvent
    held_at: datetime


@dataclass
class FakeState:
    endpoints: dict[str, RegisteredEndpoint] = field(default_factory=dict)
    deliveries: dict[int, Delivery] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    last_sent: dict[str, int] = field(default_factory=dict)
    held: dict[str, Held] = field(default_factory=dict)
    organisations: dict[str, int] = field(default_factory=dict)
    service_names: dict[str, tuple[str, int]] = field(default_factory=dict)
    contacts: dict[str, list[str]] = field(default_factory=dict)
    emails: dict[int, Email] = field(default_factory=dict)
    preferences: dict[str, EmailPreferences] = field(default_factory=dict)
    digest_entries: dict[int, Waiting] = field(default_factory=dict)
    consents: dict[str, ConsentState] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeState:
        copied = FakeState(**{k: copy.deepcopy(v, memo) for k, v in vars(self).items() if k != "ids"})
        copied.ids = self.ids  # ids are never reused, committed or not (as a sequence)
        return copied


class FakeEndpointRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def add(self, endpoint: RegisteredEndpoint) -> None:
        self.state.endpoints[endpoint.id] = endpoint

    async def get(self, endpoint_id: str) -> RegisteredEndpoint | None:
        return self.state.endpoints.get(endpoint_id)

    async def list_for(self, organisation_id: str) -> list[RegisteredEndpoint]:
        mine = [e for e in self.state.endpoints.values() if e.organisation_id == organisation_id]
        return sorted(mine, key=lambda e: e.created_at)

    async def subscribed(self, organisation_ids: Sequence[str]) -> list[RegisteredEndpoint]:
        wanted = (EndpointStatus.ACTIVE, EndpointStatus.PAUSED)
        return [
            e for e in self.state.endpoints.values() if e.organisation_id in organisation_ids and e.status in wanted
        ]

    async def read_ahead(self, organisation_ids: Collection[str]) -> None:
        return None  # an in-memory read costs nothing to repeat

    async def change_subscription(self, endpoint_id: str, spec: EndpointSpec, now: datetime) -> None:
        self._set(
            endpoint_id, updated_at=now, url=spec.url, event_types=spec.event_types, service_ids=spec.service_ids,
            urgencies=spec.urgencies, description=spec.description,
        )  # fmt: skip

    async def pause(self, endpoint_id: str, now: datetime) -> None:
        self._set(endpoint_id, updated_at=now, status=EndpointStatus.PAUSED)

    async def activate(self, endpoint_id: str, now: datetime) -> None:
        self._set(endpoint_id, updated_at=now, status=EndpointStatus.ACTIVE, disabled_reason=None, failing_since=None)

    async def disable(self, endpoint_id: str, reason: str, now: datetime) -> None:
        self._set(endpoint_id, updated_at=now, status=EndpointStatus.DISABLED, disabled_reason=reason)

    async def replace_secret(
        self, endpoint_id: str, secret: str, *, previous: str, previous_expires_at: datetime, now: datetime
    ) -> None:
        self._set(
            endpoint_id, updated_at=now, secret=secret, previous_secret=previous,
            previous_secret_expires_at=previous_expires_at,
        )  # fmt: skip

    async def note_failure(self, endpoint_id: str, now: datetime) -> datetime:
        started = self.state.endpoints[endpoint_id].failing_since or now
        self._set(endpoint_id, failing_since=started)
        return started

    async def note_success(self, endpoint_id: str) -> None:
        self._set(endpoint_id, failing_since=None)

    async def remove(self, endpoint_id: str) -> None:
        self.state.endpoints.pop(endpoint_id, None)

    def _set(self, endpoint_id: str, **changes: Any) -> None:
        if endpoint_id in self.state.endpoints:
            self.state.endpoints[endpoint_id] = replace(self.state.endpoints[endpoint_id], **changes)


class FakeDeliveryRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def queue(self, endpoint_id: str, event_id: str, order_key: str, round_: int, now: datetime) -> None:
        if any((d.endpoint_id, d.event_id, d.round) == (endpoint_id, event_id, round_) for d in self._all()):
            return
        delivery_id = next(self.state.ids)
        self.state.deliveries[delivery_id] = Delivery(
            delivery_id, endpoint_id, event_id, round_, order_key, DeliveryStatus.PENDING, 0, now, now
        )

    async def latest_round(self, endpoint_id: str, event_id: str) -> int | None:
        rounds = [d.round for d in self._for(endpoint_id) if d.event_id == event_id]
        return max(rounds) if rounds else None

    async def order_key_of(self, endpoint_id: str, delivery_id: int) -> tuple[str, str] | None:
        found = self.state.deliveries.get(delivery_id)
        return (found.event_id, found.order_key) if found is not None and found.endpoint_id == endpoint_id else None

    async def queued_since(self, endpoint_id: str, since: datetime) -> list[tuple[str, str]]:
        firsts: dict[tuple[str, str], int] = {}
        for d in self._for(endpoint_id):
            if d.created_at >= since:
                firsts.setdefault((d.event_id, d.order_key), d.id)
        return sorted(firsts, key=firsts.__getitem__)

    async def log(self, endpoint_id: str, *, limit: int, before: int | None) -> list[DeliveryLogEntry]:
        found = [d for d in self._for(endpoint_id) if before is None or d.id < before]
        return [
            DeliveryLogEntry(
                d.id,
                d.event_id,
                self.state.messages[d.event_id].event_type,
                d.status,
                d.attempts,
                d.next_attempt_at,
                d.created_at,
                d.succeeded_at,
                tuple(d.attempt_log),
            )
            for d in sorted(found, key=lambda d: -d.id)[:limit]
        ]

    async def retry_pending_now(self, endpoint_id: str, now: datetime) -> None:
        for d in self._for(endpoint_id):
            if d.status is DeliveryStatus.PENDING:
                d.next_attempt_at = now

    async def make_retries_due(self, endpoint_id: str, now: datetime) -> int:
        waiting = [
            d
            for d in self._for(endpoint_id)
            if d.status is DeliveryStatus.PENDING and d.attempts > 0 and d.next_attempt_at and d.next_attempt_at > now
        ]
        for d in waiting:
            d.next_attempt_at = now
        return len(waiting)

    async def remove_for(self, endpoint_id: str) -> None:
        for d in self._for(endpoint_id):
            del self.state.deliveries[d.id]

    async def endpoints_with_due_work(self, now: datetime) -> list[str]:
        active = {e.id for e in self.state.endpoints.values() if e.status is EndpointStatus.ACTIVE}
        return sorted({d.endpoint_id for d in self._due(now) if d.endpoint_id in active})

    async def pending_for(self, endpoint_id: str, *, limit: int) -> list[PendingDelivery]:
        pending = [d for d in self._for(endpoint_id) if d.status is DeliveryStatus.PENDING][:limit]
        return [self._pending(d) for d in pending]

    async def settle_after_attempt(
        self,
        delivery_id: int,
        endpoint_id: str,
        attempt: AttemptRecord,
        status: DeliveryStatus,
        *,
        attempts: int,
        next_attempt_at: datetime | None = None,
        succeeded_at: datetime | None = None,
    ) -> None:
        self.state.deliveries[delivery_id].attempt_log.append(attempt)
        await self.settle(
            delivery_id, status, attempts=attempts, next_attempt_at=next_attempt_at, succeeded_at=succeeded_at
        )

    async def settle(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
        succeeded_at: datetime | None = None,
    ) -> None:
        d = self.state.deliveries[delivery_id]
        d.status, d.next_attempt_at = status, next_attempt_at
        d.attempts = d.attempts if attempts is None else attempts
        d.succeeded_at = d.succeeded_at if succeeded_at is None else succeeded_at

    async def backlog(self, now: datetime) -> Backlog:
        active = {e.id for e in self.state.endpoints.values() if e.status is EndpointStatus.ACTIVE}
        pending = [d for d in self._all() if d.status is DeliveryStatus.PENDING]
        due = self._due(now)
        oldest = min((d.next_attempt_at for d in due if d.endpoint_id in active and d.next_attempt_at), default=None)
        later = [
            d.next_attempt_at
            for d in pending
            if d.endpoint_id in active and d.next_attempt_at and d.next_attempt_at > now
        ]
        return Backlog(len(pending), len(due), oldest, min(later, default=None))

    def _all(self) -> list[Delivery]:
        return sorted(self.state.deliveries.values(), key=lambda d: d.id)

    def _for(self, endpoint_id: str) -> list[Delivery]:
        return [d for d in self._all() if d.endpoint_id == endpoint_id]

    def _due(self, now: datetime) -> list[Delivery]:
        return [
            d
            for d in self._all()
            if d.status is DeliveryStatus.PENDING and d.next_attempt_at is not None and d.next_attempt_at <= now
        ]

    def _pending(self, d: Delivery) -> PendingDelivery:
        message = self.state.messages[d.event_id]
        assert d.next_attempt_at is not None
        return PendingDelivery(
            d.id, d.event_id, d.order_key, d.attempts, d.next_attempt_at, message.body, message.organisation_ids,
            message.received_at,
        )  # fmt: skip


class FakeMessageRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def add(self, message: Message, deliver_to: Sequence[str] = ()) -> bool:
        if message.event_id in self.state.messages:
            return False
        self.state.messages[message.event_id] = message
        for endpoint_id in deliver_to:
            await FakeDeliveryRepository(self.state).queue(
                endpoint_id, message.event_id, message.order_key, 0, message.received_at
            )
        return True

    async def any_with_order_key(self, order_key: str) -> bool:
        return any(m.order_key == order_key for m in self.state.messages.values())


class FakeReferralOrderRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def last_sent(self, referral_id: str) -> int | None:
        return self.state.last_sent.get(referral_id)

    async def last_sent_and_consent(self, referral_id: str) -> tuple[int | None, ConsentState | None]:
        return self.state.last_sent.get(referral_id), self.state.consents.get(referral_id)

    async def read_ahead(self, referral_ids: Collection[str]) -> None:
        return None  # an in-memory read costs nothing to repeat

    async def set_last_sent(self, referral_id: str, version: int) -> None:
        self.state.last_sent[referral_id] = max(version, self.state.last_sent.get(referral_id, version))

    async def hold(self, event_id: str, referral_id: str, version: int, event: dict[str, Any], now: datetime) -> bool:
        if event_id in self.state.held:
            return False
        self.state.held[event_id] = Held(referral_id, HeldEvent(event_id, version, event), now)
        return True

    async def held_for(self, referral_id: str) -> list[HeldEvent]:
        return sorted((h.event for h in self.state.held.values() if h.referral_id == referral_id), key=_version)

    async def release(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self.state.held.pop(event_id, None)

    async def referrals_held_since(self, cutoff: datetime) -> list[str]:
        return sorted({h.referral_id for h in self.state.held.values() if h.held_at <= cutoff})

    async def referrals_ready(self) -> list[str]:
        last = self.state.last_sent
        return sorted(
            {
                h.referral_id
                for h in self.state.held.values()
                if h.referral_id in last and h.event.version <= last[h.referral_id] + 1
            }
        )

    async def held_summary(self) -> tuple[int, datetime | None]:
        times = [h.held_at for h in self.state.held.values()]
        return len(times), min(times, default=None)


def _version(event: HeldEvent) -> int:
    return event.version


class FakeDirectoryRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def record_organisation(self, organisation_id: str, version: int) -> None:
        if self.state.organisations.get(organisation_id, 0) < version:
            self.state.organisations[organisation_id] = version

    async def organisation_known(self, organisation_id: str) -> bool:
        return organisation_id in self.state.organisations

    async def record_service_name(self, service_id: str, name: str, version: int) -> None:
        if self.state.service_names.get(service_id, ("", 0))[1] < version:
            self.state.service_names[service_id] = (name, version)

    async def service_names(self) -> dict[str, str]:
        return {service_id: name for service_id, (name, _version) in self.state.service_names.items()}

    async def set_contacts(self, organisation_id: str, emails: Sequence[str], now: datetime) -> None:
        self.state.contacts[organisation_id] = list(emails)

    async def contacts(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.state.contacts.items()}


class FakeEmailRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def queue(self, event_id: str, intent: EmailIntent, now: datetime) -> None:
        key = (event_id, intent.organisation_id, intent.template)
        if any((e.event_id, e.intent.organisation_id, e.intent.template) == key for e in self.state.emails.values()):
            return
        email_id = next(self.state.ids)
        self.state.emails[email_id] = Email(email_id, event_id, intent, EmailStatus.PENDING, 0, now)

    async def has(self, event_id: str, organisation_id: str, template: Template) -> bool:
        key = (event_id, organisation_id, template)
        return any((e.event_id, e.intent.organisation_id, e.intent.template) == key for e in self.state.emails.values())

    async def due(self, now: datetime, *, limit: int) -> list[QueuedEmail]:
        due = [
            e
            for e in sorted(self.state.emails.values(), key=lambda e: e.id)
            if e.status is EmailStatus.PENDING and e.next_attempt_at is not None and e.next_attempt_at <= now
        ]
        return [QueuedEmail(e.id, e.intent, e.attempts) for e in due[:limit]]

    async def mark_sent(self, email_id: int, now: datetime) -> None:
        email = self.state.emails[email_id]
        email.status, email.sent_at = EmailStatus.SENT, now

    async def mark_no_contact(self, email_id: int) -> None:
        self.state.emails[email_id].status = EmailStatus.NO_CONTACT

    async def retry_at(self, email_id: int, attempts: int, error: str, when: datetime) -> None:
        email = self.state.emails[email_id]
        email.status, email.attempts, email.last_error, email.next_attempt_at = (
            EmailStatus.PENDING,
            attempts,
            error,
            when,
        )

    async def mark_failed(self, email_id: int, attempts: int, error: str) -> None:
        email = self.state.emails[email_id]
        email.status, email.attempts, email.last_error = EmailStatus.FAILED, attempts, error


class FakePreferenceRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def of(self, organisation_ids: Sequence[str]) -> dict[str, EmailPreferences]:
        return {org: self.state.preferences[org] for org in organisation_ids if org in self.state.preferences}

    async def read_ahead(self, organisation_ids: Collection[str]) -> None:
        return None  # an in-memory read costs nothing to repeat

    async def set(self, organisation_id: str, preferences: EmailPreferences, now: datetime) -> None:
        self.state.preferences[organisation_id] = preferences


class FakeDigestRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def add(self, event_id: str, intent: EmailIntent, now: datetime) -> None:
        key = (event_id, intent.organisation_id)
        if any((w.event_id, w.entry.organisation_id) == key for w in self.state.digest_entries.values()):
            return
        entry_id = next(self.state.ids)
        entry = DigestEntry(entry_id, intent.organisation_id, dict(intent.context))
        self.state.digest_entries[entry_id] = Waiting(event_id, entry, now)

    async def waiting(self, before: datetime) -> list[DigestEntry]:
        return [
            w.entry
            for _id, w in sorted(self.state.digest_entries.items())
            if w.digest_date is None and w.recorded_at < before
        ]

    async def mark_digested(self, entry_ids: Sequence[int], day: date) -> None:
        for entry_id in entry_ids:
            waiting = self.state.digest_entries[entry_id]
            waiting.digest_date = waiting.digest_date or day


class FakeConsentRepository:
    def __init__(self, state: FakeState) -> None:
        self.state = state

    async def of(self, referral_id: str) -> ConsentState | None:
        return self.state.consents.get(referral_id)

    async def record(self, state: ConsentState, now: datetime) -> bool:
        if not supersedes(state, self.state.consents.get(state.referral_id)):
            return False
        self.state.consents[state.referral_id] = state
        return True


class FakeUnitOfWork:
    def __init__(self, state: FakeState | None = None) -> None:
        self.committed = state or FakeState()
        self.commits = 0
        self._bind(self.committed)

    async def __aenter__(self) -> Self:
        self._working = copy.deepcopy(self.committed)
        self._bind(self._working)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bind(self.committed)  # what was not committed is dropped

    async def flush(self) -> None:
        return None  # the fakes write as they go

    async def commit(self) -> None:
        self.committed = self._working
        self._working = copy.deepcopy(self.committed)
        self._bind(self._working)
        self.commits += 1

    def _bind(self, state: FakeState) -> None:
        self.endpoints = FakeEndpointRepository(state)
        self.deliveries = FakeDeliveryRepository(state)
        self.messages = FakeMessageRepository(state)
        self.referral_order = FakeReferralOrderRepository(state)
        self.directory = FakeDirectoryRepository(state)
        self.emails = FakeEmailRepository(state)
        self.preferences = FakePreferenceRepository(state)
        self.digests = FakeDigestRepository(state)
        self.consents = FakeConsentRepository(state)
