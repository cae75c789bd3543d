"""The notifications service as a real process, killed with SIGKILL mid-delivery and started again:
nothing lost, and each message succeeds once in the service's books (a repeat reaches the receiver
only with the same webhook-id, for it to discard)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from send_devkit.ports import free_port
from send_devkit.webhook_receiver import Receiver
from send_shared.events.envelope import encode_kafka
from send_shared.events.topics import Topics
from send_shared.kafka import OutgoingRecord, ensure_topics, new_producer, publish_all

from .conftest import bearer, referral_event, seed_directory, succeeded_in_books

ORG = f"org-camhs-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "notifications", "serve"], env={**os.environ, **env},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("notifications did not become ready")


async def publish(bootstrap: str, count: int, org: str = ORG, prefix: str = "kill") -> list[str]:
    """``count`` new referrals for ``org`` put on the referral topic, as the referrals service would; their
    event ids."""
    await ensure_topics(bootstrap, {Topics.REFERRAL_EVENTS: 4})
    events = [
        referral_event(f"{prefix}-{uuid.uuid4().hex[:8]}", 1, "submitted", receiver_org=org) for _ in range(count)
    ]
    producer = new_producer(bootstrap, client_id=f"{prefix}-test")
    await producer.start()
    try:
        records = []
        for e in events:
            headers, value = encode_kafka(e)
            records.append(OutgoingRecord(Topics.REFERRAL_EVENTS, (e.subject or "").encode(), value, headers))
        await publish_all(producer, records)
    finally:
        await producer.stop()
    return [e.id for e in events]


def test_killed_mid_delivery_and_restarted(
    postgres_server: object, kafka_bootstrap: str, receiver: Receiver, tmp_path: Path
) -> None:
    database_url = postgres_server.new_database("notif_kill")  # type: ignore[attr-defined]
    port = free_port()
    env = {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "HTTP_PORT": str(port),
           "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true", "EMAIL_ENABLED": "false", "LOG_LEVEL": "WARNING"}  # fmt: skip
    subprocess.run([sys.executable, "-m", "notifications", "migrate"], env={**os.environ, **env}, check=True)
    seed_directory(database_url, ORG)
    process = start(env, tmp_path / "notifications.log")
    try:
        wait_ready(port)
        created = httpx.post(f"http://127.0.0.1:{port}/v1/endpoints", headers=bearer(ORG),
                             json={"url": f"{receiver.base}/kill", "event_types": ["uk.send.referral.*"]})  # fmt: skip
        assert created.status_code == 201, created.text
        receiver.secrets["/kill"] = created.json()["secret"]
        receiver.script["/kill"] = [("sleep", 0.4)] * 200
        event_ids = asyncio.run(publish(kafka_bootstrap, 20))
        deadline = time.monotonic() + 60
        while len(receiver.received) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # mid-delivery: requests are in flight
        process.wait(timeout=10)
        process = start(env, tmp_path / "notifications.log")
        wanted = {f"msg_{e}" for e in event_ids}
        deadline = time.monotonic() + 90
        while not wanted <= {r.webhook_id for r in receiver.successes("/kill")} and time.monotonic() < deadline:
            time.sleep(0.1)
        # A delivery in flight at the kill reached the receiver but was never recorded: the restarted service sends
        # it again (the receiver sees the same webhook-id) and records it then.
        while succeeded_in_books(database_url) != sorted(event_ids) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=20)
    got = [r.webhook_id for r in receiver.successes("/kill")]
    assert wanted <= set(got), "every message arrived"
    assert set(got) <= wanted, "nothing else arrived"
    assert all(r.verified for r in receiver.received)

    assert succeeded_in_books(database_url) == sorted(event_ids), (
        "each message succeeded exactly once in the service's books"
    )
    print(f"receiver saw {len(got)} successful requests for {len(wanted)} messages ({len(got) - len(wanted)} repeats)")
