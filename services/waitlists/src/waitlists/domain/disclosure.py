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
  knows its own figures (it may subtract them from an area total). Relations are first peeled one unknown at a
  time; then each group of related cells is solved exactly (elimination), which finds what only several relations
  together give (a total less parts that another total sums), and withholds more until that is hidden too.
- **Derived figures** (percentages, medians, 90th percentiles, sums of weeks) are withheld with any of their bases.
- **The dashboard trend** (``trend_table``): each month's clock stops per scope, and their total over the months as
  if published beside them, so no withheld month comes back from the total and the other months.

An organisation sees its own services' and its own figures in full (``Controlled.for_viewer``).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict, defaultdict
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
        _stop_relations(c, p)
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


def _stop_relations(c: Cells, p: str) -> None:
    """What a clock's stop counts (under prefix ``p``) give away about each other, and the percentages on them."""
    c.complement(p + "stopped", p + "met", p + "not_met")
    c.complement(p + "stopped_ex", p + "met_ex", p + "not_met_ex")
    c.complement(p + "stopped", p + "stopped_ex", p + "stopped_exception")
    c.complement(p + "met", p + "met_ex", p + "met_exception")
    c.derived[p + "pct"] = (p + "met", p + "stopped")
    c.derived[p + "pct_ex"] = (p + "met_ex", p + "stopped_ex")


Stops = tuple[int, int, int, int]  # per clock: stopped, met, stopped excluding exceptions, met excluding them
STOP_MEASURES = ("stopped", "met", "stopped_ex", "met_ex")


def stops_cells(stops: Mapping[str, Stops], c: Cells | None = None, prefix: str = "") -> Cells:
    """Cells of a trend point: per clock, (stopped, met, stopped excluding exceptions, met excluding them)."""
    c = Cells() if c is None else c
    for kind, counts in sorted(stops.items()):
        p = f"{prefix}clock.{kind}."
        for name, value in zip(STOP_MEASURES, counts, strict=True):
            c.add(p + name, value)
        _stop_relations(c, p)
    return c


def trend_cells(months: Sequence[Mapping[str, Stops]]) -> Cells:
    """One node's trend: each month's stops (``month.<i>.clock.<kind>.stopped`` ...) and their sums over the months
    (``span.``), protected as if published too (the whole span asked for as one period): no month can be worked out
    from the total and the other months."""
    c = Cells()
    for i, stops in enumerate(months):
        stops_cells(stops, c, f"month.{i}.")
    for kind in sorted({kind for stops in months for kind in stops}):
        for m, measure in enumerate(STOP_MEASURES):
            name = f"span.clock.{kind}.{measure}"
            parts = [i for i, stops in enumerate(months) if kind in stops]
            c.add(name, sum(months[i][kind][m] for i in parts))
            c.relate(name, (f"month.{i}.clock.{kind}.{measure}" for i in parts))
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

    def fingerprint(self) -> tuple[object, ...]:
        """Everything ``protect`` reads (nodes, values, which are published, relations), as a hashable key."""
        return tuple(
            (node.id, node.level, node.organisation, node.parent, tuple(c.published.items()),
             tuple(c.latent.items()), tuple(c.relations))
            for node, c in ((self.nodes[n], c) for n, c in self.cells.items())
        )  # fmt: skip

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


def protect(table: Table, settled: Mapping[Key, bool] | None = None) -> frozenset[Key]:
    """The published cells to withhold: primary suppression, then secondary until no withheld value and no small
    unpublished difference can be recovered, by the public or by any organisation knowing its own figures.

    ``settled``: cells another output publishes too and has decided (True: withheld there, so withheld here and
    protected as if small; False: published there, so known to everyone, and never withheld here to protect
    another). A second output of the same counts protects itself this way against the first.

    The same answer for the same figures: a table whose values, relations and owners equal one protected recently is
    answered from a small in-process memo (keyed by the table's whole content, so nothing goes stale)."""
    decided = dict(settled or {})
    key = (table.fingerprint(), tuple(sorted(decided.items())))
    with _MEMO_LOCK:
        found = _MEMO.get(key)
        if found is not None:
            _MEMO.move_to_end(key)
            return found
    found = _protect(table, decided)
    with _MEMO_LOCK:
        _MEMO[key] = found
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return found


