"""Conversions between the oracle's plain shapes and the production's types (tests only).

The oracle knows nothing of the production code; this is where the two meet: plain histories become
production timelines and service clocks, production figures become the oracle's plain dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.metrics import Figures
from waitlists.domain.timeline import StatusChange, Timeline

from .oracle import Referral, Service

CLOCK_COUNTS = ("stopped", "met", "stopped_ex", "met_ex", "breached_waiting", "imminent", "exceptions")


def timeline(r: Referral) -> Timeline:
    changes = [StatusChange(v, c.status, c.on, c.reason, c.outcome) for v, c in enumerate(r.changes, start=1)]
    return Timeline.of(r.referral_id, r.child, r.service, r.urgency, changes)


def timelines(referrals: Sequence[Referral]) -> list[Timeline]:
    return [timeline(r) for r in referrals]


def service_clocks(services: Mapping[str, Service]) -> dict[str, ServiceClocks]:
    return {k: ServiceClocks(tuple(ClockKind(c) for c in s.clocks), s.target_days) for k, s in services.items()}


def plain(f: Figures) -> dict[str, Any]:
    """The production's figures in the oracle's shape. A clock with nothing to count is left out: the
    production lists every clock its services run, the oracle only those with something to count."""
    clocks = {}
    for kind, c in sorted(f.clocks.items()):
        entry: dict[str, Any] = {name: getattr(c, name) for name in CLOCK_COUNTS}
        entry["pct_within_target"] = c.pct_within_target
        entry["pct_within_target_ex"] = c.pct_within_target_ex
        entry["upcoming"] = list(c.upcoming)
        if any(entry[name] for name in CLOCK_COUNTS) or any(entry["upcoming"]):
            clocks[kind] = entry
    w, g = f.waiting, f.handoff_gaps
    return {
        "waiting": {
            "waiting": w.waiting,
            "distribution": dict(w.distribution),
            "median_days": w.median_days,
            "p90_days": w.p90_days,
            "total_days": w.total_days,
            "long_waiters": dict(w.long_waiters),
        },
        "clocks": clocks,
        "closed_in_period": f.closed_in_period,
        "rejected": f.rejected,
        "rejection_rate": f.rejection_rate,
        "rejections_by_reason": dict(f.rejections_by_reason),
        "closed_before_support": f.closed_before_support,
        "handoff_gaps": {
            "closed": g.closed,
            "median_days": g.median_days,
            "p90_days": g.p90_days,
            "open": g.open,
            "open_median_days": g.open_median_days,
        },
        "children_on_several_lists": f.children_on_several_lists,
        "weekly_flows": [(x.week_start, x.week_end, x.arrived, x.started, x.closed) for x in f.weekly_flows],
    }
