"""Consumer of waitlists.alerts.v1: keeps the clocks waitlists tells of each referral (the family view's
deadline) and each service's predicted wait (shown to schools and families), and signposts a referral to interim
offers when one of its clocks nears breach. The breaches themselves are for organisations (notifications)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from referrals.adapters.clock_events import BreachImminent, from_waitlists_event
from referrals.domain.deadlines import ReferralClocks
from referrals.domain.interim import WaitEstimate
from referrals.service_layer.clocks import keep_clocks
from referrals.service_layer.interim import keep_estimate, signpost_on_breach_alert
from referrals.service_layer.repositories import InterimRepository, ReferralClocksRepository, ReferralRepository
from send_shared.events.envelope import CloudEvent

CLOCKS_GROUP = "referrals-clocks"


@dataclass(frozen=True)
class Signposting:
    """What the consumer needs, in its own transaction, to keep estimates and signpost: the referrals, the interim
    offers, estimates and signposts, and how to publish an event with the transaction (the outbox)."""

    referrals: ReferralRepository
    interim: InterimRepository
    publish: Callable[[CloudEvent, str], Awaitable[None]]
    source: str


async def on_waitlists_event(
    event: CloudEvent, repository: ReferralClocksRepository, signposting: Signposting | None = None
) -> None:
    found = from_waitlists_event(event)
    if isinstance(found, ReferralClocks):
        await keep_clocks(found, repository)
    elif signposting is None:
        return
    elif isinstance(found, WaitEstimate):
        await keep_estimate(found, signposting.interim)
    elif isinstance(found, BreachImminent):
        signposted = await signpost_on_breach_alert(
            found.referral_id,
            signposting.referrals,
            signposting.interim,
            now=datetime.now(UTC),
            source=signposting.source,
        )
        if signposted is not None:
            await signposting.publish(signposted, found.referral_id)
