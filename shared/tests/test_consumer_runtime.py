"""ConsumerRuntime against the real broker and databases: de-duplication, retries, dead letters and replay."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from prometheus_client import REGISTRY
from shared_testkit import (
    apply_effect,
    count,
    create_topics,
    effects,
    header,
    inbox,
    make_event,
    positions,
    quick_rejoin_consumer,
    read_topic,
    unique,
)
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from send_shared.consumer import ConsumerRuntime, PermanentError
from send_shared.consumer.dlq_cli import list_dead_letters, replay
from send_shared.consumer.positions import ConsumerPositions
from send_shared.events.envelope import CloudEvent, encode_kafka
from send_shared.events.topics import Topics
from send_shared.inbox import Inbox
from send_shared.kafka import TopicSpec, new_producer, recreate_topics


@dataclass
class RecordingHandler:
    """Applies the effect unless the event asks to fail; counts every attempt."""

    attempts: Counter[str] = field(default_factory=Counter)
    attempt_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    applied: list[tuple[str, int]] = field(default_factory=list)
    healed: bool = False

    async def __call__(self, event: CloudEvent, session: AsyncSession) -> None:
        self.attempts[event.id] += 1
        self.attempt_times[event.id].append(time.monotonic())
        mode = event.data.get("fail")
        if mode == "retry":
            raise RuntimeError("directory service unavailable")
        if mode == "permanent":
            raise PermanentError("referral belongs to no known service")
        if mode == "until_healed" and not self.healed:
            raise PermanentError("waiting list not configured yet")
        if mode == "database_down" and self.attempts[event.id] <= int(event.data["outage_attempts"]):
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
        await apply_effect(event, session)
        self.applied.append((event.subject or "", int(event.data["version"])))


@dataclass
class Scenario:
    bootstrap: str
    engine: AsyncEngine
    topic: str = field(default_factory=lambda: unique("events"))
    group: str = field(default_factory=lambda: unique("group"))
    handler: RecordingHandler = field(default_factory=RecordingHandler)

    async def setup(self) -> Scenario:
        await create_topics(self.bootstrap, self.topic, Topics.dead_letter(self.group), Topics.replay(self.group))
        self.producer = new_producer(self.bootstrap, client_id="test-publisher")
        await self.producer.start()
        return self

    async def close(self) -> None:
        await self.producer.stop()

    async def publish(self, event: CloudEvent, key: str) -> RecordMetadata:
        headers, value = encode_kafka(event)
        return await self.producer.send_and_wait(self.topic, value=value, key=key.encode(), headers=headers)

    async def publish_raw(self, value: bytes, key: str, headers: list[tuple[str, bytes]] | None = None) -> Any:
        return await self.producer.send_and_wait(self.topic, value=value, key=key.encode(), headers=headers or [])

    @asynccontextmanager
    async def running(
        self, *, max_attempts: int = 3, backoff_initial: float = 0.05, backoff_max: float = 0.3,
        before_commit: Callable[[AsyncSession], Awaitable[None]] | None = None,
        after_commit: Callable[[], None] | None = None,
        before_batch: Callable[[Sequence[CloudEvent], AsyncSession], Awaitable[None]] | None = None,
        linger: float = 0.0,
    ) -> Any:  # fmt: skip
        producer: AIOKafkaProducer = new_producer(self.bootstrap, client_id=f"{self.group}-dlq")
        await producer.start()
        runtime = ConsumerRuntime(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            topics=[self.topic],
            handler=self.handler,
            engine=self.engine,
            before_commit=before_commit,
            after_commit=after_commit,
            before_batch=before_batch,
            inbox=Inbox(inbox, self.group),
            positions=ConsumerPositions(positions, self.group),
            producer=producer,
            max_attempts=max_attempts,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            linger=linger,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        self.task = task
        try:
            yield runtime
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await producer.stop()

    def outcomes(self, outcome: str, topic: str | None = None) -> int:
        value = REGISTRY.get_sample_value(
            "consumer_messages_total", {"group": self.group, "topic": topic or self.topic, "outcome": outcome}
        )
        return int(value or 0)

    async def until(self, condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not await condition():
            if self.task.done():
                self.task.result()  # the runtime died: show why
                raise AssertionError(f"runtime stopped before: {what}")
            assert time.monotonic() < deadline, f"timed out waiting for: {what}"
            await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def _quick_group_rejoin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("send_shared.consumer.runtime.new_consumer", quick_rejoin_consumer)


@pytest.fixture
async def scenario(any_engine: AsyncEngine, kafka_bootstrap: str) -> AsyncIterator[Scenario]:
    s = await Scenario(kafka_bootstrap, any_engine).setup()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def pg_scenario(pg_engine: AsyncEngine, kafka_bootstrap: str) -> AsyncIterator[Scenario]:
    s = await Scenario(kafka_bootstrap, pg_engine).setup()
    try:
        yield s
    finally:
        await s.close()


async def _event_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(effects.c.event_id).order_by(effects.c.event_id))).scalars())


async def test_duplicate_deliveries_apply_one_effect(scenario: Scenario) -> None:
    """The same record delivered again (re-send by the relay, redelivery after a restart) is applied once."""
    first, second, other = make_event("ref-a", 1), make_event("ref-a", 2), make_event("ref-b", 1)
    for event, key in [(first, "ref-a"), (first, "ref-a"), (second, "ref-a"), (other, "ref-b")]:
        await scenario.publish(event, key)
    await scenario.publish(first, "ref-a")
    await scenario.publish(other, "ref-b")

    async with scenario.running():

        async def settled() -> bool:
            return scenario.outcomes("processed") == 3 and scenario.outcomes("duplicate") == 3

        await scenario.until(settled, "3 processed and 3 duplicates")
    assert sorted(await _event_ids(scenario.engine)) == sorted([first.id, second.id, other.id])
    assert await count(scenario.engine, inbox, inbox.c.consumer_group == scenario.group) == 3
    assert scenario.handler.attempts == Counter({first.id: 1, second.id: 1, other.id: 1})  # duplicates never reach it

    # Same group again, after a restart: offsets were committed, and a late re-send is still caught.
    await scenario.publish(second, "ref-a")
    await scenario.publish(make_event("ref-c", 1), "ref-c")
    async with scenario.running():

        async def caught_up() -> bool:
            return scenario.outcomes("processed") == 4 and scenario.outcomes("duplicate") == 4

        await scenario.until(caught_up, "the records published while stopped")
    assert await count(scenario.engine, effects) == 4
    assert await count(scenario.engine, inbox, inbox.c.consumer_group == scenario.group) == 4
    assert scenario.handler.attempts[first.id] == 1  # nothing before the committed offsets was re-read
    assert not await read_topic(scenario.bootstrap, Topics.dead_letter(scenario.group), timeout=2)


async def test_a_fetch_from_several_partitions_is_applied_in_one_transaction(scenario: Scenario) -> None:
    """A message or two from each of several partitions (a steady load) go in one transaction, with each
    partition's position: none is read again after a restart."""
    events, partitions = [], set()
    for n in range(12):
        event = make_event(f"ref-{n}", 1)
        partitions.add((await scenario.publish(event, f"ref-{n}")).partition)
        events.append(event)
    assert len(partitions) >= 3, "the keys should spread over the topic's partitions"
    commits = 0

    def committed() -> None:
        nonlocal commits
        commits += 1

    async with scenario.running(after_commit=committed):

        async def applied() -> bool:
            return scenario.outcomes("processed") == len(events)

        await scenario.until(applied, "every event applied")
    assert commits < len(partitions), f"{commits} transactions for messages from {len(partitions)} partitions"

    later = make_event("ref-0", 2)
    await scenario.publish(later, "ref-0")
    async with scenario.running():

        async def caught_up() -> bool:
            return scenario.outcomes("processed") == len(events) + 1

        await scenario.until(caught_up, "the event published while stopped")
    assert scenario.handler.attempts == Counter({e.id: 1 for e in [*events, later]}), "a position was not saved"


