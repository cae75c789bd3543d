"""Issue #19: CPU per signed webhook request of the notifications sender, httpx against aiohttp, side by side.

- httpx: the sender as it was before #19 (``bench/httpx_webhook_sender.py``: httpx 0.28, pinned-address network
  backend, one deadline, no redirects, 4 KiB bounded read);
- aiohttp: ``notifications.adapters.webhook_client.WebhookClient`` (pinned-address resolver, the same rules).

Both send to ``hooks.bench``, which the (shared) resolver answers with 127.0.0.1, so each attempt runs the SSRF
check and connects to the checked address with the name in Host and SNI. A receiver in another process (uvicorn
with httptools and uvloop, a raw ASGI app reading the body and answering 204) listens over HTTP and over HTTPS
(a throwaway CA and a certificate for ``hooks.bench``). This process sends ``--requests`` signed POSTs of a
referral CloudEvent with ``--concurrency`` tasks, after ``--warmup`` unmeasured ones on the same client (one
long-lived client per run, as the service has), and measures its own CPU seconds (``time.process_time``) and
the wall time. Each repeat runs, per scheme, httpx then aiohttp; the figures are the medians over repeats.

Run (heavy: under the lock):
    flock /tmp/heavy.lock .venv/bin/python bench/webhook_clients.py [--requests 5000] [--concurrency 8]
        [--repeats 3] [--loop uvloop|asyncio] [--out bench/results/webhook-clients-2026-12-07/result.json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from httpx_webhook_sender import HttpxWebhookClient

from notifications.adapters.webhook_client import Attempt, WebhookClient, new_secret
from send_shared.events.schemas import ReferralEventV1, ReferralStatus, referral_event_type
from send_shared.events.webhooks import StructuredEvent

NAME = "hooks.bench"
DEFAULT_OUT = Path(__file__).parent / "results" / "webhook-clients-2026-12-07" / "result.json"


class Sender(Protocol):
    async def send(
        self, url: str, *, webhook_id: str, body: str, secrets_in_use: list[str], now: datetime
    ) -> Attempt: ...

    async def close(self) -> None: ...


async def pinned_resolver(host: str) -> list[str]:
    return ["127.0.0.1"] if host == NAME else []


def httpx_sender(context: ssl.SSLContext) -> Sender:
    return HttpxWebhookClient(
        require_https=False, allow_private=True, timeout=10.0, resolver=pinned_resolver, ssl_context=context
    )


def aiohttp_sender(context: ssl.SSLContext) -> Sender:
    return WebhookClient(
        require_https=False, allow_private=True, timeout=10.0, resolver=pinned_resolver, ssl_context=context
    )


CLIENTS: dict[str, Callable[[ssl.SSLContext], Sender]] = {"httpx": httpx_sender, "aiohttp": aiohttp_sender}


def webhook_body() -> str:
    """A referral event as an endpoint receives it (the dispatcher's compact JSON)."""
    now = datetime.now(UTC)
    data = ReferralEventV1(
        referral_id="ref-01JEXAMPLE7Q3M5V8K2D", version=3, status=ReferralStatus("accepted"),
        previous_status=ReferralStatus("submitted"), child_ref="c" * 64, referrer_org_id="org-school-100234",
        service_id="svc-camhs-core-la-northshire", receiving_org_id="org-camhs-northshire", urgency="urgent",
        primary_need="SEMH", secondary_need="SLCN", occurred_at=now - timedelta(minutes=5), recorded_at=now,
    )  # fmt: skip
    event = StructuredEvent[dict[str, Any]](
        id="0193a1c2-7f4e-7b9a-8c1d-2e3f4a5b6c7d", source="/send/referrals", type=referral_event_type("accepted"),
        time=now, subject=data.referral_id, referralversion="3",
        referrallink="https://referrals.example.gov.uk/v1/referrals/ref-01JEXAMPLE7Q3M5V8K2D?token=" + "t" * 43,
        data=data.model_dump(mode="json"),
    )  # fmt: skip
    return json.dumps(event.model_dump(mode="json", exclude_none=True), separators=(",", ":"))


# --- the receiver (another process) ---------------------------------------------------------------------------


async def receiver_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def serve(port: int, certfile: str | None, keyfile: str | None) -> None:
    import uvicorn

    uvicorn.run(
        receiver_app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", lifespan="off",
        log_level="warning", access_log=False, ssl_certfile=certfile, ssl_keyfile=keyfile,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def issue_certificate(folder: Path) -> tuple[Path, Path, bytes]:
    """A throwaway CA and a server certificate for ``NAME`` signed by it: (cert file, key file, CA PEM)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem", ca.public_bytes(serialization.Encoding.PEM)


@contextmanager
def receivers() -> Iterator[tuple[dict[str, str], ssl.SSLContext]]:
    """Starts the HTTP and HTTPS receivers; yields their base URLs and a context trusting their CA."""
    with tempfile.TemporaryDirectory() as folder:
        certfile, keyfile, ca_pem = issue_certificate(Path(folder))
        plain, tls = free_port(), free_port()
        me = [sys.executable, __file__, "--serve"]
        processes = [
            subprocess.Popen([*me, str(plain)]),
            subprocess.Popen([*me, str(tls), "--certfile", str(certfile), "--keyfile", str(keyfile)]),
        ]
        try:
            wait_for(plain)
            wait_for(tls)
            bases = {"http": f"http://{NAME}:{plain}/hook", "https": f"https://{NAME}:{tls}/hook"}
            yield bases, ssl.create_default_context(cadata=ca_pem.decode())
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)


# --- the sender (this process) --------------------------------------------------------------------------------


async def drive(sender: Sender, url: str, count: int, concurrency: int, body: str, secret: str) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    numbers = itertools.count()

    async def worker() -> None:
        while (i := next(numbers)) < count:
            attempt = await sender.send(
                url, webhook_id=f"msg_{i}", body=body, secrets_in_use=[secret], now=datetime.now(UTC)
            )
            outcomes[str(attempt.status_code) if attempt.error is None else f"error: {attempt.error[:80]}"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


async def one_run(
    make: Callable[[ssl.SSLContext], Sender], context: ssl.SSLContext, url: str, args: argparse.Namespace, body: str
) -> dict[str, Any]:
    sender = make(context)
    secret = new_secret()
    try:
        warm = await drive(sender, url, args.warmup, args.concurrency, body, secret)
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        outcomes = await drive(sender, url, args.requests, args.concurrency, body, secret)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await sender.close()
    if set(outcomes) != {"204"} or set(warm) != {"204"}:
        raise SystemExit(f"not every request was answered 204: {dict(warm)} {dict(outcomes)}")
    return {
        "requests": args.requests,
        "cpu_s": round(cpu, 4),
        "cpu_us_per_request": round(cpu / args.requests * 1e6, 1),
        "wall_s": round(wall, 4),
        "requests_per_s": round(args.requests / wall, 1),
    }


def runner(loop: str) -> asyncio.Runner:
    if loop == "uvloop":
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="uvloop: as uvicorn runs")
    parser.add_argument("--schemes", default="http,https")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certfile", help=argparse.SUPPRESS)
    parser.add_argument("--keyfile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.certfile, args.keyfile)
        return
    schemes = args.schemes.split(",")
    body = webhook_body()
    runs: list[dict[str, Any]] = []
    with receivers() as (bases, context):
        for repeat, scheme, client in itertools.product(range(1, args.repeats + 1), schemes, CLIENTS):
            with runner(args.loop) as r:
                figures = r.run(one_run(CLIENTS[client], context, bases[scheme], args, body))
            runs.append({"repeat": repeat, "scheme": scheme, "client": client, **figures})
            print(f"  repeat {repeat} {scheme:5} {client:7} {figures}", flush=True)
    summary = summarise(runs, schemes)
    result = {
        "what": "CPU of the sending process per signed webhook POST (204 receiver in another process), "
        "httpx (sender before #19) vs aiohttp (WebhookClient), side by side in one run",
        "command": " ".join(["bench/webhook_clients.py", *sys.argv[1:]]),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "repeats": args.repeats,
            "loop": args.loop,
            "body_bytes": len(body.encode()),
            "secrets": 1,
        },
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            **{name: version(name) for name in ("httpx", "httpcore", "anyio", "aiohttp", "uvloop", "uvicorn")},
        },
        "runs": runs,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(summary)
    print(f"written to {args.out}")


def summarise(runs: list[dict[str, Any]], schemes: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for scheme in schemes:
        per_client = {}
        for client in CLIENTS:
            mine = [r for r in runs if r["scheme"] == scheme and r["client"] == client]
            per_client[client] = {
                "cpu_us_per_request_median": round(statistics.median(r["cpu_us_per_request"] for r in mine), 1),
                "cpu_us_per_request_all": [r["cpu_us_per_request"] for r in mine],
                "requests_per_s_median": round(statistics.median(r["requests_per_s"] for r in mine), 1),
            }
        ratios = [
            h["cpu_us_per_request"] / a["cpu_us_per_request"]
            for h, a in zip(
                (r for r in runs if r["scheme"] == scheme and r["client"] == "httpx"),
                (r for r in runs if r["scheme"] == scheme and r["client"] == "aiohttp"),
                strict=True,
            )
        ]
        summary[scheme] = {
            **per_client,
            "cpu_ratio_httpx_over_aiohttp_per_repeat": [round(x, 2) for x in ratios],
            "cpu_ratio_httpx_over_aiohttp_median": round(statistics.median(ratios), 2),
        }
    return summary


def print_table(summary: dict[str, Any]) -> None:
    print(f"\n{'scheme':7} {'client':8} {'CPU µs/request (median)':>24} {'per repeat':>26} {'requests/s':>11}")
    for scheme, figures in summary.items():
        for client in CLIENTS:
            f = figures[client]
            each = ", ".join(f"{x:g}" for x in f["cpu_us_per_request_all"])
            print(
                f"{scheme:7} {client:8} {f['cpu_us_per_request_median']:>24} {each:>26} "
                f"{f['requests_per_s_median']:>11}"
            )
        print(
            f"{scheme:7} httpx/aiohttp CPU per request: {figures['cpu_ratio_httpx_over_aiohttp_median']} "
            f"(per repeat {figures['cpu_ratio_httpx_over_aiohttp_per_repeat']})"
        )


if __name__ == "__main__":
    main()
