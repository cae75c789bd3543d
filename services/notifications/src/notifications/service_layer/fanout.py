"""Consumer side: turns each event into a message and one delivery per endpoint that may and wants to hear it.

Every event it acts on is validated against its schema first (``validated_payload``): a violation raises, and the
consumer parks it on its dead-letter topic. Webhook bodies and email contexts are built from the
validated payload only, so a field the contract does not know (a name, say) never goes out.
A referral's events go on in version order (``domain.ordering``); one that comes early is held. Consent events
carry their own consent version, not the referral's: they go on at once (never held), and the newest one is kept
as the referral's consent in force, which decides who hears what follows (``organisations_concerned``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notifications.adapters.event_mapping import clean_event, from_structured, webhook_body
from notifications.domain.consent import ConsentState
from notifications.domain.delivery import Message
from notifications.domain.ordering import Arrival, arrival
from notifications.domain.subscriptions import ALERT_PREFIX, REFERRAL_PREFIX, organisations_concerned, wants
from notifications.service_layer.mail import queue_emails
from notifications.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    CLOCKS_UPDATED,
    REFERRAL_EVENT_TYPES,
    WAIT_ESTIMATE,
    OrganisationV1,
    ReferralConsentV1,
    ReferralEventV1,
    ServiceV1,
    validated_payload,
)
from send_shared.metrics import CONSUMER_VERSION_GAPS

log = logging.getLogger(__name__)
CONSUMER_GROUP = "notifications"
# Read from waitlists' topic beside the alerts, and left unread: one a referral, so not validated either.
_NOT_FOR_ORGANISATIONS = frozenset({CLOCKS_UPDATED, WAIT_ESTIMATE})


class _HeldFlag:
    """Whether any event may be held: while none is, a next version need not look for held successors.
    True until the held-events worker has looked (and whenever this process holds one); the worker also
    sends on, every few seconds, what another process's consumer made ready."""

    maybe = True


_held = _HeldFlag()


@dataclass(frozen=True, slots=True)
class _SendOn:
    """How an event goes on to those concerned: the referral link its messages name, and whether emails are queued
    (email off: none is, nor kept for a digest, so turning email on later sends nothing stale)."""

    referral_link_template: str
    emails: bool


async def fan_out(event: CloudEvent, uow: UnitOfWork, *, referral_link_template: str, emails: bool = True) -> int:
    """Records the message and its deliveries in ``uow``'s transaction (the consumer's, which commits it with
    the event's inbox row); returns how many deliveries. With ``emails`` off (email not sent at all), no email is
    queued or kept for a digest: turning email on later sends nothing stale."""
    if event.type in _NOT_FOR_ORGANISATIONS:
        return 0  # waitlists tells the referrals service (the family view, the estimate), not organisations
    payload = validated_payload(event.type, event.data, subject=event.subject, extensions=event.extensions)
    if payload is None:
        return 0  # a type outside the contract concerns no one
    if isinstance(payload, ServiceV1):
        await uow.directory.record_service_name(payload.service_id, payload.name, payload.version)
        return 0
    if isinstance(payload, OrganisationV1):
        await uow.directory.record_organisation(payload.organisation_id, payload.version)
        return 0
    clean = clean_event(event, payload)
    how = _SendOn(referral_link_template, emails)
    if isinstance(payload, ReferralConsentV1):
        state = ConsentState(payload.referral_id, payload.consent_version, payload.consent_status)
        if not await uow.consents.record(state, datetime.now(UTC)):
            return 0  # a repeat, or older than the consent in force: those concerned heard a newer one
        return await _send_on(uow, clean, how)
    if not isinstance(payload, ReferralEventV1):
        return await _send_on(uow, clean, how)
    found, consent = await uow.referral_order.last_sent_and_consent(payload.referral_id)
    last = await _carried_on(uow, payload.referral_id, found, payload.version)
    match arrival(last, payload.version):
        case Arrival.STALE:
            return 0
        case Arrival.EARLY:
            await _hold(uow, clean, payload)
            return 0
        case Arrival.NEXT:
            sent = await _send_on_with(uow, clean, how, payload.referral_id, consent)
            if not _held.maybe:  # nothing is held anywhere (as of the last look): just note the version
                await uow.referral_order.set_last_sent(payload.referral_id, payload.version)
                return sent
            return sent + await _release(uow, payload.referral_id, payload.version, how, waited_long_enough=False)