async def test_before_commit_runs_once_per_transaction_inside_it(scenario: Scenario) -> None:
    """Handlers can leave shared work for the end of the transaction (the waitlists consumer re-derives
    the facts of the children a batch touched); it runs before the commit, in the same transaction."""
    events = [make_event(key, version) for key in ("ref-a", "ref-b") for version in (1, 2, 3)]
    for event in events:
        await scenario.publish(event, event.subject or "")
    handled = scenario.handler

    async def marking(event: CloudEvent, session: AsyncSession) -> None:
        await handled(event, session)
        session.info.setdefault("touched", []).append(event.id)

    scenario.handler = marking  # type: ignore[assignment]
    finished: list[list[str]] = []

    async def before_commit(session: AsyncSession) -> None:
        assert session.in_transaction()
        finished.append(session.info.pop("touched", []))

    async with scenario.running(before_commit=before_commit):
        await scenario.until(lambda: _settled(scenario, len(events)), "every event processed")
    assert sorted(e for batch in finished for e in batch) == sorted(e.id for e in events)  # each event once
    assert all(finished)  # never called for a transaction that applied nothing


async def test_before_batch_is_given_a_batch_s_new_events_before_their_handlers(scenario: Scenario) -> None:
    """What a batch's handlers would each read can be read for all of them first (the waitlists consumer reads
    its batch's referrals in one statement): ``before_batch`` gets the events the transaction will apply, a repeat
    of one already applied not among them, inside the transaction and before any of their handlers."""
    events = [make_event(key, version) for key in ("ref-a", "ref-b") for version in (1, 2, 3)]
    for event in events:
        await scenario.publish(event, event.subject or "")
    await scenario.publish(events[0], events[0].subject or "")  # a repeat: applied once only
    handled = scenario.handler
    read_ahead: list[list[str]] = []
    found_ahead: list[bool] = []

    async def before_batch(batch: Sequence[CloudEvent], session: AsyncSession) -> None:
        assert session.in_transaction()
        read_ahead.append([event.id for event in batch])
        session.info["ahead"] = {event.id for event in batch}

    async def checking(event: CloudEvent, session: AsyncSession) -> None:
        ahead = session.info.get("ahead")
        found_ahead.append(ahead is None or event.id in ahead)  # None: a transaction of one message
        await handled(event, session)

    scenario.handler = checking  # type: ignore[assignment]
    async with scenario.running(before_batch=before_batch):
        await scenario.until(lambda: _settled(scenario, len(events)), "every event processed")
    given = [event_id for batch in read_ahead for event_id in batch]
    assert read_ahead, "no batch: the published events never came in one fetch"
    assert len(given) == len(set(given)) and set(given) <= {event.id for event in events}
    assert found_ahead and all(found_ahead)


