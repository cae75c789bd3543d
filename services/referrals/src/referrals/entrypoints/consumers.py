"""Consumer of waitlists.alerts.v1: keeps the clocks waitlists tells of each referral (the family view's
deadline); the breach alerts on the same topic are for organisations (notifications), not for this service."""

from __future__ import annotations

from referrals.adapters.clock_events import clocks_from_event
from referrals.service_layer.clocks import keep_clocks
from referrals.service_layer.repositories import ReferralClocksRepository
from send_shared.events.envelope import CloudEvent

CLOCKS_GROUP = "referrals-clocks"


async def on_waitlists_event(event: CloudEvent, repository: ReferralClocksRepository) -> None:
    clocks = clocks_from_event(event)
    if clocks is not None:
        await keep_clocks(clocks, repository)
