"""Each referral's clocks as waitlists last told them (``uk.send.waitlist.clocks_updated.v1``): kept by the
consumer of waitlists' topic, the newest referral version winning, and read by the family view."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from referrals.adapters.orm import referral_clocks
from referrals.domain.deadlines import ClockState, ReferralClocks
from send_shared import direct
from send_shared.db import ByDialect, Db

_CHUNK = 500


def _keep(insert: Any) -> Any:
    stmt = insert(referral_clocks)
    return stmt.on_conflict_do_update(
        index_elements=[referral_clocks.c.referral_id],
        set_={name: stmt.excluded[name] for name in ("referral_version", "service_id", "clocks", "received_at")},
        where=referral_clocks.c.referral_version <= stmt.excluded.referral_version,
    )


_KEEP = ByDialect(_keep)  # every clocks update: built once


class SqlReferralClocksRepository:
    def __init__(self, session: Db) -> None:
        self._session = session

    async def keep(self, clocks: ReferralClocks) -> bool:
        """Holds ``clocks`` in place of those held, unless those are of a newer referral version (of the same
        version, the later told wins); returns whether they were kept."""
        row = {"referral_id": clocks.referral_id, "referral_version": clocks.referral_version,
               "service_id": clocks.service_id, "clocks": [_row(c) for c in clocks.clocks],
               "received_at": datetime.now(UTC)}  # fmt: skip
        return bool((await direct.execute(self._session, _KEEP(self._session), row)).rowcount)

    async def clocks_of(self, referral_ids: Sequence[str]) -> dict[str, list[ClockState]]:
        found: dict[str, list[ClockState]] = {}
        ids = list(dict.fromkeys(referral_ids))
        for start in range(0, len(ids), _CHUNK):
            rows = await self._session.execute(
                select(referral_clocks.c.referral_id, referral_clocks.c.clocks).where(
                    referral_clocks.c.referral_id.in_(ids[start : start + _CHUNK])
                )
            )
            found |= {row.referral_id: [_clock(c) for c in row.clocks] for row in rows}
        return found


def _row(clock: ClockState) -> dict[str, Any]:
    return {
        "clock": clock.clock,
        "target_days": clock.target_days,
        "start_date": clock.start_date.isoformat(),
        "state": clock.state,
        "breach_date": clock.breach_date.isoformat() if clock.breach_date else None,
        "stopped_on": clock.stopped_on.isoformat() if clock.stopped_on else None,
        "exception": clock.exception,
    }


def _clock(row: dict[str, Any]) -> ClockState:
    def day(value: str | None) -> date | None:
        return date.fromisoformat(value) if value else None

    return ClockState(
        clock=row["clock"],
        target_days=row["target_days"],
        start_date=date.fromisoformat(row["start_date"]),
        state=row["state"],
        breach_date=day(row.get("breach_date")),
        stopped_on=day(row.get("stopped_on")),
        exception=bool(row.get("exception", False)),
    )
