"""What the use cases need from storage: typed repositories in one transaction (the unit of work).

These are interfaces only; ``adapters.unit_of_work`` implements them on SQL, and the unit tests on
dictionaries. A unit of work is entered for each transaction (``async with uow:``) and rolls back
what was not committed when it is left.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from notifications.domain.consent import ConsentState
from notifications.domain.delivery import (
    AttemptRecord,
    Backlog,
    DeliveryLogEntry,
    DeliveryStatus,
    Message,
    PendingDelivery,
)
from notifications.domain.digest import DigestEntry
from notifications.domain.email_policy import EmailIntent, QueuedEmail, Template
from notifications.domain.email_preferences import EmailPreferences
from notifications.domain.endpoints import EndpointSpec, RegisteredEndpoint
from notifications.domain.ordering import HeldEvent


class EndpointRepository(Protocol):
    async def add(self, endpoint: RegisteredEndpoint) -> None: ...
    async def get(self, endpoint_id: str) -> RegisteredEndpoint | None: ...
    async def list_for(self, organisation_id: str) -> list[RegisteredEndpoint]: ...
    async def subscribed(self, organisation_ids: Sequence[str]) -> list[RegisteredEndpoint]:
        """Active and paused endpoints of these organisations."""
        ...

    async def read_ahead(self, organisation_ids: Collection[str]) -> None:
        """``subscribed`` for these organisations read at once, for the rest of the consumer's transaction."""
        ...

    async def change_subscription(self, endpoint_id: str, spec: EndpointSpec, now: datetime) -> None: ...
    async def pause(self, endpoint_id: str, now: datetime) -> None: ...
    async def activate(self, endpoint_id: str, now: datetime) -> None:
        """Active again, with no disabled reason and no failing run."""
        ...

    async def disable(self, endpoint_id: str, reason: str, now: datetime) -> None: ...
    async def replace_secret(
        self, endpoint_id: str, secret: str, *, previous: str, previous_expires_at: datetime, now: datetime
    ) -> None: ...
    async def note_failure(self, endpoint_id: str, now: datetime) -> datetime:
        """Starts the failing run unless one is under way; returns when the run started."""
        ...

    async def note_success(self, endpoint_id: str) -> None: ...
    async def remove(self, endpoint_id: str) -> None: ...


class DeliveryRepository(Protocol):
    async def queue(self, endpoint_id: str, event_id: str, order_key: str, round_: int, now: datetime) -> None:
        """A delivery due now (nothing if this round of this event is already queued for the endpoint)."""
        ...

    async def latest_round(self, endpoint_id: str, event_id: str) -> int | None: ...
    async def order_key_of(self, endpoint_id: str, delivery_id: int) -> tuple[str, str] | None:
        """The event id and order key of this endpoint's delivery, if it has one with that id."""
        ...

    async def queued_since(self, endpoint_id: str, since: datetime) -> list[tuple[str, str]]:
        """(event id, order key) of each event queued for the endpoint since ``since``, first queued first."""
        ...

    async def log(self, endpoint_id: str, *, limit: int, before: int | None) -> list[DeliveryLogEntry]: ...
    async def retry_pending_now(self, endpoint_id: str, now: datetime) -> None: ...
    async def make_retries_due(self, endpoint_id: str, now: datetime) -> int:
        """Pending deliveries of the endpoint that wait for a retry (attempted, due later) become due now;
        returns how many."""
        ...

    async def remove_for(self, endpoint_id: str) -> None:
        """The endpoint's deliveries and their attempts."""
        ...

    async def endpoints_with_due_work(self, now: datetime) -> list[str]:
        """Active endpoints with a delivery due."""
        ...

    async def pending_for(self, endpoint_id: str, *, limit: int) -> list[PendingDelivery]:
        """The endpoint's pending deliveries, oldest first."""
        ...

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
        """Records the attempt at ``endpoint_id`` and settles the delivery as it left it (``settle``)."""
        ...

    async def settle(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
        succeeded_at: datetime | None = None,
    ) -> None:
        """Sets the delivery's status and next attempt (and its attempt count and success time when given)."""
        ...

    async def backlog(self, now: datetime) -> Backlog: ...


class MessageRepository(Protocol):
    async def add(self, message: Message, deliver_to: Sequence[str] = ()) -> bool:
        """Records the message and, with it, a first delivery (round 0, due at once) to each endpoint of
        ``deliver_to``; False, and nothing queued, when the message was recorded before (it is never sent on twice)."""
        ...

    async def any_with_order_key(self, order_key: str) -> bool: ...


