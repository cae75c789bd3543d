"""Cost of disclosure control per request: an area of N organisations x M services, facts generated straight into a
migrated SQLite database (the rows the consumer derives: waiting spells, clock spells and stops, outcomes, gaps),
then each use case timed as the API calls it: ``controlled_figures`` for the area, one organisation and one service,
``services_by_risk`` for the area and the dashboard's 12-month ``trend`` for the area and a service. Each call is
also split into its SQL reads (``facts.tallies``) and the suppression search (``disclosure.protect``).

Run: .venv/bin/python bench/disclosure_cost.py [--shapes 2x2,3x3,5x2,4x4] [--referrals 1000] [--repeats 30]
     [--cold] [--out bench/results/disclosure-cost-2026-12-01/after.json]
(before.json: the same script, no --cold flag then, run on the tree at 83dacfa before the trend control and the
faster search; after-cold.json: --cold, every call searching afresh; after-memo.json: repeated calls answered from
the memo.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from send_shared.db import bulk_insert, create_engine, session_factory
from waitlists.adapters.facts import SqlFacts
from waitlists.adapters.orm import (
    clock_spells,
    clock_stops,
    handoff_gaps,
    organisations,
    referral_outcomes,
    services,
    waiting_spells,
)
from waitlists.adapters.unit_of_work import SqlUnitOfWork
from waitlists.domain import disclosure
from waitlists.domain.scope import Scope
from waitlists.entrypoints.cli import main as cli_main
from waitlists.service_layer import dashboard
from waitlists.service_layer.reporting import FigureRequest, controlled_figures

AREA = "la-bench"
AS_OF = date(2026, 11, 30)
OPEN = date(9999, 12, 31)
KINDS = [(["cypmh_4w"], None), (["ehc_decision_6w", "ehc_no_plan_16w", "ehc_plan_20w"], None),
         (["service_target"], 56), (["cypmh_4w", "cypmh_ed"], None)]  # fmt: skip
REASONS = ["not_eligible", "duplicate", "insufficient_information", None]


def generate(rng: random.Random, orgs: int, per_org: int, referrals: int) -> dict[Any, list[tuple[Any, ...]]]:
    """Rows for every table, each a tuple in the table's column order. Service sizes vary (a few are small, so
    small numbers and secondary suppression happen), referrals spread over three years before ``AS_OF``."""
    rows: dict[Any, list[tuple[Any, ...]]] = {t: [] for t in (organisations, services, waiting_spells, clock_spells,
                                                              clock_stops, referral_outcomes, handoff_gaps)}  # fmt: skip
    n = 0
    for o in range(orgs):
        org = f"org-{o}"
        rows[organisations].append((org, org, "provider", AREA, 1))
        for s in range(per_org):
            sid = f"svc-{o}-{s}"
            clocks, target = KINDS[(o + s) % len(KINDS)]
            rows[services].append((sid, org, sid, clocks, target, True, 1))
            size = max(3, int(referrals * rng.lognormvariate(0, 0.8)))
            for _ in range(size):
                n += 1
                rid = f"r{n}"
                submitted = AS_OF - timedelta(days=rng.randrange(0, 3 * 365))
                closed = submitted + timedelta(days=rng.randrange(5, 400))
                if closed > AS_OF:
                    closed_on = None
                    rows[waiting_spells].append((rid, submitted, OPEN, sid, f"c{n}", submitted, None))
                else:
                    closed_on = closed
                    rows[waiting_spells].append((rid, submitted, closed, sid, f"c{n}", submitted, None))
                status = rng.choice(["completed", "rejected", "withdrawn"]) if closed_on else None
                reason = rng.choice(REASONS) if status == "rejected" else None
                started = submitted + timedelta(days=rng.randrange(1, 60)) if status == "completed" else None
                rows[referral_outcomes].append(
                    (rid, sid, submitted, started, closed_on, status, reason, started is None and closed_on is not None)
                )
                for kind in clocks:
                    exception = rng.random() < 0.05
                    stop = submitted + timedelta(days=rng.randrange(3, 200))
                    if stop <= AS_OF:
                        outcome = "met" if rng.random() < 0.7 else "late"
                        rows[clock_stops].append((rid, kind, sid, stop, outcome, exception))
                        rows[clock_spells].append((rid, kind, submitted, stop, sid, submitted + timedelta(28),
                                                   exception))  # fmt: skip
                    else:
                        rows[clock_spells].append((rid, kind, submitted, OPEN, sid, submitted + timedelta(28),
                                                   exception))  # fmt: skip
                if rng.random() < 0.05:
                    opened = submitted + timedelta(days=rng.randrange(0, 30))
                    rows[handoff_gaps].append((rid, sid, opened, opened + timedelta(days=rng.randrange(1, 60))))
    return rows


async def build(url: str, orgs: int, per_org: int, referrals: int) -> None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            for table, records in generate(random.Random(orgs * 100 + per_org), orgs, per_org, referrals).items():
                await bulk_insert(session, table, records)
    finally:
        await engine.dispose()


class Split:
    """Time spent in the SQL reads and in the suppression search during a call (patched in, then restored)."""

    def __init__(self) -> None:
        self.sql = 0.0
        self.protect = 0.0
        self.protect_calls = 0

    def __enter__(self) -> Split:
        self._tallies, self._protect = SqlFacts.tallies, disclosure.protect

        async def tallies(repository: SqlFacts, *args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await self._tallies(repository, *args, **kwargs)
            finally:
                self.sql += time.perf_counter() - t

        def protect(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return self._protect(*args, **kwargs)
            finally:
                self.protect += time.perf_counter() - t
                self.protect_calls += 1

        SqlFacts.tallies = tallies  # type: ignore[method-assign, assignment]
        disclosure.protect = protect
        return self

    def __exit__(self, *exc: object) -> None:
        SqlFacts.tallies, disclosure.protect = self._tallies, self._protect  # type: ignore[method-assign]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, repeats: int, scopes: int) -> dict[str, Any]:
    engine = create_engine(url)
    uow = SqlUnitOfWork(session_factory(engine))
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "figures_area": lambda: controlled_figures(FigureRequest(Scope.AREA, AREA, AS_OF), uow),
        "figures_organisation": lambda: controlled_figures(FigureRequest(Scope.ORGANISATION, "org-0", AS_OF), uow),
        "figures_service": lambda: controlled_figures(FigureRequest(Scope.SERVICE, "svc-0-0", AS_OF), uow),
        "services_by_risk_area": lambda: dashboard.services_by_risk(Scope.AREA, AREA, AS_OF, uow),
        "trend_area_12m": lambda: dashboard.trend(Scope.AREA, AREA, AS_OF, 12, uow),
        "trend_service_12m": lambda: dashboard.trend(Scope.SERVICE, "svc-0-0", AS_OF, 12, uow),
    }
    found: dict[str, Any] = {"scopes": scopes}
    try:
        for name, call in calls.items():
            await call()  # warm-up (connection, imports)
            took: list[float] = []
            with Split() as split:
                for _ in range(repeats):
                    t = time.perf_counter()
                    await call()
                    took.append(time.perf_counter() - t)
            found[name] = {
                "median_ms": round(statistics.median(took) * 1000, 2),
                "p99_ms": round(pct(took, 0.99) * 1000, 2),
                "sql_tallies_ms_per_call": round(split.sql / repeats * 1000, 2),
                "protect_ms_per_call": round(split.protect / repeats * 1000, 2),
                "protect_runs_per_call": round(split.protect_calls / repeats, 2),
            }
    finally:
        await engine.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="2x2,3x3,5x2,4x4", help="organisations x services per organisation")
    parser.add_argument("--referrals", type=int, default=1000, help="median referrals per service (3 years)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cold", action="store_true", help="no memo of protected tables (every call searches)")
    args = parser.parse_args()
    if args.cold and hasattr(disclosure, "_MEMO_SIZE"):
        disclosure._MEMO_SIZE = 0
    results: dict[str, Any] = {
        "as_of": AS_OF.isoformat(),
        "referrals_per_service_median": args.referrals,
        "repeats": args.repeats,
        "cold": args.cold,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "shapes": {},
    }
    for shape in args.shapes.split(","):
        orgs, per_org = (int(x) for x in shape.split("x"))
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            os.environ["DATABASE_URL"] = url
            cli_main(["migrate"])
            asyncio.run(build(url, orgs, per_org, args.referrals))
            figures = asyncio.run(measure(url, args.repeats, 1 + orgs + orgs * per_org))
        results["shapes"][shape] = figures
        print(shape, json.dumps(figures, indent=1), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
