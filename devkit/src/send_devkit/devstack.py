"""Runs the whole system on one machine: the embedded broker and the three services as processes.

    python -m send_devkit.devstack            # what `make run` does
    python -m send_devkit.devstack --referrals-port 9001 --waitlists-port 9002 --notifications-port 9003 \
        --broker-port 19092 --smtp-port 2025     # or SEND_REFERRALS_PORT=9001 ... make run

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from send_devkit.broker import EmbeddedBroker
from send_devkit.smtp_sink import SmtpSink
from send_devkit.tokens import mint_token

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
            **self._public_links(),
            **self.extra_env,
        }

    def _public_links(self) -> dict[str, str]:
        """Where links in emails and webhooks point: at this stack's own ports, whichever were chosen."""
        if "referrals" not in self.ports:
            return {}
        referrals = self.url("referrals")
        return {
            "REFERRAL_URL_TEMPLATE": f"{referrals}/v1/referrals/{{referral_id}}",
            "REFERRAL_PAGE_URL_TEMPLATE": f"{referrals}/referrals/{{referral_id}}",
            "FAMILY_VIEW_URL_TEMPLATE": f"{referrals}/family/{{token}}",
        }

    def load_demo_once(self, progress: Callable[[int, int], None] | None = None) -> str | None:
        """On the first start of an empty store, load a year of demo history through the referrals API."""
        marker = self.var_dir / ".demo-loaded"
        if marker.exists():
            return None
        from send_devkit.demo import load

        submitted, moves = asyncio.run(
            load(self.url("referrals"), notifications_url=self.url("notifications"), progress=progress, family_links=2)
        )
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
    lines.append(
        f"  {'family view':<14} {stack.url('referrals')}/family/<token>   (the demo emails two families their private "
        f"link: the .eml to family-1@families.example in {stack.var_dir / 'mail'}/)"
    )
    lines += [
        f"  {'kafka broker':<14} {stack.broker.bootstrap_servers}   (topics: referrals.events.v1, waitlists.alerts.v1)",
        f"  {'email':<14} {stack.var_dir / 'mail'}/   (a local SMTP sink on port {stack.mail_sink.port if stack.mail_sink else '-'})",
        f"  {'logs':<14} {stack.log_dir}/",
        "",
        "  A token for the API docs' Authorize button:",
        "    .venv/bin/send-token --org org-riverside-primary --role referrer   (--list: every organisation)",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


class _Progress:
    """``loading demo history: 120/240 referrals`` on one line that counts up on a terminal; every tenth
    otherwise (a log file gets ten lines, not 240)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.tty = sys.stdout.isatty()
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        tenth = done * 10 // total
        if self.tty:
            print(f"\r{self.what}: {done}/{total} referrals", end="\n" if done == total else "", flush=True)
        elif tenth != self.shown:
            self.shown = tenth
            print(f"{self.what}: {done}/{total} referrals", flush=True)


def _port(name: str, default: int) -> int:
    return int(os.environ.get(f"SEND_{name.upper()}_PORT", default))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--var-dir", type=Path, default=Path("var"))
    parser.add_argument("--broker-port", type=int, default=_port("broker", 9092), help="also: SEND_BROKER_PORT")
    parser.add_argument("--smtp-port", type=int, default=_port("smtp", 1025), help="also: SEND_SMTP_PORT")
    for service, port in SERVICES.items():
        parser.add_argument(
            f"--{service}-port", type=int, default=_port(service, port), help=f"also: SEND_{service.upper()}_PORT"
        )
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
    ports = {service: getattr(args, f"{service}_port") for service in SERVICES}
    stack = DevStack(var_dir=args.var_dir, broker_port=args.broker_port, ports=ports, smtp_port=args.smtp_port)
    try:
        print(f"starting the broker and {', '.join(ports)} (logs in {stack.log_dir}/)...", flush=True)
        stack.start()
        if not args.no_demo and not (stack.var_dir / ".demo-loaded").exists():
            print("loading a year of demo history through the referrals API (first run only)...", flush=True)
            loaded = stack.load_demo_once(_Progress("loading demo history"))
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
