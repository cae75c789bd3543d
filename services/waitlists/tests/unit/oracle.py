"""The figures worked out from the brief alone (§3 lifecycle, §4 precise rules, §5 figures), the slow,
obvious way: every referral's history is walked one calendar date at a time.

This is the reference the fact tables and the SQL reads are held to (tests only). It imports nothing
from the production code (neither ``waitlists`` nor ``send_shared``) and shares none of its algorithms:
instead of evaluating change dates and adding pause lengths, it steps through every date from a
referral's start, noting at the end of each date the status, whether the clock is paused, the waiting
days accumulated so far (one per unpaused date) and, per clock, whether it has stopped, ended or
breached. Every figure for a reporting date is then read off the walk at that date.

Inputs and outputs are plain: ``Referral``/``Change``/``Service`` records in, a dict of dicts, lists
and numbers out. Tests convert the production's histories and results to these shapes.

Where the brief leaves a case open, the oracle's choice is named in a comment marked "Reading:".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

# §3 and §4, copied out of the brief rather than imported.
WAITING_STATUSES = frozenset({"submitted", "acknowledged", "accepted", "scheduled", "on_hold"})
FINAL_MOVES = ("rejected", "withdrawn", "handed_off", "completed")  # "first final move" (rejection rate)
ENDING = frozenset({"rejected", "withdrawn", "handed_off", "entered_in_error"})  # end a clock, neither met nor breached
BEFORE_SUPPORT = frozenset({"rejected", "withdrawn", "handed_off"})
FAMILY_REASONS = frozenset({"family_unavailable", "appointment_declined"})
EHC_EXCEPTION_REASONS = frozenset(
    {
        "school_closed_4_weeks",
        "child_or_parent_away_4_weeks",
        "exceptional_personal_circumstances",
        "missed_appointment_no_notice",
    }
)
EHC_CLOCKS = frozenset({"ehc_decision_6w", "ehc_no_plan_16w", "ehc_plan_20w"})
FIXED_TARGETS = {"ehc_decision_6w": 42, "ehc_no_plan_16w": 112, "ehc_plan_20w": 140, "rtt_18w": 126, "cypmh_4w": 28}
DISTRIBUTION = (("0-4", 0, 4), ("4-18", 4, 18), ("18-52", 18, 52), ("52+", 52, 10**9))
LONG_WAITS = (52, 65, 78, 104)
IMMINENT_WITHIN = 7
UPCOMING_WEEKS = 4
FLOW_WEEKS = 12


@dataclass(frozen=True)
class Change:
    status: str
    on: date  # business date in Europe/London
    reason: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class Referral:
    referral_id: str
    child: str
    service: str
    urgency: str
    changes: tuple[Change, ...]  # in the order recorded (version order); dates never go backwards


@dataclass(frozen=True)
class Service:
    clocks: tuple[str, ...]
    target_days: int | None = None


# --- small statistics ------------------------------------------------------------------------------


def nth_ranked(values: Iterable[int], numerator: int, denominator: int) -> int | None:
    """The value at rank ceil(p * n) of the sorted values, p = numerator / denominator, in integers."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, -(-numerator * len(ordered) // denominator))
    return ordered[rank - 1]


def share(part: int, whole: int) -> float | None:
    """Percentage rounded half-up to one decimal, worked in whole tenths; None when ``whole`` is 0."""
    if whole == 0:
        return None
    tenths = (2000 * part + whole) // (2 * whole)  # floor(1000 * part / whole + 1/2)
    return tenths / 10


# --- the walk --------------------------------------------------------------------------------------


def _target(kind: str, urgency: str, service: Service) -> int | None:
    if kind in FIXED_TARGETS:
        return FIXED_TARGETS[kind]
    if kind == "cypmh_ed":  # urgent eating disorders 1 week, routine 4 weeks
        # Reading: very urgent is at least as urgent as urgent.
        return 7 if urgency in ("urgent", "very_urgent") else 28
    if kind == "cypmh_crisis":
        # Urgent crisis 24 hours = 1 day; very urgent 4 hours: on calendar dates, the same day (0).
        # Reading: a crisis referral marked routine is held to the urgent target.
        return 0 if urgency == "very_urgent" else 1
    if kind == "service_target":
        return service.target_days
    return None


