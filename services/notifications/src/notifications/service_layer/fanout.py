"""Consumer side: turns each event into a message and one delivery per endpoint that may and wants to hear it.

Every event is validated against its schema first (``validated_payload``): a violation raises, and the
consumer parks it on its dead-letter topic. Webhook bodies and email contexts are built from the
validated payload only, so a field the contract does not know (a name, say) never goes out.
A referral's events go on in version order (``domain.ordering``); one that comes early is held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.orm import deliveries, endpoints, held_events, messages, referral_versions, service_names
from notifications.domain.ordering import Arrival, arrival
from notifications.domain.subscriptions import Endpoint, EndpointStatus, organisations_concerned, wants
from notifications.service_layer.directory import record_organisation
from notifications.service_layer.mail import queue_emails
from send_shared.db import as_utc, upsert_insert
from send_shared.events.envelope import CloudEvent, parse_time
from send_shared.events.schemas import EventPayloadV1, OrganisationV1, ReferralEventV1, ServiceV1, validated_payload
from send_shared.metrics import CONSUMER_VERSION_GAPS

log = logging.getLogger(__name__)
CONSUMER_GROUP = "notifications"


class _HeldFlag:
    """Whether any event may be held: while none is, a next version need not look for held successors.
    True until the held-events worker has looked (and whenever this process holds one); the worker also
    sends on, every few seconds, what another process's consumer made ready."""

    maybe = True


_held = _HeldFlag()


def clean_event(event: CloudEvent, payload: EventPayloadV1) -> CloudEvent:
    """The event rebuilt from its validated payload and the attributes the contract defines."""
    extensions = {"referralversion": str(payload.version)} if isinstance(payload, ReferralEventV1) else {}
    return CloudEvent(
        id=event.id,
        type=event.type,
        source=event.source,
        subject=event.subject,
        time=event.time,
        data=payload.model_dump(mode="json"),
        extensions=extensions,
    )


def webhook_body(event: CloudEvent, referral_link: str | None) -> dict[str, Any]:
    """The (clean) CloudEvent in JSON structured mode, plus a link to fetch the referral (for those allowed to)."""
    body = event.to_structured()
    if referral_link:
        body["referrallink"] = referral_link
    return body


def endpoint_from_row(row: Any) -> Endpoint:
    return Endpoint(
        id=row["id"],
        organisation_id=row["organisation_id"],
        url=row["url"],
        event_types=tuple(row["event_types"]),
        service_ids=tuple(row["service_ids"]),
        urgencies=tuple(row["urgencies"]),
        status=EndpointStatus(row["status"]),
    )


async def fan_out(event: CloudEvent, session: AsyncSession, *, referral_link_template: str) -> int:
    """Records the message and its deliveries in the consumer's transaction; returns how many deliveries."""
    payload = validated_payload(event.type, event.data, subject=event.subject, extensions=event.extensions)
    if payload is None:
        return 0  # a type outside the contract concerns no one
    if isinstance(payload, ServiceV1):
        await _record_service_name(session, payload)
        return 0
    if isinstance(payload, OrganisationV1):
        await record_organisation(session, payload)
        return 0
    clean = clean_event(event, payload)
    if not isinstance(payload, ReferralEventV1):
        return await _send_on(session, clean, referral_link_template)
    last = await _last_sent_version(session, payload.referral_id, payload.version)
    match arrival(last, payload.version):
        case Arrival.STALE:
            return 0
        case Arrival.EARLY:
            await _hold(session, clean, payload)
            return 0
        case Arrival.NEXT:
            sent = await _send_on(session, clean, referral_link_template)
            if not _held.maybe:  # nothing is held anywhere (as of the last look): just note the version
                await _set_sent_version(session, payload.referral_id, payload.version)
                return sent
            return sent + await _release_next(session, payload.referral_id, payload.version, referral_link_template)


async def _send_on(session: AsyncSession, event: CloudEvent, referral_link_template: str) -> int:
    concerned = organisations_concerned(event.type, event.data)
    if not concerned:
        return 0
    referral_id = str(event.data.get("referral_id") or event.subject or "")
    link = referral_link_template.format(referral_id=referral_id) if referral_id else None
    now = datetime.now(UTC)
    insert = upsert_insert(session)
    recorded = await session.execute(
        insert(messages)
        .values(
            event_id=event.id,
            event_type=event.type,
            order_key=referral_id or event.id,
            organisation_ids=concerned,
            body=webhook_body(event, link),
            received_at=now,
        )
        .on_conflict_do_nothing()
    )
    if not getattr(recorded, "rowcount", 0):
        return 0  # sent on before (messages are kept): whatever brought it back, no one hears it twice
    await queue_emails(session, event.id, event.type, event.data)
    rows = (
        await session.execute(
            select(endpoints).where(
                endpoints.c.organisation_id.in_(concerned),
                endpoints.c.status.in_([EndpointStatus.ACTIVE.value, EndpointStatus.PAUSED.value]),
            )
        )
    ).mappings()
    targets = [e for e in map(endpoint_from_row, rows) if wants(e, event.type, event.data, concerned)]
    for endpoint in targets:
        await session.execute(
            insert(deliveries)
            .values(
                endpoint_id=endpoint.id,
                event_id=event.id,
                round=0,
                order_key=referral_id or event.id,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
    return len(targets)


async def _last_sent_version(session: AsyncSession, referral_id: str, arriving: int = 1) -> int:
    found = (
        await session.execute(select(referral_versions.c.version).where(referral_versions.c.referral_id == referral_id))
    ).scalar()
    if found is not None:
        return int(found)
    if arriving > 1:
        # Messages sent on before versions were tracked here: carry on from where they were.
        earlier = await session.execute(select(messages.c.event_id).where(messages.c.order_key == referral_id).limit(1))
        if earlier.first() is not None:
            return arriving - 1
    return 0


async def _set_sent_version(session: AsyncSession, referral_id: str, version: int) -> None:
    insert = upsert_insert(session)
    stmt = insert(referral_versions).values(referral_id=referral_id, version=version)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[referral_versions.c.referral_id], set_={"version": version})
    )


