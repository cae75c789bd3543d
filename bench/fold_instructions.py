"""Issue 19: machine instructions a rebuild's fold and facts take per event, counted, for code at git refs side by side.

    python bench/fold_instructions.py --baseline-ref HEAD --out bench/results/<dir>/fold-instructions.json

Timings on this shared 2-core virtual machine wander by a tenth or more between runs of the same code, which hides
changes of a few per cent. Instructions do not wander: each variant runs under valgrind's cachegrind (the Debian
package ``valgrind``; ``--cache-sim=no``, so only instructions are counted) once with one round and once with three
rounds of the work, and the difference, halved, is one round's instructions, without the start-up and the dataset's
generation (and without what only the first round does: caches filled, strings interned, statements built: the
figure is a warm round's). A round is what a rebuild does in Python between reading a record and writing rows: the ``small``
dataset's 48,036 records (``bench/national.py``) added to a ``ReplayFold`` (headers decoded, body validated, the
referral projected), then every referral's facts derived (``HeldProjection.facts``); no database and no broker.
Python under cachegrind runs about fifty times slower: each variant takes about two minutes.

A ref's code is ``git archive`` of ``shared/src`` and ``services/waitlists/src``; the bench's own code and the devkit
are the working tree's.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import shutil
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
ROOT = BENCH.parent

from git_trees import counted_side_by_side, instructions_of  # noqa: E402 - the bench's own module, on the path set above

SOURCES = ["shared/src", "services/waitlists/src"]


def rounds(count: int) -> int:
    """Folds the small dataset and derives its facts ``count`` times; returns the records of a round."""
    from national import SCALES, directory, referral_events

    from send_shared.events.envelope import encode_kafka
    from waitlists.service_layer.replay import ReplayFold

    scale = SCALES["small"]
    records = [encode_kafka(e) for e in itertools.chain(directory(scale), referral_events(scale))]
    gc.disable()  # as the rebuild runs (``_no_cycle_collection``)
    for _ in range(count):
        fold = ReplayFold()
        for headers, value in records:
            fold.add(headers, value)
        held = fold.result()
        for chunk in held.chunks(2000):
            held.facts(chunk)
        del fold, held
        gc.collect()
    return len(records)


def instructions(path: str, count: int) -> tuple[int, int]:
    """Instructions of this script doing ``count`` rounds with the code on ``path`` (a ``PYTHONPATH``), under
    cachegrind, and the records of a round."""
    counted, printed = instructions_of([__file__, "--rounds", str(count)], path)
    return counted, int(printed.split()[-1])


def measure(path: str) -> dict[str, Any]:
    (one, events), (three, _) = instructions(path, 1), instructions(path, 3)
    per_round = (three - one) // 2
    return {"events_a_round": events, "one_round": one, "three_rounds": three, "per_round": per_round,
            "per_event": round(per_round / events)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", action="append", default=[], help="a git ref to compare (repeatable)")
    parser.add_argument("--rounds", type=int, help=argparse.SUPPRESS)  # the measured child's own work
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.rounds is not None:
        print(rounds(args.rounds))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    counted_side_by_side(args.baseline_ref, SOURCES, measure, args.out)


if __name__ == "__main__":
    main()