_MEMO: OrderedDict[tuple[tuple[object, ...], tuple[tuple[Key, bool], ...]], frozenset[Key]] = OrderedDict()
_MEMO_SIZE = 32  # a table of a large area holds some thousands of cells
_MEMO_LOCK = threading.Lock()


class _Viewer:
    """One viewer's standing knowledge (the public, or an organisation that knows its own figures), kept up to date
    as cells are withheld: which cells it knows before any peeling, which published ones it sees, how many unknowns
    each relation has, and what it learns from each area cell beyond its own organisation's figure."""

    def __init__(
        self, visible: bytearray, known: bytearray, unknown: list[int], secret: dict[int, int], public: bool
    ) -> None:
        self.visible = visible
        self.known = known
        self.unknown = unknown
        self.secret = secret
        self.public = public

    def withhold(self, cell: int, member: Sequence[Sequence[int]]) -> None:
        if not self.visible[cell]:
            return
        self.visible[cell] = 0
        self.known[cell] = 0
        unknown = self.unknown
        for j in member[cell]:
            unknown[j] += 1


def _protect(table: Table, settled: Mapping[Key, bool]) -> frozenset[Key]:
    values = table.values()
    keys = list(values)
    size = len(keys)
    index = {k: i for i, k in enumerate(keys)}
    value = [values[k] for k in keys]
    rank = [0] * size  # ties between equal counts go to the smaller key
    for position, k in enumerate(sorted(keys)):
        rank[index[k]] = position
    published = bytearray(size)
    for k in table.published():
        published[index[k]] = 1
    every = table.relations()
    relations = [tuple(index[k] for k in r) for r in every if len(r) > 1]
    zero = bytearray(size)  # a total with no parts listed is known to be 0
    for r in every:
        if len(r) == 1:
            zero[index[r[0]]] = 1
    member: list[list[int]] = [[] for _ in keys]
    for i, cells in enumerate(relations):
        for cell in cells:
            member[cell].append(i)
    hidden = bytearray(1 if published[i] and small(value[i]) else 0 for i in range(size))
    public = bytearray(size)  # published by another output: known to all, never withheld here
    for k, withheld in settled.items():
        if k in index:
            hidden[index[k]] = 1 if withheld else 0
            public[index[k]] = 0 if withheld else 1
            published[index[k]] = 1  # published by the other output: protected as if here too
    _known_from(public, zero, hidden, relations, member)
    components = _grouped(relations)  # relations only reach cells of their own group

    visible = bytearray(
        1 if published[i] and not hidden[i] and not zero[i] and not public[i] else 0 for i in range(size)
    )
    known = bytearray(a | b | c for a, b, c in zip(visible, zero, public, strict=True))
    unknown = [sum(not known[k] for k in r) for r in relations]
    viewers = [_Viewer(visible, known, unknown, {}, True)]
    # An organisation knows its own cells (published or not) as well, and learns from an area cell only the cell
    # less its own organisation's figure.
    owned_by: dict[str, list[int]] = defaultdict(list)
    area_cells = []
    for i, (node, _) in enumerate(keys):
        n = table.nodes[node]
        if n.organisation is not None:
            owned_by[n.organisation].append(i)
        if n.level is Level.AREA:
            area_cells.append(i)
    for organisation in sorted(owned_by):
        theirs = _Viewer(bytearray(visible), bytearray(known), unknown.copy(), {}, False)
        for i in owned_by[organisation]:
            theirs.visible[i] = 0
            if not theirs.known[i]:
                theirs.known[i] = 1
                for j in member[i]:
                    theirs.unknown[j] -= 1
        mine = node_id(Level.ORGANISATION, organisation)
        theirs.secret = {i: value[i] - values.get((mine, keys[i][1]), 0) for i in area_cells}
        viewers.append(theirs)

    def withhold(cell: int) -> None:
        hidden[cell] = 1
        for other in viewers:
            other.withhold(cell, member)

    def peel(dirty: set[int]) -> None:
        # Relations only reach cells of their own component, so after a sweep only the components where cells were
        # withheld are looked at again (by every viewer); what a viewer's look withholds applies at once. It ends
        # when a whole sweep withholds nothing: peeling relations one unknown at a time, no viewer recovers anything.
        while dirty:
            touched: set[int] = set()
            for state in viewers:
                for c in sorted(dirty):
                    while fixes := _leaks(state, components[c], value, rank, published, relations, member):
                        touched.add(c)
                        for cell in fixes:
                            withhold(cell)
            dirty = touched

    peel(set(range(len(components))))
    # Peeling misses what only several relations together give (a total less two parts, each hidden, whose sum
    # another total gives); exact elimination over each component finds it, and the smallest visible count whose
    # withholding hides it again is withheld, then peeling runs again over that component.
    hopeless: set[tuple[int, int]] = set()
    cells_of = [sorted({k for i in component for k in relations[i]}) for component in components]
    while found := _exact_leak(viewers, components, cells_of, relations, member, value, published, hopeless):
        viewer, c, leaked = found
        extra = _exact_fix(viewers[viewer], components[c], relations, member, value, rank, leaked)
        if extra is None:  # given away by what is known to everyone: nothing here can hide it
            hopeless.add((viewer, leaked))
            continue
        withhold(extra)
        peel({c})
    return frozenset(keys[i] for i in range(size) if hidden[i] and not zero[i])


