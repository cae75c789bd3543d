"""Endpoint management use cases: register, change, pause, resume, rotate, test, delete, read the log, redeliver,
retry now.

Every use case acts for an organisation on its own endpoints only: another organisation's endpoint is
``EndpointNotFound``, exactly as one that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notifications.adapters.webhook_client import new_secret, resolve_and_check
from notifications.domain.delivery import DeliveryLogEntry, Message
from notifications.domain.endpoints import EndpointSpec, RegisteredEndpoint
from notifications.domain.subscriptions import EndpointStatus
from notifications.service_layer.unit_of_work import UnitOfWork
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import WEBHOOK_PING, WebhookPingV1


class EndpointNotFound(Exception):
    """No such endpoint for this organisation (another organisation's looks the same)."""


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    require_https: bool
    allow_private: bool

    async def check(self, url: str) -> None:
        """Raises ``UnsafeTarget`` for a URL the service must not call (its host is resolved and checked)."""
        await resolve_and_check(url, require_https=self.require_https, allow_private=self.allow_private)


@dataclass(frozen=True, slots=True)
class NewSecret:
    """An endpoint with the secret it signs with: shown only when the secret is made."""

    endpoint: RegisteredEndpoint
    secret: str


async def _own(uow: UnitOfWork, organisation_id: str, endpoint_id: str) -> RegisteredEndpoint:
    endpoint = await uow.endpoints.get(endpoint_id)
    if endpoint is None or endpoint.organisation_id != organisation_id:
        raise EndpointNotFound(endpoint_id)
    return endpoint


async def register(uow: UnitOfWork, organisation_id: str, spec: EndpointSpec, *, policy: UrlPolicy) -> NewSecret:
    await policy.check(spec.url)
    now = datetime.now(UTC)
    endpoint = RegisteredEndpoint(
        id=f"ep_{uuid.uuid4().hex}", organisation_id=organisation_id, url=spec.url, description=spec.description,
        event_types=spec.event_types, service_ids=spec.service_ids, urgencies=spec.urgencies,
        status=EndpointStatus.ACTIVE, disabled_reason=None, secret=new_secret(), previous_secret=None,
        previous_secret_expires_at=None, failing_since=None, created_at=now, updated_at=now,
    )  # fmt: skip
    async with uow:
        await uow.endpoints.add(endpoint)
        await uow.commit()
    return NewSecret(endpoint, endpoint.secret)


async def get(uow: UnitOfWork, organisation_id: str, endpoint_id: str) -> RegisteredEndpoint:
    async with uow:
        return await _own(uow, organisation_id, endpoint_id)


async def list_for(uow: UnitOfWork, organisation_id: str) -> list[RegisteredEndpoint]:
    async with uow:
        return await uow.endpoints.list_for(organisation_id)


async def change(
    uow: UnitOfWork, organisation_id: str, endpoint_id: str, spec: EndpointSpec, *, policy: UrlPolicy
) -> RegisteredEndpoint:
    await get(uow, organisation_id, endpoint_id)
    await policy.check(spec.url)  # outside any transaction: it resolves the host
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        await uow.endpoints.change_subscription(endpoint_id, spec, datetime.now(UTC))
        await uow.commit()
        return await _own(uow, organisation_id, endpoint_id)


async def pause(uow: UnitOfWork, organisation_id: str, endpoint_id: str) -> RegisteredEndpoint:
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        await uow.endpoints.pause(endpoint_id, datetime.now(UTC))
        await uow.commit()
        return await _own(uow, organisation_id, endpoint_id)


async def resume(uow: UnitOfWork, organisation_id: str, endpoint_id: str) -> RegisteredEndpoint:
    """Active again (also after being disabled); queued deliveries go out, and retries start over now."""
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        now = datetime.now(UTC)
        await uow.endpoints.activate(endpoint_id, now)
        await uow.deliveries.retry_pending_now(endpoint_id, now)
        await uow.commit()
        return await _own(uow, organisation_id, endpoint_id)


async def retry_now(uow: UnitOfWork, organisation_id: str, endpoint_id: str) -> int:
    """Deliveries waiting for a retry are due now (after the receiver was fixed); returns how many."""
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        made_due = await uow.deliveries.make_retries_due(endpoint_id, datetime.now(UTC))
        await uow.commit()
    return made_due


async def rotate_secret(uow: UnitOfWork, organisation_id: str, endpoint_id: str, *, grace: timedelta) -> NewSecret:
    """A new secret; the old one keeps signing alongside it for the grace period."""
    async with uow:
        current = await _own(uow, organisation_id, endpoint_id)
        now = datetime.now(UTC)
        secret = new_secret()
        await uow.endpoints.replace_secret(
            endpoint_id, secret, previous=current.secret, previous_expires_at=now + grace, now=now
        )
        await uow.commit()
        return NewSecret(await _own(uow, organisation_id, endpoint_id), secret)


async def remove(uow: UnitOfWork, organisation_id: str, endpoint_id: str) -> None:
    """The endpoint, its queue and its delivery log."""
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        await uow.deliveries.remove_for(endpoint_id)
        await uow.endpoints.remove(endpoint_id)
        await uow.commit()


async def ping(uow: UnitOfWork, organisation_id: str, endpoint_id: str, *, source: str) -> None:
    """A ping event for this endpoint alone, whatever it subscribes to."""
    event = CloudEvent(
        type=WEBHOOK_PING, source=source, subject=endpoint_id, data=WebhookPingV1(endpoint_id=endpoint_id).model_dump()
    )
    now = datetime.now(UTC)
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        message = Message(event.id, event.type, event.id, (organisation_id,), event.to_structured(), now)
        await uow.messages.add(message, deliver_to=[endpoint_id])
        await uow.commit()


async def delivery_log(
    uow: UnitOfWork, organisation_id: str, endpoint_id: str, *, limit: int, before: int | None
) -> list[DeliveryLogEntry]:
    """Newest first, each delivery with its attempts; ``before`` is the smallest id of the previous page."""
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        return await uow.deliveries.log(endpoint_id, limit=limit, before=before)


async def redeliver_one(uow: UnitOfWork, organisation_id: str, endpoint_id: str, delivery_id: int) -> None:
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        found = await uow.deliveries.order_key_of(endpoint_id, delivery_id)
        if found is None:
            raise EndpointNotFound(str(delivery_id))
        await _requeue(uow, endpoint_id, *found)
        await uow.commit()


async def redeliver_since(uow: UnitOfWork, organisation_id: str, endpoint_id: str, since: datetime) -> int:
    """Sends again every message this endpoint was sent (or due) since ``since``; returns how many."""
    async with uow:
        await _own(uow, organisation_id, endpoint_id)
        queued = await uow.deliveries.queued_since(endpoint_id, since)
        for event_id, order_key in queued:
            await _requeue(uow, endpoint_id, event_id, order_key)
        await uow.commit()
    return len(queued)


async def _requeue(uow: UnitOfWork, endpoint_id: str, event_id: str, order_key: str) -> None:
    """A new round of the delivery: the same message, with the same webhook-id, due now."""
    latest = await uow.deliveries.latest_round(endpoint_id, event_id)
    await uow.deliveries.queue(endpoint_id, event_id, order_key, (latest or 0) + 1, datetime.now(UTC))
