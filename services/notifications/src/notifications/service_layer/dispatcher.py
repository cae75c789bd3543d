"""Delivers pending webhooks: one lane per endpoint, so a slow or failing endpoint only delays itself.

Within a lane, a delivery waits while an earlier one for the same referral is still pending,
so a later status never overtakes an earlier one at the same endpoint; deliveries for
different referrals go out side by side (up to ``per_endpoint`` at once). A delivery is marked succeeded in the
transaction right after the 2xx; if the process dies between the two, the same message is
sent again with the same ``webhook-id``, which Standard Webhooks receivers use to de-duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifications.adapters.orm import deliveries, delivery_attempts, endpoints, messages
from notifications.adapters.webhook_client import Attempt, WebhookClient
from notifications.domain.delivery import RETRY_DELAYS, Outcome, should_disable, verdict
from notifications.domain.subscriptions import EndpointStatus
from send_shared.db import as_utc

log = logging.getLogger(__name__)
ATTEMPTS = Counter("webhook_attempts", "Webhook attempts by result.", ["result"])
EVENT_TO_DELIVERY = Histogram(
    "webhook_event_to_delivery_seconds",
    "From the event reaching this service to the receiver's 2xx, retries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600, 6 * 3600, 86400),
)
PENDING = Gauge("webhook_deliveries_pending", "Deliveries not yet succeeded, by state.", ["state"])
ENDPOINT_FRESH_SECONDS = 1.0
BACKLOG_EVERY_SECONDS = 1.0
EndpointDisabled = Callable[[str, str, str], Awaitable[None]]  # (endpoint id, organisation id, reason)


def webhook_id(event_id: str) -> str:
    """The same event to the same endpoint always carries the same id."""
    return f"msg_{event_id}"


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client_factory: Callable[[], WebhookClient],
        *,
        poll_interval: float = 0.2,
        on_disabled: EndpointDisabled | None = None,
        retry_delays: Sequence[timedelta] = RETRY_DELAYS,
        per_endpoint: int = 8,
        stuck_after: float = 60.0,
    ) -> None:
        self.sessions = sessions
        self.client_factory = client_factory
        self.client = client_factory()  # replaced by a fresh one at each run: a restarted worker gets its own
        self.stuck_after = stuck_after
        self.poll_interval = poll_interval
        self.on_disabled = on_disabled
        self.retry_delays = retry_delays
        self.per_endpoint = per_endpoint
        self.wake = asyncio.Event()
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._backlog_read_at = -math.inf
        self._endpoint_views: dict[str, tuple[float, dict[str, Any] | None]] = {}  # id -> (read at, row)
        self._attempted_at = time.monotonic()
        self._due_since: float | None = None  # when the oldest delivery now due fell due (monotonic clock)

    def status(self) -> str | None:
        """Stuck when deliveries have been due for a while and no attempt was recorded meanwhile."""
        now = time.monotonic()
        if self._due_since is None or now - self._due_since < self.stuck_after:
            return None
        if now - self._attempted_at < self.stuck_after:
            return None
        return f"stuck: deliveries due for {now - self._due_since:.0f} s and none attempted"

    async def run(self, stop: asyncio.Event) -> None:
        if self.client.closed:
            self.client = self.client_factory()
        self._attempted_at = time.monotonic()
        try:
            while not stop.is_set():
                self.wake.clear()
                for endpoint_id in await self._endpoints_with_due_work():
                    lane = self._lanes.get(endpoint_id)
                    if lane is None or lane.done():
                        self._lanes[endpoint_id] = asyncio.create_task(self._lane(endpoint_id, stop))
                await self._report_backlog()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_interval)
        finally:
            # Lanes finish the delivery in hand (and record it) before stopping; only a hung one is cancelled.
            lanes = [t for t in self._lanes.values() if not t.done()]
            if lanes:
                _done, hung = await asyncio.wait(lanes, timeout=self.client.timeout + 5)
                for lane in hung:
                    lane.cancel()
                await asyncio.gather(*hung, return_exceptions=True)
            await self.client.close()

    async def _endpoints_with_due_work(self) -> list[str]:
        now = datetime.now(UTC)
        query = (
            select(deliveries.c.endpoint_id)
            .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
            .where(
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at <= now,
                endpoints.c.status == EndpointStatus.ACTIVE.value,
            )
            .distinct()
        )
        async with self.sessions() as session:
            return list((await session.execute(query)).scalars())

    async def _lane(self, endpoint_id: str, stop: asyncio.Event) -> None:
        """Each round sends the first pending delivery of every referral, up to ``per_endpoint`` at once:
        different referrals go out side by side, one referral's messages strictly one after another.
        The endpoint row is read again once it is a second old (across lanes), so a pause or a new
        secret takes effect within a second without a read per delivery or per wake."""
        limit = asyncio.Semaphore(self.per_endpoint)

        async def current() -> dict[str, Any] | None:
            read_at, row = self._endpoint_views.get(endpoint_id, (-math.inf, None))
            if time.monotonic() - read_at > ENDPOINT_FRESH_SECONDS:
                row = await self._endpoint(endpoint_id)
                self._endpoint_views[endpoint_id] = (time.monotonic(), row)
            return row if row is not None and row["status"] == EndpointStatus.ACTIVE.value else None

        async def one(delivery: Any) -> bool:
            async with limit:
                if stop.is_set():
                    return True
                endpoint = await current()
                return endpoint is not None and await self._deliver(endpoint, delivery)

        try:
            while not stop.is_set():
                batch = await self._next_deliveries(endpoint_id)
                if await current() is None or not batch:
                    return
                if not all(await asyncio.gather(*(one(d) for d in batch))):
                    return
        except Exception:
            log.exception("webhook lane failed; it restarts on the next round", extra={"endpoint_id": endpoint_id})

    async def _endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            row = (await session.execute(select(endpoints).where(endpoints.c.id == endpoint_id))).mappings().first()
        return dict(row) if row is not None else None

    async def _next_deliveries(self, endpoint_id: str) -> list[Any]:
        """Due deliveries that are first in line for their referral at this endpoint, each with its message."""
        now = datetime.now(UTC)
        async with self.sessions() as session:
            rows = (
                await session.execute(
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
                    .where(deliveries.c.endpoint_id == endpoint_id, deliveries.c.status == "pending")
                    .order_by(deliveries.c.id)
                    .limit(500)
                )
            ).all()
        seen: set[str] = set()
        due = []
        for r in rows:
            if r.order_key in seen:
                continue
            seen.add(r.order_key)
            if as_utc(r.next_attempt_at) <= now:
                due.append(r)
        return due

    async def _deliver(self, endpoint: dict[str, Any], delivery: Any) -> bool:
        """Sends one delivery; returns False when the lane should stop (endpoint no longer active)."""
        if endpoint["organisation_id"] not in delivery.organisation_ids:
            # Checked again at delivery time: a message only ever reaches the organisations it concerns.
            await self._close(delivery.id, "refused")
            log.error("delivery refused: endpoint's organisation not concerned", extra={"endpoint_id": endpoint["id"]})
            return True
        now = datetime.now(UTC)
        attempt = await self.client.send(
            endpoint["url"],
            webhook_id=webhook_id(delivery.event_id),
            body=json.dumps(delivery.body, separators=(",", ":")),
            secrets_in_use=_secrets(endpoint, now),
            now=now,
        )
        return await self._record(endpoint, delivery, attempt)

    async def _record(self, endpoint: dict[str, Any], delivery: Any, attempt: Attempt) -> bool:
        """Records the attempt and its consequence. ``endpoint`` is the lane's copy for this round: the lane
        keeps its ``failing_since`` current, so a success writes to the endpoint only when it ends a failing run."""
        now = datetime.now(UTC)
        attempts_made = delivery.attempts + 1
        result = verdict(
            attempt.status_code, attempts_made, now, retry_after_header=attempt.retry_after, delays=self.retry_delays
        )
        ATTEMPTS.labels(result.outcome.value).inc()
        self._attempted_at = time.monotonic()
        values: dict[str, Any] = {"attempts": attempts_made}
        if result.outcome is Outcome.SUCCEEDED:
            values.update(status="succeeded", succeeded_at=now, next_attempt_at=None)
            EVENT_TO_DELIVERY.observe((now - as_utc(delivery.received_at)).total_seconds())
        elif result.outcome is Outcome.GONE or result.next_attempt_at is None:
            values.update(status="failed", next_attempt_at=None)
        else:
            values.update(next_attempt_at=result.next_attempt_at)
        disable_reason = None
        async with self.sessions() as session, session.begin():
            await session.execute(
                insert(delivery_attempts).values(
                    delivery_id=delivery.id,
                    endpoint_id=endpoint["id"],
                    attempted_at=now,
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    error=attempt.error,
                    response_excerpt=attempt.response_excerpt,
                )
            )
            await session.execute(update(deliveries).where(deliveries.c.id == delivery.id).values(**values))
            if result.outcome is Outcome.SUCCEEDED:
                if endpoint["failing_since"] is not None:
                    await session.execute(
                        update(endpoints).where(endpoints.c.id == endpoint["id"]).values(failing_since=None)
                    )
                    endpoint["failing_since"] = None
            else:
                failing_since = (
                    await session.execute(
                        update(endpoints)
                        .where(endpoints.c.id == endpoint["id"])
                        .values(failing_since=func.coalesce(endpoints.c.failing_since, now))
                        .returning(endpoints.c.failing_since)
                    )
                ).scalar_one()
                endpoint["failing_since"] = failing_since = as_utc(failing_since)
                if result.outcome is Outcome.GONE:
                    disable_reason = "the endpoint answered 410 Gone"
                elif should_disable(failing_since, now):
                    disable_reason = "failing without a success for 5 days"
                if disable_reason:
                    await session.execute(
                        update(endpoints)
                        .where(endpoints.c.id == endpoint["id"])
                        .values(status=EndpointStatus.DISABLED.value, disabled_reason=disable_reason, updated_at=now)
                    )
        if disable_reason:
            log.warning("endpoint disabled", extra={"endpoint_id": endpoint["id"], "reason": disable_reason})
            if self.on_disabled is not None:
                await self.on_disabled(endpoint["id"], endpoint["organisation_id"], disable_reason)
            return False
        # After a failure the lane moves on to other referrals; this one waits for its retry.
        return True

    async def _close(self, delivery_id: int, status: str) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(status=status, next_attempt_at=None)
            )

    async def _report_backlog(self) -> None:
        """The backlog gauges, and since when deliveries to active endpoints have been due (for ``status``),
        counted at most once a second rather than on every wake."""
        if time.monotonic() - self._backlog_read_at < BACKLOG_EVERY_SECONDS:
            return
        self._backlog_read_at = time.monotonic()
        now = datetime.now(UTC)
        active = deliveries.c.endpoint_id.in_(
            select(endpoints.c.id).where(endpoints.c.status == EndpointStatus.ACTIVE.value)
        )
        due = deliveries.c.next_attempt_at <= now
        async with self.sessions() as session:
            total, due_count, oldest_due = (
                await session.execute(
                    select(
                        func.count(),
                        func.count().filter(due),
                        func.min(deliveries.c.next_attempt_at).filter(due, active),
                    ).where(deliveries.c.status == "pending")
                )
            ).one()
        PENDING.labels("due").set(due_count)
        PENDING.labels("waiting_retry").set(total - due_count)
        waited = max(0.0, (now - as_utc(oldest_due)).total_seconds()) if oldest_due is not None else None
        self._due_since = None if waited is None else time.monotonic() - waited


def _secrets(endpoint: Any, now: datetime) -> list[str]:
    found = [endpoint["secret"]]
    expires = endpoint["previous_secret_expires_at"]
    if endpoint["previous_secret"] and expires and as_utc(expires) > now:
        found.append(endpoint["previous_secret"])
    return found