async def read_ahead(events: Sequence[CloudEvent], uow: UnitOfWork) -> None:
    """What a batch's events would each read, read at once in three statements: the referral events' last versions
    sent on with their consents in force, and the endpoints and email preferences of the organisations the events
    name."""
    referral_ids = {event.data["referral_id"] for event in events
                    if event.type in REFERRAL_EVENT_TYPES and isinstance(event.data.get("referral_id"), str)}  # fmt: skip
    organisations = {
        org
        for event in events
        if event.type.startswith((REFERRAL_PREFIX, ALERT_PREFIX))
        for org in (event.data.get("referrer_org_id"), event.data.get("receiving_org_id"))
        if isinstance(org, str) and org
    }
    await uow.referral_order.read_ahead(referral_ids)
    await uow.endpoints.read_ahead(organisations)
    await uow.preferences.read_ahead(organisations)


async def _send_on(uow: UnitOfWork, event: CloudEvent, how: _SendOn) -> int:
    """Who hears is decided as the event goes on, by the consent in force then: an event held for its turn and
    sent on after a withdrawal reaches only the receiving organisation."""
    if not event.type.startswith((REFERRAL_PREFIX, ALERT_PREFIX)):
        return 0
    referral_id = str(event.data.get("referral_id") or event.subject or "")
    consent = await uow.consents.of(referral_id) if referral_id else None
    return await _send_on_with(uow, event, how, referral_id, consent)


async def _send_on_with(
    uow: UnitOfWork, event: CloudEvent, how: _SendOn, referral_id: str, consent: ConsentState | None
) -> int:
    """``_send_on`` with the referral's consent in force already read."""
    concerned = organisations_concerned(event.type, event.data, consent)
    if not concerned:
        return 0
    link = how.referral_link_template.format(referral_id=referral_id) if referral_id else None
    now = datetime.now(UTC)
    order_key = referral_id or event.id
    message = Message(event.id, event.type, order_key, tuple(concerned), webhook_body(event, link), now)
    targets = [
        e.id
        for e in await uow.endpoints.subscribed(concerned)
        if wants(e.subscription, event.type, event.data, concerned)
    ]
    if not await uow.messages.add(message, deliver_to=targets):
        return 0  # sent on before (messages are kept): whatever brought it back, no one hears it twice
    if how.emails:
        await queue_emails(uow, event.id, event.type, event.data, concerned)
    return len(targets)


async def _last_sent_version(uow: UnitOfWork, referral_id: str) -> int:
    return await _carried_on(uow, referral_id, await uow.referral_order.last_sent(referral_id))


async def _carried_on(uow: UnitOfWork, referral_id: str, found: int | None, arriving: int = 1) -> int:
    """The last version sent on, as ``found`` in the referral's order or else carried on from its messages."""
    if found is not None:
        return found
    if arriving > 1 and await uow.messages.any_with_order_key(referral_id):
        return arriving - 1  # messages sent on before versions were tracked here: carry on from where they were
    return 0


async def _hold(uow: UnitOfWork, event: CloudEvent, payload: ReferralEventV1) -> None:
    held = await uow.referral_order.hold(
        event.id, payload.referral_id, payload.version, event.to_structured(), datetime.now(UTC)
    )
    _held.maybe = True
    if held:
        CONSUMER_VERSION_GAPS.labels(CONSUMER_GROUP).inc()
        log.warning(
            "referral event came before an earlier version; held",
            extra={"referral_id": payload.referral_id, "version": payload.version, "event_id": event.id},
        )


