"""Delivers pending webhooks: one lane per endpoint, so a slow or failing endpoint only delays itself.

Within a lane, a delivery waits while an earlier one for the same referral is still pending,
so a later status never overtakes an earlier one at the same endpoint; deliveries for
different referrals go out side by side (up to ``per_endpoint`` at once). A delivery is marked succeeded in the
transaction right after the 2xx; if the process dies between the two, the same message is
sent again with the same ``webhook-id``, which Standard Webhooks receivers use to de-duplicate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from prometheus_client import Counter, Gauge, Histogram

from notifications.adapters.webhook_client import Attempt, WebhookClient
from notifications.domain.delivery import (
    RETRY_DELAYS,
    AttemptRecord,
    DeliveryStatus,
    Outcome,
    PendingDelivery,
    first_in_line,
    should_disable,
    verdict,
    webhook_id,
)
from notifications.domain.endpoints import RegisteredEndpoint
from notifications.domain.subscriptions import EndpointStatus
from notifications.service_layer.unit_of_work import UnitOfWorkFactory
from send_shared.waiting import woken_or_stopped

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


class Dispatcher:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        client_factory: Callable[[], WebhookClient],
        *,
        poll_interval: float = 0.2,
        on_disabled: EndpointDisabled | None = None,
        retry_delays: Sequence[timedelta] = RETRY_DELAYS,
        per_endpoint: int = 8,
        stuck_after: float = 60.0,
    ) -> None:
        self.unit_of_work = unit_of_work
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
        self._endpoint_views: dict[str, tuple[float, _LaneEndpoint | None]] = {}  # id -> (read at, endpoint)
        self._attempted_at = time.monotonic()
        self._due_since: float | None = None  # when the oldest delivery now due fell due (monotonic clock)
        self._next_due_at: datetime | None = None  # the soonest retry, as last read or scheduled
        self._seen_while_running: set[str] = set()  # endpoints with due work found while their lane ran

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
                looked_at = datetime.now(UTC)
                for endpoint_id in await self._endpoints_with_due_work(looked_at):
                    lane = self._lanes.get(endpoint_id)
                    if lane is None or lane.done():
                        self._lanes[endpoint_id] = asyncio.create_task(self._lane(endpoint_id, stop))
                    else:  # the lane may be past its last read: it wakes the dispatcher as it ends
                        self._seen_while_running.add(endpoint_id)
                if self._next_due_at is not None and self._next_due_at <= looked_at:
                    # That retry was found by this look; the next one is read now, not at the next poll.
                    self._next_due_at = None
                    self._backlog_read_at = -math.inf
                await self._report_backlog()
                await woken_or_stopped(self.wake, stop, self._until_next_look())
        finally:
            # Lanes finish the delivery in hand (and record it) before stopping; only a hung one is cancelled.
            lanes = [t for t in self._lanes.values() if not t.done()]
            if lanes:
                _done, hung = await asyncio.wait(lanes, timeout=self.client.timeout + 5)
                for lane in hung:
                    lane.cancel()
                await asyncio.gather(*hung, return_exceptions=True)
            await self.client.close()

    def _until_next_look(self) -> float:
        """Seconds until the soonest retry falls due, at most ``poll_interval``: new deliveries wake the
        dispatcher (``wake``), retries do not."""
        if self._next_due_at is None:
            return self.poll_interval
        until = (self._next_due_at - datetime.now(UTC)).total_seconds()
        return min(self.poll_interval, max(until, 0.01))

    async def _endpoints_with_due_work(self, now: datetime) -> list[str]:
        async with self.unit_of_work() as uow:
            return await uow.deliveries.endpoints_with_due_work(now)

    async def _lane(self, endpoint_id: str, stop: asyncio.Event) -> None:
        """Each round sends the first pending delivery of every referral, up to ``per_endpoint`` at once:
        different referrals go out side by side, one referral's messages strictly one after another.
        The endpoint is read again once it is a second old (across lanes), so a pause or a new
        secret takes effect within a second without a read per delivery or per wake."""
        limit = asyncio.Semaphore(self.per_endpoint)

        async def current() -> _LaneEndpoint | None:
            read_at, endpoint = self._endpoint_views.get(endpoint_id, (-math.inf, None))
            if time.monotonic() - read_at > ENDPOINT_FRESH_SECONDS:
                endpoint = await self._endpoint(endpoint_id)
                self._endpoint_views[endpoint_id] = (time.monotonic(), endpoint)
            return endpoint if endpoint is not None and endpoint.as_read.status is EndpointStatus.ACTIVE else None

        async def one(delivery: PendingDelivery) -> bool:
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
        finally:
            if endpoint_id in self._seen_while_running:
                self._seen_while_running.discard(endpoint_id)
                self.wake.set()

    async def _endpoint(self, endpoint_id: str) -> _LaneEndpoint | None:
        async with self.unit_of_work() as uow:
            endpoint = await uow.endpoints.get(endpoint_id)
        return _LaneEndpoint(endpoint, endpoint.failing_since) if endpoint is not None else None

    async def _next_deliveries(self, endpoint_id: str) -> list[PendingDelivery]:
        """Due deliveries that are first in line for their referral at this endpoint, each with its message."""
        async with self.unit_of_work() as uow:
            pending = await uow.deliveries.pending_for(endpoint_id, limit=500)
        return first_in_line(pending, datetime.now(UTC))

    async def _deliver(self, endpoint: _LaneEndpoint, delivery: PendingDelivery) -> bool:
        """Sends one delivery; returns False when the lane should stop (endpoint no longer active)."""
        target = endpoint.as_read
        if target.organisation_id not in delivery.organisation_ids:
            # Checked again at delivery time: a message only ever reaches the organisations it concerns.
            async with self.unit_of_work() as uow:
                await uow.deliveries.settle(delivery.id, DeliveryStatus.REFUSED)
                await uow.commit()
            log.error("delivery refused: endpoint's organisation not concerned", extra={"endpoint_id": target.id})
            return True
        now = datetime.now(UTC)
        attempt = await self.client.send(
            target.url,
            webhook_id=webhook_id(delivery.event_id),
            body=json.dumps(delivery.body, separators=(",", ":")),
            secrets_in_use=target.secrets_in_use(now),
            now=now,
        )
        return await self._record(endpoint, delivery, attempt)

    async def _record(self, endpoint: _LaneEndpoint, delivery: PendingDelivery, attempt: Attempt) -> bool:
        """Records the attempt and its consequence. ``endpoint`` is the lane's copy for this round: the lane
        keeps its ``failing_since`` current, so a success writes to the endpoint only when it ends a failing run."""
        now = datetime.now(UTC)
        endpoint_id = endpoint.as_read.id
        attempts_made = delivery.attempts + 1
        result = verdict(
            attempt.status_code, attempts_made, now, retry_after_header=attempt.retry_after, delays=self.retry_delays
        )
        ATTEMPTS.labels(result.outcome.value).inc()
        self._attempted_at = time.monotonic()
        disable_reason = None
        next_attempt_at = None
        async with self.unit_of_work() as uow:
            record = AttemptRecord(
                now, attempt.status_code, attempt.latency_ms, attempt.error, attempt.response_excerpt
            )
            settle = partial(uow.deliveries.settle_after_attempt, delivery.id, endpoint_id, record)
            if result.outcome is Outcome.SUCCEEDED:
                await settle(DeliveryStatus.SUCCEEDED, attempts=attempts_made, succeeded_at=now)
                EVENT_TO_DELIVERY.observe((now - delivery.received_at).total_seconds())
                if endpoint.failing_since is not None:
                    await uow.endpoints.note_success(endpoint_id)
                    endpoint.failing_since = None
            else:
                if result.outcome is Outcome.GONE or result.next_attempt_at is None:
                    await settle(DeliveryStatus.FAILED, attempts=attempts_made)
                else:
                    next_attempt_at = result.next_attempt_at
                    await settle(DeliveryStatus.PENDING, attempts=attempts_made, next_attempt_at=next_attempt_at)
                endpoint.failing_since = failing_since = await uow.endpoints.note_failure(endpoint_id, now)
                if result.outcome is Outcome.GONE:
                    disable_reason = "the endpoint answered 410 Gone"
                elif should_disable(failing_since, now):
                    disable_reason = "failing without a success for 5 days"
                if disable_reason:
                    await uow.endpoints.disable(endpoint_id, disable_reason, now)
            await uow.commit()
        if next_attempt_at is not None and (self._next_due_at is None or next_attempt_at < self._next_due_at):
            self._next_due_at = next_attempt_at
            self.wake.set()  # the dispatcher's wait began before this retry was known: it plans again
        if result.outcome is not Outcome.SUCCEEDED:
            _log_failed_attempt(endpoint_id, delivery, attempts_made, attempt, next_attempt_at)
        if disable_reason:
            log.warning("endpoint disabled", extra={"endpoint_id": endpoint_id, "reason": disable_reason})
            if self.on_disabled is not None:
                await self.on_disabled(endpoint_id, endpoint.as_read.organisation_id, disable_reason)
            return False
        # After a failure the lane moves on to other referrals; this one waits for its retry.
        return True

    async def _report_backlog(self) -> None:
        """The backlog gauges, and since when deliveries to active endpoints have been due (for ``status``),
        counted at most once a second rather than on every wake."""
        if time.monotonic() - self._backlog_read_at < BACKLOG_EVERY_SECONDS:
            return
        self._backlog_read_at = time.monotonic()
        now = datetime.now(UTC)
        async with self.unit_of_work() as uow:
            backlog = await uow.deliveries.backlog(now)
        PENDING.labels("due").set(backlog.due)
        PENDING.labels("waiting_retry").set(backlog.pending - backlog.due)
        oldest = backlog.oldest_due_at_active
        waited = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
        self._due_since = None if waited is None else time.monotonic() - waited
        # A retry a lane scheduled while the count ran may be missing from it: the sooner of the two stands.
        scheduled = self._next_due_at if self._next_due_at is not None and self._next_due_at > now else None
        soonest = [t for t in (scheduled, backlog.next_due_at_active) if t is not None]
        self._next_due_at = min(soonest, default=None)


def _log_failed_attempt(
    endpoint_id: str, delivery: PendingDelivery, attempt_number: int, attempt: Attempt, next_attempt_at: datetime | None
) -> None:
    """One line per failed attempt. Never the URL (its query string may hold a token) nor the body; the
    error text is left out too, as it may quote the URL."""
    log.warning(
        "webhook attempt failed",
        extra={
            "endpoint_id": endpoint_id,
            "delivery_id": delivery.id,
            "event_id": delivery.event_id,
            "attempt": attempt_number,
            "status_code": attempt.status_code,
            "error_class": attempt.error_class,
            "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at is not None else None,
        },
    )


@dataclass(slots=True)
class _LaneEndpoint:
    """The lanes' copy of an endpoint: as read, with the start of its failing run kept current by the lane."""

    as_read: RegisteredEndpoint
    failing_since: datetime | None