async def test_after_commit_is_told_when_what_the_handlers_wrote_can_be_read(scenario: Scenario) -> None:
    """A worker woken by ``after_commit`` reads what the handlers wrote: each wake's look, from a connection of
    its own, finds at least every effect applied before the wake."""
    events = [make_event(key, version) for key in ("ref-a", "ref-b", "ref-c") for version in (1, 2, 3)]
    for event in events:
        await scenario.publish(event, event.subject or "")
    ids = [e.id for e in events]
    looks: list[asyncio.Task[tuple[int, int]]] = []

    async def look(applied: int) -> tuple[int, int]:
        return applied, await count(scenario.engine, effects, effects.c.event_id.in_(ids))

    def after_commit() -> None:
        looks.append(asyncio.ensure_future(look(len(scenario.handler.applied))))

    async with scenario.running(after_commit=after_commit):
        await scenario.until(lambda: _settled(scenario, len(events)), "every event processed")
    seen = await asyncio.gather(*looks)
    assert seen and all(visible >= applied for applied, visible in seen), seen
    assert seen[-1] == (len(events), len(events))


@pytest.mark.parametrize("linger", [0.0, 3.0])
async def test_a_linger_gathers_what_arrives_into_the_next_transaction(scenario: Scenario, linger: float) -> None:
    """A fetch is gathered with what arrives within ``linger`` of it, so events that come one by one meanwhile are
    applied in one transaction; without a linger each is a transaction of its own."""
    first, *spaced = [make_event(f"ref-{n}", 1) for n in range(4)]
    transactions: dict[str, list[str]] = {}
    handled = scenario.handler

    async def recording(event: CloudEvent, session: AsyncSession) -> None:
        transaction = session.info.setdefault("transaction", uuid.uuid4().hex)
        transactions.setdefault(transaction, []).append(event.id)
        await handled(event, session)

    scenario.handler = recording  # type: ignore[assignment]
    async with scenario.running(linger=linger):
        await scenario.publish(first, first.subject or "")
        await scenario.until(lambda: _settled(scenario, 1), "the first event processed")
        for event in spaced:  # 0.25 s apart: each in a fetch of its own unless the consumer waits for more
            await asyncio.sleep(0.25)
            await scenario.publish(event, event.subject or "")
        await scenario.until(lambda: _settled(scenario, 4), "every event processed")
    later = [ids for ids in transactions.values() if first.id not in ids]
    if linger:
        assert [sorted(ids) for ids in later] == [sorted(event.id for event in spaced)]
    else:  # as a rule one transaction each; two together on a slow machine is no failure
        assert len(later) >= 2, later