_PRIME = (1 << 61) - 1  # elimination modulo a large prime: exact for these small integer relations


class _Span:
    """Rows (sparse, modulo ``_PRIME``) kept in echelon form: is a vector a combination of them?"""

    def __init__(self) -> None:
        self.pivots: dict[int, dict[int, int]] = {}

    def reduce(self, row: dict[int, int]) -> dict[int, int]:
        row = {k: v for k, v in row.items() if v}
        while row:
            lead = max(row)
            basis = self.pivots.get(lead)
            if basis is None:
                return row
            factor = row[lead]
            for k, v in basis.items():
                left = (row.get(k, 0) - factor * v) % _PRIME
                if left:
                    row[k] = left
                else:
                    row.pop(k, None)
        return row

    def knowing(self, cells: Iterable[int]) -> _Span:
        """A copy that also knows ``cells`` (their unit rows added)."""
        copy = _Span()
        copy.pivots = {lead: dict(row) for lead, row in self.pivots.items()}
        for k in cells:
            copy.add({k: 1})
        return copy

    def add(self, row: dict[int, int]) -> None:
        row = self.reduce(row)
        if row:
            lead = max(row)
            first = row[lead]
            inverse = first if first in (1, _PRIME - 1) else pow(first, _PRIME - 2, _PRIME)  # 1 and -1: their own
            self.pivots[lead] = {k: v * inverse % _PRIME for k, v in row.items()}


def _reduced(
    known: bytearray, component: Sequence[int], relations: Sequence[tuple[int, ...]], member: Sequence[Sequence[int]]
) -> tuple[list[int], set[int]]:
    """The component's relations left with two or more unknowns once peeling has solved what it can (a relation
    with one unknown gives it), and the cells peeling solved: the exact search needs only the rest."""
    unknown = {i: sum(not known[k] for k in relations[i]) for i in component}
    solved: set[int] = set()
    queue = [i for i, n in unknown.items() if n == 1]
    while queue:
        i = queue.pop()
        if unknown[i] != 1:
            continue
        cell = next(k for k in relations[i] if not known[k] and k not in solved)
        solved.add(cell)
        for j in member[cell]:
            if j in unknown:
                unknown[j] -= 1
                if unknown[j] == 1:
                    queue.append(j)
    return [i for i in component if unknown[i] >= 2], solved


def _span(known: bytearray, solved: set[int], rows: Sequence[int], relations: Sequence[tuple[int, ...]]) -> _Span:
    """The relations ``rows`` over the cells neither known nor solved (+1 the total, -1 each part)."""
    span = _Span()
    for i in rows:
        row: dict[int, int] = {}
        for position, k in enumerate(relations[i]):
            if not known[k] and k not in solved:
                row[k] = (row.get(k, 0) + (1 if position == 0 else _PRIME - 1)) % _PRIME
        span.add(row)
    return span