def _stops(kind: str, change: Change) -> bool:
    """Whether this move is the clock's own stop (met or breached by the waiting days that date)."""
    if kind == "ehc_decision_6w":
        return change.status in ("accepted", "rejected")
    if kind == "ehc_no_plan_16w":
        return change.status == "completed" and change.outcome == "no_plan"
    if kind == "ehc_plan_20w":
        return change.status == "completed" and change.outcome == "plan_issued"
    # RTT, CYPMH, service targets: support started, or completed before it (a non-treatment stop).
    return change.status in ("in_progress", "completed")


@dataclass
class ClockDay:
    """One clock at the end of one date."""

    waiting: int  # waiting days on the date
    breached_on: date | None  # first date with waiting days > target (None: not (yet) breached)
    stopped_on: date | None = None  # its own stop
    met: bool | None = None  # at its own stop
    ended_on: date | None = None  # rejected/withdrawn/handed_off before its own stop
    paused: bool = False  # paused at the end of the date
    exception: bool = False
    coming_breach: date | None = None  # running, not breached: the date it breaches if nothing happens


@dataclass
class Day:
    status: str  # at the end of the date
    waiting: int  # the referral's waiting days on the date (waiting-list figure)
    clocks: dict[str, ClockDay] = field(default_factory=dict)


class Walk:
    """A referral walked from its start, one date at a time, to the last of ``wanted``: ``days[d]``
    is how it stood at the end of date d, kept for the dates wanted."""

    def __init__(self, referral: Referral, service: Service, wanted: Collection[date]) -> None:
        self.referral = referral
        self.wanted = frozenset(wanted)
        first = referral.changes[0] if referral.changes else None
        # Reading: a history whose first known move is not `submitted` has no start: it is out of
        # every figure (the referral's beginning is missing).
        self.start = first.on if first is not None and first.status == "submitted" else None
        self.in_error = any(c.status == "entered_in_error" for c in referral.changes)
        self.days: dict[date, Day] = {}
        for a, b in zip(referral.changes, referral.changes[1:], strict=False):
            assert a.on <= b.on, "business dates of one referral never go backwards"
        if self.start is None:
            return
        by_date: defaultdict[date, list[Change]] = defaultdict(list)
        for c in referral.changes:
            by_date[c.on].append(c)
        # Reading: waiting-list days pause like the service's clocks: unless it runs an EHC clock.
        list_pauses = not any(k in EHC_CLOCKS for k in service.clocks)
        kinds = [(k, t) for k in service.clocks if (t := _target(k, referral.urgency, service)) is not None]
        status, reason = "submitted", None
        list_waiting = 0
        clock_waiting = dict.fromkeys((k for k, _ in kinds), 0)
        state: dict[str, ClockDay] = {}
        d, last = self.start, max(wanted, default=self.start)
        while d <= last:
            today = by_date.get(d, [])
            for c in today:
                status, reason = c.status, c.reason
            family_hold = status == "on_hold" and reason in FAMILY_REASONS
            clocks_today = {}
            for kind, target in kinds:
                pauses = kind not in EHC_CLOCKS
                prev = state.get(kind)
                cd = ClockDay(clock_waiting[kind], prev.breached_on if prev else None)
                if prev is not None:
                    cd.stopped_on, cd.met, cd.ended_on = prev.stopped_on, prev.met, prev.ended_on
                    cd.exception = prev.exception
                over_before = cd.stopped_on is not None or cd.ended_on is not None
                over = over_before
                for c in today:
                    if over:
                        break
                    if _stops(kind, c):
                        cd.stopped_on, cd.met = d, cd.waiting <= target
                        over = True
                    elif c.status in ENDING:
                        cd.ended_on = d
                        over = True
                if kind in EHC_CLOCKS and not over_before:
                    # An exception hold dated on or before the clock's stop: the date of the stop
                    # counts, whatever the order the moves of that date were recorded in.
                    cd.exception = cd.exception or any(
                        c.status == "on_hold" and c.reason in EHC_EXCEPTION_REASONS for c in today
                    )
                if not over:
                    if cd.breached_on is None and cd.waiting > target:
                        cd.breached_on = d
                    cd.paused = pauses and family_hold
                    if cd.breached_on is None and not cd.paused:
                        cd.coming_breach = d + timedelta(days=target + 1 - cd.waiting)
                clocks_today[kind] = state[kind] = cd
                if not (pauses and family_hold):
                    clock_waiting[kind] += 1  # this date counts towards the waiting days of the next
            if d in self.wanted:
                self.days[d] = Day(status, list_waiting, clocks_today)
            if not (list_pauses and family_hold):
                list_waiting += 1
            d += timedelta(days=1)

    @property
    def live(self) -> bool:
        return self.start is not None and not self.in_error

    def on(self, day: date) -> Day | None:
        """How it stood at the end of ``day`` (one of the dates wanted); None before its start."""
        assert day in self.wanted, f"{day} is not among the dates walked for"
        return self.days.get(day)

    def known(self, day: date) -> list[Change]:
        return [c for c in self.referral.changes if c.on <= day]

    def first(self, statuses: Collection[str]) -> Change | None:
        return next((c for c in self.referral.changes if c.status in statuses), None)

    def clocks_on(self, day: date) -> dict[str, ClockDay]:
        """The clocks that exist at the end of ``day``: the EHC 16-week clock only once `no_plan` is
        decided, the 20-week clock not after it."""
        found = self.on(day)
        if found is None:
            return {}
        no_plan = any(c.status == "completed" and c.outcome == "no_plan" for c in self.known(day))
        return {
            k: c
            for k, c in found.clocks.items()
            if not (k == "ehc_no_plan_16w" and not no_plan) and not (k == "ehc_plan_20w" and no_plan)
        }


