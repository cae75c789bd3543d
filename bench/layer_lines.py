"""Lines of Python per layer of each service and of the shared packages (issue #15's before/after figure).

Usage: python bench/layer_lines.py > bench/results/layers-<date>/<label>.txt
Counts every line of every ``.py`` file under each service's package, grouped by its first sub-package
(domain, adapters, service_layer, entrypoints, migrations; top-level modules such as bootstrap.py as "top").
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _packages() -> list[Path]:
    found = sorted(ROOT.glob("services/*/src/*/__init__.py")) + sorted(ROOT.glob("shared*/src/*/__init__.py"))
    found += sorted(ROOT.glob("devkit/src/*/__init__.py"))
    return [p.parent for p in found]


def _lines_by_layer(package: Path) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        layer = parts[0] if len(parts) > 1 else "top"
        counts[layer] += len(path.read_text(encoding="utf-8").splitlines())
    return dict(counts)


def main() -> None:
    out = sys.stdout
    for package in _packages():
        counts = _lines_by_layer(package)
        out.write(f"{package.relative_to(ROOT)}  total {sum(counts.values())}\n")
        for layer, lines in sorted(counts.items()):
            out.write(f"  {layer:<16}{lines:>6}\n")


if __name__ == "__main__":
    main()
