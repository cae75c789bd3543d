"""Asks the broker whether it still holds a given record: how producers and consumers notice that a
partition's log was lost, truncated or replaced under them.

A record is known by its fingerprint: the CloudEvent id (``ce_id`` header), or a digest of the value
for a record that is not a CloudEvent. ``record_at`` answers FOUND (with the fingerprint and the
record's timestamp), ABSENT (the topic or partition is gone, the offset is out of range, or nothing
is there), or UNKNOWN (the broker did not answer: never read as a loss).

Tansu answers a fetch beyond a partition's end with nothing rather than an out-of-range error, and its
offset listing reports as the end the last batch's base offset plus one (a fetch's high watermark is
exact): so where a quick fetch finds nothing, the probe reads the last batch to learn the true end
(``true_end``), and an offset at or beyond it is ABSENT without waiting on a fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from aiokafka.structs import ConsumerRecord

from send_shared.kafka_connection import client_options


class Seen(Enum):
    FOUND = "found"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Probe:
    seen: Seen
    fingerprint: str | None = None
    timestamp_ms: int | None = None
    end: int | None = None  # the partition's end, from the fetch that found the record (exact, unlike end_offsets)


def fingerprint(record: ConsumerRecord[bytes, bytes] | Any) -> str:
    for key, value in record.headers or ():
        if key == "ce_id" and value:
            return bytes(value).decode(errors="replace")
    return "sha1:" + hashlib.sha1(record.value or b"", usedforsecurity=False).hexdigest()


class LogProbe:
    """A group-less consumer used one question at a time; safe to share within a process."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "log-probe", patience: float = 1.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.patience = patience
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._reader: AIOKafkaConsumer | None = None  # for ranges: ordinary fetch sizes
        self._reader_lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **client_options(self.bootstrap_servers),
                group_id=None,
                client_id=self.client_id,
                enable_auto_commit=False,
                auto_offset_reset="none",
                fetch_max_wait_ms=50,
                # One batch per question (the broker always returns at least the first), not a megabyte of
                # records decoded to read one of them.
                fetch_max_bytes=1,
                max_partition_fetch_bytes=1,
                request_timeout_ms=10_000,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        for consumer in (self._consumer, self._reader):
            if consumer is not None:
                await consumer.stop()
        self._consumer = self._reader = None

    async def topics(self) -> dict[str, set[int]] | None:
        """Every topic the broker lists, with its partitions; None when the broker does not answer."""
        async with self._lock:
            return await self._topics()

    async def _topics(self) -> dict[str, set[int]] | None:
        try:
            consumer = await self._started()
            cluster = await asyncio.wait_for(consumer._client.fetch_all_metadata(), 3.0)
        except (KafkaError, OSError, TimeoutError):
            return None
        return {topic: set(cluster.partitions_for_topic(topic) or ()) for topic in cluster.topics()}

    @contextlib.asynccontextmanager
    async def _asking(self) -> AsyncIterator[None]:
        """One question at a time; afterwards the consumer is paused, or it would go on fetching the
        partition it was last pointed at, several times a second, for nobody."""
        async with self._lock:
            try:
                yield
            finally:
                if self._consumer is not None and self._consumer.assignment():
                    self._consumer.pause(*self._consumer.assignment())

    async def true_end(self, tp: TopicPartition) -> int | None:
        """The offset after the partition's last record; None when the broker does not answer."""
        async with self._asking():
            return await self._true_end(tp)

    async def _true_end(self, tp: TopicPartition) -> int | None:
        try:
            consumer = await self._started()
            consumer.assign([tp])
            reported = (await asyncio.wait_for(consumer.end_offsets([tp]), 3.0))[tp]
            if reported == 0:
                return 0
            consumer.seek(tp, reported - 1)  # the last batch starts here (Tansu) or it is the last record
            fetched = await consumer.getmany(tp, timeout_ms=int(self.patience * 1000), max_records=100_000)
        except OffsetOutOfRangeError:
            return None
        except (KafkaError, OSError, TimeoutError):
            return None
        records = fetched.get(tp, [])
        return max(reported, records[-1].offset + 1) if records else None

    async def record_at(self, tp: TopicPartition, offset: int, topics: dict[str, set[int]] | None = None) -> Probe:
        """``topics``, if given, is what ``topics()`` just answered (saves asking again per partition)."""
        async with self._asking():
            quick = await self._fetch_one(tp, offset, patience=0.3)
            if quick is not None and quick.seen is Seen.FOUND:
                return quick  # the usual answer, in one fetch
            topics = topics if topics is not None else await self._topics()
            if topics is None:
                return Probe(Seen.UNKNOWN)
            if tp.partition not in topics.get(tp.topic, set()):
                return Probe(Seen.ABSENT)
            end = await self._true_end(tp)
            if end is None:
                return Probe(Seen.UNKNOWN)
            if offset >= end:
                return Probe(Seen.ABSENT)
            return await self._fetch_one(tp, offset, patience=self.patience * 3) or Probe(Seen.UNKNOWN)

    async def _fetch_one(self, tp: TopicPartition, offset: int, *, patience: float) -> Probe | None:
        """The record at ``offset``: FOUND, ABSENT (the log starts later, or holds another offset there), or
        None when the fetch brought nothing (beyond the end, or no answer: the caller finds out which)."""
        try:
            consumer = await self._started()
            consumer.assign([tp])  # a new assignment: nothing paused
            consumer.seek(tp, offset)
            fetched = await consumer.getmany(tp, timeout_ms=int(patience * 1000), max_records=1)
        except OffsetOutOfRangeError:  # below the log's start: deleted
            return Probe(Seen.ABSENT)
        except (KafkaError, OSError):
            return None
        records = fetched.get(tp, [])
        if not records:
            return None
        record = records[0]
        if record.offset != offset:
            return Probe(Seen.ABSENT)
        return Probe(Seen.FOUND, fingerprint(record), record.timestamp, consumer.highwater(tp))

    async def read_range(self, tp: TopicPartition, first: int, last: int) -> dict[int, str] | None:
        """The fingerprint of each record the broker serves at offsets ``first``..``last`` (fewer where it
        serves fewer); None when it does not answer."""
        async with self._reader_lock:
            try:
                if self._reader is None:
                    self._reader = AIOKafkaConsumer(
                        **client_options(self.bootstrap_servers),
                        group_id=None,
                        client_id=f"{self.client_id}-reader",
                        enable_auto_commit=False,
                        auto_offset_reset="none",
                        fetch_max_wait_ms=50,
                        request_timeout_ms=10_000,
                    )
                    await self._reader.start()
                reader = self._reader
                reader.assign([tp])
                reader.seek(tp, first)
                served: dict[int, str] = {}
                while True:
                    fetched = await reader.getmany(tp, timeout_ms=int(self.patience * 1000), max_records=10_000)
                    records = [r for r in fetched.get(tp, []) if r.offset <= last]
                    served.update((r.offset, fingerprint(r)) for r in records)
                    if not records or records[-1].offset >= last:
                        return served
            except (KafkaError, OSError, TimeoutError):
                return None
            finally:
                if self._reader is not None and self._reader.assignment():
                    self._reader.pause(*self._reader.assignment())

    async def holds(
        self, tp: TopicPartition, offset: int, expected: str, topics: dict[str, set[int]] | None = None
    ) -> Seen:
        """FOUND only when the record at ``offset`` is the expected one; a different record is ABSENT."""
        probe = await self.record_at(tp, offset, topics)
        if probe.seen is Seen.FOUND and probe.fingerprint != expected:
            return Seen.ABSENT
        return probe.seen
