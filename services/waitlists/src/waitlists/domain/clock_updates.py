"""A referral's clocks as the service tells other services about them (``uk.send.waitlist.clocks_updated.v1``):
each clock's state as of the referral's newest change date, by the rules of ``domain.clocks`` (the one copy of
them), and a fingerprint that says whether they differ from those told last. Pure Python."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from waitlists.domain.access import Parties
from waitlists.domain.clocks import Clock, ClockState, ServiceClocks, clock_on
from waitlists.domain.timeline import Timeline

_TOLD_STATES = {
    ClockState.RUNNING: "running",
    ClockState.PAUSED: "paused",
    ClockState.MET: "met",
    ClockState.BREACHED: "late",  # stopped late, or still waiting past its breach date (running or paused)
    ClockState.STOPPED: "ended",
}


@dataclass(frozen=True, slots=True)
class ToldClock:
    clock: str
    target_days: int
    start_date: date
    state: str  # running, paused, met, late, ended
    breach_date: date | None  # null while paused before it, and for a clock met or ended
    stopped_on: date | None
    exception: bool


@dataclass(frozen=True, slots=True)
class ReferralClocks:
    """A referral's clocks, derived from the versions up to ``referral_version``."""

    referral_id: str
    referral_version: int
    service_id: str
    clocks: tuple[ToldClock, ...]

    @property
    def fingerprint(self) -> str:
        """What must differ for the clocks to be told again: the service and each clock's state (not the
        version, which moves with every change, most of which change no clock)."""
        parts = [self.service_id] + [
            f"{c.clock}|{c.target_days}|{c.start_date}|{c.state}|{c.breach_date}|{c.stopped_on}|{int(c.exception)}"
            for c in self.clocks
        ]
        return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class ToldBefore:
    """What is held of a referral for telling its clocks: the two organisations it is between, and the
    fingerprint of the clocks told last (None if none were)."""

    parties: Parties
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class ClockUpdate:
    """Clocks to tell, with the two organisations the referral is between."""

    clocks: ReferralClocks
    parties: Parties


def told(clock: Clock) -> ToldClock:
    return ToldClock(
        clock=clock.kind.value,
        target_days=clock.target,
        start_date=clock.start,
        state=_TOLD_STATES[clock.state],
        breach_date=clock.breach_date or clock.breached_on,
        stopped_on=clock.stopped_on,
        exception=clock.exception,
    )


def current_clocks(timeline: Timeline, service: ServiceClocks) -> ReferralClocks | None:
    """Every clock the service runs for the referral, as it stood on the referral's newest change date;
    None for a referral with no changes."""
    if not timeline.changes:
        return None
    newest = max(c.on for c in timeline.changes)
    found = (clock_on(timeline, kind, newest, service.target_days) for kind in service.clocks)
    return ReferralClocks(
        timeline.referral_id,
        timeline.changes[-1].version,
        timeline.service_id,
        tuple(told(clock) for clock in found if clock is not None),
    )


def changed_clocks(
    timelines: Sequence[Timeline], services: Mapping[str, ServiceClocks], told_before: Mapping[str, ToldBefore]
) -> list[ClockUpdate]:
    """The referrals whose clocks differ from those told before. A referral without a clock (its service
    runs none) is told nothing, unless it was told of clocks before (its service stopped running them)."""
    changed = []
    for timeline in timelines:
        held = told_before.get(timeline.referral_id)
        found = current_clocks(timeline, services.get(timeline.service_id, ServiceClocks(())))
        if held is None or found is None:
            continue
        if (found.clocks or held.fingerprint is not None) and found.fingerprint != held.fingerprint:
            changed.append(ClockUpdate(found, held.parties))
    return changed
