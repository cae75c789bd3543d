"""The referral topic folded in memory: what a rebuild writes, without a query per event.

The fold follows the live consumer's rules, so a rebuild gives what the consumer built:
- a referral's fixed facts (child, service, organisations, urgency) come from the first event of it seen;
- a repeated (referral, version) keeps its first copy, as ``ON CONFLICT DO NOTHING`` does;
- a directory entry keeps its newest version, and the first copy of equal versions;
- a record that is not a valid CloudEvent, or whose data its schema refuses, is skipped, and so is one
  the projection cannot hold (``projection.projectable``: a value longer than its column, a business
  time outside the dates counted with; the live consumer parks those);
- events of other types change nothing.

Held, a referral costs about a kilobyte and each of its events about 200 bytes: a million referrals'
histories take about 2 GB.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from send_shared.events.envelope import EventDecodeError, decode_attributes, decode_kafka
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    REFERRAL_EVENT_TYPES,
    SERVICE_UPSERTED,
    ContractViolation,
    OrganisationV1,
    ReferralEventV1,
    ServiceV1,
    check_attributes,
)
from waitlists.adapters.projection import Unprojectable, projectable
from waitlists.domain.clocks import ServiceClocks
from waitlists.domain.facts import ReferralFacts, derive
from waitlists.domain.timeline import StatusChange, Timeline, business_date

# version, status, occurred_at, occurred_on, reason_code, outcome_code
Change = tuple[int, str, datetime, date, str | None, str | None]
Entry = TypeVar("Entry", OrganisationV1, ServiceV1)


@dataclass(slots=True)
class FoldedReferral:
    child_ref: str
    service_id: str
    receiving_org_id: str
    referrer_org_id: str
    urgency: str
    changes: list[Change] = field(default_factory=list)

    def settle(self) -> None:
        """Version order, each version once (its first copy: the sort is stable)."""
        self.changes.sort(key=lambda c: c[0])
        self.changes = [c for i, c in enumerate(self.changes) if i == 0 or c[0] != self.changes[i - 1][0]]

    def timeline(self, referral_id: str) -> Timeline:
        changes = tuple(StatusChange(c[0], c[1], c[3], c[4], c[5]) for c in self.changes)
        return Timeline(referral_id, self.child_ref, self.service_id, self.urgency, changes)


class ReplayFold:
    """Takes the topic's records one by one; ``result`` once every one is in."""

    def __init__(self) -> None:
        self.referrals: dict[str, FoldedReferral] = {}
        self.services: dict[str, ServiceV1] = {}
        self.organisations: dict[str, OrganisationV1] = {}
        self.events = 0
        self.skipped = 0

    def add(self, headers: Sequence[tuple[str, bytes | None]], value: bytes | None) -> None:
        try:
            attributes = decode_attributes(headers).attributes
            kind = attributes["type"]
            if kind in REFERRAL_EVENT_TYPES:
                referral = projectable(ReferralEventV1.model_validate_json(value or b""))
                _check(kind, referral, attributes)
                self._referral(referral)
            elif kind == SERVICE_UPSERTED:
                _keep_newest(self.services, projectable(ServiceV1.model_validate_json(value or b"")), "service_id")
            elif kind == ORGANISATION_UPSERTED:
                entry = projectable(OrganisationV1.model_validate_json(value or b""))
                _keep_newest(self.organisations, entry, "organisation_id")
            else:
                decode_kafka(headers, value)  # changes nothing, but is refused as the live consumer refuses it
        except (EventDecodeError, ValidationError, ContractViolation, Unprojectable):
            self.skipped += 1
            return
        self.events += 1

    def _referral(self, d: ReferralEventV1) -> None:
        referral = self.referrals.get(d.referral_id)
        if referral is None:
            shared = sys.intern  # a few thousand services and organisations, held once each
            referral = self.referrals[d.referral_id] = FoldedReferral(
                d.child_ref,
                shared(d.service_id),
                shared(d.receiving_org_id),
                shared(d.referrer_org_id),
                shared(d.urgency or "routine"),
            )
        referral.changes.append(
            (d.version, d.status.value, d.occurred_at, business_date(d.occurred_at), d.reason_code, d.outcome_code)
        )

    def result(self) -> FoldedTopic:
        by_child: defaultdict[str, list[str]] = defaultdict(list)
        for rid, referral in self.referrals.items():
            referral.settle()
            by_child[referral.child_ref].append(rid)
        clocks = {sid: ServiceClocks.named(s.clocks, s.target_days) for sid, s in self.services.items()}
        return FoldedTopic(self.referrals, self.services, self.organisations, dict(by_child), clocks)


@dataclass(frozen=True, slots=True)
class FoldedTopic:
    referrals: dict[str, FoldedReferral]
    services: dict[str, ServiceV1]
    organisations: dict[str, OrganisationV1]
    by_child: dict[str, list[str]]
    clocks: dict[str, ServiceClocks]

    def chunks(self, size: int) -> Iterator[list[tuple[str, FoldedReferral]]]:
        """Every referral in id order (so each index grows at its right edge), ``size`` at a time."""
        ids = sorted(self.referrals)
        for start in range(0, len(ids), size):
            yield [(rid, self.referrals[rid]) for rid in ids[start : start + size]]

    def facts(self, chunk: list[tuple[str, FoldedReferral]]) -> list[ReferralFacts]:
        """The facts of a chunk's referrals, each with its child's other referrals as its journey."""
        found = []
        for rid, referral in chunk:
            journey = [self.referrals[other].timeline(other) for other in self.by_child[referral.child_ref]]
            own = next(t for t in journey if t.referral_id == rid)
            facts = derive(own, self.clocks.get(referral.service_id, ServiceClocks(())), journey)
            if facts is not None:
                found.append(facts)
        return found


def _check(kind: str, referral: ReferralEventV1, attributes: dict[str, str]) -> None:
    extensions = {k: v for k, v in attributes.items() if k == "referralversion"}
    check_attributes(kind, referral, subject=attributes.get("subject"), extensions=extensions)


def _keep_newest(known: dict[str, Entry], entry: Entry, key: str) -> None:
    current: Any = known.get(getattr(entry, key))
    if current is None or current.version < entry.version:
        known[getattr(entry, key)] = entry
