"""The benchmark's national dataset (bench/national.py): England's shape, deterministic, and histories the
referrals service could really have published."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from national import SCALES, Scale, directory, referral_events

from referrals.domain.lifecycle import Status, allowed_moves
from send_shared.events.schemas import REFERRAL_EVENT_TYPES

END = date(2026, 11, 1)
SMALL = Scale(areas=3, referrals=600, years=2, schools_per_area=10)


def test_the_national_directory_has_englands_shape() -> None:
    events = directory(SCALES["national"])
    kinds = Counter(e.data["kind"] for e in events if "kind" in e.data)
    assert len({e.data["area_id"] for e in events if "area_id" in e.data}) == 153
    assert kinds["school"] == 20_043
    assert kinds["local_authority"] == 153
    services = [e.data for e in events if "clocks" in e.data]
    assert len(services) == 153 * 6
    assert sum(1 for s in services if "ehc_plan_20w" in s["clocks"]) == 153


def test_the_same_seed_and_end_date_give_the_same_events() -> None:
    def fingerprint(seed: int) -> list[tuple[str, str, Any]]:
        return [(e.type, e.id, e.data) for e in referral_events(SMALL, seed=seed, end=END)]

    first = fingerprint(7)
    assert first == fingerprint(7)
    assert first != fingerprint(8)


def test_histories_follow_the_state_machine_and_never_duplicate_a_service() -> None:
    by_referral: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in referral_events(SMALL, seed=3, end=END):
        assert event.type in REFERRAL_EVENT_TYPES
        by_referral[event.subject or ""].append(event.data)
    assert len(by_referral) >= SMALL.referrals  # hand-offs add onward referrals
    services_of_child: defaultdict[str, list[str]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    for changes in by_referral.values():
        assert [c["version"] for c in changes] == list(range(1, len(changes) + 1))
        assert changes[0]["status"] == "submitted"
        days = [c["occurred_at"] for c in changes]
        assert days == sorted(days) and days[-1] <= "2026-11-02"
        held_from = None
        for before, after in pairwise(changes):
            current, target = Status(before["status"]), Status(after["status"])
            assert target in allowed_moves(current, held_from), (current, target)
            held_from = current if target is Status.ON_HOLD else held_from
        services_of_child[changes[0]["child_ref"]].append(changes[0]["service_id"])
        statuses.update(c["status"] for c in changes)
    assert all(len(s) == len(set(s)) for s in services_of_child.values())
    assert sum(1 for s in services_of_child.values() if len(s) > 1) > SMALL.referrals / 20  # parallel and onward
    # Proportions of the demo: about a fifth rejected, some holds, hand-offs and withdrawals.
    assert 0.12 < statuses["rejected"] / len(by_referral) < 0.3
    assert statuses["on_hold"] and statuses["handed_off"] and statuses["withdrawn"]