# --- the figures -----------------------------------------------------------------------------------


def _idle_clock() -> dict[str, Any]:
    return {
        "stopped": 0,
        "met": 0,
        "pct_within_target": None,
        "stopped_ex": 0,
        "met_ex": 0,
        "pct_within_target_ex": None,
        "breached_waiting": 0,
        "imminent": 0,
        "exceptions": 0,
        "upcoming": [0] * UPCOMING_WEEKS,
    }


def walk_all(referrals: Sequence[Referral], services: Mapping[str, Service], days: Collection[date]) -> list[Walk]:
    """Every referral walked, kept on ``days``: to work out figures on several dates at one walk each."""
    wanted = frozenset(days)
    return [Walk(r, services.get(r.service, Service(())), wanted) for r in referrals]


def figures(
    everyone: Sequence[Referral] | Sequence[Walk],
    services: Mapping[str, Service],
    scope: Collection[str] | None,
    day: date,
    period_start: date,
) -> dict[str, Any]:
    """Every figure of §5 for the referrals at the services in ``scope`` (None: every service) on
    ``day``, over the period ``period_start``..``day``. ``everyone`` is every referral known (a
    handoff gap closes at any service), or their walks (``walk_all``) kept on ``day`` among others."""
    walks = [w if isinstance(w, Walk) else Walk(w, services.get(w.service, Service(())), {day}) for w in everyone]
    live = [w for w in walks if w.live]
    mine = [w for w in live if scope is None or w.referral.service in scope]

    def in_period(d: date | None) -> bool:
        return d is not None and period_start <= d <= day

    # Waiting list on the day.
    waits = [x.waiting for w in mine if (x := w.on(day)) is not None and x.status in WAITING_STATUSES]
    weeks = [x // 7 for x in waits]
    waiting = {
        "waiting": len(waits),
        "distribution": {name: sum(lo <= k < hi for k in weeks) for name, lo, hi in DISTRIBUTION},
        "median_days": nth_ranked(waits, 1, 2),
        "p90_days": nth_ranked(waits, 9, 10),
        "total_days": sum(waits),
        "long_waiters": {str(n): sum(k >= n for k in weeks) for n in LONG_WAITS},
    }

    # Clocks.
    clocks: dict[str, dict[str, Any]] = {}
    for w in mine:
        for kind, c in w.clocks_on(day).items():
            f = clocks.setdefault(kind, _idle_clock())
            f["exceptions"] += c.exception
            if c.stopped_on is not None:
                if in_period(c.stopped_on):
                    f["stopped"] += 1
                    f["met"] += bool(c.met)
                    if not c.exception:
                        f["stopped_ex"] += 1
                        f["met_ex"] += bool(c.met)
            elif c.ended_on is None:
                if c.breached_on is not None:  # breached, still waiting: paused or not
                    f["breached_waiting"] += 1
                elif c.coming_breach is not None:
                    ahead = (c.coming_breach - day).days
                    if 1 <= ahead <= IMMINENT_WITHIN:
                        f["imminent"] += 1
                    if 1 <= ahead <= 7 * UPCOMING_WEEKS:
                        f["upcoming"][(ahead - 1) // 7] += 1
    for f in clocks.values():
        f["pct_within_target"] = share(f["met"], f["stopped"])
        f["pct_within_target_ex"] = share(f["met_ex"], f["stopped_ex"])
    idle = _idle_clock()
    clocks = {k: clocks[k] for k in sorted(clocks) if clocks[k] != idle}

    # Closures in the period: first final move.
    closed = rejected = before_support = 0
    reasons: defaultdict[str, int] = defaultdict(int)
    for w in mine:
        final = w.first(FINAL_MOVES)
        if final is None or not in_period(final.on):
            continue
        closed += 1
        if final.status == "rejected":
            rejected += 1
            reasons[final.reason or "unknown"] += 1
        started = w.first(("in_progress",))
        if final.status in BEFORE_SUPPORT and (started is None or started.on > final.on):
            before_support += 1

    # Handoff gaps opened in scope, closed by an acceptance anywhere else for the same child.
    by_child: defaultdict[str, list[Walk]] = defaultdict(list)
    for w in live:
        by_child[w.referral.child].append(w)
    gaps_closed: list[int] = []
    gaps_open: list[int] = []
    for w in mine:
        final = w.first(FINAL_MOVES)
        if final is None or final.status not in BEFORE_SUPPORT or final.on > day:
            continue
        closings = []
        for other in by_child[w.referral.child]:
            if other.referral.service == w.referral.service or other.start is None or other.start < final.on:
                continue
            accepted = other.first(("accepted",))
            if accepted is not None and accepted.on <= day:
                closings.append(accepted.on)
        if closings:
            if in_period(min(closings)):
                gaps_closed.append((min(closings) - final.on).days)
        else:
            gaps_open.append((day - final.on).days)

    # Children on the waiting lists of two or more services in scope.
    lists: defaultdict[str, set[str]] = defaultdict(set)
    for w in mine:
        x = w.on(day)
        if x is not None and x.status in WAITING_STATUSES:
            lists[w.referral.child].add(w.referral.service)

    # Weekly flows: seven-day windows ending on the day.
    flows = []
    for back in range(FLOW_WEEKS - 1, -1, -1):
        end = day - timedelta(days=7 * back)
        begin = end - timedelta(days=6)

        def within(d: date | None, begin: date = begin, end: date = end) -> bool:
            return d is not None and begin <= d <= end

        arrived = sum(within(w.start) for w in mine)
        begun = sum(within(go.on if (go := w.first(("in_progress",))) else None) for w in mine)
        ended = sum(within(fin.on if (fin := w.first(FINAL_MOVES)) else None) for w in mine)
        flows.append((begin, end, arrived, begun, ended))

    return {
        "waiting": waiting,
        "clocks": clocks,
        "closed_in_period": closed,
        "rejected": rejected,
        "rejection_rate": share(rejected, closed),
        "rejections_by_reason": dict(sorted(reasons.items())),
        "closed_before_support": before_support,
        "handoff_gaps": {
            "closed": len(gaps_closed),
            "median_days": nth_ranked(gaps_closed, 1, 2),
            "p90_days": nth_ranked(gaps_closed, 9, 10),
            "open": len(gaps_open),
            "open_median_days": nth_ranked(gaps_open, 1, 2),
        },
        "children_on_several_lists": sum(len(s) >= 2 for s in lists.values()),
        "weekly_flows": flows,
    }