async def _release(uow: UnitOfWork, referral_id: str, version: int, how: _SendOn, *, waited_long_enough: bool) -> int:
    """After ``version`` went on: held versions that follow on go too, in order (and, once they have
    waited long enough, those after a gap)."""
    sent = 0
    released = []
    for held in await uow.referral_order.held_for(referral_id):
        if held.version <= version:
            released.append(held.event_id)  # a repeat of what already went on
        elif held.version == version + 1 or waited_long_enough:
            if held.version != version + 1:
                log.warning(
                    "gave up waiting for earlier versions of a referral",
                    extra={"referral_id": referral_id, "missing_from": version + 1, "missing_to": held.version - 1},
                )
            sent += await _send_on(uow, from_structured(held.event), how)
            released.append(held.event_id)
            version = held.version
        else:
            break
    if released:
        await uow.referral_order.release(released)
    await uow.referral_order.set_last_sent(referral_id, version)
    return sent


async def release_overdue(
    uow: UnitOfWork, *, hold_limit: timedelta, referral_link_template: str, emails: bool = True
) -> int:
    """Events held longer than ``hold_limit`` go on, in version order, as if the missing versions were
    never coming; returns how many deliveries that made."""
    sent = 0
    how = _SendOn(referral_link_template, emails)
    for referral_id in await uow.referral_order.referrals_held_since(datetime.now(UTC) - hold_limit):
        last = await _last_sent_version(uow, referral_id)
        sent += await _release(uow, referral_id, last, how, waited_long_enough=True)
    return sent


async def release_ready(uow: UnitOfWork, *, referral_link_template: str, emails: bool = True) -> int:
    """Held events whose earlier versions have all gone on (a consumer in another process sent the missing
    one) go on too."""
    sent = 0
    how = _SendOn(referral_link_template, emails)
    for referral_id in await uow.referral_order.referrals_ready():
        last = await _last_sent_version(uow, referral_id)
        sent += await _release(uow, referral_id, last, how, waited_long_enough=False)
    return sent


async def held_summary(uow: UnitOfWork) -> tuple[int, float]:
    """How many events are held, and for how long the oldest has waited (seconds)."""
    count, oldest = await uow.referral_order.held_summary()
    waited = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
    return count, waited


class HeldEvents:
    """Sends on events held too long, and says for readiness how many are held (healing after a loss)."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        *,
        hold_limit: timedelta,
        referral_link_template: str,
        after: Callable[[], None],
        emails: bool = True,
        interval: float = 2.0,
        quiet_interval: float = 10.0,
    ) -> None:
        self.unit_of_work = unit_of_work
        self.hold_limit = hold_limit
        self.referral_link_template = referral_link_template
        self.emails = emails
        self.after = after
        self.interval = interval
        # While nothing is held here: events this process holds are released as their predecessors arrive
        # (``_held.maybe``), another process's by its own worker, so the look serves readiness and overdue ones.
        self.quiet_interval = quiet_interval
        self._held = 0
        self._oldest = 0.0

    def status(self) -> str | None:
        if not self._held:
            return None
        return f"healing: {self._held} referral events wait for an earlier version (the oldest {self._oldest:.0f} s)"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with self.unit_of_work() as uow:
                link, emails = self.referral_link_template, self.emails
                sent = await release_overdue(
                    uow, hold_limit=self.hold_limit, referral_link_template=link, emails=emails
                )
                sent += await release_ready(uow, referral_link_template=link, emails=emails)
                self._held, self._oldest = await held_summary(uow)
                await uow.commit()
            holding = self._held > 0 or _held.maybe  # ``maybe``: this process held one since the look began
            _held.maybe = self._held > 0
            if sent:
                self.after()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval if holding else self.quiet_interval)
