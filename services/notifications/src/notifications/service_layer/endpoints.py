"""Endpoint management use cases: register, change, pause, resume, rotate, test, delete, redeliver."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.orm import deliveries, delivery_attempts, endpoints, messages
from notifications.adapters.webhook_client import new_secret, resolve_and_check
from notifications.domain.subscriptions import PING, EndpointStatus
from send_shared.events.envelope import CloudEvent


class EndpointNotFound(Exception):
    """No such endpoint for this organisation (another organisation's looks the same)."""


@dataclass(frozen=True)
class UrlPolicy:
    require_https: bool
    allow_private: bool

    async def check(self, url: str) -> None:
        await resolve_and_check(url, require_https=self.require_https, allow_private=self.allow_private)


@dataclass(frozen=True)
class EndpointSpec:
    url: str
    event_types: list[str]
    service_ids: list[str]
    urgencies: list[str]
    description: str


class EndpointService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], policy: UrlPolicy, *, secret_grace: timedelta
    ) -> None:
        self.sessions = sessions
        self.policy = policy
        self.secret_grace = secret_grace

    async def create(self, organisation_id: str, spec: EndpointSpec) -> tuple[dict[str, Any], str]:
        await self.policy.check(spec.url)
        now = datetime.now(UTC)
        secret = new_secret()
        endpoint_id = f"ep_{uuid.uuid4().hex}"
        async with self.sessions() as session, session.begin():
            await session.execute(
                insert(endpoints).values(
                    id=endpoint_id,
                    organisation_id=organisation_id,
                    url=spec.url,
                    description=spec.description,
                    event_types=spec.event_types,
                    service_ids=spec.service_ids,
                    urgencies=spec.urgencies,
                    status=EndpointStatus.ACTIVE.value,
                    secret=secret,
                    created_at=now,
                    updated_at=now,
                )
            )
        return await self.get(organisation_id, endpoint_id), secret

    async def get(self, organisation_id: str, endpoint_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            row = (await session.execute(self._own(organisation_id, endpoint_id))).mappings().first()
        if row is None:
            raise EndpointNotFound(endpoint_id)
        return dict(row)

    async def list_for(self, organisation_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            query = (
                select(endpoints).where(endpoints.c.organisation_id == organisation_id).order_by(endpoints.c.created_at)
            )
            return [dict(r) for r in (await session.execute(query)).mappings()]

    async def change(self, organisation_id: str, endpoint_id: str, spec: EndpointSpec) -> dict[str, Any]:
        await self.get(organisation_id, endpoint_id)
        await self.policy.check(spec.url)
        await self._update(
            endpoint_id, url=spec.url, event_types=spec.event_types, service_ids=spec.service_ids,
            urgencies=spec.urgencies, description=spec.description,
        )  # fmt: skip
        return await self.get(organisation_id, endpoint_id)

    async def pause(self, organisation_id: str, endpoint_id: str) -> dict[str, Any]:
        await self.get(organisation_id, endpoint_id)
        await self._update(endpoint_id, status=EndpointStatus.PAUSED.value)
        return await self.get(organisation_id, endpoint_id)

    async def resume(self, organisation_id: str, endpoint_id: str) -> dict[str, Any]:
        """Active again (also after being disabled); queued deliveries go out, and retries start over now."""
        await self.get(organisation_id, endpoint_id)
        now = datetime.now(UTC)
        await self._update(endpoint_id, status=EndpointStatus.ACTIVE.value, disabled_reason=None, failing_since=None)
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(deliveries)
                .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending")
                .values(next_attempt_at=now)
            )
        return await self.get(organisation_id, endpoint_id)

    async def rotate_secret(self, organisation_id: str, endpoint_id: str) -> tuple[dict[str, Any], str]:
        """A new secret; the old one keeps signing alongside it for the grace period."""
        current = await self.get(organisation_id, endpoint_id)
        secret = new_secret()
        await self._update(
            endpoint_id, secret=secret, previous_secret=current["secret"],
            previous_secret_expires_at=datetime.now(UTC) + self.secret_grace,
        )  # fmt: skip
        return await self.get(organisation_id, endpoint_id), secret

    async def remove(self, organisation_id: str, endpoint_id: str) -> None:
        await self.get(organisation_id, endpoint_id)
        async with self.sessions() as session, session.begin():
            await session.execute(delete(deliveries).where(deliveries.c.endpoint_id == endpoint_id))
            await session.execute(delete(delivery_attempts).where(delivery_attempts.c.endpoint_id == endpoint_id))
            await session.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))

    async def ping(self, organisation_id: str, endpoint_id: str, *, source: str) -> int:
        await self.get(organisation_id, endpoint_id)
        event = CloudEvent(type=PING, source=source, subject=endpoint_id, data={"endpoint_id": endpoint_id})
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            await session.execute(
                insert(messages).values(
                    event_id=event.id,
                    event_type=event.type,
                    order_key=event.id,
                    organisation_ids=[organisation_id],
                    body=event.to_structured(),
                    received_at=now,
                )
            )
            return await self._queue(session, endpoint_id, event.id, event.id, 0, now)

    async def deliveries(
        self, organisation_id: str, endpoint_id: str, *, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        await self.get(organisation_id, endpoint_id)
        query = (
            select(deliveries, messages.c.event_type)
            .join(messages, messages.c.event_id == deliveries.c.event_id)
            .where(deliveries.c.endpoint_id == endpoint_id)
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(deliveries.c.id < before)
        async with self.sessions() as session:
            found = [dict(r) for r in (await session.execute(query)).mappings()]
            ids = [d["id"] for d in found]
            attempts = (
                await session.execute(
                    select(delivery_attempts)
                    .where(delivery_attempts.c.delivery_id.in_(ids))
                    .order_by(delivery_attempts.c.id)
                )
            ).mappings()
            by_delivery: dict[int, list[dict[str, Any]]] = {}
            for a in attempts:
                by_delivery.setdefault(a["delivery_id"], []).append(dict(a))
        for d in found:
            d["attempt_log"] = by_delivery.get(d["id"], [])
        return found

    async def redeliver_one(self, organisation_id: str, endpoint_id: str, delivery_id: int) -> int:
        await self.get(organisation_id, endpoint_id)
        async with self.sessions() as session, session.begin():
            row = (
                (
                    await session.execute(
                        select(deliveries).where(
                            deliveries.c.id == delivery_id, deliveries.c.endpoint_id == endpoint_id
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise EndpointNotFound(str(delivery_id))
            return await self._requeue(session, endpoint_id, row["event_id"], row["order_key"])

    async def redeliver_since(self, organisation_id: str, endpoint_id: str, since: datetime) -> int:
        """Sends again every message this endpoint was sent (or due) since ``since``."""
        await self.get(organisation_id, endpoint_id)
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(deliveries.c.event_id, deliveries.c.order_key)
                    .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.created_at >= since)
                    .group_by(deliveries.c.event_id, deliveries.c.order_key)
                    .order_by(func.min(deliveries.c.id))
                )
            ).all()
            for event_id, order_key in rows:
                await self._requeue(session, endpoint_id, event_id, order_key)
        return len(rows)

    async def _requeue(self, session: AsyncSession, endpoint_id: str, event_id: str, order_key: str) -> int:
        round_ = (
            await session.execute(
                select(func.max(deliveries.c.round)).where(
                    deliveries.c.endpoint_id == endpoint_id, deliveries.c.event_id == event_id
                )
            )
        ).scalar_one()
        return await self._queue(session, endpoint_id, event_id, order_key, (round_ or 0) + 1, datetime.now(UTC))

    async def _queue(
        self, session: AsyncSession, endpoint_id: str, event_id: str, order_key: str, round_: int, now: datetime
    ) -> int:
        result = await session.execute(
            insert(deliveries)
            .values(
                endpoint_id=endpoint_id,
                event_id=event_id,
                round=round_,
                order_key=order_key,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(deliveries.c.id)
        )
        return int(result.scalar_one())

    def _own(self, organisation_id: str, endpoint_id: str) -> Any:
        return select(endpoints).where(endpoints.c.id == endpoint_id, endpoints.c.organisation_id == organisation_id)

    async def _update(self, endpoint_id: str, **values: Any) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(endpoints).where(endpoints.c.id == endpoint_id).values(updated_at=datetime.now(UTC), **values)
            )
