"""Consumer side: turns each event into a message and one delivery per endpoint that may and wants to hear it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import deliveries, endpoints, messages, service_names
from notifications.domain.subscriptions import Endpoint, EndpointStatus, organisations_concerned, wants
from notifications.service_layer.mail import queue_emails
from send_shared.db import upsert_insert
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import SERVICE_UPSERTED, ServiceV1


def webhook_body(event: CloudEvent, referral_link: str | None) -> dict[str, Any]:
    """The CloudEvent in JSON structured mode, plus a link to fetch the referral (for those allowed to)."""
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
    if event.type == SERVICE_UPSERTED:
        await _record_service_name(session, ServiceV1.model_validate(event.data))
        return 0
    concerned = organisations_concerned(event.type, event.data)
    if not concerned:
        return 0
    await queue_emails(session, event.id, event.type, event.data)
    referral_id = str(event.data.get("referral_id") or event.subject or "")
    link = referral_link_template.format(referral_id=referral_id) if referral_id else None
    now = datetime.now(UTC)
    insert = upsert_insert(session)
    await session.execute(
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
