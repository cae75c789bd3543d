"""Operational figures for any reporting date (brief §4-5), added up from date-ranged facts.

The caller chooses the scope (a service, an organisation, an area) by choosing whose facts
to feed into a ``Tally``; referrals entered in error have no facts at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from waitlists.domain.clocks import IMMINENT_DAYS, Clock, ServiceClocks, clock_on
from waitlists.domain.facts import StopOutcome
from waitlists.domain.stats import nearest_rank, percent
from waitlists.domain.timeline import Status, Timeline

BUCKETS = (("0-4", 0, 4), ("4-18", 4, 18), ("18-52", 18, 52), ("52+", 52, None))
LONG_WAIT_WEEKS = (52, 65, 78, 104)
FLOW_WEEKS = 12
FLOWS = ("arrived", "started", "closed")
UPCOMING_WEEKS = 4


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass
class WaitingFigures:
    waiting: int = 0
    distribution: dict[str, int] = field(default_factory=lambda: {name: 0 for name, _, _ in BUCKETS})
    median_days: int | None = None
    p90_days: int | None = None
    total_days: int = 0
    long_waiters: dict[str, int] = field(default_factory=lambda: {str(w): 0 for w in LONG_WAIT_WEEKS})


@dataclass
class ClockFigures:
    stopped: int = 0
    met: int = 0
    stopped_ex: int = 0
    met_ex: int = 0
    breached_waiting: int = 0
    imminent: int = 0
    exceptions: int = 0
    upcoming: list[int] = field(default_factory=lambda: [0] * UPCOMING_WEEKS)  # breaching in each coming week

    @property
    def pct_within_target(self) -> float | None:
        return percent(self.met, self.stopped)

    @property
    def pct_within_target_ex(self) -> float | None:
        return percent(self.met_ex, self.stopped_ex)


@dataclass
class GapFigures:
    closed: int = 0
    median_days: int | None = None
    p90_days: int | None = None
    open: int = 0
    open_median_days: int | None = None


@dataclass(frozen=True, slots=True)
class WeeklyFlow:
    week_start: date
    week_end: date
    arrived: int
    started: int
    closed: int


@dataclass
class Figures:
    as_of: date
    period: Period
    waiting: WaitingFigures
    clocks: dict[str, ClockFigures]
    closed_in_period: int
    rejected: int
    rejection_rate: float | None
    rejections_by_reason: dict[str, int]
    closed_before_support: int
    handoff_gaps: GapFigures
    children_on_several_lists: int
    weekly_flows: list[WeeklyFlow]


def clocks_on(t: Timeline, service: ServiceClocks, day: date) -> list[Clock]:
    found = []
    for kind in service.clocks:
        clock = clock_on(t, kind, day, service.target_days)
        if clock is not None:
            found.append(clock)
    return found


@dataclass
class Tally:
    """What facts valid on ``day`` add up to, for one service or, merged, for a scope.

    Storage adapters read facts already narrowed to the date (and the period where a figure
    is about the period) and feed them here, grouped with a count; the rules of what counts
    as what live here only."""

    day: date
    period: Period
    waiting_days: Counter[int] = field(default_factory=Counter)
    clocks: dict[str, ClockFigures] = field(default_factory=dict)
    closures: Counter[tuple[Status, str | None, bool]] = field(default_factory=Counter)
    gaps_closed: Counter[int] = field(default_factory=Counter)
    gaps_open: Counter[int] = field(default_factory=Counter)
    flows: dict[str, Counter[int]] = field(default_factory=lambda: {k: Counter() for k in FLOWS})

    def clock(self, kind: str) -> ClockFigures:
        return self.clocks.setdefault(kind, ClockFigures())

    def waiting(self, days: int, n: int = 1) -> None:
        """Referrals waiting on the day that have waited ``days``."""
        self.waiting_days[days] += n

    def clock_spell(self, kind: str, breach_on: date | None, exception: bool, n: int = 1) -> None:
        """A clock waiting on the day: running with its breach date (coming or past), paused before it
        (no date: it cannot breach while paused), or paused after it (its date kept: still breached)."""
        f = self.clock(kind)
        f.exceptions += n * exception
        if breach_on is None:
            return
        ahead = (breach_on - self.day).days
        if ahead <= 0:
            f.breached_waiting += n
        elif ahead <= IMMINENT_DAYS:
            f.imminent += n
        if 1 <= ahead <= 7 * UPCOMING_WEEKS:
            f.upcoming[(ahead - 1) // 7] += n

    def exceptions_stopped(self, kind: str, n: int) -> None:
        """Clocks of this kind with an exception that stopped on or before the day."""
        self.clock(kind).exceptions += n

    def stopped_in_period(self, kind: str, outcome: StopOutcome, exception: bool, n: int = 1) -> None:
        if outcome is StopOutcome.ENDED:
            return
        f = self.clock(kind)
        met = n if outcome is StopOutcome.MET else 0
        f.stopped += n
        f.met += met
        if not exception:
            f.stopped_ex += n
            f.met_ex += met

    def closed_in_period(self, status: Status, reason: str | None, before_support: bool, n: int = 1) -> None:
        self.closures[(status, reason, before_support)] += n

    def gap_closed(self, days: int, n: int = 1) -> None:
        """A handoff gap closed in the period, after ``days``."""
        self.gaps_closed[days] += n

    def gap_open(self, days: int, n: int = 1) -> None:
        """A handoff gap still open on the day, opened ``days`` before it."""
        self.gaps_open[days] += n

    def flow(self, kind: str, weeks_back: int, n: int = 1) -> None:
        """A referral arrived, started or closed in the week ``weeks_back`` weeks before the one ending on the day."""
        if 0 <= weeks_back < FLOW_WEEKS:
            self.flows[kind][weeks_back] += n

    def __iadd__(self, other: Tally) -> Tally:
        self.waiting_days += other.waiting_days
        for kind, theirs in other.clocks.items():
            mine = self.clock(kind)
            for name in ("stopped", "met", "stopped_ex", "met_ex", "breached_waiting", "imminent", "exceptions"):
                setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
            mine.upcoming = [a + b for a, b in zip(mine.upcoming, theirs.upcoming, strict=True)]
        self.closures += other.closures
        self.gaps_closed += other.gaps_closed
        self.gaps_open += other.gaps_open
        for kind in FLOWS:
            self.flows[kind] += other.flows[kind]
        return self


def waiting_figures(days: Counter[int]) -> WaitingFigures:
    figures = WaitingFigures()
    for wait, n in days.items():
        weeks = wait // 7
        for name, low, high in BUCKETS:
            if weeks >= low and (high is None or weeks < high):
                figures.distribution[name] += n
        for threshold in LONG_WAIT_WEEKS:
            if weeks >= threshold:
                figures.long_waiters[str(threshold)] += n
    figures.waiting = sum(days.values())
    figures.total_days = sum(wait * n for wait, n in days.items())
    figures.median_days = nearest_rank(days, 0.5)
    figures.p90_days = nearest_rank(days, 0.9)
    return figures


def weekly_flows(tally: Tally) -> list[WeeklyFlow]:
    """Referrals in, started (in_progress) and closed (first final move) in each of the ``FLOW_WEEKS``
    seven-day windows ending on the reporting date; windows end on that date, so none is partial."""
    flows = []
    for back in range(FLOW_WEEKS - 1, -1, -1):
        end = tally.day - timedelta(days=7 * back)
        arrived, started, closed = (tally.flows[kind][back] for kind in FLOWS)
        flows.append(WeeklyFlow(end - timedelta(days=6), end, arrived, started, closed))
    return flows


def figures(tally: Tally, children_on_several_lists: int) -> Figures:
    reasons: Counter[str] = Counter()
    before_support = 0
    for (status, reason, support), n in tally.closures.items():
        if status == Status.REJECTED:
            reasons[reason or "unknown"] += n
        before_support += n * support
    closed = sum(tally.closures.values())
    rejected = sum(reasons.values())
    return Figures(
        as_of=tally.day,
        period=tally.period,
        waiting=waiting_figures(tally.waiting_days),
        clocks=dict(sorted(tally.clocks.items())),
        closed_in_period=closed,
        rejected=rejected,
        rejection_rate=percent(rejected, closed),
        rejections_by_reason=dict(sorted(reasons.items())),
        closed_before_support=before_support,
        handoff_gaps=GapFigures(
            closed=sum(tally.gaps_closed.values()),
            median_days=nearest_rank(tally.gaps_closed, 0.5),
            p90_days=nearest_rank(tally.gaps_closed, 0.9),
            open=sum(tally.gaps_open.values()),
            open_median_days=nearest_rank(tally.gaps_open, 0.5),
        ),
        children_on_several_lists=children_on_several_lists,
        weekly_flows=weekly_flows(tally),
    )
