"""Time to support by need code under disclosure control (issue #18), checked against an exact oracle: whatever a
reader can set up from the impact outputs (referrals started by referrer kind, by need code, and their sums over
services, organisations and the area) is solved by linear algebra over the rationals (``test_disclosure.Span``),
not by the production code's peeling, and no withheld count, nor any unpublished difference of 1 to 4, may follow.

A referral with two need codes counts under each, so the codes do not add up to the referrals started: the reader
knows only that their sum is started plus the (unpublished) number with two codes, which is 0 when no referral has
two (and a reader may well guess that)."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitlists.domain.disclosure import Controlled
from waitlists.domain.impact import ImpactRead, Start, impact, impact_cells, impact_table

from .test_disclosure import Span

AS_OF = date(2026, 12, 31)
NEED_SETS = [("SEMH",), ("ASD",), ("SLCN",), ("unknown",), ("SEMH", "ASD"), ("SLCN", "SEMH")]
Key = tuple[str, str]


@st.composite
def areas(draw: st.DrawFn) -> list[tuple[str, str, list[Start]]]:
    """(organisation, service, starts) of an area of one or two organisations with one to three services each."""
    found = []
    sets = NEED_SETS if draw(st.booleans()) else NEED_SETS[:4]  # half the areas with no referral of two codes
    for o in range(draw(st.integers(1, 2))):
        for s in range(draw(st.integers(1, 3))):
            starts = [
                Start(f"s{o}{s}", kind, 20, n, needs)
                for kind in ("school", "trust")
                for needs in sets
                if (n := draw(st.sampled_from([0, 0, 1, 2, 3, 5, 8, 13])))
            ]
            found.append((f"o{o}", f"s{o}{s}", starts))
    return found


CODES = sorted({code for needs in NEED_SETS for code in needs})
KINDS = ("school", "trust")


def counts(starts: list[Start]) -> dict[str, int]:
    """A node's counts worked out from its referrals: started, by kind, by code, without each code, two codes."""
    c = dict.fromkeys(["started", "two_codes", *(f"kind.{k}" for k in KINDS), *(f"code.{n}" for n in CODES)], 0)
    for start in starts:
        c["started"] += start.n
        c[f"kind.{start.referrer_kind}"] += start.n
        for code in start.needs:
            c[f"code.{code}"] += start.n
        c["two_codes"] += start.n * (len(start.needs) - 1)
    return c | {f"without.{code}": c["started"] - c[f"code.{code}"] for code in CODES}


# The oracle's names of the counts the outputs show, and the production cells they are published as.
SHOWN = (
    {"started": "started"} | {f"kind.{k}": f"started.{k}" for k in KINDS} | {f"code.{n}": f"need.{n}" for n in CODES}
)


def leaks(area: list[tuple[str, str, list[Start]]], viewer: str | None) -> list[Key]:
    """The counts ``viewer`` must not learn that what it is shown determines."""
    found = impact(ImpactRead(starts=[s for _, _, starts in area for s in starts]), {}, [s for _, s, _ in area], AS_OF)
    kinds = sorted({k for f in found.values() for k in f.waits})
    needs = sorted({code for f in found.values() for code in f.need_waits})
    organisation_of = {s: o for o, s, _ in area}
    table = impact_table("a", {s: impact_cells(f, [], kinds, needs) for s, f in found.items()}, organisation_of)
    controlled = Controlled.of(table).for_viewer(viewer)

    nodes: dict[str, list[Start]] = {"area:a": []}
    children: dict[str, list[str]] = {"area:a": []}
    for o, s, starts in area:
        for node in ("area:a", f"organisation:{o}", f"service:{s}"):
            nodes.setdefault(node, []).extend(starts)
        children.setdefault(f"organisation:{o}", []).append(f"service:{s}")
        if f"organisation:{o}" not in children["area:a"]:
            children["area:a"].append(f"organisation:{o}")
    values = {(node, name): v for node, starts in nodes.items() for name, v in counts(starts).items()}
    own = {f"organisation:{viewer}"} | {f"service:{s}" for s, o in organisation_of.items() if o == viewer}
    known = set()
    for node, name in values:
        cell = SHOWN.get(name)
        # Shown, or not listed at all (so none): a code or kind no referral of the area has.
        seen = cell is not None and (cell not in table.cells[node].published or not controlled.withheld(node, cell))
        if node in own or seen:
            known.add((node, name))
    index = {key: i for i, key in enumerate(k for k in values if k not in known)}
    span = Span()

    def equation(plus: list[Key], minus: list[Key]) -> None:
        row: dict[int, Fraction] = {}
        for sign, keys in ((1, plus), (-1, minus)):
            for key in keys:
                if key in index:
                    row[index[key]] = row.get(index[key], Fraction(0)) + sign
        span.add({k: v for k, v in row.items() if v})

    for node in nodes:
        equation([(node, "started")], [(node, f"kind.{k}") for k in KINDS])
        for code in CODES:
            equation([(node, "started")], [(node, f"code.{code}"), (node, f"without.{code}")])
        equation([(node, f"code.{code}") for code in CODES], [(node, "started"), (node, "two_codes")])
        if values[(node, "two_codes")] == 0:
            equation([(node, "two_codes")], [])  # a reader may guess no referral has two codes
        for name in counts([]):
            if node in children:
                equation([(node, name)], [(kid, name) for kid in children[node]])
    found_leaks = []
    for key, i in index.items():
        value = values[key]
        if viewer is not None and key[0] == "area:a":
            value -= values[(f"organisation:{viewer}", key[1])]
        shown = key[1] in SHOWN and SHOWN[key[1]] in table.cells[key[0]].published
        if (0 < value < 5 or (viewer is None and shown)) and not span.reduce({i: Fraction(1)}):
            found_leaks.append(key)
    return found_leaks


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(areas())
def test_no_withheld_count_by_need_code_can_be_recovered(area: list[tuple[str, str, list[Start]]]) -> None:
    for viewer in (None, *sorted({o for o, _, _ in area})):
        assert leaks(area, viewer) == [], viewer
