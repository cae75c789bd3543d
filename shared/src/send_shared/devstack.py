"""Runs the whole system on one machine: the embedded broker and the three services as processes.

    python -m send_shared.devstack            # what `make run` does

Data lives in SQLite files under ``./var/`` and survives a restart; the embedded broker
keeps topics in memory only, so a restart begins with empty topics (every service's
outbox and projections are kept). Ctrl-C stops every process this started.
Services are started by module name, never imported: this package imports no service.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from send_shared.auth import mint_token
from send_shared.broker import EmbeddedBroker
from send_shared.smtp_sink import SmtpSink

SEEDED_ORGANISATION = "org-northshire-la"  # in the referrals service's seed directory

SERVICES = {"referrals": 8001, "waitlists": 8002, "notifications": 8003}


@dataclass
class DevStack:
    var_dir: Path
    broker_port: int | None = 9092
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICES))
    extra_env: dict[str, str] = field(default_factory=dict)
    database_urls: dict[str, str] = field(default_factory=dict)
    smtp_port: int | None = 1025
    broker: EmbeddedBroker | None = None
    mail_sink: SmtpSink | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def env_for(self, service: str) -> dict[str, str]:
        assert self.broker is not None
        database = (
            self.database_urls.get(service) or f"sqlite+aiosqlite:///{(self.var_dir / f'{service}.db').resolve()}"
        )
        return {
            **os.environ,
            "DATABASE_URL": database,
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.ports[service]),
            "PYTHONUNBUFFERED": "1",
            "SMTP_PORT": str(self.mail_sink.port if self.mail_sink else 1025),
            "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",  # local development receivers live on loopback
            **self.extra_env,
        }

    def load_demo_once(self) -> str | None:
        """On the first start of an empty store, load a year of demo history through the referrals API."""
        marker = self.var_dir / ".demo-loaded"
        if marker.exists():
            return None
        from send_shared.demo import load

        submitted, moves = asyncio.run(load(self.url("referrals"), notifications_url=self.url("notifications")))
        marker.write_text(f"{submitted} referrals, {moves} moves\n")
        return f"{submitted} referrals and {moves} status changes over the past year"

    def start(self, timeout: float = 90.0) -> DevStack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.broker = EmbeddedBroker(self.broker_port, log_path=self.log_dir / "broker.log").start()
        self.mail_sink = SmtpSink(self.var_dir / "mail", port=self.smtp_port or 0)
        self.mail_sink.start()
        for service in self.ports:
            subprocess.run(
                [sys.executable, "-m", service, "migrate"],
                env=self.env_for(service),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        for service in self.ports:
            self.start_service(service)
        self.wait_ready(timeout)
        self.wait_for_directory(timeout)
        return self

    def start_service(self, service: str) -> None:
        log = open(self.log_dir / f"{service}.log", "ab")  # noqa: SIM115 - the child owns it
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", service, "serve"],
            env=self.env_for(service),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(self.ports)
        while waiting:
            for service in sorted(waiting):
                process = self.processes[service]
                if process.poll() is not None:
                    raise RuntimeError(f"{service} exited with {process.returncode}; see {self.log_dir}/{service}.log")
                if _answers(f"{self.url(service)}/readyz"):
                    waiting.discard(service)
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {', '.join(sorted(waiting))}")
            time.sleep(0.2)

    def wait_for_directory(self, timeout: float) -> None:
        """Ready is not yet usable: the consumers refuse an organisation until the directory's events have
        reached them (a second or two after a first start). Wait until a seeded organisation is served."""
        probes = {"waitlists": "/v1/dashboard/scopes", "notifications": "/v1/endpoints"}
        token = {"Authorization": f"Bearer {mint_token(SEEDED_ORGANISATION, 'admin')}"}
        deadline = time.monotonic() + timeout
        for service, path in probes.items():
            if service not in self.ports:
                continue
            while not _answers(f"{self.url(service)}{path}", token):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{service} did not learn the directory in {timeout}s")
                time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.mail_sink is not None:
            self.mail_sink.stop()
            self.mail_sink = None

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _answers(url: str, headers: dict[str, str] | None = None) -> bool:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(url)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:  # noqa: S310 - loopback http only, checked above
            return bool(response.status == 200)
    except OSError:
        return False


def _banner(stack: DevStack) -> str:
    assert stack.broker is not None
    lines = ["", "SEND referral coordination is running:", ""]
    for service in stack.ports:
        base = stack.url(service)
        lines.append(
            f"  {service:<14} {base}/docs   (health {base}/healthz, ready {base}/readyz, metrics {base}/metrics)"
        )
    ops_token = mint_token(SEEDED_ORGANISATION, "ops", ttl_seconds=12 * 3600)
    lines.append(f"  {'dashboard':<14} {stack.url('waitlists')}/dashboard/#token={ops_token}")
    lines += [
        f"  {'kafka broker':<14} {stack.broker.bootstrap_servers}   (topics: referrals.events.v1, waitlists.alerts.v1)",
        f"  {'email':<14} {stack.var_dir / 'mail'}/   (a local SMTP sink on port {stack.mail_sink.port if stack.mail_sink else '-'})",
        f"  {'logs':<14} {stack.log_dir}/",
        "",
        "  A token for the API docs' Authorize button:",
        "    .venv/bin/send-token --org org-riverside-primary --role referrer",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--var-dir", type=Path, default=Path("var"))
    parser.add_argument("--broker-port", type=int, default=9092)
    parser.add_argument(
        "--no-demo", action="store_true", default=os.environ.get("DEMO_DATA", "1") == "0",
        help="do not load demo history into an empty store (also: DEMO_DATA=0)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    stopping = False

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    stack = DevStack(var_dir=args.var_dir, broker_port=args.broker_port)
    try:
        stack.start()
        if not args.no_demo:
            print("loading demo history through the referrals API (first run only)...", flush=True)
            loaded = stack.load_demo_once()
            if loaded:
                print(f"demo history loaded: {loaded}", flush=True)
        print(_banner(stack), flush=True)
        while not stopping:
            for service, process in stack.processes.items():
                if process.poll() is not None:
                    log_file = stack.log_dir / f"{service}.log"
                    print(
                        f"{service} stopped unexpectedly (exit {process.returncode}); see {log_file}", file=sys.stderr
                    )
                    stopping = True
            time.sleep(0.3)
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        stack.stop()
        sys.exit(1)
    print("\nstopping...", flush=True)
    stack.stop()
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
