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
from collections.abc import Sequence

from waitlists.adapters.events import RecordRefused, from_record
from waitlists.domain.directory import OrganisationEntry, ServiceEntry, newest
from waitlists.domain.projection import HeldProjection, ProjectedReferral, ReferralEvent, project


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

    def result(self) -> HeldProjection:
        by_child: defaultdict[str, list[str]] = defaultdict(list)
        for rid, referral in self.referrals.items():
            by_child[referral.child_ref].append(rid)
        clocks = {sid: s.service_clocks for sid, s in self.services.items()}
        return HeldProjection(self.referrals, self.services, self.organisations, dict(by_child), clocks)
