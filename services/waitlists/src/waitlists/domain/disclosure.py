"""Statistical disclosure control for published figures (brief §6). Pure Python.

Every figure that leaves an organisation's walls (the API, the CSV exports, the dashboard, /metrics) goes through
one ``Controlled`` set computed here, so a value is withheld in all of them or in none.

The rules:

- **Primary suppression.** A published count of 1 to 4 is withheld.
- **Secondary suppression.** No withheld value can be worked out again from the visible ones through the relations
  the outputs publish: a total and its parts (waiting = its four bands = its RTT weeks; rejections = their reasons),
  complements (stopped - met, closed - rejected, all - excluding exceptions, long-waiter bands), equal figures
  (52+ weeks = waiting 52 weeks or more; breaches within 7 days = breaching in week 1) and sums across scopes
  (services add up to their organisation, organisations to their area). Unpublished differences of 1 to 4 (e.g.
  the children waiting 65 to 78 weeks) are protected the same way. When a relation would give one back, the
  smallest visible count in it is withheld too, until nothing can be recovered, including by an organisation that
  knows its own figures (it may subtract them from an area total).
- **Derived figures** (percentages, medians, 90th percentiles, sums of weeks) are withheld with any of their bases.

An organisation sees its own services' and its own figures in full (``Controlled.for_viewer``).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from waitlists.domain.metrics import BUCKETS, LONG_WAIT_WEEKS, UPCOMING_WEEKS, Tally, figures
from waitlists.domain.stats import SMALL_NUMBER

RTT_WEEKS = 52
WITHHELD_CSV = "c"
Key = tuple[str, str]  # (node, measure)
T = TypeVar("T")


class Level(StrEnum):
    SERVICE = "service"
    ORGANISATION = "organisation"
    AREA = "area"


def node_id(level: Level | str, ident: str) -> str:
    return f"{Level(level).value}:{ident}"


def small(n: int) -> bool:
    return 0 < n < SMALL_NUMBER


@dataclass(frozen=True, slots=True)
class Node:
    level: Level
    ident: str
    organisation: str | None  # whose figures they are: a service's organisation, the organisation; None for an area
    parent: str | None = None  # node id

    @property
    def id(self) -> str:
        return node_id(self.level, self.ident)


@dataclass
class Cells:
    """One node's counts: published (withheld when controlled) and latent (never published, protected when small),
    the relations between them, and which published figures derive from which counts."""

    published: dict[str, int] = field(default_factory=dict)
    latent: dict[str, int] = field(default_factory=dict)
    relations: list[tuple[str, ...]] = field(default_factory=list)  # total first, then its parts
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # figures published twice under two names

    def add(self, name: str, value: int, *, publish: bool = True) -> None:
        (self.published if publish else self.latent)[name] = value

    def relate(self, total: str, parts: Iterable[str]) -> None:
        self.relations.append((total, *parts))

    def complement(self, whole: str, part: str, rest: str) -> None:
        """``whole`` = ``part`` + ``rest``, with ``rest`` latent."""
        self.add(rest, self.value(whole) - self.value(part), publish=False)
        self.relate(whole, (part, rest))

    def value(self, name: str) -> int:
        return self.published[name] if name in self.published else self.latent[name]


def tally_cells(tally: Tally, *, rtt_published: bool) -> Cells:
    """The cells of one node's figures (from its tally), as the API, exports, dashboard and /metrics publish them.
    ``rtt_published``: whether the RTT export publishes this node's counts by completed week (services only)."""
    c = Cells()
    f = figures(tally, 0)
    w = f.waiting
    c.add("waiting", w.waiting)
    for name, _, _ in BUCKETS:
        c.add(f"dist.{name}", w.distribution[name])
    c.relate("waiting", (f"dist.{name}" for name, _, _ in BUCKETS))
    for weeks in LONG_WAIT_WEEKS[1:]:
        c.add(f"long.{weeks}", w.long_waiters[str(weeks)])
    c.aliases["long.52"] = "dist.52+"  # the same referrals
    for low, high in itertools.pairwise(LONG_WAIT_WEEKS):
        whole = "dist.52+" if low == LONG_WAIT_WEEKS[0] else f"long.{low}"
        c.complement(whole, f"long.{high}", f"long.{low}-{high}")
    by_week = [0] * RTT_WEEKS
    for waited, n in tally.waiting_days.items():
        if waited // 7 < RTT_WEEKS:
            by_week[waited // 7] += n
    for week, n in enumerate(by_week):
        c.add(f"rtt.{week}", n, publish=rtt_published)
    for name, low, top in BUCKETS:
        if top is not None:
            c.relate(f"dist.{name}", (f"rtt.{week}" for week in range(low, top)))
    c.derived |= {"waiting.median": ("waiting",), "waiting.p90": ("waiting",), "waiting.total_days": ("waiting",)}
    c.derived["rtt.within18"] = ("dist.0-4", "dist.4-18")  # their sum, shown when both are
    c.derived["rtt.pct_within18"] = ("dist.0-4", "dist.4-18", "waiting")

    for kind, k in sorted(tally.clocks.items()):
        p = f"clock.{kind}."
        for name, value in (("stopped", k.stopped), ("met", k.met), ("stopped_ex", k.stopped_ex),
                            ("met_ex", k.met_ex), ("breached", k.breached_waiting), ("imminent", k.imminent),
                            ("exceptions", k.exceptions)):  # fmt: skip
            c.add(p + name, value)
        for week, n in enumerate(k.upcoming[1:], start=2):
            c.add(f"{p}upcoming.{week}", n, publish=False)  # published only summed over clocks
        c.aliases[p + "upcoming.1"] = p + "imminent"  # due within 7 days = due in the first week
        c.complement(p + "stopped", p + "met", p + "not_met")
        c.complement(p + "stopped_ex", p + "met_ex", p + "not_met_ex")
        c.complement(p + "stopped", p + "stopped_ex", p + "stopped_exception")
        c.complement(p + "met", p + "met_ex", p + "met_exception")
        c.derived[p + "pct"] = (p + "met", p + "stopped")
        c.derived[p + "pct_ex"] = (p + "met_ex", p + "stopped_ex")
    kinds = sorted(tally.clocks)
    sums = {"breached": "breached", "imminent": "imminent", "stopped": "stopped", "met": "met"}
    sums |= {f"upcoming.{week}": f"upcoming.{week}" for week in range(2, UPCOMING_WEEKS + 1)}
    for total, part in sums.items():
        c.add(f"clocks.{total}", sum(c.value(f"clock.{kind}.{part}") for kind in kinds))
        c.relate(f"clocks.{total}", (f"clock.{kind}.{part}" for kind in kinds))
    c.aliases["clocks.upcoming.1"] = "clocks.imminent"
    c.derived["clocks.pct"] = ("clocks.met", "clocks.stopped")

    c.add("closed", f.closed_in_period)
    c.add("rejected", f.rejected)
    for reason, n in f.rejections_by_reason.items():
        c.add(f"reason.{reason}", n)
    c.relate("rejected", (f"reason.{reason}" for reason in f.rejections_by_reason))
    c.complement("closed", "rejected", "not_rejected")
    c.add("before_support", f.closed_before_support)
    c.complement("closed", "before_support", "after_support_started")
    c.derived["rejection_rate"] = ("rejected", "closed")

    c.add("gaps.closed", f.handoff_gaps.closed)
    c.add("gaps.open", f.handoff_gaps.open)
    c.derived |= {"gaps.median": ("gaps.closed",), "gaps.p90": ("gaps.closed",), "gaps.open_median": ("gaps.open",)}
    for i, flow in enumerate(f.weekly_flows):
        c.add(f"flow.{i}.arrived", flow.arrived)
        c.add(f"flow.{i}.started", flow.started)
        c.add(f"flow.{i}.closed", flow.closed)
    return c


def stops_cells(stops: Mapping[str, tuple[int, int, int, int]]) -> Cells:
    """Cells of a trend point: per clock, (stopped, met, stopped excluding exceptions, met excluding them)."""
    c = Cells()
    for kind, (stopped, met, stopped_ex, met_ex) in sorted(stops.items()):
        p = f"clock.{kind}."
        for name, value in (("stopped", stopped), ("met", met), ("stopped_ex", stopped_ex), ("met_ex", met_ex)):
            c.add(p + name, value)
        c.complement(p + "stopped", p + "met", p + "not_met")
        c.complement(p + "stopped_ex", p + "met_ex", p + "not_met_ex")
        c.complement(p + "stopped", p + "stopped_ex", p + "stopped_exception")
        c.complement(p + "met", p + "met_ex", p + "met_exception")
        c.derived[p + "pct"] = (p + "met", p + "stopped")
        c.derived[p + "pct_ex"] = (p + "met_ex", p + "stopped_ex")
    return c


@dataclass
class Table:
    """The figures of a hierarchy (an area, its organisations, their services) with every relation between them."""

    nodes: dict[str, Node] = field(default_factory=dict)
    cells: dict[str, Cells] = field(default_factory=dict)

    def add(self, node: Node, cells: Cells) -> None:
        self.nodes[node.id] = node
        self.cells[node.id] = cells

    def values(self) -> dict[Key, int]:
        found: dict[Key, int] = {}
        for node, c in self.cells.items():
            found |= {(node, name): v for name, v in (*c.published.items(), *c.latent.items())}
        return found

    def published(self) -> set[Key]:
        return {(node, name) for node, c in self.cells.items() for name in c.published}

    def relations(self) -> list[tuple[Key, ...]]:
        found = [tuple((node, name) for name in r) for node, c in self.cells.items() for r in c.relations]
        children: dict[str, list[str]] = defaultdict(list)
        for node in self.nodes.values():
            if node.parent is not None and node.parent in self.nodes:
                children[node.parent].append(node.id)
        for parent, kids in children.items():
            mine = self.cells[parent]
            for name in (*mine.published, *mine.latent):
                parts = [
                    (kid, name) for kid in kids if name in self.cells[kid].published or name in self.cells[kid].latent
                ]
                found.append(((parent, name), *parts))
        return found


def protect(table: Table) -> frozenset[Key]:
    """The published cells to withhold: primary suppression, then secondary until no withheld value and no small
    unpublished difference can be recovered, by the public or by any organisation knowing its own figures."""
    values = table.values()
    published = table.published()
    every = table.relations()
    relations = [r for r in every if len(r) > 1]
    zero = {r[0] for r in every if len(r) == 1}  # a total with no parts listed is known to be 0
    member: dict[Key, list[int]] = defaultdict(list)
    for i, r in enumerate(relations):
        for key in r:
            member[key].append(i)
    hidden = {k for k in published if small(values[k])}
    organisations = sorted({n.organisation for n in table.nodes.values() if n.organisation is not None})
    while True:
        fixes: set[Key] = set()
        for viewer in (None, *organisations):
            fixes |= _leaks(table, values, published, hidden | zero, relations, member, viewer, zero)
        if not fixes:
            return frozenset(hidden - zero)
        hidden |= fixes


def _owned(table: Table, key: Key, viewer: str | None) -> bool:
    return viewer is not None and table.nodes[key[0]].organisation == viewer


def _secret(table: Table, values: Mapping[Key, int], key: Key, viewer: str | None) -> int:
    """What a cell tells ``viewer`` beyond its own figures."""
    node = table.nodes[key[0]]
    if viewer is None or node.level is not Level.AREA:
        return values[key]
    return values[key] - values.get((node_id(Level.ORGANISATION, viewer), key[1]), 0)


def _leaks(
    table: Table,
    values: Mapping[Key, int],
    published: set[Key],
    hidden: set[Key],
    relations: Sequence[tuple[Key, ...]],
    member: Mapping[Key, list[int]],
    viewer: str | None,
    zero: set[Key],
) -> set[Key]:
    """Peel the relations as ``viewer`` could (a relation with one unknown gives it away) and, for each unknown
    given away that must not be, the visible cell to withhold as well."""
    visible = {k for k in published if k not in hidden and not _owned(table, k, viewer)}
    known = visible | zero | {k for k in values if _owned(table, k, viewer)}
    unknown = [sum(k not in known for k in r) for r in relations]
    solved_by: dict[Key, int] = {}
    queue = [i for i, n in enumerate(unknown) if n == 1]
    fixes: set[Key] = set()
    while queue:
        i = queue.pop()
        if unknown[i] != 1:
            continue
        (key,) = (k for k in relations[i] if k not in known)
        known.add(key)
        solved_by[key] = i
        secret = _secret(table, values, key, viewer)
        if small(secret) or (viewer is None and key in published):
            pick = _pick(i, key, relations, visible, values, solved_by, set())
            if pick is not None:
                fixes.add(pick)
        for j in member[key]:
            unknown[j] -= 1
            if unknown[j] == 1:
                queue.append(j)
    return fixes


def _pick(
    i: int,
    leaked: Key,
    relations: Sequence[tuple[Key, ...]],
    visible: set[Key],
    values: Mapping[Key, int],
    solved_by: Mapping[Key, int],
    seen: set[int],
) -> Key | None:
    """The visible cell to withhold so that relation ``i`` no longer gives ``leaked`` away: its smallest non-zero
    visible count, or failing that one further back along the relations that solved its other cells."""
    seen.add(i)
    candidates = [k for k in relations[i] if k in visible and k != leaked]
    if candidates:
        return min(candidates, key=lambda k: (values[k] == 0, values[k], k))
    for k in relations[i]:
        j = solved_by.get(k)
        if k != leaked and j is not None and j not in seen:
            found = _pick(j, k, relations, visible, values, solved_by, seen)
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class Controlled:
    """A table of figures with its withheld cells, read node by node. ``viewer`` (an organisation) sees its own
    services and itself in full."""

    table: Table
    hidden: frozenset[Key]
    viewer: str | None = None

    @classmethod
    def of(cls, table: Table) -> Controlled:
        return cls(table, protect(table))

    def for_viewer(self, organisation_id: str | None) -> Controlled:
        return Controlled(self.table, self.hidden, organisation_id)

    def full(self, node: str) -> bool:
        """Whether the viewer sees this node's figures unsuppressed (its own services, itself)."""
        return self.viewer is not None and self.table.nodes[node].organisation == self.viewer

    def withheld(self, node: str, name: str) -> bool:
        """Whether a count, or a figure derived from counts, of this node is withheld from the viewer."""
        if self.full(node):
            return False
        cells = self.table.cells[node]
        name = cells.aliases.get(name, name)
        bases = cells.derived.get(name, (name,))
        return any((node, base) in self.hidden for base in bases)

    def count(self, node: str, name: str, value: int) -> int | None:
        return None if self.withheld(node, name) else value


class Withheld:
    """Collects the JSON paths of the values an answer withholds (each then ``null``)."""

    def __init__(self, controlled: Controlled, node: str) -> None:
        self.controlled = controlled
        self.node = node
        self.paths: list[str] = []

    def __call__(self, path: str, name: str, value: T) -> T | None:
        if self.controlled.withheld(self.node, name):
            self.paths.append(path)
            return None
        return value


def area_table(
    area_id: str, per_service: Mapping[str, Tally], organisation_of: Mapping[str, str], blank: Tally
) -> Table:
    """The table of an area: its services' tallies, each organisation's and the area's sums. ``blank`` is an
    empty tally for the same day and period."""
    table = Table()
    by_org: dict[str, Tally] = {}
    area = _copy(blank)
    for service_id, tally in sorted(per_service.items()):
        org = organisation_of.get(service_id, "")
        table.add(Node(Level.SERVICE, service_id, org, node_id(Level.ORGANISATION, org)),
                  tally_cells(tally, rtt_published=True))  # fmt: skip
        by_org.setdefault(org, _copy(blank))
        by_org[org] += tally
        area += tally
    for org, tally in sorted(by_org.items()):
        table.add(
            Node(Level.ORGANISATION, org, org, node_id(Level.AREA, area_id)), tally_cells(tally, rtt_published=False)
        )
    table.add(Node(Level.AREA, area_id, None), tally_cells(area, rtt_published=False))
    return table


def stops_table(
    area_id: str, per_service: Mapping[str, Mapping[str, tuple[int, int, int, int]]], organisation_of: Mapping[str, str]
) -> Table:
    """The same for clock stops in one window (the dashboard's trend), added up by organisation and area."""
    table = Table()
    by_org: dict[str, dict[str, list[int]]] = {}
    area: dict[str, list[int]] = {}
    for service_id, stops in sorted(per_service.items()):
        org = organisation_of.get(service_id, "")
        table.add(Node(Level.SERVICE, service_id, org, node_id(Level.ORGANISATION, org)), stops_cells(stops))
        for kind, counts in stops.items():
            for total in (by_org.setdefault(org, {}), area):
                mine = total.setdefault(kind, [0, 0, 0, 0])
                for i, n in enumerate(counts):
                    mine[i] += n
    for org, sums in sorted(by_org.items()):
        table.add(Node(Level.ORGANISATION, org, org, node_id(Level.AREA, area_id)),
                  stops_cells({k: (v[0], v[1], v[2], v[3]) for k, v in sums.items()}))  # fmt: skip
    table.add(Node(Level.AREA, area_id, None), stops_cells({k: (v[0], v[1], v[2], v[3]) for k, v in area.items()}))
    return table


def _copy(blank: Tally) -> Tally:
    return Tally(blank.day, blank.period)
