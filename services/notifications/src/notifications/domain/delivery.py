"""Delivery policy: what an HTTP outcome means and when to try again. Pure Python.

Retry schedule after a failed attempt (Svix's, with +/-20% jitter): 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 10 h: eight attempts spread over about 27.6 hours. A 429 waits for Retry-After
when that is longer. A 410 disables the endpoint at once; an endpoint failing without a
single success for 5 days is disabled and its owner told.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=5)
REQUEST_TIMEOUT_SECONDS = 15.0
MAX_RETRY_AFTER = timedelta(hours=10)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # no attempts left, or the receiver answered 410
    REFUSED = "refused"  # the endpoint's organisation is not concerned by the message


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    GONE = "gone"  # 410: the receiver asks us to stop


@dataclass(frozen=True, slots=True)
class Message:
    """An event as it is sent to every endpoint it concerns (the webhook body), kept for redelivery."""

    event_id: str
    event_type: str
    order_key: str  # the referral's id: one referral's messages go out one after another
    organisation_ids: tuple[str, ...]
    body: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    due: int
    oldest_due_at_active: datetime | None  # the longest-due delivery to an active endpoint
    next_due_at_active: datetime | None = None  # the soonest delivery to an active endpoint not due yet (a retry)


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery waiting to go out, with what its message says and whom it concerns."""

    id: int
    event_id: str
    order_key: str
    attempts: int
    next_attempt_at: datetime
    body: dict[str, Any]
    organisation_ids: tuple[str, ...]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_excerpt: str | None


@dataclass(frozen=True, slots=True)
class DeliveryLogEntry:
    id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    succeeded_at: datetime | None
    attempt_log: tuple[AttemptRecord, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    next_attempt_at: datetime | None


def classify(status_code: int | None) -> Outcome:
    """2xx succeeds; 410 stops; anything else (redirects included, never followed) is retried."""
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.SUCCEEDED
    if status_code == 410:
        return Outcome.GONE
    return Outcome.RETRY


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or as an HTTP date; None when absent or unreadable. The receiver writes it,
    so anything goes: a huge number, a date without a zone (``-0000``: taken as UTC), nonsense."""
    if not value or len(value) > 200:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        pass
    else:
        return timedelta(seconds=max(0, min(seconds, int(MAX_RETRY_AFTER.total_seconds()))))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return max(timedelta(0), min(when - now, MAX_RETRY_AFTER))
    except (OverflowError, TypeError):
        return None


def verdict(
    status_code: int | None,
    attempts_made: int,
    now: datetime,
    *,
    retry_after_header: str | None = None,
    delays: Sequence[timedelta] = RETRY_DELAYS,
    rng: random.Random | None = None,
) -> Verdict:  # fmt: skip
    outcome = classify(status_code)
    if outcome is not Outcome.RETRY:
        return Verdict(outcome, None)
    if attempts_made > len(delays):
        return Verdict(Outcome.RETRY, None)  # no attempts left: the delivery has failed for good
    delay = delays[attempts_made - 1] * (rng or random).uniform(0.8, 1.2)
    if status_code == 429:
        delay = max(delay, retry_after(retry_after_header, now) or timedelta(0))
    return Verdict(Outcome.RETRY, now + delay)


def webhook_id(event_id: str) -> str:
    """The same event to the same endpoint always carries the same id."""
    return f"msg_{event_id}"


def first_in_line(pending: Iterable[PendingDelivery], now: datetime) -> list[PendingDelivery]:
    """Of an endpoint's pending deliveries (oldest first), the first of each referral, if it is due: a later
    status never overtakes an earlier one at the same endpoint."""
    seen: set[str] = set()
    due = []
    for delivery in pending:
        if delivery.order_key in seen:
            continue
        seen.add(delivery.order_key)
        if delivery.next_attempt_at <= now:
            due.append(delivery)
    return due


def should_disable(failing_since: datetime | None, now: datetime) -> bool:
    return failing_since is not None and now - failing_since >= DISABLE_AFTER
