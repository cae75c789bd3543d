"""Keeping each referral's clocks as waitlists tells them (``uk.send.waitlist.clocks_updated.v1``), for the
family view's deadline. Waitlists holds the clock rules; this service only keeps what it is told, the clocks of
the newest referral version winning (an older version told late changes nothing)."""

from __future__ import annotations

import logging

from referrals.domain.deadlines import ReferralClocks
from referrals.service_layer.repositories import ReferralClocksRepository

log = logging.getLogger(__name__)


async def keep_clocks(clocks: ReferralClocks, repository: ReferralClocksRepository) -> bool:
    """Returns whether they were kept (False: clocks of a newer referral version are held)."""
    kept = await repository.keep(clocks)
    if not kept:
        log.info("older clocks ignored", extra={"referral_id": clocks.referral_id, "version": clocks.referral_version})
    return kept