async def _settled(scenario: Scenario, n: int) -> bool:
    return scenario.outcomes("processed") == n


async def test_poison_messages_are_parked_and_the_partition_moves_on(pg_scenario: Scenario) -> None:
    s = pg_scenario
    key = "ref-poison"
    good = [make_event(key, v) for v in (1, 2, 4, 6, 7)]
    retrying = make_event(key, 3, fail="retry")
    permanent = make_event(key, 5, fail="permanent")
    not_json_headers, _ = encode_kafka(make_event(key, 99))

    sent: dict[str, RecordMetadata] = {}
    sent["v1"] = await s.publish(good[0], key)
    sent["garbage"] = await s.publish_raw(b"\x00\x01 definitely not a CloudEvent", key)
    sent["v2"] = await s.publish(good[1], key)
    sent["retry"] = await s.publish(retrying, key)
    sent["v4"] = await s.publish(good[2], key)
    sent["permanent"] = await s.publish(permanent, key)
    sent["v6"] = await s.publish(good[3], key)
    sent["not_json"] = await s.publish_raw(b"{not json", key, not_json_headers)
    sent["v7"] = await s.publish(good[4], key)
    assert len({m.partition for m in sent.values()}) == 1, "one key, one partition"

    max_attempts, backoff_initial, backoff_max = 4, 0.05, 0.3
    started = time.monotonic()
    async with s.running(max_attempts=max_attempts, backoff_initial=backoff_initial, backoff_max=backoff_max):

        async def done() -> bool:
            return s.outcomes("processed") == 5 and s.outcomes("dead_lettered") == 4

        await s.until(done, "5 processed, 4 dead-lettered")
    elapsed = time.monotonic() - started

    # Every good message after a poison one on the same partition was applied, in order.
    assert s.handler.applied == [(key, v) for v in (1, 2, 4, 6, 7)]
    assert sorted(await _event_ids(s.engine)) == sorted(e.id for e in good)
    assert await count(s.engine, inbox, inbox.c.consumer_group == s.group) == 5  # failures left no inbox row

    # Retries: max_attempts for a retryable error, one attempt for PermanentError; decode errors never reach it.
    assert s.handler.attempts[retrying.id] == max_attempts
    assert s.handler.attempts[permanent.id] == 1
    assert all(s.handler.attempts[e.id] == 1 for e in good)
    times = s.handler.attempt_times[retrying.id]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for n, gap in enumerate(gaps, start=1):
        assert gap >= min(backoff_initial * 2 ** (n - 1), backoff_max) * 0.9, f"retry {n} came too soon: {gaps}"
        assert gap <= backoff_max + 1.0, f"retry {n} waited far longer than backoff_max: {gaps}"
    print(f"retry gaps (s): {[round(g, 3) for g in gaps]}; scenario took {elapsed:.1f}s")
    assert REGISTRY.get_sample_value("consumer_retries_total", {"group": s.group}) == max_attempts - 1

    # The dead-letter topic holds the four, in order, with where and why they failed.
    parked = await read_topic(s.bootstrap, Topics.dead_letter(s.group), at_least=4, settle=0.3)
    parked.sort(key=lambda r: (r.partition, r.offset))
    assert len(parked) == 4
    expected = [
        ("garbage", "EventDecodeError", "1"),
        ("retry", "RuntimeError: directory service unavailable", str(max_attempts)),
        ("permanent", "PermanentError: referral belongs to no known service", "1"),
        ("not_json", "EventDecodeError: body is not JSON", "1"),
    ]
    for record, (name, error, attempts) in zip(parked, expected, strict=True):
        original = sent[name]
        assert record.key == key.encode()
        assert header(record, "dlq_original_topic") == s.topic
        assert header(record, "dlq_original_partition") == str(original.partition)
        assert header(record, "dlq_original_offset") == str(original.offset)
        assert header(record, "dlq_consumer_group") == s.group
        assert (header(record, "dlq_error") or "").startswith(error)
        assert header(record, "dlq_attempts") == attempts
        assert datetime.fromisoformat(header(record, "dlq_failed_at") or "").tzinfo is not None
    assert parked[0].value == b"\x00\x01 definitely not a CloudEvent"
    assert header(parked[1], "ce_id") == retrying.id  # the original CloudEvent headers travel along
    assert header(parked[2], "ce_id") == permanent.id
    assert parked[3].value == b"{not json"


