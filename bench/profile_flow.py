"""Where figure 3's CPU goes: the three services sampled by py-spy while they carry an offered load.

    flock /tmp/heavy.lock python bench/profile_flow.py --rate 100 --seconds 20 --out bench/results/profile-flow-<date>

The stack is figure 3's (``run.running_stack``: fresh PostgreSQL databases, the embedded broker, a webhook endpoint at
a local receiver, warmed up). Each service process is sampled (``py-spy record --idle`` off: only samples where a
thread is running count, so a sample is CPU, not waiting) from the load's start until every webhook has arrived.
Writes, per service, ``<service>.folded.gz`` (py-spy's collapsed stacks, for a flame graph) and ``summary.json``: the
share of the service's samples by place (the package whose frame is on top of the stack; "event loop" when no Python
frame is above the loop's: its C work, mostly I/O system calls) and the inclusive share of each function of ours,
with the CPU figure 3's meter measured meanwhile.
py-spy runs as its own process beside the load, so the CPU figures here are not figure 3's: read the shares.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from send_devkit.testing import LOCAL_POSTGRES, PostgresServer

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from profile_paths import revision  # noqa: E402 - the bench's own modules, found through the path set above
from run import CpuMeter, _offered_load, running_stack  # noqa: E402

OURS = re.compile(r"\((?:\S*/)?(?:shared|services/\w+)/src/(\w+)/")
PLACE = re.compile(r"\((?:\S*/site-packages/|\S*/lib/python3\.\d+/)?(\w+)")


def place(frame: str) -> str:
    """The package a folded frame (``function (path:line)``) runs in: ours by its source root, the standard library
    as ``stdlib <module>``, a native call as its name."""
    ours = OURS.search(frame)
    if ours:
        return ours.group(1)
    if "site-packages/" in frame:
        found = PLACE.search(frame)
        return found.group(1) if found else frame
    if frame.startswith("Runner.run "):  # nothing in Python above the loop: its C work (system calls, drivers)
        return "event loop (C: I/O system calls, uvloop, asyncpg's protocol)"
    if "/lib/python3" in frame:
        module = frame.split("/lib/python3", 1)[1].split("/", 2)[1]
        return f"stdlib {module.split('.')[0]}"
    return frame.split(" (", 1)[0]


def summarise(folded: Path, top: int = 25) -> dict[str, Any]:
    """Shares of a service's samples by the place on top of the stack, and the inclusive share of each function of
    ours below the event loop (what our code asked for, however deep the libraries underneath)."""
    by_place: collections.Counter[str] = collections.Counter()
    by_ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        by_place[place(frames[-1])] += n
        loop = max((i for i, f in enumerate(frames) if f.startswith("Runner.run ")), default=-1)
        ours = {re.sub(r":\d+\)$", ")", f) for f in frames[loop + 1 :] if OURS.search(f)}
        for function in ours:
            by_ours[re.sub(r"\(\S*?/src/", "(", function)] += n

    def shares(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [{"where": k, "share": round(v / max(1, total), 3)} for k, v in counter.most_common(top)]

    return {"samples": total, "by_place_on_top": shares(by_place), "ours_inclusive": shares(by_ours)}


def sampled(spy: str, pid: int, rate: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` into ``out`` (collapsed stacks) until it is sent SIGINT. Python frames only: with
    ``--native`` py-spy stops the process for each sample, which skews the shares toward system calls."""
    command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(out),
               "--full-filenames", "--nonblocking"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="offered new referrals a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sample-rate", type=int, default=200, help="py-spy samples a second")
    parser.add_argument("--out", type=Path, required=True, help="a directory")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(LOCAL_POSTGRES)
    work = Path(sys.prefix).parent / "var" / "bench" / "profile-flow"
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    with running_stack(pg, work, None) as (stack, urls, receiver), CpuMeter(stack, pg.admin_url, urls) as meter:
        spies = {name: sampled(spy, p.pid, args.sample_rate, args.out / f"{name}.folded")
                 for name, p in stack.processes.items()}  # fmt: skip
        time.sleep(1.0)  # py-spy attaches
        before, count = meter.sample(), len(receiver.received)
        answered: dict[str, float] = {}
        asyncio.run(_offered_load(stack.url("referrals"), urls["waitlists"], args.rate, args.seconds, answered, {}))
        deadline = time.monotonic() + 30
        while len(receiver.received) < count + len(answered) and time.monotonic() < deadline:
            time.sleep(0.1)
        spent = CpuMeter.spent(before, meter.sample())
        for proc in spies.values():
            proc.send_signal(2)  # SIGINT: py-spy writes its file and ends
        for proc in spies.values():
            proc.wait(timeout=60)
    result = {
        "at": started.isoformat(timespec="seconds"), "code": revision(), "rate_per_s": args.rate,
        "seconds": args.seconds, "referrals": len(answered), "sample_rate": args.sample_rate,
        "cpu_ms_per_referral_while_sampled": {k: round(v * 1000 / max(1, len(answered)), 2) for k, v in spent.items()},
        "services": {name: summarise(args.out / f"{name}.folded") for name in spies},
    }  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    for name in spies:  # megabytes of stacks as text: kept compressed (zcat for a flame graph tool)
        folded = args.out / f"{name}.folded"
        Path(f"{folded}.gz").write_bytes(gzip.compress(folded.read_bytes()))
        folded.unlink()
    print(json.dumps(result["cpu_ms_per_referral_while_sampled"]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
