"""Disclosure control of the dashboard trend (brief §6): month by month, over scopes and with the months' total as
if published beside them (/v1/metrics gives a period's figures), no withheld month can be worked out again; checked
by linear algebra written here from what the trend shows."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitlists.domain.disclosure import Controlled, Level, Stops, Table, trend_table

from .test_disclosure import Span

MEASURES = ("stopped", "met", "stopped_ex", "met_ex")


@st.composite
def stops(draw: st.DrawFn) -> Stops:
    met_ex, late_ex = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    met_exc, late_exc = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    return (met_ex + late_ex + met_exc + late_exc, met_ex + met_exc, met_ex + late_ex, met_ex)


@st.composite
def areas(draw: st.DrawFn) -> Table:
    months = draw(st.integers(1, 4))
    per_service, organisation_of = {}, {}
    for o in range(draw(st.integers(1, 3))):
        for s in range(draw(st.integers(1, 2))):
            kinds = draw(st.lists(st.sampled_from(["cypmh_4w", "service_target"]), min_size=1, max_size=2, unique=True))
            per_service[f"s{o}{s}"] = [{k: draw(stops()) for k in kinds} for _ in range(months)]
            organisation_of[f"s{o}{s}"] = f"o{o}"
    return trend_table("a", per_service, organisation_of)


def equations(table: Table) -> list[list[tuple[str, str]]]:
    """What a reader can set up: per month and clock stopped = met + late, with and without exceptions; the months
    add up to the period's total; services to their organisation, organisations to the area."""
    found: list[list[tuple[str, str]]] = []
    for node, cells in table.cells.items():
        names = set(cells.published) | set(cells.latent)
        for name in names:
            if name.startswith("month.") and name.endswith(".stopped"):
                p = name.removesuffix("stopped")
                found += [[(node, p + "stopped"), (node, p + "met"), (node, p + "not_met")],
                          [(node, p + "stopped_ex"), (node, p + "met_ex"), (node, p + "not_met_ex")],
                          [(node, p + "stopped"), (node, p + "stopped_ex"), (node, p + "stopped_exception")],
                          [(node, p + "met"), (node, p + "met_ex"), (node, p + "met_exception")]]  # fmt: skip
            if name.startswith("span."):
                rest = name.removeprefix("span.")
                found.append([(node, name), *((node, n) for n in sorted(names) if n.endswith("." + rest)
                                              and n.startswith("month."))])  # fmt: skip
    for node in table.nodes.values():
        if node.parent:
            kids = [n.id for n in table.nodes.values() if n.parent == node.parent]
            if node.id == kids[0]:
                for name in set(table.cells[node.parent].published) | set(table.cells[node.parent].latent):
                    found.append([(node.parent, name), *((k, name) for k in kids)])
    return found


def recoverable(table: Table, controlled: Controlled, viewer: str | None) -> list[tuple[str, str]]:
    values = table.values()
    seen = controlled.for_viewer(viewer)
    known = {(n, name) for n, c in table.cells.items() for name in c.published if not seen.withheld(n, name)}
    index = {key: i for i, key in enumerate(k for k in values if k not in known)}
    span = Span.of(equations(table), index)
    found = []
    for key in index:
        node = table.nodes[key[0]]
        if viewer is not None and node.organisation == viewer:
            continue
        value = values[key]
        if viewer is not None and node.level is Level.AREA:
            value -= values.get((f"organisation:{viewer}", key[1]), 0)
        published = key[1] in table.cells[key[0]].published
        if (0 < value < 5 or (viewer is None and published)) and not span.reduce({index[key]: Fraction(1)}):
            found.append(key)
    return found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(areas())
def test_no_withheld_month_can_be_recovered(table: Table) -> None:
    controlled = Controlled.of(table)
    for node, cells in table.cells.items():
        for name, value in cells.published.items():
            if 0 < value < 5:
                assert controlled.withheld(node, name), (node, name, value)
        for name, bases in cells.derived.items():  # a percentage goes with its base
            assert controlled.withheld(node, name) == any(controlled.withheld(node, b) for b in bases)
    organisations = sorted({n.organisation for n in table.nodes.values() if n.organisation})
    for viewer in (None, *organisations):
        assert recoverable(table, controlled, viewer) == [], (viewer, sorted(controlled.hidden))
        for node in table.nodes.values():  # its own services and itself in full
            if node.organisation == viewer is not None:
                assert not any(
                    controlled.for_viewer(viewer).withheld(node.id, n) for n in table.cells[node.id].published
                )


def test_a_small_month_is_withheld_with_another_so_the_total_gives_neither_back() -> None:
    """Three months of one service: 3 stops in the second (withheld, with its percentage); with the months' total
    published, the smallest other month goes too."""
    months = [{"cypmh_4w": (20, 15, 20, 15)}, {"cypmh_4w": (3, 2, 3, 2)}, {"cypmh_4w": (7, 7, 7, 7)}]
    big = [{"cypmh_4w": (30, 20, 30, 20)}] * 3
    table = trend_table("a", {"s": months, "t": big}, {"s": "o", "t": "p"})
    c = Controlled.of(table)
    for node in ("service:s", "organisation:o"):
        assert c.withheld(node, "month.1.clock.cypmh_4w.stopped") and c.withheld(node, "month.1.clock.cypmh_4w.pct")
        assert c.withheld(node, "month.2.clock.cypmh_4w.stopped")  # 7: else 30 - 20 - 7 = 3
    assert not c.for_viewer("o").withheld("service:s", "month.1.clock.cypmh_4w.pct")
    assert all(recoverable(table, c, v) == [] for v in (None, "o", "p"))
