"""The notifications service as a real process while its PostgreSQL connections are terminated again and
again (``pg_terminate_backend``) during delivery: workers that fail are restarted with fresh resources,
and every delivery is made."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from send_devkit.ports import free_port
from send_devkit.webhook_receiver import Receiver
from send_shared.db import create_engine

from .conftest import bearer, seed_directory, succeeded_in_books
from .test_killed_mid_delivery import publish, start, wait_ready

ORG = f"org-camhs-{uuid.uuid4().hex[:6]}"


async def terminate_connections(admin_url: str, database: str) -> int:
    engine = create_engine(admin_url)
    try:
        async with engine.connect() as conn:
            killed = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
            return len(killed.all())
    finally:
        await engine.dispose()


def test_every_delivery_is_made_while_database_connections_are_terminated(
    postgres_server: object, kafka_bootstrap: str, tmp_path: Path
) -> None:
    receiver = Receiver().start()
    database_url = postgres_server.new_database("notif_faults")  # type: ignore[attr-defined]
    database = make_url(database_url).database or ""
    admin_url = postgres_server.admin_url  # type: ignore[attr-defined]
    port = free_port()
    env = {"DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "HTTP_PORT": str(port),
           "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true", "EMAIL_ENABLED": "false", "LOG_LEVEL": "WARNING",
           "KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}  # fmt: skip
    subprocess.run([sys.executable, "-m", "notifications", "migrate"], env={**os.environ, **env}, check=True)
    seed_directory(database_url, ORG)
    process = start(env, tmp_path / "notifications.log")
    faults = threading.Event()
    terminated: list[int] = []

    def keep_terminating() -> None:
        while not faults.is_set():
            terminated.append(asyncio.run(terminate_connections(admin_url, database)))
            faults.wait(0.4)

    try:
        wait_ready(port)
        created = httpx.post(f"http://127.0.0.1:{port}/v1/endpoints", headers=bearer(ORG),
                             json={"url": f"{receiver.base}/faults", "event_types": ["uk.send.referral.*"]})  # fmt: skip
        assert created.status_code == 201, created.text
        receiver.secrets["/faults"] = created.json()["secret"]
        receiver.script["/faults"] = [("sleep", 0.05)] * 1000
        killer = threading.Thread(target=keep_terminating, daemon=True)
        killer.start()
        event_ids = asyncio.run(publish(kafka_bootstrap, 60, ORG, "fault"))
        time.sleep(12)  # deliveries under way while connections keep dying
        faults.set()
        killer.join(10)
        wanted = {f"msg_{e}" for e in event_ids}
        deadline = time.monotonic() + 90
        while not wanted <= {r.webhook_id for r in receiver.successes("/faults")} and time.monotonic() < deadline:
            time.sleep(0.2)
        # A success whose recording lost its connection is sent again at its retry and recorded then.
        while succeeded_in_books(database_url) != sorted(event_ids) and time.monotonic() < deadline:
            time.sleep(0.5)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        ready_deadline = time.monotonic() + 90  # a worker that crashed in a row is ready after 30 s of running
        while ready.status_code != 200 and time.monotonic() < ready_deadline:
            time.sleep(0.5)
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    finally:
        faults.set()
        process.terminate()
        process.wait(timeout=20)
        receiver.stop()
    assert sum(terminated) > 10, f"the test terminated too few connections to mean anything: {terminated}"
    got = {r.webhook_id for r in receiver.successes("/faults")}
    assert wanted <= got, f"{len(wanted - got)} of {len(wanted)} deliveries never made"
    assert ready.status_code == 200, ready.text

    assert succeeded_in_books(database_url) == sorted(event_ids), "each message succeeded exactly once in the books"
    print(f"connections terminated: {sum(terminated)} over {len(terminated)} rounds")