def _exact_leak(
    viewers: Sequence[_Viewer],
    components: Sequence[Sequence[int]],
    cells_of: Sequence[Sequence[int]],
    relations: Sequence[tuple[int, ...]],
    member: Sequence[Sequence[int]],
    value: Sequence[int],
    published: bytearray,
    hopeless: set[tuple[int, int]],
) -> tuple[int, int, int] | None:
    """The first (viewer, component, cell) where the viewer can work out a cell it must not know. The public's
    system is built once; an organisation knows more (its own cells), which adds their unit rows to it."""
    public = viewers[0]

    def watched(v: int, state: _Viewer, cells: Iterable[int]) -> list[int]:
        return [k for k in cells if not state.known[k] and (v, k) not in hopeless
                and (small(state.secret.get(k, value[k])) or (state.public and published[k]))]  # fmt: skip

    for c, component in enumerate(components):
        if not any(watched(v, state, cells_of[c]) for v, state in enumerate(viewers)):
            continue
        rows, solved = _reduced(public.known, component, relations, member)
        for group in _systems(public.known, solved, rows, relations):
            inside = sorted({k for i in group for k in relations[i] if not public.known[k] and k not in solved})
            base: _Span | None = None
            for v, state in enumerate(viewers):
                guarded = watched(v, state, inside)
                if not guarded:
                    continue
                if base is None:
                    base = _span(public.known, solved, group, relations)
                span = base if state is public else base.knowing(k for k in inside if state.known[k])
                for k in guarded:
                    if not span.reduce({k: 1}):
                        return v, c, k
    return None


def _systems(
    known: bytearray, solved: set[int], rows: Sequence[int], relations: Sequence[tuple[int, ...]]
) -> list[list[int]]:
    """``rows`` split into independent systems: relations that share an unknown cell, directly or through others."""
    unknown = [[k for k in relations[i] if not known[k] and k not in solved] for i in rows]
    return [[rows[j] for j in group] for group in _grouped(unknown)]


def _exact_fix(
    state: _Viewer,
    component: Sequence[int],
    relations: Sequence[tuple[int, ...]],
    member: Sequence[Sequence[int]],
    value: Sequence[int],
    rank: Sequence[int],
    leaked: int,
) -> int | None:
    """The smallest visible count of the component whose withholding leaves ``leaked`` undetermined for the viewer;
    when no one count does (the same figure shown at two scopes, say), the smallest of those related to it, and the
    search goes on from there; None when nothing visible is left to withhold."""
    candidates = sorted({k for i in component for k in relations[i] if state.visible[k]},
                        key=lambda k: (value[k] == 0, value[k], rank[k]))  # fmt: skip
    for k in candidates:
        state.known[k] = 0
        rows, solved = _reduced(state.known, component, relations, member)
        still = leaked in solved or not _span(state.known, solved, rows, relations).reduce({leaked: 1})
        state.known[k] = 1
        if not still:
            return k
    near = {k for i in member[leaked] for k in relations[i]}
    return next((k for k in candidates if k in near), candidates[0] if candidates else None)


def _known_from(
    public: bytearray,
    zero: bytearray,
    hidden: bytearray,
    relations: Sequence[tuple[int, ...]],
    member: Sequence[Sequence[int]],
) -> None:
    """Marks public every cell that the public cells (and those known to be 0) give away through the relations
    (withholding it would protect nothing), but a small one, which stays withheld."""
    unknown = [sum(not (public[k] or zero[k]) for k in r) for r in relations]
    queue = [i for i, n in enumerate(unknown) if n == 1]
    while queue:
        i = queue.pop()
        if unknown[i] != 1:
            continue
        cell = next(k for k in relations[i] if not (public[k] or zero[k]))
        if hidden[cell]:
            continue  # small, or withheld by the other output: it stays withheld here
        public[cell] = 1
        for j in member[cell]:
            unknown[j] -= 1
            if unknown[j] == 1:
                queue.append(j)