async def _cli(bootstrap: str, *args: str) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "send_shared.consumer.dlq_cli",
        "--bootstrap-servers",
        bootstrap,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def test_dead_letter_cli_lists_and_replays_to_the_running_group(pg_scenario: Scenario) -> None:
    s = pg_scenario
    stuck = make_event("ref-dlq", 1, fail="until_healed")
    fine = make_event("ref-dlq", 2)
    original = await s.publish(stuck, "ref-dlq")
    await s.publish(fine, "ref-dlq")

    async with s.running():

        async def parked() -> bool:
            return s.outcomes("dead_lettered") == 1 and s.outcomes("processed") == 1

        await s.until(parked, "the first event parked, the second applied")

        listed = await list_dead_letters(s.bootstrap, s.group)
        assert len(listed) == 1
        row = listed[0]
        assert row["event_id"] == stuck.id
        assert row["event_type"] == stuck.type
        assert row["key"] == "ref-dlq"
        assert row["original"] == {
            "topic": s.topic,
            "partition": str(original.partition),
            "offset": str(original.offset),
        }
        assert row["error"].startswith("PermanentError")
        assert row["attempts"] == "1"
        assert row["replayed"] is False
        assert await _cli(s.bootstrap, "list", "--group", s.group) == listed  # the operator's view is the same

        # The operator fixes the cause and replays the message by its position, through the CLI.
        s.handler.healed = True
        replayed = await _cli(
            s.bootstrap,
            "replay",
            "--group",
            s.group,
            "--offset",
            str(row["offset"]),
            "--partition",
            str(row["partition"]),
        )
        assert [r["event_id"] for r in replayed] == [stuck.id]
        replay_topic = Topics.replay(s.group)

        async def applied() -> bool:
            return s.outcomes("processed", replay_topic) == 1

        await s.until(applied, "the replayed event applied from the replay topic")
        assert sorted(await _event_ids(s.engine)) == sorted([stuck.id, fine.id])

        listed = await list_dead_letters(s.bootstrap, s.group)
        assert [r["replayed"] for r in listed] == [True]
        assert await replay(s.bootstrap, s.group, offset=None, partition=0, replay_all=True) == []  # nothing left

        # Replaying the same dead letter twice is harmless: the event id is unchanged, the inbox skips it.
        again = await replay(s.bootstrap, s.group, offset=row["offset"], partition=row["partition"], replay_all=False)
        assert [r["event_id"] for r in again] == [stuck.id]

        async def skipped() -> bool:
            return s.outcomes("duplicate", replay_topic) == 1

        await s.until(skipped, "the second replay skipped as a duplicate")
        with pytest.raises(SystemExit, match="no dead letter"):
            await replay(s.bootstrap, s.group, offset=row["offset"] + 100, partition=row["partition"], replay_all=False)

    assert await count(s.engine, effects) == 2
    # In its batch, then alone (parked), then from the first replay; the second replay was skipped.
    assert s.handler.attempts[stuck.id] == 3
    copies = await read_topic(s.bootstrap, replay_topic, at_least=2)
    assert [header(r, "dlq_replayed_from") for r in copies] == [
        f"{Topics.dead_letter(s.group)}:{row['partition']}:{row['offset']}"
    ] * 2
    assert all(not any(k.startswith("dlq_") and k != "dlq_replayed_from" for k, _ in r.headers) for r in copies)


