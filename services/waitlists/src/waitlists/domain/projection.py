"""The projection's rules for referral events, once: how one event changes what is held of a referral.

The live consumer (one event at a time, the state read from the database and written back) and the
rebuild (the whole topic folded in memory) both apply ``project``, so a rebuild holds what the consumer
built:
- a referral's fixed facts (child, service, organisations, urgency, need codes) come from the first event of it
  seen;
- a repeated (referral, version) keeps its first copy;
- the changes are held in version order, whatever order they arrive in.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from waitlists.domain.clocks import ServiceClocks
from waitlists.domain.directory import OrganisationEntry, ServiceEntry
from waitlists.domain.facts import ReferralFacts, derive
from waitlists.domain.timeline import StatusChange, Timeline


@dataclass(frozen=True, slots=True)
class RecordedChange(StatusChange):
    """A status change as the referral event told it: ``on`` is the business date of ``occurred_at``. Being a
    ``StatusChange``, the held changes are the timeline's own, not copied for every fact derived. (A dataclass equals
    only one of its own class: compare a projection's timeline with one read back by its changes' fields.)"""

    occurred_at: datetime = field(kw_only=True)


# ReferralEvent and ProjectedReferral are named tuples, not frozen dataclasses: a rebuild makes one of each for every
# event it folds, and a frozen dataclass's __init__ (each field set through object.__setattr__) cost five times a
# tuple's, about 1.2 µs of each event's 30. Immutable and compared by value all the same.
class ReferralEvent(NamedTuple):
    referral_id: str
    child_ref: str
    service_id: str
    receiving_org_id: str
    referrer_org_id: str
    urgency: str
    primary_need: str | None  # DfE SEN need codes, as the referral event carries them
    secondary_need: str | None
    change: RecordedChange


class ProjectedReferral(NamedTuple):
    referral_id: str
    child_ref: str
    service_id: str
    receiving_org_id: str
    referrer_org_id: str
    urgency: str
    primary_need: str | None
    secondary_need: str | None
    changes: tuple[RecordedChange, ...]  # version order, one per version

    @property
    def latest(self) -> RecordedChange:
        return self.changes[-1]

    def timeline(self) -> Timeline:
        return Timeline(self.referral_id, self.child_ref, self.service_id, self.urgency, self.changes)

    def _with(self, changes: tuple[RecordedChange, ...]) -> ProjectedReferral:
        return ProjectedReferral(*self[:-1], changes)  # the referral's fixed facts, then these changes


def project(current: ProjectedReferral | None, event: ReferralEvent) -> ProjectedReferral:
    """What is held of the referral once ``event`` is in (``current``: what was held before, None for none)."""
    change = event.change
    if current is None:
        return ProjectedReferral(event.referral_id, event.child_ref, event.service_id, event.receiving_org_id,
                                 event.referrer_org_id, event.urgency, event.primary_need, event.secondary_need,
                                 (change,))  # fmt: skip
    changes = current.changes
    if changes[-1].version < change.version:  # the usual case: newer than every version held
        return current._with((*changes, change))
    at = bisect_left(changes, change.version, key=lambda c: c.version)
    if changes[at].version == change.version:
        return current
    return current._with((*changes[:at], change, *changes[at:]))


@dataclass(frozen=True, slots=True)
class HeldProjection:
    """Everything a projection holds, in memory (a rebuild's fold of the whole topic)."""

    referrals: dict[str, ProjectedReferral]
    services: dict[str, ServiceEntry]
    organisations: dict[str, OrganisationEntry]
    by_child: dict[str, list[str]]  # the ids of every referral of each child, those held elsewhere included
    clocks: dict[str, ServiceClocks]
    # Referrals of these children that another part of a rebuild holds: in their journeys, not held here.
    elsewhere: dict[str, ProjectedReferral] = field(default_factory=dict)

    def chunks(self, size: int) -> Iterator[list[ProjectedReferral]]:
        """Every referral in id order (so each index grows at its right edge), ``size`` at a time."""
        ids = sorted(self.referrals)
        for start in range(0, len(ids), size):
            yield [self.referrals[rid] for rid in ids[start : start + size]]

    def facts(self, chunk: list[ProjectedReferral]) -> list[ReferralFacts]:
        """The facts of a chunk's referrals, each with its child's other referrals as its journey."""
        found = []
        for referral in chunk:
            journey = [(self.referrals.get(other) or self.elsewhere[other]).timeline()
                       for other in self.by_child[referral.child_ref]]  # fmt: skip
            own = next(t for t in journey if t.referral_id == referral.referral_id)
            facts = derive(own, self.clocks.get(referral.service_id, ServiceClocks(())), journey)
            if facts is not None:
                found.append(facts)
        return found
