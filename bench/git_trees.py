"""Code at a git ref, for the bench scripts that run it beside the working tree: its sources as ``git archive`` has
them, its short commit id, an environment that runs it, its instructions counted under cachegrind, and the
side-by-side loop of the counting scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def extract(ref: str, sources: Sequence[str], into: Path) -> Path:
    """``sources`` (folders of the repository) as ``ref`` has them, laid out under ``into`` as in the repository."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *sources], check=True, capture_output=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def pythonpath(tree: Path, sources: Sequence[str]) -> str:
    """A ``PYTHONPATH`` of ``sources`` under ``tree``, first to last."""
    return os.pathsep.join(str(tree / source) for source in sources)


def running(path: str) -> dict[str, str]:
    """This process's environment with the code on ``path`` (a ``PYTHONPATH``) first, then the devkit's."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([path, str(ROOT / "devkit" / "src")])}


_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions_of(arguments: Sequence[str], path: str) -> tuple[int, str]:
    """The instructions ``python <arguments>`` takes with the code on ``path``, counted by valgrind's cachegrind
    (``--cache-sim=no``: instructions only), and what it printed."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, *arguments]  # fmt: skip
    done = subprocess.run(command, env=running(path), capture_output=True, text=True, check=True)
    found = _REFS.search(done.stderr)
    if found is None:
        raise SystemExit(f"cachegrind reported no instruction count:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", "")), done.stdout


def revision(ref: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def counted_side_by_side(
    refs: Sequence[str], sources: Sequence[str], measure: Callable[[str], dict[str, Any]], out: Path | None
) -> dict[str, Any]:
    """Each ref's ``sources``, then the working tree's, given to ``measure`` as a ``PYTHONPATH``; each variant's
    ``per_round`` over the first's; printed, and written to ``out`` when given."""
    started, clock = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    variants: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for ref in refs:
            tree = pythonpath(extract(ref, sources, Path(scratch) / ref.replace("/", "_")), sources)
            variants[f"{ref} ({revision(ref)})"] = measure(tree)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", *sources],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        label = f"working tree ({revision('HEAD')}{' with changes' if dirty else ''})"
        variants[label] = measure(pythonpath(ROOT, sources))
    first = next(iter(variants.values()))["per_round"]
    for found in variants.values():
        found["over_first"] = round(found["per_round"] / first, 3)
    result = {"started": started, "seconds": round(time.monotonic() - clock), "variants": variants}
    print(json.dumps(result, indent=1))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
    return result