async def _hold(session: AsyncSession, event: CloudEvent, payload: ReferralEventV1) -> None:
    result = await session.execute(
        upsert_insert(session)(held_events)
        .values(
            event_id=event.id,
            referral_id=payload.referral_id,
            version=payload.version,
            event=event.to_structured(),
            held_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )
    _held.maybe = True
    if getattr(result, "rowcount", 0):
        CONSUMER_VERSION_GAPS.labels(CONSUMER_GROUP).inc()
        log.warning(
            "referral event came before an earlier version; held",
            extra={"referral_id": payload.referral_id, "version": payload.version, "event_id": event.id},
        )


def _from_held(document: dict[str, Any]) -> CloudEvent:
    core = {"id", "source", "type", "specversion", "time", "subject", "datacontenttype", "data"}
    return CloudEvent(
        id=document["id"],
        type=document["type"],
        source=document["source"],
        subject=document.get("subject"),
        time=parse_time(document["time"]),
        data=document["data"],
        extensions={k: str(v) for k, v in document.items() if k not in core},
    )


async def _release_next(session: AsyncSession, referral_id: str, version: int, referral_link_template: str) -> int:
    """After ``version`` went on: held versions that now follow on go too, in order."""
    return await _release(session, referral_id, version, referral_link_template, waited_long_enough=False)


async def _release(
    session: AsyncSession, referral_id: str, version: int, referral_link_template: str, *, waited_long_enough: bool
) -> int:
    rows = (
        await session.execute(
            select(held_events.c.event_id, held_events.c.version, held_events.c.event)
            .where(held_events.c.referral_id == referral_id)
            .order_by(held_events.c.version)
        )
    ).all()
    sent = 0
    released = []
    for event_id, held_version, document in rows:
        if held_version <= version:
            released.append(event_id)  # a repeat of what already went on
        elif held_version == version + 1 or waited_long_enough:
            if held_version != version + 1:
                log.warning(
                    "gave up waiting for earlier versions of a referral",
                    extra={"referral_id": referral_id, "missing_from": version + 1, "missing_to": held_version - 1},
                )
            sent += await _send_on(session, _from_held(document), referral_link_template)
            released.append(event_id)
            version = held_version
        else:
            break
    if released:
        await session.execute(delete(held_events).where(held_events.c.event_id.in_(released)))
    await _set_sent_version(session, referral_id, version)
    return sent


async def release_overdue(session: AsyncSession, *, hold_limit: timedelta, referral_link_template: str) -> int:
    """Events held longer than ``hold_limit`` go on, in version order, as if the missing versions were
    never coming; returns how many deliveries that made."""
    due = datetime.now(UTC) - hold_limit
    referral_ids = (
        await session.execute(select(held_events.c.referral_id).where(held_events.c.held_at <= due).distinct())
    ).scalars()
    sent = 0
    for referral_id in list(referral_ids):
        last = await _last_sent_version(session, referral_id)
        sent += await _release(session, referral_id, last, referral_link_template, waited_long_enough=True)
    return sent


async def release_ready(session: AsyncSession, *, referral_link_template: str) -> int:
    """Held events whose earlier versions have all gone on (a consumer in another process sent the missing
    one) go on too."""
    ready = (
        await session.execute(
            select(held_events.c.referral_id)
            .join(referral_versions, referral_versions.c.referral_id == held_events.c.referral_id)
            .where(held_events.c.version <= referral_versions.c.version + 1)
            .distinct()
        )
    ).scalars()
    sent = 0
    for referral_id in list(ready):
        last = await _last_sent_version(session, referral_id)
        sent += await _release(session, referral_id, last, referral_link_template, waited_long_enough=False)
    return sent


async def held_summary(session: AsyncSession) -> tuple[int, float]:
    """How many events are held, and for how long the oldest has waited (seconds)."""
    count, oldest = (await session.execute(select(func.count(), func.min(held_events.c.held_at)))).one()
    waited = (datetime.now(UTC) - as_utc(oldest)).total_seconds() if oldest else 0.0
    return int(count), waited


async def _record_service_name(session: AsyncSession, data: ServiceV1) -> None:
    insert = upsert_insert(session)
    stmt = insert(service_names).values(service_id=data.service_id, name=data.name, version=data.version)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[service_names.c.service_id],
            set_={"name": data.name, "version": data.version},
            where=service_names.c.version < stmt.excluded.version,
        )
    )


class HeldEvents:
    """Sends on events held too long, and says for readiness how many are held (healing after a loss)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        hold_limit: timedelta,
        referral_link_template: str,
        after: Callable[[], None],
        interval: float = 2.0,
    ) -> None:
        self.sessions = sessions
        self.hold_limit = hold_limit
        self.referral_link_template = referral_link_template
        self.after = after
        self.interval = interval
        self._held = 0
        self._oldest = 0.0

    def status(self) -> str | None:
        if not self._held:
            return None
        return f"healing: {self._held} referral events wait for an earlier version (the oldest {self._oldest:.0f} s)"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with self.sessions() as session, session.begin():
                link = self.referral_link_template
                sent = await release_overdue(session, hold_limit=self.hold_limit, referral_link_template=link)
                sent += await release_ready(session, referral_link_template=link)
                self._held, self._oldest = await held_summary(session)
            _held.maybe = self._held > 0
            if sent:
                self.after()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
