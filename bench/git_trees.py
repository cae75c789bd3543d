"""Code at a git ref, for the bench scripts that run it beside the working tree: its sources as ``git archive`` has
them, and its short commit id."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

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


def revision(ref: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
