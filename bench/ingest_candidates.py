"""Issue 19: candidates for the ingest cost ratio (figure 1 of `make bench`), measured side by side in one run.

    flock /tmp/heavy.lock python bench/ingest_candidates.py                        # every variant, 20 s, 2 rounds
    flock /tmp/heavy.lock python bench/ingest_candidates.py --baseline-ref HEAD    # plus the service as committed

Each variant is a process on a fresh PostgreSQL database with the embedded broker, as figure 1 runs it: 16
concurrent clients submit referrals for ``--seconds`` after a short warm-up, and the figures are referrals per
second and the CPU the process tree spent per referral (``/proc`` utime + stime, relay and workers included).
Each variant is compared with the bare endpoint (``bench/bare_app.py``) measured in the same round; the rounds
interleave the variants so that drift on the shared machine falls on all of them.

Variants: ``bare``; ``uvicorn`` (``python -m referrals serve``, the service as it stands); ``granian`` (granian
2.8.7, not a dependency: ``pip install granian==2.8.7`` first, started on the app factory with one worker on uvloop);
``head`` (the referrals service and the shared package as ``--baseline-ref`` has them, served as ``uvicorn``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from git_trees import extract, pythonpath
from run import referral_body  # the bench's own body, as figure 1 sends
from sqlalchemy import text

from send_devkit.broker import EmbeddedBroker
from send_devkit.ports import free_port
from send_devkit.testing import LOCAL_POSTGRES, PostgresServer
from send_devkit.tokens import mint_token
from send_shared.db import create_engine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / f"ingest-candidates-{datetime.now(UTC):%Y-%m-%d}" / "result.json"
CONCURRENCY = 16
HEAD_SOURCES = ["services/referrals/src", "shared/src"]  # the ``head`` variant's code, as the ref has it
WARM_UP_S = 3.0
# The load is one organisation far past its production limit: the figures measure the pipeline.
SERVICE_ENV = {"LOG_LEVEL": "WARNING", "RATE_LIMIT_WRITES_PER_SECOND": "0", "RATE_LIMIT_READS_PER_SECOND": "0"}


@dataclass
class Variant:
    name: str
    server: str = "serve"  # bare_app.py, `referrals serve`, or granian started on the app factory
    env: dict[str, str] = field(default_factory=dict)
    pythonpath: str | None = None  # a source tree put before the installed one

    def command(self, port: int) -> list[str]:
        if self.server == "bare":
            return [sys.executable, str(ROOT / "bench" / "bare_app.py")]
        if self.server == "granian":  # one worker on uvloop, as uvicorn runs (uvloop and httptools installed)
            return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--workers", "1",
                    "--loop", "uvloop", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                    "--log-level", "warning", "referrals.bootstrap:build_app"]  # fmt: skip
        return [sys.executable, "-m", "referrals", "serve"]


async def load(url: str, headers: dict[str, str], seconds: float, seed: int) -> tuple[int, int]:
    """Referrals answered 201 and other answers, from ``CONCURRENCY`` clients for ``seconds``."""
    rng = random.Random(seed)
    created = other = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY)) as http:

        async def client() -> None:
            nonlocal created, other
            while time.monotonic() < deadline:
                key = {"idempotency-key": uuid.uuid4().hex}
                response = await http.post(url, json=referral_body(rng), headers={**headers, **key})
                if response.status_code == 201:
                    created += 1
                else:
                    other += 1

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return created, other


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its descendants so far (Linux /proc): granian serves from a child."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def own_cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


@contextmanager
def serving(
    variant: Variant, pg: PostgresServer, bootstrap: str, log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """Starts the variant on a fresh database; yields it, its submission URL once it is ready, and its database."""
    port = free_port()
    env = {**os.environ, "HTTP_PORT": str(port)}
    if variant.server == "bare":
        env["DATABASE_URL"] = pg.new_database("bench_bare")
        ready = f"http://127.0.0.1:{port}/docs"
    else:
        env |= {"DATABASE_URL": pg.new_database("bench_ingest"), "KAFKA_BOOTSTRAP_SERVERS": bootstrap, **SERVICE_ENV}
        env |= variant.env
        if variant.pythonpath:
            env["PYTHONPATH"] = variant.pythonpath
        migrate = [sys.executable, "-m", "referrals", "migrate"]
        subprocess.run(migrate, env=env, check=True, stdout=subprocess.DEVNULL)
        ready = f"http://127.0.0.1:{port}/readyz"
    with log.open("ab") as output:
        process = subprocess.Popen(
            variant.command(port), env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_http(ready)
        yield process, f"http://127.0.0.1:{port}/v1/referrals", env["DATABASE_URL"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def measure(
    variant: Variant, pg: PostgresServer, bootstrap: str, seconds: float, seed: int, work: Path
) -> dict[str, Any]:
    headers = (
        {}
        if variant.server == "bare"
        else {"authorization": f"Bearer {mint_token('org-riverside-primary', 'referrer')}"}
    )
    with serving(variant, pg, bootstrap, work / f"{variant.name}.log") as (process, url, database_url):
        asyncio.run(load(url, headers, WARM_UP_S, seed + 1000))
        cpu, own = tree_cpu_seconds(process.pid), own_cpu_seconds()
        created, other = asyncio.run(load(url, headers, seconds, seed))
        cpu, own = tree_cpu_seconds(process.pid) - cpu, own_cpu_seconds() - own
        batches = None if variant.server == "bare" else asyncio.run(relay_batches(database_url))
    return {
        "per_s": round(created / seconds, 1),
        "cpu_ms_per_request": round(cpu * 1000 / created, 3) if created else None,
        "client_cpu_ms_per_request": round(own * 1000 / created, 3) if created else None,
        "created": created,
        "other_answers": other,
        **({} if batches is None else {"events_per_relay_batch": batches}),
    }


async def relay_batches(database_url: str) -> float | None:
    """Events the relay published per cycle over the run, warm-up included: a cycle marks its rows sent at one
    time."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = text("SELECT count(*), count(DISTINCT sent_at) FROM outbox WHERE sent_at IS NOT NULL")
            events, batches = (await conn.execute(query)).one()
    finally:
        await engine.dispose()
    return round(events / batches, 2) if batches else None