def _grouped(cells_of: Sequence[Sequence[int]]) -> list[list[int]]:
    """The positions of ``cells_of`` grouped by the cells they share, directly or through others, each in order."""
    parent: dict[int, int] = {}

    def root(k: int) -> int:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for cells in cells_of:
        first = root(cells[0])
        for k in cells[1:]:
            other = root(k)
            if other != first:
                parent[other] = first
    groups: dict[int, list[int]] = {}
    for i, cells in enumerate(cells_of):
        groups.setdefault(root(cells[0]), []).append(i)
    return list(groups.values())


def _leaks(
    state: _Viewer,
    component: Sequence[int],
    value: Sequence[int],
    rank: Sequence[int],
    published: bytearray,
    relations: Sequence[tuple[int, ...]],
    member: Sequence[Sequence[int]],
) -> set[int]:
    """Peel one component's relations as the viewer could (a relation with one unknown gives it away) and, for each
    unknown given away that must not be, the visible cell to withhold as well."""
    counts = state.unknown
    queue = [i for i in component if counts[i] == 1]
    fixes: set[int] = set()
    if not queue:  # most components, most sweeps: nothing for this viewer to peel
        return fixes
    known = state.known
    unknown = {i: counts[i] for i in component}
    visible, secret, public = state.visible, state.secret, state.public
    solved_by: dict[int, int] = {}
    while queue:
        i = queue.pop()
        if unknown[i] != 1:
            continue
        key = next(k for k in relations[i] if not known[k] and k not in solved_by)
        solved_by[key] = i
        if small(secret.get(key, value[key])) or (public and published[key]):
            pick = _pick(i, key, relations, visible, value, rank, solved_by, set())
            if pick is not None:
                fixes.add(pick)
        for j in member[key]:
            unknown[j] -= 1
            if unknown[j] == 1:
                queue.append(j)
    return fixes


def _pick(
    i: int,
    leaked: int,
    relations: Sequence[tuple[int, ...]],
    visible: bytearray,
    value: Sequence[int],
    rank: Sequence[int],
    solved_by: Mapping[int, int],
    seen: set[int],
) -> int | None:
    """The visible cell to withhold so that relation ``i`` no longer gives ``leaked`` away: its smallest non-zero
    visible count, or failing that one further back along the relations that solved its other cells."""
    seen.add(i)
    candidates = [k for k in relations[i] if visible[k] and k != leaked]
    if candidates:
        return min(candidates, key=lambda k: (value[k] == 0, value[k], rank[k]))
    for k in relations[i]:
        j = solved_by.get(k)
        if k != leaked and j is not None and j not in seen:
            found = _pick(j, k, relations, visible, value, rank, solved_by, seen)
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
    def of(cls, table: Table, settled: Mapping[Key, bool] | None = None) -> Controlled:
        return cls(table, protect(table, settled))

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


def trend_table(
    area_id: str, per_service: Mapping[str, Sequence[Mapping[str, Stops]]], organisation_of: Mapping[str, str]
) -> Table:
    """The dashboard trend of an area: each service's clock stops month by month (the same months for every service,
    each listing every clock the service runs), added up by organisation and area."""
    table = Table()
    by_org: dict[str, list[dict[str, list[int]]]] = {}
    area: list[dict[str, list[int]]] = []
    for service_id, months in sorted(per_service.items()):
        org = organisation_of.get(service_id, "")
        table.add(Node(Level.SERVICE, service_id, org, node_id(Level.ORGANISATION, org)), trend_cells(months))
        for sums in (by_org.setdefault(org, []), area):
            while len(sums) < len(months):
                sums.append({})
            for i, stops in enumerate(months):
                for kind, counts in stops.items():
                    mine = sums[i].setdefault(kind, [0, 0, 0, 0])
                    for m, n in enumerate(counts):
                        mine[m] += n
    for org, sums in sorted(by_org.items()):
        table.add(Node(Level.ORGANISATION, org, org, node_id(Level.AREA, area_id)), trend_cells(_stops(sums)))
    table.add(Node(Level.AREA, area_id, None), trend_cells(_stops(area)))
    return table


def _stops(sums: Sequence[Mapping[str, Sequence[int]]]) -> list[dict[str, Stops]]:
    return [{kind: (v[0], v[1], v[2], v[3]) for kind, v in month.items()} for month in sums]


def _copy(blank: Tally) -> Tally:
    return Tally(blank.day, blank.period)
