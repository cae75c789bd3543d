"""Issue 19: machine instructions the referrals service's process spends per submission, counted, for code at git
refs side by side.

    python bench/ingest_instructions.py --baseline-ref 01e63b2 --out bench/results/<dir>/ingest-instructions.json

Figure 1's CPU per submission wanders by a tenth or more between rounds on this shared 2-core machine, which hides
changes of a few per cent (the same code measured 3.06 and 4.25 ms in one run). Instructions do not wander, as in
``bench/fold_instructions.py``: each variant runs under valgrind's cachegrind (``--cache-sim=no``) once with one
round and once with three rounds of ``-n`` submissions, and the difference, halved, is a warm round's instructions.
A round is ``bench/profile_paths.py``'s ingest path: valid submissions one after another through the referrals app
(``httpx.ASGITransport``: JWT, validation, idempotency, duplicate check, outbox) on a fresh PostgreSQL database; the
relay and the other workers do not run. Counted: user-space instructions of this one process, the test client's
included (about a tenth, the same for every variant); not PostgreSQL's, and not the kernel's work for a round trip
(its socket write and wake-up), so fewer round trips show only as the driver's and the event loop's share. Python
under cachegrind runs about fifty times slower: each variant takes a few minutes.

A ref's code is ``git archive`` of ``shared/src`` and ``services/referrals/src``; the bench's own code and the
devkit are the working tree's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from send_devkit.testing import LOCAL_POSTGRES, PostgresServer

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
ROOT = BENCH.parent

from git_trees import counted_side_by_side, instructions_of, running  # noqa: E402 - the bench's own module, on the path set above

SOURCES = ["shared/src", "services/referrals/src"]


async def rounds(database_url: str, count: int, n: int) -> None:
    """``count`` rounds of ``n`` submissions, after the path's own warm-up."""
    from profile_paths import ingest

    run, close = await ingest(database_url, n, 0)
    for _ in range(count):
        await run()
    await close()


def instructions(pg: PostgresServer, path: str, count: int, n: int) -> int:
    """Instructions of this script doing ``count`` rounds with the code on ``path`` (a ``PYTHONPATH``) on a fresh
    database, under cachegrind."""
    url = pg.new_database("ingest_instructions")
    subprocess.run([sys.executable, "-m", "referrals", "migrate"], env={**running(path), "DATABASE_URL": url},
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return instructions_of([__file__, "--rounds", str(count), "-n", str(n), "--database-url", url], path)[0]


def measure(pg: PostgresServer, path: str, n: int) -> dict[str, Any]:
    one, three = instructions(pg, path, 1, n), instructions(pg, path, 3, n)
    per_round = (three - one) // 2
    return {"submissions_a_round": n, "one_round": one, "three_rounds": three, "per_round": per_round,
            "per_submission": round(per_round / n)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", action="append", default=[], help="a git ref to compare (repeatable)")
    parser.add_argument("-n", type=int, default=100, help="submissions a round")
    parser.add_argument("--rounds", type=int, help=argparse.SUPPRESS)  # the measured child's own work
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.rounds is not None:
        asyncio.run(rounds(args.database_url, args.rounds, args.n))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    pg = PostgresServer(os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES))
    try:
        counted_side_by_side(args.baseline_ref, SOURCES, lambda path: measure(pg, path, args.n), args.out)
    finally:
        pg.drop_all()


if __name__ == "__main__":
    main()
