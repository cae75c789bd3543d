"""Deliveries (one message to one endpoint, per round) and their attempts, in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import deliveries, delivery_attempts, endpoints, messages
from notifications.domain.delivery import (
    AttemptRecord,
    Backlog,
    DeliveryLogEntry,
    DeliveryStatus,
    PendingDelivery,
)
from notifications.domain.subscriptions import EndpointStatus
from send_shared import direct
from send_shared.db import ByDialect, as_utc, dialect_name

_PENDING = DeliveryStatus.PENDING.value

# The consumer's and the dispatcher's statements (each event queues deliveries, each delivery is read, attempted and
# settled), built once: a statement built per call costs its construction and its cache key every time.
_QUEUE = ByDialect(lambda insert: insert(deliveries).on_conflict_do_nothing())
_RECORD_ATTEMPT = delivery_attempts.insert()
_SETTLE = update(deliveries).where(deliveries.c.id == bindparam("delivery_id"))  # SET: the columns given
_ATTEMPT_FIELDS = ("endpoint_id", "attempted_at", "status_code", "latency_ms", "error", "response_excerpt")


def _settle_after_attempt(columns: tuple[str, ...]) -> Update:
    """PostgreSQL: the attempt recorded and its delivery settled in one statement (a data-modifying WITH), one
    round trip for each delivery; the attempt's values are named ``attempt_<column>``, the delivery's ``set_<column>``."""
    recorded = (
        delivery_attempts.insert()
        .values(
            delivery_id=bindparam("delivery_id", type_=delivery_attempts.c.delivery_id.type),
            **{name: bindparam(f"attempt_{name}", type_=delivery_attempts.c[name].type) for name in _ATTEMPT_FIELDS},
        )
        .cte("recorded")
    )
    return (
        update(deliveries)
        .where(deliveries.c.id == bindparam("delivery_id"))
        .values({name: bindparam(f"set_{name}", type_=deliveries.c[name].type) for name in columns})
        .add_cte(recorded)
    )


_SETTLED = ("status", "attempts", "next_attempt_at")
_SETTLE_AFTER_ATTEMPT = {
    False: _settle_after_attempt(_SETTLED),
    True: _settle_after_attempt((*_SETTLED, "succeeded_at")),  # a success
}
_DUE = deliveries.c.next_attempt_at <= bindparam("now")
_ENDPOINTS_WITH_DUE_WORK = (
    select(deliveries.c.endpoint_id)
    .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
    .where(deliveries.c.status == _PENDING, _DUE, endpoints.c.status == EndpointStatus.ACTIVE.value)
    .distinct()
)
_PENDING_FOR = (
    select(
        deliveries.c.id,
        deliveries.c.event_id,
        deliveries.c.order_key,
        deliveries.c.attempts,
        deliveries.c.next_attempt_at,
        messages.c.body,
        messages.c.organisation_ids,
        messages.c.received_at,
    )
    .join(messages, messages.c.event_id == deliveries.c.event_id)
    .where(deliveries.c.endpoint_id == bindparam("endpoint_id"), deliveries.c.status == _PENDING)
    .order_by(deliveries.c.id)
    .limit(bindparam("limit"))
)
_ACTIVE = deliveries.c.endpoint_id.in_(select(endpoints.c.id).where(endpoints.c.status == EndpointStatus.ACTIVE.value))
_BACKLOG = select(
    func.count(),
    func.count().filter(_DUE),
    func.min(deliveries.c.next_attempt_at).filter(_DUE, _ACTIVE),
    func.min(deliveries.c.next_attempt_at).filter(~_DUE, _ACTIVE),
).where(deliveries.c.status == _PENDING)


class SqlDeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queue(self, endpoint_id: str, event_id: str, order_key: str, round_: int, now: datetime) -> None:
        await direct.execute(
            self.session,
            _QUEUE(self.session),
            {
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "round": round_,
                "order_key": order_key,
                "status": _PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )

    async def latest_round(self, endpoint_id: str, event_id: str) -> int | None:
        found = await self.session.execute(
            select(func.max(deliveries.c.round)).where(
                deliveries.c.endpoint_id == endpoint_id, deliveries.c.event_id == event_id
            )
        )
        latest = found.scalar_one()
        return int(latest) if latest is not None else None

    async def order_key_of(self, endpoint_id: str, delivery_id: int) -> tuple[str, str] | None:
        row = (
            await self.session.execute(
                select(deliveries.c.event_id, deliveries.c.order_key).where(
                    deliveries.c.id == delivery_id, deliveries.c.endpoint_id == endpoint_id
                )
            )
        ).first()
        return (row.event_id, row.order_key) if row is not None else None

    async def queued_since(self, endpoint_id: str, since: datetime) -> list[tuple[str, str]]:
        rows = await self.session.execute(
            select(deliveries.c.event_id, deliveries.c.order_key)
            .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.created_at >= since)
            .group_by(deliveries.c.event_id, deliveries.c.order_key)
            .order_by(func.min(deliveries.c.id))
        )
        return [(event_id, order_key) for event_id, order_key in rows]

    async def log(self, endpoint_id: str, *, limit: int, before: int | None) -> list[DeliveryLogEntry]:
        query = (
            select(deliveries, messages.c.event_type)
            .join(messages, messages.c.event_id == deliveries.c.event_id)
            .where(deliveries.c.endpoint_id == endpoint_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(deliveries.c.id < before)
        found = (await self.session.execute(query)).mappings().all()
        attempts = (
            await self.session.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id.in_([d["id"] for d in found]))
                .order_by(delivery_attempts.c.id)
            )
        ).mappings()
        by_delivery: dict[int, list[AttemptRecord]] = {}
        for a in attempts:
            by_delivery.setdefault(a["delivery_id"], []).append(
                AttemptRecord(
                    as_utc(a["attempted_at"]), a["status_code"], a["latency_ms"], a["error"], a["response_excerpt"]
                )
            )
        return [
            DeliveryLogEntry(
                id=d["id"],
                event_id=d["event_id"],
                event_type=d["event_type"],
                status=DeliveryStatus(d["status"]),
                attempts=d["attempts"],
                next_attempt_at=_utc(d["next_attempt_at"]),
                created_at=as_utc(d["created_at"]),
                succeeded_at=_utc(d["succeeded_at"]),
                attempt_log=tuple(by_delivery.get(d["id"], ())),
            )
            for d in found
        ]

    async def retry_pending_now(self, endpoint_id: str, now: datetime) -> None:
        await self.session.execute(
            update(deliveries)
            .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == _PENDING)
            .values(next_attempt_at=now)
        )

    async def make_retries_due(self, endpoint_id: str, now: datetime) -> int:
        made_due = await self.session.execute(
            update(deliveries)
            .where(
                deliveries.c.endpoint_id == endpoint_id,
                deliveries.c.status == _PENDING,
                deliveries.c.attempts > 0,
                deliveries.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        return int(getattr(made_due, "rowcount", 0))

    async def remove_for(self, endpoint_id: str) -> None:
        await self.session.execute(delete(deliveries).where(deliveries.c.endpoint_id == endpoint_id))
        await self.session.execute(delete(delivery_attempts).where(delivery_attempts.c.endpoint_id == endpoint_id))

    async def endpoints_with_due_work(self, now: datetime) -> list[str]:
        return (await direct.execute(self.session, _ENDPOINTS_WITH_DUE_WORK, {"now": now})).scalars()

    async def pending_for(self, endpoint_id: str, *, limit: int) -> list[PendingDelivery]:
        rows = await direct.execute(self.session, _PENDING_FOR, {"endpoint_id": endpoint_id, "limit": limit})
        return [
            PendingDelivery(
                id=r.id,
                event_id=r.event_id,
                order_key=r.order_key,
                attempts=r.attempts,
                next_attempt_at=as_utc(r.next_attempt_at),
                body=r.body,
                organisation_ids=tuple(r.organisation_ids),
                received_at=as_utc(r.received_at),
            )
            for r in rows
        ]

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
        recorded = {"endpoint_id": endpoint_id, **{name: getattr(attempt, name) for name in _ATTEMPT_FIELDS[1:]}}
        settled = {"status": status.value, "attempts": attempts, "next_attempt_at": next_attempt_at}
        if succeeded_at is not None:
            settled["succeeded_at"] = succeeded_at
        if dialect_name(self.session) == "postgresql":
            values = {f"attempt_{name}": value for name, value in recorded.items()}
            values.update({f"set_{name}": value for name, value in settled.items()})
            await direct.execute(
                self.session, _SETTLE_AFTER_ATTEMPT[succeeded_at is not None], {"delivery_id": delivery_id, **values}
            )
        else:  # SQLite has no INSERT or UPDATE inside a WITH
            await direct.execute(self.session, _RECORD_ATTEMPT, {"delivery_id": delivery_id, **recorded})
            await direct.execute(self.session, _SETTLE, {"delivery_id": delivery_id, **settled})

    async def settle(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        attempts: int | None = None,
        next_attempt_at: datetime | None = None,
        succeeded_at: datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "delivery_id": delivery_id,
            "status": status.value,
            "next_attempt_at": next_attempt_at,
        }
        if attempts is not None:
            values["attempts"] = attempts
        if succeeded_at is not None:
            values["succeeded_at"] = succeeded_at
        await direct.execute(self.session, _SETTLE, values)

    async def backlog(self, now: datetime) -> Backlog:
        pending, due_count, oldest_due, next_due = (await self.session.execute(_BACKLOG, {"now": now})).one()
        return Backlog(int(pending), int(due_count), _utc(oldest_due), _utc(next_due))


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None
