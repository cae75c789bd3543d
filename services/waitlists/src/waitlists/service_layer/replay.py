"""The referral topic folded in memory: what a rebuild writes, without a query per event.

The fold applies the live consumer's rules themselves (``domain.projection.project`` for referrals,
``domain.directory.newest`` for the directory), so a rebuild gives what the consumer built. A record that is
not a valid CloudEvent, whose data its schema refuses, or that the projection cannot hold (the live consumer
parks those) is skipped; events of other types change nothing.

Held, a referral costs about a kilobyte and each of its events about 200 bytes: a million referrals'
histories take about 2 GB.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from waitlists.adapters.events import RecordRefused, from_record
from waitlists.domain.directory import OrganisationEntry, ServiceEntry, newest
from waitlists.domain.projection import HeldProjection, ProjectedReferral, ReferralEvent, project

PROGRESS_EVERY = 10_000
Record = Callable[[Sequence[tuple[str, bytes | None]], bytes | None], None]


class ReplayFold:
    """Takes the topic's records one by one; ``result`` once every one is in."""

    def __init__(self) -> None:
        self.referrals: dict[str, ProjectedReferral] = {}
        self.services: dict[str, ServiceEntry] = {}
        self.organisations: dict[str, OrganisationEntry] = {}
        self.events = 0
        self.skipped = 0

    def add(self, headers: Sequence[tuple[str, bytes | None]], value: bytes | None) -> None:
        try:
            entry = from_record(headers, value)
        except RecordRefused:
            self.skipped += 1
            return
        self.events += 1
        if isinstance(entry, ReferralEvent):
            self.referrals[entry.referral_id] = project(self.referrals.get(entry.referral_id), entry)
        elif isinstance(entry, ServiceEntry):
            self.services[entry.service_id] = newest(self.services.get(entry.service_id), entry)
        elif isinstance(entry, OrganisationEntry):
            self.organisations[entry.organisation_id] = newest(self.organisations.get(entry.organisation_id), entry)

    def result(
        self,
        services: dict[str, ServiceEntry] | None = None,
        elsewhere: Mapping[str, Sequence[ProjectedReferral]] | None = None,
    ) -> HeldProjection:
        """What was folded; for one part of a rebuild, with the whole directory (``services``) and the children's
        referrals the other parts hold (``elsewhere``, by child), which their journeys need."""
        by_child: defaultdict[str, list[str]] = defaultdict(list)
        for rid, referral in self.referrals.items():
            by_child[referral.child_ref].append(rid)
        others: dict[str, ProjectedReferral] = {}
        for child, held_elsewhere in (elsewhere or {}).items():
            for referral in held_elsewhere:
                by_child[child].append(referral.referral_id)
                others[referral.referral_id] = referral
        directory = self.services if services is None else services
        clocks = {sid: s.service_clocks for sid, s in directory.items()}
        return HeldProjection(self.referrals, directory, self.organisations, dict(by_child), clocks, others)

    def of_children(self, children: Iterable[str]) -> dict[str, list[ProjectedReferral]]:
        """The referrals folded of each of ``children``."""
        wanted = set(children)
        found: defaultdict[str, list[ProjectedReferral]] = defaultdict(list)
        for referral in self.referrals.values():
            if referral.child_ref in wanted:
                found[referral.child_ref].append(referral)
        return dict(found)


def telling(fold: ReplayFold, tell: Callable[[int], None]) -> Record:
    """``fold.add``, telling how many events are in every ``PROGRESS_EVERY``."""

    def add(headers: Sequence[tuple[str, bytes | None]], value: bytes | None) -> None:
        fold.add(headers, value)
        if fold.events % PROGRESS_EVERY == 0:
            tell(fold.events)

    return add
