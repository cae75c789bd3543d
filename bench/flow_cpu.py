"""Figure 3's all-in CPU per referral, side by side: the working tree against the code at git refs, in one run.

    flock /tmp/heavy.lock python bench/flow_cpu.py --baseline-ref HEAD --rounds 3 --out bench/results/flow-cpu-<date>/x.json

Each variant is the three services started afresh on fresh PostgreSQL databases with the embedded broker (figure 3's
``running_stack``: a webhook endpoint at a local receiver, warmed up), then an offered load of ``--rate`` new
referrals a second for ``--seconds``, until every webhook has arrived. Its CPU per referral is figure 3's: each
service process, the broker and PostgreSQL's backends and shared processes (``/proc`` times). This machine's
figures wander by a tenth or more from one minute to the next, so rounds interleave the variants (ABAB, then BABA)
and the summary is the median over rounds, with each round's ratio to the first variant. ``--env-variant`` runs the
working tree again with settings of its own (a candidate configuration, such as ``CONSUMER_LINGER_MS=10``).
A ref's code is ``git archive`` of ``shared/src`` and ``services/*/src``; the bench's own code and the devkit are the
working tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from send_devkit.testing import LOCAL_POSTGRES, PostgresServer

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
ROOT = BENCH.parent

from git_trees import extract, revision  # noqa: E402 - the bench's own modules, found through the path set above
from run import latency_figure  # noqa: E402

SOURCES = ["shared/src", "services/referrals/src", "services/waitlists/src", "services/notifications/src"]


def working_tree_label() -> str:
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return revision("HEAD") + ("-dirty" if changed else "")


def summary(rounds: list[dict[str, dict[str, Any]]], names: list[str]) -> dict[str, Any]:
    first = names[0]
    out: dict[str, Any] = {}
    for name in names:
        cpu = [r[name]["cpu_ms_per_referral"] for r in rounds]
        entry: dict[str, Any] = {group: round(statistics.median(c[group] for c in cpu), 2) for group in cpu[0]}
        for key in ("projection_p50_ms", "projection_p99_ms", "webhook_p99_ms"):
            values = [r[name][key] for r in rounds if r[name][key] is not None]
            entry[key] = round(statistics.median(values), 1) if values else None
        if name != first:
            entry["all_in_over_first"] = round(
                statistics.median(
                    r[name]["cpu_ms_per_referral"]["all_in"] / r[first]["cpu_ms_per_referral"]["all_in"] for r in rounds
                ),
                3,
            )
        out[name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", action="append", default=[], help="a git ref to compare (repeatable)")
    parser.add_argument("--rate", type=float, default=100.0, help="offered new referrals a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="offered load per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--env-variant",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE[,KEY=VALUE]",
        help="the working tree again with these settings in the services' environment (repeatable)",
    )
    parser.add_argument("--without-working-tree", action="store_true",
                        help="only the refs (the working tree can then be edited while this runs)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    work = ROOT / "var" / "bench" / f"flow-cpu-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES))
    started = datetime.now(UTC).isoformat()
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as trees:
        variants: list[tuple[str, Path | None, dict[str, str]]] = [
            (f"{ref} ({revision(ref)})", extract(ref, SOURCES, Path(trees) / str(i)), {})
            for i, ref in enumerate(args.baseline_ref)
        ]
        if not args.without_working_tree:
            variants.append((f"working tree ({working_tree_label()})", None, {}))
        for spec in args.env_variant:
            label, _, settings = spec.partition(":")
            env = dict(pair.split("=", 1) for pair in settings.split(","))
            variants.append((f"{label} (working tree {working_tree_label()}, {settings})", None, env))
        try:
            for i in range(args.rounds):
                order = variants if i % 2 == 0 else variants[::-1]
                found: dict[str, dict[str, Any]] = {}
                for name, tree, env in order:
                    figure = latency_figure(pg, [args.rate], args.seconds, work, tree, env)
                    found[name] = figure[f"offered_{args.rate:g}_per_s"]
                    print(f"round {i + 1} {name}: {found[name]['cpu_ms_per_referral']}", flush=True)
                    pg.drop_all()
                rounds.append(found)
        finally:
            pg.drop_all()
    names = [name for name, _tree, _env in variants]
    result = {
        "started": started,
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "cores": os.cpu_count(),
        "variants": names,
        "rounds": rounds,
        "median": summary(rounds, names),
        "target": "all-in CPU <= 10 ms a referral at 100/s",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, entry in result["median"].items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in entry.items()))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
