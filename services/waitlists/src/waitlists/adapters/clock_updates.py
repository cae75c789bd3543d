"""Clocks told to other services (``uk.send.waitlist.clocks_updated.v1``): the fingerprint of those told last
of each referral, read for a batch of referrals in one query, and the changed ones published through the
outbox in the same transaction that remembers them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared import direct
from send_shared.db import ByDialect, InList
from send_shared.events.envelope import CloudEvent
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter
from waitlists.adapters.events import clocks_event
from waitlists.adapters.orm import clock_updates_sent, outbox, referrals
from waitlists.domain.access import Parties
from waitlists.domain.clock_updates import ClockUpdate, ToldBefore

_CHUNK = 500
_FINGERPRINTED = ("fingerprint", "referral_version", "sent_at")


def _remember(insert: Any) -> Any:
    stmt = insert(clock_updates_sent)
    return stmt.on_conflict_do_update(
        index_elements=[clock_updates_sent.c.referral_id], set_={name: stmt.excluded[name] for name in _FINGERPRINTED}
    )


# Every consumer batch reads these and writes those changed: built once.
_TOLD_BEFORE = (
    select(referrals.c.referral_id, referrals.c.referrer_org_id, referrals.c.receiving_org_id,
           clock_updates_sent.c.fingerprint)
    .outerjoin(clock_updates_sent, clock_updates_sent.c.referral_id == referrals.c.referral_id)
    .where(InList(referrals.c.referral_id, "ids"))
)  # fmt: skip
_REMEMBER = ByDialect(_remember)


class SqlClockUpdates:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._writer = OutboxWriter(outbox)

    async def told_before(self, referral_ids: Sequence[str]) -> dict[str, ToldBefore]:
        """The parties of these referrals, and the fingerprint of the clocks told last of each."""
        found: dict[str, ToldBefore] = {}
        for start in range(0, len(referral_ids), _CHUNK):
            rows = await direct.execute(
                self._session, _TOLD_BEFORE, {"ids": list(referral_ids[start : start + _CHUNK])}
            )
            found |= {
                row.referral_id: ToldBefore(Parties(row.referrer_org_id, row.receiving_org_id), row.fingerprint)
                for row in rows
            }
        return found

    async def tell(self, updates: Sequence[ClockUpdate], source: str) -> None:
        """Remembers each update's fingerprint and publishes it, keyed by referral."""
        if not updates:
            return
        now = datetime.now(UTC)
        await direct.execute(
            self._session,
            _REMEMBER(self._session),
            [{"referral_id": u.clocks.referral_id, "fingerprint": u.clocks.fingerprint,
              "referral_version": u.clocks.referral_version, "sent_at": now} for u in updates],
        )  # fmt: skip
        events: list[tuple[CloudEvent, str, str]] = [
            (clocks_event(u, source), Topics.WAITLIST_ALERTS, u.clocks.referral_id) for u in updates
        ]
        await self._writer.add_many(self._session, events)