async def test_an_unreachable_database_holds_the_partition_instead_of_parking(pg_scenario: Scenario) -> None:
    s = pg_scenario
    key = "ref-outage"
    outage = make_event(key, 1, fail="database_down", outage_attempts=7)
    after = make_event(key, 2)
    await s.publish(outage, key)
    await s.publish(after, key)
    async with s.running(max_attempts=3, backoff_initial=0.02, backoff_max=0.05):

        async def done() -> bool:
            return s.outcomes("processed") == 2

        await s.until(done, "both processed once the database answers")
    assert s.outcomes("dead_lettered") == 0
    assert s.handler.attempts[outage.id] == 8  # seven failed attempts, more than max_attempts, then success
    assert s.handler.applied == [(key, 1), (key, 2)]


def test_dead_letter_cli_says_plainly_when_the_broker_is_down() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "send_shared.consumer.dlq_cli",
            "--bootstrap-servers",
            "127.0.0.1:1",
            "list",
            "--group",
            "g",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.startswith("send-dlq: cannot reach the broker at 127.0.0.1:1"), run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 1


async def test_dead_letter_cli_says_when_there_are_no_dead_letters(kafka_bootstrap: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "send_shared.consumer.dlq_cli", "--bootstrap-servers", kafka_bootstrap,
        "list", "--group", f"empty-{uuid.uuid4().hex[:8]}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0 and out == b""
    assert err.decode().startswith("no dead letters for group empty-")


async def test_one_replaced_partition_means_the_whole_topic_is_read_again(scenario: Scenario) -> None:
    """A topic made afresh and refilled in a slightly different order: partition 1's new log holds the record
    applied last at the same offset as before, so on its own it looks intact, but holds a new record before it.
    Partition 0's log plainly changed; that is enough to read partition 1 again too, and nothing is skipped."""

    async def to(partition: int, event: CloudEvent) -> None:
        headers, value = encode_kafka(event)
        await scenario.producer.send_and_wait(scenario.topic, value=value, key=b"k", headers=headers,
                                              partition=partition)  # fmt: skip

    a0, b0, a1, b1, c1 = (make_event(f"ref-{n}", 1) for n in ("a0", "b0", "a1", "b1", "c1"))
    for partition, event in [(0, a0), (0, b0), (1, a1), (1, b1), (1, c1)]:
        await to(partition, event)
    async with scenario.running():
        await scenario.until(lambda: _processed(scenario, 5), "the first five applied")

    await recreate_topics(scenario.bootstrap, [TopicSpec(scenario.topic, 4)])
    x1 = make_event("ref-x1", 1)
    for partition, event in [(0, b0), (0, a0), (1, a1), (1, x1), (1, c1)]:  # c1 at offset 2 again, x1 before it
        await to(partition, event)
    async with scenario.running():
        await scenario.until(lambda: _processed(scenario, 6), "the record new to partition 1's log applied")
    assert (await _event_ids(scenario.engine)).count(x1.id) == 1


async def _processed(scenario: Scenario, n: int) -> bool:
    return scenario.outcomes("processed") >= n