def summary(rounds: list[dict[str, dict[str, Any]]], names: list[str]) -> dict[str, Any]:
    """Per variant: the median over rounds of its figures and of its ratios to the bare endpoint of the same round."""
    out: dict[str, Any] = {}
    for name in names:
        per_s = [r[name]["per_s"] for r in rounds]
        cpu = [r[name]["cpu_ms_per_request"] for r in rounds]
        entry: dict[str, Any] = {
            "per_s": round(statistics.median(per_s), 1),
            "cpu_ms_per_request": round(statistics.median(cpu), 3),
        }
        if name != "bare":
            entry["throughput_ratio_bare_over_ours"] = round(
                statistics.median(r["bare"]["per_s"] / r[name]["per_s"] for r in rounds), 2
            )
            entry["cpu_ratio_ours_over_bare"] = round(
                statistics.median(r[name]["cpu_ms_per_request"] / r["bare"]["cpu_ms_per_request"] for r in rounds), 2
            )
        out[name] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured load per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="bare,uvicorn,granian", help="comma-separated, bare always included")
    parser.add_argument(
        "--baseline-ref", help="adds the `head` variant: the referrals service and shared package at this git ref"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    known = {"bare": Variant("bare", "bare"), "uvicorn": Variant("uvicorn"), "granian": Variant("granian", "granian")}
    names = ["bare", *(n for n in args.variants.split(",") if n and n != "bare")]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown variants: {unknown}")
    variants = [known[n] for n in names]
    work = ROOT / "var" / "bench" / f"ingest-candidates-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES))
    rounds: list[dict[str, dict[str, Any]]] = []
    started = datetime.now(UTC).isoformat()
    with tempfile.TemporaryDirectory() as baseline:
        if args.baseline_ref:
            variants.append(
                Variant(
                    "head",
                    pythonpath=pythonpath(extract(args.baseline_ref, HEAD_SOURCES, Path(baseline)), HEAD_SOURCES),
                )
            )
        try:
            with EmbeddedBroker(log_path=work / "broker.log") as broker:
                for i in range(args.rounds):
                    order = variants if i % 2 == 0 else [variants[0], *reversed(variants[1:])]
                    figures = {}
                    for variant in order:
                        figures[variant.name] = measure(variant, pg, broker.bootstrap_servers, args.seconds, i, work)
                        print(f"round {i + 1} {variant.name}: {figures[variant.name]}", flush=True)
                    rounds.append(figures)
        finally:
            pg.drop_all()
    result = {
        "started": started,
        "seconds": args.seconds,
        "concurrency": CONCURRENCY,
        "warm_up_s": WARM_UP_S,
        "baseline_ref": args.baseline_ref,
        "rounds": rounds,
        "median": summary(rounds, [v.name for v in variants]),
        "target": "throughput_ratio_bare_over_ours <= 2",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, entry in result["median"].items():
        print(f"{name:<10} " + ", ".join(f"{k}={v}" for k, v in entry.items()))
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
