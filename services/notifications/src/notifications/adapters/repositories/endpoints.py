"""Webhook endpoints in SQL."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.adapters.orm import endpoints
from notifications.adapters.repositories.read_ahead import SUBSCRIBED, kept
from notifications.domain.endpoints import EndpointSpec, RegisteredEndpoint
from notifications.domain.subscriptions import EndpointStatus
from send_shared import direct
from send_shared.db import InList, as_utc

# Built once (every event looks up who subscribes, every dispatcher lane reads its endpoint): a statement built per
# call costs its construction and its cache key every time.
_GET = select(endpoints).where(endpoints.c.id == bindparam("id"))
_SUBSCRIBED = select(endpoints).where(
    InList(endpoints.c.organisation_id, "organisation_ids"),
    endpoints.c.status != EndpointStatus.DISABLED.value,
)


def _endpoint(row: Mapping[Any, Any]) -> RegisteredEndpoint:
    def when(name: str) -> datetime | None:
        value = row[name]
        return as_utc(value) if value is not None else None

    return RegisteredEndpoint(
        id=row["id"],
        organisation_id=row["organisation_id"],
        url=row["url"],
        description=row["description"],
        event_types=tuple(row["event_types"]),
        service_ids=tuple(row["service_ids"]),
        urgencies=tuple(row["urgencies"]),
        status=EndpointStatus(row["status"]),
        disabled_reason=row["disabled_reason"],
        secret=row["secret"],
        previous_secret=row["previous_secret"],
        previous_secret_expires_at=when("previous_secret_expires_at"),
        failing_since=when("failing_since"),
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
    )


class SqlEndpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, endpoint: RegisteredEndpoint) -> None:
        await self.session.execute(
            insert(endpoints).values(
                id=endpoint.id,
                organisation_id=endpoint.organisation_id,
                url=endpoint.url,
                description=endpoint.description,
                event_types=list(endpoint.event_types),
                service_ids=list(endpoint.service_ids),
                urgencies=list(endpoint.urgencies),
                status=endpoint.status.value,
                disabled_reason=endpoint.disabled_reason,
                secret=endpoint.secret,
                previous_secret=endpoint.previous_secret,
                previous_secret_expires_at=endpoint.previous_secret_expires_at,
                failing_since=endpoint.failing_since,
                created_at=endpoint.created_at,
                updated_at=endpoint.updated_at,
            )
        )

    async def get(self, endpoint_id: str) -> RegisteredEndpoint | None:
        row = (await self.session.execute(_GET, {"id": endpoint_id})).mappings().first()
        return _endpoint(row) if row is not None else None

    async def list_for(self, organisation_id: str) -> list[RegisteredEndpoint]:
        query = select(endpoints).where(endpoints.c.organisation_id == organisation_id).order_by(endpoints.c.created_at)
        return [_endpoint(r) for r in (await self.session.execute(query)).mappings()]

    async def subscribed(self, organisation_ids: Sequence[str]) -> list[RegisteredEndpoint]:
        ahead = kept(self.session, SUBSCRIBED)
        if all(organisation_id in ahead for organisation_id in organisation_ids):
            return [
                endpoint for organisation_id in dict.fromkeys(organisation_ids) for endpoint in ahead[organisation_id]
            ]
        found = await direct.execute(self.session, _SUBSCRIBED, {"organisation_ids": list(organisation_ids)})
        return [_endpoint(r) for r in found.mappings()]

    async def read_ahead(self, organisation_ids: Collection[str]) -> None:
        """``subscribed`` for these organisations in one statement, for the rest of this transaction."""
        if not organisation_ids:
            return
        found = await direct.execute(self.session, _SUBSCRIBED, {"organisation_ids": sorted(organisation_ids)})
        ahead: dict[str, list[RegisteredEndpoint]] = {organisation_id: [] for organisation_id in organisation_ids}
        for row in found.mappings():
            ahead[row["organisation_id"]].append(_endpoint(row))
        kept(self.session, SUBSCRIBED).update(ahead)

    async def change_subscription(self, endpoint_id: str, spec: EndpointSpec, now: datetime) -> None:
        await self._update(
            endpoint_id, updated_at=now, url=spec.url, event_types=list(spec.event_types),
            service_ids=list(spec.service_ids), urgencies=list(spec.urgencies), description=spec.description,
        )  # fmt: skip

    async def pause(self, endpoint_id: str, now: datetime) -> None:
        await self._update(endpoint_id, updated_at=now, status=EndpointStatus.PAUSED.value)

    async def activate(self, endpoint_id: str, now: datetime) -> None:
        await self._update(
            endpoint_id, updated_at=now, status=EndpointStatus.ACTIVE.value, disabled_reason=None, failing_since=None
        )

    async def disable(self, endpoint_id: str, reason: str, now: datetime) -> None:
        await self._update(endpoint_id, updated_at=now, status=EndpointStatus.DISABLED.value, disabled_reason=reason)

    async def replace_secret(
        self, endpoint_id: str, secret: str, *, previous: str, previous_expires_at: datetime, now: datetime
    ) -> None:
        await self._update(
            endpoint_id, updated_at=now, secret=secret, previous_secret=previous,
            previous_secret_expires_at=previous_expires_at,
        )  # fmt: skip

    async def note_failure(self, endpoint_id: str, now: datetime) -> datetime:
        started = (
            await self.session.execute(
                update(endpoints)
                .where(endpoints.c.id == endpoint_id)
                .values(failing_since=func.coalesce(endpoints.c.failing_since, now))
                .returning(endpoints.c.failing_since)
            )
        ).scalar_one()
        return as_utc(started)

    async def note_success(self, endpoint_id: str) -> None:
        await self._update(endpoint_id, failing_since=None)

    async def remove(self, endpoint_id: str) -> None:
        await self.session.execute(delete(endpoints).where(endpoints.c.id == endpoint_id))

    async def _update(self, endpoint_id: str, **values: Any) -> None:
        await self.session.execute(update(endpoints).where(endpoints.c.id == endpoint_id).values(**values))
