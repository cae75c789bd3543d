"""The broker forgets, and nothing is lost: all three services as processes on PostgreSQL, under load.

The embedded broker keeps everything in memory, so stopping it and starting a new one on the same port
is the worst a broker can do: every topic, record and committed offset gone. Submissions and moves keep
coming through the referrals API meanwhile (they need only its database), a webhook endpoint is
subscribed to everything, and readiness is watched from outside. After each loss the services must
notice (readiness red), republish from their event stores and heal (readiness green), so that in the end
every accepted change is in the waitlists projection and reached the endpoint, and none twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import text

from send_devkit.broker import EmbeddedBroker
from send_devkit.demo import nhs_number
from send_devkit.devstack import DevStack
from send_devkit.ports import free_port
from send_devkit.testing import PostgresServer
from send_devkit.tokens import mint_token
from send_devkit.webhook_receiver import Receiver
from send_shared.db import create_engine

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SERVICES = ("referrals", "waitlists", "notifications")
SCHOOL = {"authorization": f"Bearer {mint_token('org-riverside-primary', 'referrer')}"}
CAMHS = {"authorization": f"Bearer {mint_token('org-northshire-camhs', 'receiver')}"}
HEAL_WITHIN = 30.0


@dataclass
class Readiness:
    """Polls every service's /readyz from a thread: (monotonic time, service, status code, body)."""

    stack: DevStack
    seen: list[tuple[float, str, int, dict[str, Any]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Readiness:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._stop.is_set():
                for service in SERVICES:
                    try:
                        response = http.get(f"{self.stack.url(service)}/readyz")
                        self.seen.append((time.monotonic(), service, response.status_code, response.json()))
                    except (httpx.HTTPError, ValueError):
                        self.seen.append((time.monotonic(), service, 0, {}))
                self._stop.wait(0.25)

    def red_between(self, service: str, start: float, end: float) -> bool:
        return any(s == service and code != 200 and start <= t <= end for t, s, code, _ in self.seen)

    def green_from(self, service: str, start: float) -> float | None:
        """When the service was next ready after ``start``."""
        return next((t for t, s, code, _ in self.seen if s == service and t >= start and code == 200), None)


@dataclass
class Load:
    """Submissions (about 10 a second) and the receiving service's moves, through the API, from a thread."""

    stack: DevStack
    accepted: list[tuple[str, int, str]] = field(default_factory=list)  # (referral, version, status) answered 2xx
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        rng = random.Random(7)
        open_referrals: list[tuple[str, int]] = []
        base = self.stack.url("referrals")
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                body = {
                    "service_id": "svc-camhs-core",
                    "child": {"given_name": "Alex", "family_name": "Smith", "date_of_birth": "2014-03-02",
                              "nhs_number": nhs_number(rng)},
                    "primary_need": "SEMH",
                    "reason": "Load test.",
                    "consent": {"given_by": "parent", "given_at": "2026-01-05T10:00:00Z", "scope": "CAMHS"},
                }  # fmt: skip
                created = http.post(
                    f"{base}/v1/referrals", json=body, headers={**SCHOOL, "idempotency-key": secrets.token_hex(8)}
                )
                if created.status_code == 201:
                    self.accepted.append((created.json()["id"], 1, "submitted"))
                    open_referrals.append((created.json()["id"], 1))
                if open_referrals and rng.random() < 0.8:
                    referral_id, version = open_referrals.pop(rng.randrange(len(open_referrals)))
                    status = "acknowledged" if version == 1 else "accepted"
                    moved = http.post(
                        f"{base}/v1/referrals/{referral_id}/status",
                        json={"status": status},
                        headers={**CAMHS, "if-match": f'"{version}"'},
                    )
                    if moved.status_code == 200:
                        self.accepted.append((referral_id, version + 1, status))
                        if version + 1 < 3:
                            open_referrals.append((referral_id, version + 1))
                self._stop.wait(0.1)


@pytest.fixture
def stack(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[DevStack]:
    urls = {service: postgres_server.new_database(f"e2e_{service}") for service in SERVICES}
    ports = {service: free_port() for service in SERVICES}
    env = {
        # A consumer that dies or leaves is replaced sooner in these tests than the production 10 s session.
        "KAFKA_SESSION_TIMEOUT_MS": "3000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "LOG_LEVEL": "INFO",
    }
    with DevStack(var_dir=tmp_path / "var", broker_port=free_port(), ports=ports, smtp_port=free_port(),
                  extra_env=env, database_urls=urls) as running:  # fmt: skip
        running.test_database_urls = urls  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def subscribe(stack: DevStack, receiver: Receiver) -> None:
    endpoint = httpx.post(
        f"{stack.url('notifications')}/v1/endpoints",
        json={"url": f"{receiver.base}/everything", "event_types": ["*"]},
        headers=CAMHS,
    )
    assert endpoint.status_code == 201, endpoint.text
    receiver.secrets["/everything"] = endpoint.json()["secret"]


def restart_broker(stack: DevStack, down_for: float = 2.0) -> tuple[float, float]:
    """Stops the broker and starts an empty one on the same port; returns when it went and came back."""
    assert stack.broker is not None
    port, log = stack.broker.port, stack.log_dir / "broker.log"
    stopped = time.monotonic()
    stack.broker.stop()
    time.sleep(down_for)
    stack.broker = EmbeddedBroker(port, log_path=log).start()
    return stopped, time.monotonic()


def query(stack: DevStack, service: str, sql: str) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        engine = create_engine(stack.test_database_urls[service])  # type: ignore[attr-defined]
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def projected(stack: DevStack) -> set[tuple[str, int]]:
    return {(r, v) for r, v in query(stack, "waitlists", "SELECT referral_id, version FROM referral_changes")}


def delivered(receiver: Receiver) -> Counter[tuple[str, int]]:
    """Each referral change that reached the endpoint, counted by distinct webhook message."""
    firsts: dict[str, tuple[str, int]] = {}
    for r in receiver.received:
        data = r.body.get("data") or {}
        if r.verified and r.answered == 200 and "version" in data and r.webhook_id not in firsts:
            firsts[r.webhook_id] = (data["referral_id"], data["version"])
    return Counter(firsts.values())


def wait_until(condition: Any, what: str, timeout: float, explain: Any = None) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}" + (f"; {explain()}" if explain else ""))
        time.sleep(0.25)
    return time.monotonic() - started


def state(stack: DevStack, readiness: Readiness | None, receiver: Receiver, wanted: set[tuple[str, int]]) -> str:
    last = {}
    for _t, service, code, body in readiness.seen[-12:] if readiness else []:
        last[service] = (code, {k: v for k, v in body.get("checks", {}).items() if v != "ok"})
    missing_projection = sorted(wanted - projected(stack))[:5]
    missing_delivery = sorted(wanted - set(delivered(receiver)))[:5]
    served = changes_on_topic(stack)
    on_topic = {change: change in served for change in {*missing_projection, *missing_delivery}}
    return (f"not projected {missing_projection}, not delivered {missing_delivery}, "
            f"served by the broker {on_topic}, readiness {last}")  # fmt: skip


def changes_on_topic(stack: DevStack) -> set[tuple[str, int]]:
    """The (referral, version) of every record the broker serves on the referral topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> set[tuple[str, int]]:
        assert stack.broker is not None
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap_servers, group_id=None)
        await consumer.start()
        try:
            topic = "referrals.events.v1"
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            found, empty = set(), 0
            while empty < 2:
                fetched = await consumer.getmany(timeout_ms=300)
                empty = 0 if fetched else empty + 1
                for records in fetched.values():
                    for record in records:
                        data = json.loads(record.value or b"{}")  # binary mode: the value is the event's data
                        found.add((data.get("referral_id"), data.get("version")))
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


def metric(stack: DevStack, service: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(f"{stack.url(service)}/metrics").text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "durability"


def report(name: str, figures: dict[str, Any]) -> None:
    """Prints the figures and keeps them in ``test-artefacts/durability/`` (the source of quoted numbers)."""
    print(f"\n{name}: {json.dumps(figures, sort_keys=True)}")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    record = {"test": name, "at": datetime.now().astimezone().isoformat(timespec="seconds"), **figures}
    (ARTEFACTS / f"{name.replace(' ', '-')}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def assert_everything_arrived(stack: DevStack, load: Load, receiver: Receiver, timeout: float) -> float:
    changes = {(r, v) for r, v, _ in load.accepted}
    took = wait_until(
        lambda: changes <= projected(stack) and changes <= set(delivered(receiver)),
        "every accepted change projected and delivered",
        timeout,
        lambda: state(stack, None, receiver, changes),
    )
    twice = {change: n for change, n in delivered(receiver).items() if n > 1}
    assert not twice, f"changes delivered more than once: {twice}"
    webhook_ids = Counter(r.webhook_id for r in receiver.received if r.answered == 200)
    assert max(webhook_ids.values()) == 1, "a webhook message was delivered again after it was delivered"
    return took


def detections_after(stack: DevStack, since: float) -> float | None:
    """Seconds from ``since`` (wall clock) to the first detection any service logged after it."""
    found = []
    for service in SERVICES:
        for line in (stack.log_dir / f"{service}.log").read_text().splitlines():
            if '"detection"' not in line:
                continue
            record = json.loads(line)
            at = datetime.fromisoformat(record["time"]).timestamp()  # ISO 8601 with its offset
            if at >= since:
                found.append(at - since)
    return min(found, default=None)


def ready_now(readiness: Readiness, window: float = 1.0) -> bool:
    """Every service answered 200 to each readiness poll of the last ``window`` seconds."""
    recent = [(s, code) for t, s, code, _ in readiness.seen if t >= time.monotonic() - window]
    return {s for s, _ in recent} == set(SERVICES) and all(code == 200 for _, code in recent)


def test_three_broker_losses_under_load_lose_nothing(stack: DevStack, receiver: Receiver) -> None:
    subscribe(stack, receiver)
    readiness = Readiness(stack).start()
    load = Load(stack).start()
    outages = []
    try:
        for _ in range(3):
            time.sleep(8)
            went, back = restart_broker(stack)
            back_wall = time.time() - (time.monotonic() - back)
            before = {(r, v) for r, v, _ in load.accepted}  # the changes accepted up to the broker's return
            converged = wait_until(
                lambda before=before: before <= projected(stack) and before <= set(delivered(receiver))
                and ready_now(readiness),
                "every change accepted before the broker came back projected and delivered, and every service ready",
                HEAL_WITHIN,
                lambda before=before: state(stack, readiness, receiver, before),
            )  # fmt: skip
            outages.append((went, back, back_wall, converged))
    finally:
        load.stop()
    drained = assert_everything_arrived(stack, load, receiver, 60)
    readiness.stop()
    for went, back, _, _ in outages:
        for service in SERVICES:
            assert readiness.red_between(service, went, back + HEAL_WITHIN), f"{service} stayed ready in a loss"
    detected_s = [detections_after(stack, back_wall) for _, _, back_wall, _ in outages]
    assert all(d is not None and d < 10 for d in detected_s), f"a loss not detected within 10 s: {detected_s}"
    republished = metric(stack, "referrals", "outbox_republished_events_total")
    assert republished > 0
    report("three broker losses", {
        "changes": len(load.accepted),
        "detected_after_return_s": [round(d or -1, 2) for d in detected_s],
        "converged_after_return_s": [round(c, 1) for _, _, _, c in outages],
        "drained_after_load_s": round(drained, 1),
        "republished_by_referrals": republished,
        "detections": {s: metric(stack, s, "broker_state_loss_detections_total") for s in SERVICES},
    })  # fmt: skip


def test_a_consumer_down_across_the_loss_catches_up(stack: DevStack, receiver: Receiver) -> None:
    subscribe(stack, receiver)
    load = Load(stack).start()
    try:
        time.sleep(4)
        stack.processes["waitlists"].terminate()
        stack.processes["waitlists"].wait(15)
        time.sleep(2)
        _went, back = restart_broker(stack)
        time.sleep(3)
        stack.start_service("waitlists")
        stack.wait_ready(60)
        time.sleep(4)
    finally:
        load.stop()
    took = assert_everything_arrived(stack, load, receiver, 60)
    report("a consumer down across the loss", {"changes": len(load.accepted), "drained_s": round(took, 1),
                                              "since_broker_back_s": round(time.monotonic() - back, 1)})  # fmt: skip


def test_a_deleted_topic_is_noticed_and_refilled(stack: DevStack, receiver: Receiver) -> None:
    subscribe(stack, receiver)
    readiness = Readiness(stack).start()
    load = Load(stack).start()
    try:
        time.sleep(5)

        async def delete() -> None:
            assert stack.broker is not None
            admin = AIOKafkaAdminClient(bootstrap_servers=stack.broker.bootstrap_servers)
            await admin.start()
            try:
                await admin.delete_topics(["referrals.events.v1"])
            finally:
                await admin.close()

        deleted = time.monotonic()
        asyncio.run(delete())
        time.sleep(8)
    finally:
        load.stop()
    took = assert_everything_arrived(stack, load, receiver, 60)
    readiness.stop()
    assert readiness.red_between("referrals", deleted, deleted + 15), "referrals stayed ready with its topic gone"
    report("a deleted topic", {"changes": len(load.accepted), "drained_s": round(took, 1),
                               "republished": metric(stack, "referrals", "outbox_republished_events_total")})  # fmt: skip


PROJECTION = ("referral_changes", "referrals", "services", "organisations", "waiting_spells", "clock_spells",
              "clock_stops", "referral_outcomes", "handoff_gaps")  # fmt: skip


def projection(stack: DevStack) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(map(repr, query(stack, "waitlists", f"SELECT * FROM {table}"))) for table in PROJECTION}  # type: ignore[misc]


def test_a_rebuild_after_a_loss_equals_the_projection_before_it(stack: DevStack, receiver: Receiver) -> None:
    subscribe(stack, receiver)
    load = Load(stack).start()
    time.sleep(6)
    load.stop()
    assert_everything_arrived(stack, load, receiver, 60)
    before = projection(stack)
    restart_broker(stack)
    stack.processes["waitlists"].terminate()
    stack.processes["waitlists"].wait(15)
    rebuilt = subprocess.run(
        [sys.executable, "-m", "waitlists", "rebuild"],
        env={**os.environ, **stack.env_for("waitlists")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    summary = json.loads(rebuilt.stdout.strip().splitlines()[-1])
    assert summary["referrals"] == len({r for r, _, _ in load.accepted})
    assert projection(stack) == before
    report("rebuild after a loss", summary)


def bad_events() -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """(name, CloudEvent attributes, data) of events that break the contract, each about CAMHS."""
    now = "2026-11-30T10:00:00Z"
    good = {
        "referral_id": "", "version": 1, "status": "submitted", "child_ref": "c" * 32,
        "referrer_org_id": "org-riverside-primary", "service_id": "svc-camhs-core",
        "receiving_org_id": "org-northshire-camhs", "urgency": "routine", "occurred_at": now, "recorded_at": now,
    }  # fmt: skip
    cases = {
        "version 0 and a name": {"version": 0, "given_name": "Sam", "family_name": "Taylor"},
        "a name": {"given_name": "Sam"},
        "a version that is not a number": {"version": "three"},
        "a status its type does not say": {"status": "accepted"},
    }
    found = []
    for name, change in cases.items():
        referral_id = f"bad-{secrets.token_hex(4)}"
        attributes = {"id": f"evt-{secrets.token_hex(6)}", "type": "uk.send.referral.submitted.v1",
                      "subject": referral_id}  # fmt: skip
        found.append((name, attributes, {**good, "referral_id": referral_id, **change}))
    return found


async def publish_raw(bootstrap: str, topic: str, items: list[tuple[dict[str, str], dict[str, Any]]]) -> None:
    from send_shared.kafka import OutgoingRecord, new_producer, publish_all

    producer = new_producer(bootstrap, client_id="bad-payloads")
    await producer.start()
    try:
        records = []
        for attributes, data in items:
            headers = [("ce_specversion", b"1.0"), ("ce_source", b"/somewhere"), ("ce_time", b"2026-11-30T10:00:00Z"),
                       ("content-type", b"application/json")]  # fmt: skip
            headers += [(f"ce_{k}", v.encode()) for k, v in attributes.items()]
            records.append(OutgoingRecord(topic, attributes["subject"].encode(), json.dumps(data).encode(), headers))
        await publish_all(producer, records)
    finally:
        await producer.stop()


async def event_ids_on(bootstrap: str, topic: str) -> set[str]:
    """The event ids of every record on ``topic``, read from its beginning until two fetches bring nothing."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: set[str] = set()
        empty = 0
        while empty < 2:
            fetched = await consumer.getmany(timeout_ms=300)
            empty = 0 if fetched else empty + 1
            for records in fetched.values():
                found |= {dict(r.headers).get("ce_id", b"").decode() for r in records}
        return found
    finally:
        await consumer.stop()


def test_schema_violations_are_parked_by_every_consumer_and_never_forwarded(
    stack: DevStack, receiver: Receiver
) -> None:
    subscribe(stack, receiver)
    assert stack.broker is not None
    bootstrap = stack.broker.bootstrap_servers
    bad = bad_events()
    asyncio.run(publish_raw(bootstrap, "referrals.events.v1", [(a, d) for _, a, d in bad]))
    request = {"id": f"evt-{secrets.token_hex(6)}", "type": "uk.send.store.replay_requested.v1", "subject": "x"}
    asyncio.run(publish_raw(bootstrap, "referrals.store-replay.requests.v1", [(request, {"request_id": "not hex"})]))
    # A good change after them: once it has arrived everywhere, the bad ones had their chance to.
    load = Load(stack).start()
    time.sleep(2)
    load.stop()
    assert_everything_arrived(stack, load, receiver, 60)
    wanted = {a["id"] for _, a, _ in bad}
    for group in ("waitlists", "notifications"):
        wait_until(lambda group=group: wanted <= asyncio.run(event_ids_on(bootstrap, f"{group}.dlq.v1")),
                   f"every bad event parked by {group}", 30)  # fmt: skip
    wait_until(lambda: request["id"] in asyncio.run(event_ids_on(bootstrap, "referrals-store-replay.dlq.v1")),
               "the bad replay request parked by referrals", 30)  # fmt: skip
    forwarded = {r.body.get("id") for r in receiver.received}
    assert not forwarded & wanted, "a schema-violating event went out by webhook"
    in_projection = {r for r, _ in projected(stack)}
    assert not in_projection & {d["referral_id"] for _, _, d in bad}
    assert all("Sam" not in json.dumps(r.body) for r in receiver.received)


def test_a_restart_of_make_run_refills_the_empty_broker_from_the_stores(tmp_path: Path) -> None:
    """``make run``'s case: SQLite files kept, the embedded broker empty at every start. The topics are
    refilled from the event stores, so a reader that starts afterwards still sees the whole history."""
    var = tmp_path / "var"
    ports = {service: free_port() for service in SERVICES}
    env = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
    first = DevStack(var_dir=var, broker_port=free_port(), ports=ports, smtp_port=free_port(), extra_env=env)
    with first:
        load = Load(first).start()
        time.sleep(4)
        load.stop()
    stored = {row[0] for row in sqlite_rows(var / "referrals.db", "SELECT event_id FROM event_store")}
    assert len(stored) > len(load.accepted) > 0
    second = DevStack(var_dir=var, broker_port=free_port(), ports=ports, smtp_port=free_port(), extra_env=env)
    with second:
        assert second.broker is not None
        bootstrap = second.broker.bootstrap_servers
        took = wait_until(
            lambda: stored <= asyncio.run(event_ids_on(bootstrap, "referrals.events.v1")),
            "every stored event back on the new broker",
            60,
        )
        wait_until(lambda: all(httpx.get(f"{second.url(s)}/readyz").status_code == 200 for s in SERVICES),
                   "every service ready", 60)  # fmt: skip
    report("make run restarted", {"stored_events": len(stored), "refilled_after_start_s": round(took, 1)})


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))
