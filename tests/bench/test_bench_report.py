"""bench/report.py: the README's figures are what the committed result files say, and every file quoted is one
git would commit."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_report() -> ModuleType:
    # By its path: bench/ is not a package.
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


report = load_report()


def test_the_readme_figures_are_the_result_files() -> None:
    assert report.main(["--check"]) == 0


def test_every_quoted_result_file_is_committable() -> None:
    manifest = tomllib.loads((ROOT / "bench" / "results" / "figures.toml").read_text())
    names = {manifest["before"], manifest["after"]}
    names |= {name for k in ("rebuild", "ingest_candidates", "flow_cpu", "round_trips") for name in manifest.get(k, [])}
    names |= {manifest[k] for k in ("scale_out", "webhook_clients") if k in manifest}
    names |= {f[side] for f in manifest["figure"] for side in ("before", "after") if f.get(side)}
    names |= {
        f"{manifest['profile']['dir']}/{path}.{ext}" for path in manifest["profile"]["paths"] for ext in ("json", "txt")
    }
    for name in sorted(names):
        path = f"bench/results/{name}"
        assert (ROOT / path).is_file(), path
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
        assert ignored.returncode == 1, f"{path} is ignored by .gitignore"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text(json.dumps({
        "mode": "quick", "started": "2026-11-30T21:50:45+00:00",
        "ingest": {"ratio": 3.98, "per_s": 1234.0, "p99_ms": 1500},
    }))  # fmt: skip
    (tmp_path / "new.json").write_text(json.dumps({
        "mode": "full", "started": "2026-12-07T03:39:13+00:00",
        "ingest": {"ratio": 1.5, "per_s": 4000, "p99_ms": 90.5}, "idle": {"cpu": {"a": 0.25, "b": 2}},
    }))  # fmt: skip
    return tmp_path


MANIFEST = {
    "before": "old/run.json",
    "after": "new.json",
    "figure": [
        {"what": "ratio", "key": "ingest.ratio", "target": "<= 2"},
        {"what": "rate", "key": "ingest.per_s", "unit": "/s", "target": ">= 5000"},
        {"what": "p99 before the new run", "key": "ingest.p99_ms", "unit": "ms", "target": "< 100", "after": "old/run.json"},
        {"what": "idle", "key": ["idle.cpu.a", "idle.cpu.b"], "unit": "ms"},
        {"what": "never measured", "key": "nowhere", "target": "< 1"},
    ],
}  # fmt: skip


def test_rows_show_each_side_with_its_file_and_the_verdict_of_the_after_value(results: Path) -> None:
    lines = report.table(MANIFEST, results).splitlines()
    assert lines[2:7] == [
        "| ratio | 3.98 (a) | 1.5 (b) | ≤ 2 | met |",
        "| rate | 1,234 /s (a) | 4,000 /s (b) | ≥ 5,000 | missed by 20% |",
        "| p99 before the new run | 1,500 ms (a) | 1,500 ms (a) | < 100 | missed: 15 times the target |",
        "| idle | — (a) | 0.25 / 2 ms (b) | — | — |",
        "| never measured | — (a) | — (b) | < 1 | — |",
    ]
    assert lines[8:] == [
        "- (a) [`old/run.json`](results/old/run.json): `quick` run, started 2026-11-30 21:50 UTC",
        "- (b) [`new.json`](results/new.json): `full` run, started 2026-12-07 03:39 UTC",
    ]


def test_durations_in_milliseconds_or_microseconds() -> None:
    assert report.duration(0.00788) == "7.88 ms"
    assert report.duration(0.001) == "1 ms"
    assert report.duration(0.0000993) == "99.3 µs"


def test_verdicts_at_the_edges_of_a_target() -> None:
    assert report.Target.parse("<= 2").verdict(2) == "met"
    assert report.Target.parse("< 2").verdict(2) == "missed by 0%"
    assert report.Target.parse(">=0.5").verdict(0.5) == "met"
    assert report.Target.parse(">0.5").verdict(0.5) == "missed by 0%"
    assert report.Target.parse(">= 50000").verdict(20000) == "missed by 60%"


def test_a_ceiling_missed_by_less_than_twice_is_a_share_and_beyond_a_multiple() -> None:
    assert report.Target.parse("< 20").verdict(22) == "missed by 10%"
    assert report.Target.parse("< 100").verdict(199) == "missed by 99%"
    assert report.Target.parse("< 100").verdict(200) == "missed: 2 times the target"
    assert report.Target.parse("< 100").verdict(None) == "—"


def test_a_result_file_that_is_not_there_is_an_error(results: Path) -> None:
    with pytest.raises(SystemExit, match=r"gone\.json"):
        report.table({**MANIFEST, "after": "gone.json"}, results)


def test_check_fails_on_a_stale_readme_and_the_rewrite_fixes_it(
    results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Figures\n\n{report.BEGIN}\n| stale |\n{report.END}\n\nAfter.\n")
    (results / "figures.toml").write_text(
        'before = "old/run.json"\nafter = "new.json"\n[[figure]]\nwhat = "ratio"\nkey = "ingest.ratio"\n'
    )
    monkeypatch.setattr(report, "README", readme)
    monkeypatch.setattr(report, "RESULTS", results)
    assert report.main(["--check"]) == 1
    assert report.main([]) == 0
    assert report.main(["--check"]) == 0
    text = readme.read_text()
    assert text.startswith(f"# Figures\n\n{report.BEGIN}\n| figure | before | after | target | verdict |\n")
    assert "| ratio | 3.98 (a) | 1.5 (b) | — | — |" in text
    assert text.endswith(f"{report.END}\n\nAfter.\n")


def test_the_profile_table_shows_each_path_and_its_largest_places_and_functions(results: Path) -> None:
    (results / "profile-x").mkdir()
    (results / "profile-x" / "ingest.json").write_text(json.dumps({
        "work": "4 submissions", "items": 4, "wall_s": 0.5, "cpu_s": 0.25,
        "own_time_by_place": {"sqlalchemy": {"s": 0.2, "share": 0.4}, "waiting for I/O (epoll)": {"s": 0.1, "share": 0.2}},
        "largest_own_time": [{"function": "a.py:1(f)", "calls": 1200, "s": 0.1, "share": 0.2},
                             {"function": "b.py:2(g)", "calls": 3, "s": 0.05, "share": 0.1}],
    }))  # fmt: skip
    (results / "profile-x" / "rebuild.json").write_text(json.dumps({
        "wall_s": 2.0, "cpu_s": 1.5, "own_time_by_place": {"waitlists": {"s": 1.0, "share": 0.5}},
        "code": "abc1234", "at": "2026-12-07T08:00:34+00:00",
    }))  # fmt: skip
    text = report.profile_tables({"dir": "profile-x", "paths": ["ingest", "rebuild"], "functions": 1}, results)
    assert text.splitlines() == [
        "| path | work | wall | CPU | wall per item | own time by place, largest first |",
        "|---|---|---|---|---|---|",
        "| [ingest](results/profile-x/ingest.txt) | 4 submissions | 0.5 s | 0.25 s | 125 ms "
        "| sqlalchemy 40%, waiting for I/O (epoll) 20% |",
        "| [rebuild](results/profile-x/rebuild.txt) | — | 2.0 s | 1.5 s | — | waitlists 50% |",
        "",
        "| path | function (largest own time) | calls | own time |",
        "|---|---|---|---|",
        "| ingest | `a.py:1(f)` | 1,200 | 0.1 s (20%) |",
        "",
        "Profiled: code —, run — UTC; code abc1234, run 2026-12-07 08:00 UTC.",
    ]


def test_round_trips_are_named_by_verb_and_first_table() -> None:
    spec = importlib.util.spec_from_file_location("bench_round_trips", ROOT / "bench" / "round_trips.py")
    assert spec is not None and spec.loader is not None
    round_trips = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(round_trips)  # puts bench/ on the path for its own imports
    assert round_trips.label("BEGIN;") == "BEGIN"
    assert round_trips.label('SELECT a.x FROM "idempotency_keys" WHERE a.y = $1') == "SELECT idempotency_keys"
    assert round_trips.label("WITH added AS (INSERT INTO referrals (id) VALUES ($1)) INSERT INTO people") == (
        "WITH referrals"
    )
    assert round_trips.label("UPDATE deliveries SET status=$1") == "UPDATE deliveries"
    assert round_trips.label("SELECT v.version FROM (SELECT $1) AS k LEFT OUTER JOIN referral_versions AS v") == (
        "SELECT referral_versions"
    )
    assert round_trips.label("") == "(empty)"
