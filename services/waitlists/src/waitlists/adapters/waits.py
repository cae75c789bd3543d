"""Reads for predicted waits, and the estimates sent: one grouped query over the referrals' outcomes (with the stop
of each service's first clock) for every service asked about, and the estimates published through the outbox in
the same transaction that remembers them."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime

from sqlalchemy import and_, case, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared.db import upsert_insert
from send_shared.events.topics import Topics
from send_shared.outbox import OutboxWriter
from waitlists.adapters.events import wait_estimate_event
from waitlists.adapters.orm import clock_stops, outbox, referral_outcomes, wait_estimates_sent
from waitlists.domain.facts import StopOutcome
from waitlists.domain.waits import ReferralOutcome, WaitEstimate

_CHUNK = 500


def fingerprint(estimate: WaitEstimate) -> str:
    return hashlib.md5(repr(estimate.fingerprint()).encode(), usedforsecurity=False).hexdigest()


class SqlWaits:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._writer = OutboxWriter(outbox)

    async def outcomes(
        self, first_clocks: Mapping[str, str | None], first: date, last: date
    ) -> dict[str, list[ReferralOutcome]]:
        """The outcomes of the referrals submitted from ``first`` to ``last`` at these services (service id ->
        its first clock, or None), with the stop of that clock; alike referrals counted once with ``n``."""
        ro, st = referral_outcomes, clock_stops
        found: dict[str, list[ReferralOutcome]] = defaultdict(list)
        ids = list(first_clocks)
        for start in range(0, len(ids), _CHUNK):
            chunk = {sid: first_clocks[sid] for sid in ids[start : start + _CHUNK]}
            with_clock = {sid: clock for sid, clock in chunk.items() if clock is not None}
            on_stop = (
                and_(st.c.referral_id == ro.c.referral_id, st.c.clock == case(with_clock, value=ro.c.service_id))
                if with_clock
                else false()
            )
            n = func.count().label("n")
            columns = (ro.c.service_id, ro.c.submitted_on, ro.c.started_on, ro.c.closed_on, st.c.stopped_on,
                       st.c.outcome)  # fmt: skip
            rows = await self._session.execute(
                select(*columns, n)
                .select_from(ro.outerjoin(st, on_stop))
                .where(ro.c.service_id.in_(list(chunk)), ro.c.submitted_on.between(first, last))
                .group_by(*columns)
            )
            for r in rows:
                found[r.service_id].append(
                    ReferralOutcome(r.submitted_on, r.started_on, r.closed_on, r.stopped_on,
                                    StopOutcome(r.outcome) if r.outcome is not None else None, r.n)
                )  # fmt: skip
        return dict(found)

    async def computed_on(self, service_ids: Collection[str]) -> dict[str, date]:
        """The day each of these services' estimate was last worked out (absent: never)."""
        ws = wait_estimates_sent
        rows = await self._session.execute(select(ws.c.service_id, ws.c.computed_on))
        wanted = set(service_ids)
        return {r.service_id: r.computed_on for r in rows if r.service_id in wanted}

    async def send_if_changed(self, estimate: WaitEstimate, source: str) -> bool:
        """Remembers that the service's estimate was worked out on ``estimate.as_of``, and publishes it (keyed by
        service) when it differs from the one sent last; returns whether it was sent."""
        ws = wait_estimates_sent
        held = (
            await self._session.execute(select(ws.c.fingerprint).where(ws.c.service_id == estimate.service_id))
        ).first()
        mark = fingerprint(estimate)
        changed = held is None or held.fingerprint != mark
        values: dict[str, object] = {"service_id": estimate.service_id, "computed_on": estimate.as_of}
        if changed:
            values |= {"fingerprint": mark, "sent_at": datetime.now(UTC)}
        stmt = upsert_insert(self._session)(ws).values(**values)
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[ws.c.service_id], set_={k: stmt.excluded[k] for k in values if k != "service_id"}
            )
        )
        if changed:
            event = wait_estimate_event(estimate, source)
            await self._writer.add(self._session, event, topic=Topics.WAITLIST_ALERTS, key=estimate.service_id)
        return changed
