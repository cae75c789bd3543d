"""Impact figures of a service (issue #18). Pure Python, business dates (Europe/London).

- **Re-referral**: of the referrals completed at a service, the share whose child was referred again, within 6
  (182 days) or 12 months (365 days) after the completion, to a service of the same *kind*. A service's kind is the
  first clock it runs in the directory (``ehc_*``, ``rtt_18w``, ``cypmh_*``, ``service_target``; ``none`` for a
  service without clocks): waitlists holds no need codes (referral events carry none of the child's needs to it),
  and the clock names the pathway a referral is on. Only completions whose whole window has passed by as_of count
  (the 12 months of them ending a window before as_of), so no rate is made low by windows not yet over.
- **Outcomes**: referrals completed in the 12 months to as_of, by the outcome code their completion carried
  (``none`` without one).
- **Time to support**: days from submission to support starting (first in_progress), for referrals started in the
  12 months to as_of, by the kind of the referring organisation in the directory (school, trust, ...; a trust's
  in-house specialists refer as the trust; ``unknown`` when the directory has not named it), and by the referral's
  DfE SEN need code (primary or secondary: a referral with two codes counts under each; ``unknown`` for one
  projected before the codes were kept): median and 90th percentile, nearest rank. Only started referrals count,
  as for every impact figure (the predicted wait, ``survival``, is the censoring-aware one).

Every count goes through the figures' disclosure control (``impact_table``): counts of 1 to 4, what gives them back,
and the rates and percentiles over them are withheld; an organisation sees its own in full. The counts by need code
add up to the referrals started plus those with two codes (``needs.second_codes``, never published): that latent
difference is protected like any other of 1 to 4, and where it is 0 the codes are protected as parts of the total.
So is each code's complement, the referrals started without it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from waitlists.domain.capacity import capacity_table
from waitlists.domain.clocks import ServiceClocks
from waitlists.domain.disclosure import Cells, Table
from waitlists.domain.stats import nearest_rank

WINDOWS = {"6m": 182, "12m": 365}
YEAR_DAYS = 364  # a period of 12 months ending on as_of: as_of - 364 to as_of
UNKNOWN = "unknown"
MENTIONS = "needs.mentions"  # the counts by need code added up: started + SECOND_CODES
SECOND_CODES = "needs.second_codes"


def need_codes(primary: str | None, secondary: str | None) -> tuple[str, ...]:
    """A referral's distinct need codes, ``unknown`` when it holds none."""
    return tuple(dict.fromkeys(code for code in (primary, secondary) if code)) or (UNKNOWN,)


def service_kind(service: ServiceClocks) -> str:
    return service.clocks[0].value if service.clocks else "none"


@dataclass(frozen=True, slots=True)
class Completion:
    child_ref: str
    service_id: str
    completed_on: date
    outcome_code: str | None


@dataclass(frozen=True, slots=True)
class Submission:
    child_ref: str
    service_id: str
    submitted_on: date


@dataclass(frozen=True, slots=True)
class Start:
    service_id: str
    referrer_kind: str
    days: int
    n: int = 1
    needs: tuple[str, ...] = (UNKNOWN,)


@dataclass
class ImpactRead:
    """What the figures are worked out from: completions and starts at the services, and every referral of the
    children they completed for (any service, to find re-referrals)."""

    completions: list[Completion] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    starts: list[Start] = field(default_factory=list)


@dataclass
class ServiceImpact:
    rereferral: dict[str, tuple[int, int]]  # window -> (completions whose window has passed, re-referred)
    outcomes: dict[str, int]  # outcome code -> completions in the 12 months
    waits: dict[str, Counter[int]]  # referrer kind -> days to support -> how many
    need_waits: dict[str, Counter[int]] = field(default_factory=dict)  # need code -> days to support -> how many


