"""Scale-out, shown rather than claimed: one, then two processes of every service against the same
PostgreSQL databases and the same broker.

For each process count N, on fresh databases and a fresh broker:
- N processes of each service, each on its own HTTP port with the same environment: the consumers of a
  service join one group and share its topics' partitions; the outbox relays share one table through their
  row locks; every process also serves the API.
- A closed loop of ``--clients`` submitters, spread round-robin over the referrals processes (the client
  stands in for a load balancer), submits referrals for ``--seconds``; then we wait until the waitlists
  projection holds every answered referral and every webhook has arrived at a local receiver.
- Per process, from its own ``/metrics`` and ``/proc``: API referrals answered, consumer messages by group,
  outbox events published, and CPU seconds; totals per second of load; and CPU per referral of every
  process group (each service's processes, the broker, PostgreSQL's backends and shared processes, all in),
  over the load and its drain.

On this 2-core machine the load generator, the broker and PostgreSQL share the cores with the services,
so two processes show how the work is shared, not twice the throughput: see bench/README.md,
"Scale-out", for the per-process figures and the model for ten times the load.

    python bench/scale_out.py [--seconds 15] [--clients 16] [--processes 1,2] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import NO_RATE_LIMITS, CpuMeter, cpu_seconds, referral_body

from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.testing import LOCAL_POSTGRES, PostgresServer
from send_devkit.tokens import mint_token
from send_devkit.webhook_receiver import Receiver
from send_shared.db import create_engine

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("referrals", "waitlists", "notifications")


def metric_totals(base: str) -> dict[str, float]:
    """Counters of one process that show its share of the work, summed over their labels (by consumer group
    for the consumers)."""
    found: Counter[str] = Counter()
    body = httpx.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "consumer_messages_total" and sample.labels.get("outcome") == "processed":
                found[f"consumed:{sample.labels['group']}"] += sample.value
            elif sample.name == "outbox_published_events_total":
                found["published"] += sample.value
    return dict(found)


def start_extra(stack: DevStack, service: str, n: int) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {**stack.env_for(service), "HTTP_PORT": str(port)}
    log = (stack.log_dir / f"{service}-{n}.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", service, "serve"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    return f"http://127.0.0.1:{port}", process


def wait_ready(bases: list[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    for base in bases:
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(base)
            time.sleep(0.2)


async def closed_loop(bases: list[str], clients: int, seconds: float) -> tuple[Counter[str], list[str]]:
    """Each client submits one referral after another to its own referrals process; answered per process."""
    token = {"authorization": f"Bearer {mint_token('org-riverside-primary', 'referrer')}"}
    answered: Counter[str] = Counter()
    ids: list[str] = []
    deadline = time.monotonic() + seconds

    async def client(base: str, seed: int) -> None:
        rng = random.Random(f"scale-{seed}-{time.time_ns()}")
        async with httpx.AsyncClient(timeout=30) as http:
            while time.monotonic() < deadline:
                response = await http.post(f"{base}/v1/referrals", json=referral_body(rng),
                                           headers={**token, "idempotency-key": uuid.uuid4().hex})  # fmt: skip
                if response.status_code == 201:
                    answered[base] += 1
                    ids.append(response.json()["id"])

    await asyncio.gather(*(client(base, i) for i, base in zip(range(clients), itertools.cycle(bases), strict=False)))
    return answered, ids


async def projected_count(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM referrals"))).scalar_one())
    finally:
        await engine.dispose()


def one_run(pg: PostgresServer, processes: int, seconds: float, clients: int, work: Path) -> dict[str, Any]:
    urls = {name: pg.new_database(f"bench_scale_{name}") for name in SERVICES}
    stack = DevStack(var_dir=work / f"n{processes}", broker_port=free_port(), ports={s: free_port() for s in SERVICES},
                     database_urls=urls, smtp_port=free_port(),
                     extra_env={"LOG_LEVEL": "WARNING", "EMAIL_ENABLED": "false", **NO_RATE_LIMITS})  # fmt: skip
    receiver = Receiver().start()
    bases: dict[str, list[str]] = {s: [] for s in SERVICES}
    pids: dict[str, int] = {}
    try:
        stack.start()
        for service in SERVICES:
            bases[service].append(stack.url(service))
            pids[stack.url(service)] = stack.processes[service].pid
            for n in range(1, processes):
                base, process = start_extra(stack, service, n)
                stack.processes[f"{service}-{n}"] = process  # stopped with the stack
                bases[service].append(base)
                pids[base] = process.pid
        wait_ready([b for s in SERVICES for b in bases[s]])
        camhs = {"authorization": f"Bearer {mint_token('org-northshire-camhs', 'receiver')}"}
        created = httpx.post(f"{stack.url('notifications')}/v1/endpoints", headers=camhs,
                             json={"url": f"{receiver.base}/scale", "event_types": ["uk.send.referral.submitted.v1"]})  # fmt: skip
        receiver.secrets["/scale"] = created.json()["secret"]
        # Warm-up, not measured: one referral all the way, while the groups settle their members.
        asyncio.run(closed_loop(bases["referrals"][:1], 1, 0.01))
        deadline = time.monotonic() + 120
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)
        warm = len(receiver.received)
        with CpuMeter(stack, pg.admin_url, urls) as meter:
            before = {base: (metric_totals(base), cpu_seconds(pid)) for base, pid in pids.items()}
            cpu_before = meter.sample()
            started = time.monotonic()
            answered, ids = asyncio.run(closed_loop(bases["referrals"], clients, seconds))
            load_ended = time.monotonic()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                projected = asyncio.run(projected_count(urls["waitlists"]))
                if projected >= len(ids) + warm and len(receiver.received) >= len(ids) + warm:
                    break
                time.sleep(0.2)
            drained = time.monotonic()
            after = {base: (metric_totals(base), cpu_seconds(pid)) for base, pid in pids.items()}
            spent = CpuMeter.spent(cpu_before, meter.sample())
        projected = asyncio.run(projected_count(urls["waitlists"]))
    finally:
        receiver.stop()
        stack.stop()
    per_process: dict[str, list[dict[str, Any]]] = {}
    for service in SERVICES:
        for base in bases[service]:
            (m0, c0), (m1, c1) = before[base], after[base]
            work_done = {k: int(m1.get(k, 0) - m0.get(k, 0)) for k in sorted(set(m0) | set(m1))}
            per_process.setdefault(service, []).append({
                "api_referrals": answered.get(base, 0) if service == "referrals" else None,
                **{k: v for k, v in work_done.items() if v},
                "cpu_s": round(c1 - c0, 2),
            })  # fmt: skip
    total = len(ids)
    by_group: Counter[str] = Counter()
    for group, seconds in spent.items():  # a service's extra processes ("referrals-1") count with it
        by_group[group.split("-")[0]] += seconds
    return {
        "processes_per_service": processes,
        "clients": clients,
        "load_seconds": round(load_ended - started, 1),
        "referrals": total,
        "referrals_per_s": round(total / (load_ended - started), 1),
        "referrals_per_s_per_api_process": round(total / (load_ended - started) / processes, 1),
        "drained_after_load_s": round(drained - load_ended, 1),
        "projected_all": projected >= total + warm,
        "webhooks_all": len(receiver.received) >= total + warm,
        "cpu_ms_per_referral": {group: round(seconds * 1000 / max(1, total), 2) for group, seconds in by_group.items()},
        "per_process": per_process,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    pg = PostgresServer(os.environ.get("LOCAL_POSTGRES_URL", LOCAL_POSTGRES))
    runs = []
    try:
        with TemporaryDirectory(prefix="bench-scale-") as work:
            for n in (int(x) for x in args.processes.split(",")):
                runs.append(one_run(pg, n, args.seconds, args.clients, Path(work)))
                print(json.dumps(runs[-1], indent=2), flush=True)
    finally:
        pg.drop_all()
    code = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "code": code.stdout.strip(),
              "cores": os.cpu_count(), "runs": runs}  # fmt: skip
    out = args.out or ROOT / "bench" / "results" / f"scale-out-{datetime.now(UTC):%Y-%m-%d}" / "result.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
