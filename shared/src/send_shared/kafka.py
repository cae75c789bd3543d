"""aiokafka plumbing: producer, consumer and topic creation with the settings every service shares.

The broker may be Tansu (no idempotent or transactional producer), so producers
never ask for idempotence: exactly-once effects come from the outbox and the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError, TopicAlreadyExistsError, UnknownTopicOrPartitionError
from aiokafka.structs import ConsumerRecord, RecordMetadata

from send_shared.kafka_connection import client_options

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def new_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(bootstrap_servers),
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        # No linger: the relay hands over a whole batch at once, so waiting for more only adds latency
        # (2 ms of linger was a quarter of commit-to-topic at 20 referrals/s; relay rate unchanged).
        linger_ms=0,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
    )


def new_consumer(
    bootstrap_servers: str,
    *,
    group_id: str | None,
    client_id: str,
    topics: Sequence[str] = (),
    auto_offset_reset: str = "earliest",
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 3_000,
    fetch_max_wait_ms: int = 25,
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        **client_options(bootstrap_servers),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        isolation_level="read_uncommitted",
        max_poll_records=500,
        # The broker may hold a fetch for its whole max wait even when records are there (Tansu does):
        # a short wait keeps event-to-handler latency low at the price of more idle fetches.
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        max_poll_interval_ms=300_000,
    )


PUBLISH_TIMEOUT_SECONDS = 30.0


async def publish_all(producer: AIOKafkaProducer, records: Iterable[OutgoingRecord]) -> list[RecordMetadata]:
    """Send every record and return once the broker acknowledged all of them (raises on any failure);
    returns where each record landed, in the order given. Bounded: a send that waits for metadata on a
    producer stopped meanwhile never returns, so the whole publish gives up after a while."""

    async def send_all() -> list[RecordMetadata]:
        futures = [await producer.send(r.topic, value=r.value, key=r.key, headers=r.headers) for r in records]
        return list(await asyncio.gather(*futures))

    try:
        return await asyncio.wait_for(send_all(), PUBLISH_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise KafkaTimeoutError(f"no acknowledgement within {PUBLISH_TIMEOUT_SECONDS:g} s") from exc


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the services create it: partitions and explicit settings (see ``send_shared.topics``)."""

    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def _new_topic(spec: TopicSpec, replication_factor: int) -> NewTopic:
    return NewTopic(
        name=spec.name,
        num_partitions=spec.partitions,
        replication_factor=replication_factor,
        topic_configs=dict(spec.configs),
    )


async def ensure_topics(
    bootstrap_servers: str, topics: Sequence[TopicSpec] | Mapping[str, int], *, replication_factor: int = 1
) -> list[str]:
    """Create missing topics; existing ones are left as they are. Returns the names it created."""
    specs = [TopicSpec(n, p) for n, p in topics.items()] if isinstance(topics, Mapping) else list(topics)
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers), client_id="topic-setup")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [_new_topic(spec, replication_factor) for spec in specs if spec.name not in existing]
        if wanted:
            taken: set[str] = set()
            with contextlib.suppress(TopicAlreadyExistsError):  # another service created it meanwhile
                response = await admin.create_topics(wanted)
                taken = {e[0] for e in response.topic_errors if e[1] == TopicAlreadyExistsError.errno}
            log.info("topics created", extra={"topics": [t.name for t in wanted]})
            # Tansu, restarted, takes writes to a topic it does not list, then calls the name taken and may
            # still not list it: such a half-made topic is deleted and made again (what it held was lost).
            unlisted = [t for t in wanted if t.name in taken and t.name not in set(await admin.list_topics())]
            if unlisted:
                names = [t.name for t in unlisted]
                log.warning("topics taken but not listed; making them again", extra={"topics": names})
                await admin.delete_topics(names)
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(unlisted)
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def recreate_topics(
    bootstrap_servers: str, specs: Sequence[TopicSpec], *, replication_factor: int = 1, within: float = 5.0
) -> None:
    """Makes ``specs`` afresh, empty: created if missing, deleted, and created again once the broker no
    longer lists them. For a topic that kept nothing: the embedded broker takes writes for a topic it
    does not list, keeps them when the topic is created, and serves them at the new topic's offsets,
    hiding what is written there later. Deleting a listed topic removes them."""
    admin = AIOKafkaAdminClient(**client_options(bootstrap_servers), client_id="topic-setup")
    await admin.start()
    try:
        new = [_new_topic(spec, replication_factor) for spec in specs]
        names = {t.name for t in new}
        unlisted = [t for t in new if t.name not in set(await admin.list_topics())]
        if unlisted:  # a topic the broker does not list cannot be deleted, nor what it took for it
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(unlisted)
        with contextlib.suppress(UnknownTopicOrPartitionError):
            await admin.delete_topics(sorted(names))
        deadline = asyncio.get_running_loop().time() + within
        while names & set(await admin.list_topics()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
        log.warning("topics made afresh", extra={"topics": sorted(names)})
    finally:
        await admin.close()


async def broker_answers(producer: AIOKafkaProducer, within: float = 2.0) -> bool:
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), within)
    except Exception:  # noqa: BLE001 - readiness only reports, it never raises
        return False
    return True


async def fetch_to_end(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition], *, max_records: int = 2000, idle_ms: int = 500
) -> AsyncIterator[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]:
    """Batches from the assigned partitions until each is read up to its end.

    ``end_offsets`` is only a lower bound here: Tansu reports the base offset of the last
    record batch plus one as the high watermark, so a partition counts as finished only
    once its position has passed that and a fetch comes back empty."""
    ends = await consumer.end_offsets(list(partitions))
    while True:
        fetched = await consumer.getmany(*partitions, timeout_ms=idle_ms, max_records=max_records)
        if fetched:
            yield fetched
            continue
        positions = [await consumer.position(tp) for tp in partitions]
        if all(position >= ends[tp] for position, tp in zip(positions, partitions, strict=True)):
            return