def impact(
    read: ImpactRead, kinds: Mapping[str, str], services: Iterable[str], as_of: date
) -> dict[str, ServiceImpact]:
    """Each service's figures; ``kinds``: every service's kind (those re-referred to included)."""
    found = {s: ServiceImpact(dict.fromkeys(WINDOWS, (0, 0)), {}, {}) for s in services}
    later: dict[str, list[Submission]] = defaultdict(list)
    for s in read.submissions:
        if s.submitted_on <= as_of:
            later[s.child_ref].append(s)
    year_start = as_of - timedelta(days=YEAR_DAYS)
    for c in read.completions:
        mine = found.get(c.service_id)
        if mine is None or c.completed_on > as_of:
            continue
        if c.completed_on >= year_start:
            code = c.outcome_code or "none"
            mine.outcomes[code] = mine.outcomes.get(code, 0) + 1
        for window, days in WINDOWS.items():
            last = as_of - timedelta(days=days)  # its window over by as_of
            if not last - timedelta(days=YEAR_DAYS) <= c.completed_on <= last:
                continue
            again = any(
                kinds.get(s.service_id) == kinds.get(c.service_id)
                and c.completed_on < s.submitted_on <= c.completed_on + timedelta(days=days)
                for s in later[c.child_ref]
            )
            eligible, rereferred = mine.rereferral[window]
            mine.rereferral[window] = (eligible + 1, rereferred + int(again))
    for start in read.starts:
        mine = found.get(start.service_id)
        if mine is not None:
            mine.waits.setdefault(start.referrer_kind, Counter())[start.days] += start.n
            for code in start.needs:
                mine.need_waits.setdefault(code, Counter())[start.days] += start.n
    return found


def impact_cells(f: ServiceImpact, codes: Sequence[str], referrer_kinds: Sequence[str], needs: Sequence[str]
                 ) -> Cells:  # fmt: skip
    """One service's cells, every service listing the same outcome ``codes``, ``referrer_kinds`` and need codes
    (``needs``), so their sums relate the same way."""
    c = Cells()
    for window in WINDOWS:
        eligible, again = f.rereferral[window]
        c.add(f"reref.{window}.completed", eligible)
        c.add(f"reref.{window}.again", again)
        c.complement(f"reref.{window}.completed", f"reref.{window}.again", f"reref.{window}.not_again")
        c.derived[f"reref.{window}.pct"] = (f"reref.{window}.again", f"reref.{window}.completed")
    for code in codes:
        c.add(f"outcome.{code}", f.outcomes.get(code, 0))
    c.add("outcomes.completed", sum(f.outcomes.values()))
    c.relate("outcomes.completed", (f"outcome.{code}" for code in codes))
    for kind in referrer_kinds:
        c.add(f"started.{kind}", sum(f.waits.get(kind, Counter()).values()))
        c.derived |= {f"started.{kind}.median": (f"started.{kind}",), f"started.{kind}.p90": (f"started.{kind}",)}
    c.add("started", sum(sum(w.values()) for w in f.waits.values()))
    c.relate("started", (f"started.{kind}" for kind in referrer_kinds))
    for code in needs:
        c.add(f"need.{code}", sum(f.need_waits.get(code, Counter()).values()))
        c.derived |= {f"need.{code}.median": (f"need.{code}",), f"need.{code}.p90": (f"need.{code}",)}
        c.complement("started", f"need.{code}", f"need.{code}.without")  # started with any other code(s) only
    # Sum of the codes = started + referrals with two codes. The latent copy of started comes between them so that,
    # when the difference must be protected, a need code is withheld (found back along the codes' sum) rather than
    # the started total, which the comparison of referrer kinds rests on.
    c.add(MENTIONS, sum(c.value(f"need.{code}") for code in needs), publish=False)
    c.relate(MENTIONS, (f"need.{code}" for code in needs))
    c.add("needs.referrals", c.value("started"), publish=False)
    c.relate("needs.referrals", ("started",))
    c.complement(MENTIONS, "needs.referrals", SECOND_CODES)
    return c


def impact_table(area_id: str, per_service: Mapping[str, Cells], organisation_of: Mapping[str, str]) -> Table:
    """The area's impact cells with their sums by organisation and area (``capacity.capacity_table``). Where no
    referral has two need codes, the codes are exact parts of the referrals started, which a reader may well guess:
    they are protected as parts of that total there (after the sums, so that one node's partition is not another's)."""
    table = capacity_table(area_id, per_service, organisation_of)
    for cells in table.cells.values():
        if cells.latent.get(SECOND_CODES) == 0:
            cells.relate("started", next(r[1:] for r in cells.relations if r[0] == MENTIONS))
    return table


def quantiles(days: Counter[int]) -> tuple[int | None, int | None]:
    return nearest_rank(days, 0.5), nearest_rank(days, 0.9)