class ReferralOrderRepository(Protocol):
    """Per referral, the last version sent on, and the versions held until the ones before them are in."""

    async def last_sent(self, referral_id: str) -> int | None: ...
    async def last_sent_and_consent(self, referral_id: str) -> tuple[int | None, ConsentState | None]:
        """The last version sent on and the family's consent in force (``ConsentRepository.of``), in one read."""
        ...

    async def read_ahead(self, referral_ids: Collection[str]) -> None:
        """``last_sent_and_consent`` of these referrals read at once, for the rest of the consumer's transaction
        (kept as ``set_last_sent`` writes; a consent recorded reads it again)."""
        ...

    async def set_last_sent(self, referral_id: str, version: int) -> None:
        """Kept for the end of the transaction (``UnitOfWork.flush``); read back as set until then."""
        ...

    async def hold(self, event_id: str, referral_id: str, version: int, event: dict[str, Any], now: datetime) -> bool:
        """False when the event was held already."""
        ...

    async def held_for(self, referral_id: str) -> list[HeldEvent]:
        """Lowest version first."""
        ...

    async def release(self, event_ids: Sequence[str]) -> None: ...
    async def referrals_held_since(self, cutoff: datetime) -> list[str]: ...
    async def referrals_ready(self) -> list[str]:
        """Referrals with a held version that follows on from the last one sent."""
        ...

    async def held_summary(self) -> tuple[int, datetime | None]:
        """How many events are held, and since when the oldest one."""
        ...


class DirectoryRepository(Protocol):
    """Organisations and service names from the directory's events; each organisation's email contacts."""

    async def record_organisation(self, organisation_id: str, version: int) -> None:
        """The newest version wins; an older or repeated one changes nothing."""
        ...

    async def organisation_known(self, organisation_id: str) -> bool: ...
    async def record_service_name(self, service_id: str, name: str, version: int) -> None:
        """The newest version wins; an older or repeated one changes nothing."""
        ...

    async def service_names(self) -> dict[str, str]: ...
    async def set_contacts(self, organisation_id: str, emails: Sequence[str], now: datetime) -> None: ...
    async def contacts(self) -> dict[str, list[str]]: ...


class EmailRepository(Protocol):
    async def queue(self, event_id: str, intent: EmailIntent, now: datetime) -> None:
        """Due now; nothing if this event already queued this template for this organisation."""
        ...

    async def has(self, event_id: str, organisation_id: str, template: Template) -> bool: ...
    async def due(self, now: datetime, *, limit: int) -> list[QueuedEmail]: ...
    async def mark_sent(self, email_id: int, now: datetime) -> None: ...
    async def mark_no_contact(self, email_id: int) -> None: ...
    async def retry_at(self, email_id: int, attempts: int, error: str, when: datetime) -> None: ...
    async def mark_failed(self, email_id: int, attempts: int, error: str) -> None: ...


class PreferenceRepository(Protocol):
    async def of(self, organisation_ids: Sequence[str]) -> dict[str, EmailPreferences]:
        """The choices of those of these organisations that made any (the others have the defaults)."""
        ...

    async def read_ahead(self, organisation_ids: Collection[str]) -> None:
        """``of`` these organisations read at once, for the rest of the consumer's transaction."""
        ...

    async def set(self, organisation_id: str, preferences: EmailPreferences, now: datetime) -> None: ...


class DigestRepository(Protocol):
    async def add(self, event_id: str, intent: EmailIntent, now: datetime) -> None:
        """Waits for the organisation's next digest; nothing if this event added it already."""
        ...

    async def waiting(self, before: datetime) -> list[DigestEntry]:
        """New referrals recorded before ``before`` and in no digest yet, first recorded first."""
        ...

    async def mark_digested(self, entry_ids: Sequence[int], day: date) -> None: ...


class ConsentRepository(Protocol):
    """Per referral, the family's consent in force, from the consent events."""

    async def of(self, referral_id: str) -> ConsentState | None: ...
    async def record(self, state: ConsentState, now: datetime) -> bool:
        """Keeps ``state`` if it is newer (a higher consent version) than the one kept; False for a repeat or an
        older version, which change nothing."""
        ...


class UnitOfWork(Protocol):
    @property
    def endpoints(self) -> EndpointRepository: ...
    @property
    def deliveries(self) -> DeliveryRepository: ...
    @property
    def messages(self) -> MessageRepository: ...
    @property
    def referral_order(self) -> ReferralOrderRepository: ...
    @property
    def directory(self) -> DirectoryRepository: ...
    @property
    def emails(self) -> EmailRepository: ...
    @property
    def preferences(self) -> PreferenceRepository: ...
    @property
    def digests(self) -> DigestRepository: ...
    @property
    def consents(self) -> ConsentRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def flush(self) -> None:
        """Writes what the repositories keep for the end of the transaction (the last versions sent on);
        ``commit`` does it first. The consumer's transaction, which the unit of work does not own, calls it
        before it commits."""
        ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
