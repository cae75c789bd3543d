"""Puts back on the publish queue what the broker lost, from the first lost position on.

Told of partitions that lost records (by the relay, or by ``check``, which asks the broker whether it
still holds each partition's newest acknowledged record), the healer, with every relay held off:
1. confirms the loss (the broker no longer holds the head record);
2. finds, per partition, the newest record the broker still holds, by bisecting the offsets the queue
   recorded (each step one probe of the broker): records up to it are intact, the rest were lost;
3. queues again every event of the topic from the first lost position on (events older than the
   queue's retention come from the event store), and forgets the partitions' heads;
4. wakes the relay, which publishes them in position order, so each key's events go out in order.
A log that keeps its newest record but serves other records further down is found by reading back
what was acknowledged (``audit``); it is queued again from the lowest position hidden.
Re-sent events the consumers already hold are dropped by their inboxes. A broker that does not answer
is never taken for one that forgot: nothing is queued until it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import TopicPartition
from prometheus_client import Counter, Gauge
from sqlalchemy import and_, delete, exists, func, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from send_shared.db import as_utc
from send_shared.health import detected
from send_shared.log_probe import LogProbe, Seen
from send_shared.outbox.audit import ReadBackAudit
from send_shared.outbox.relay import ADVISORY_NAMESPACE, LostPartitions
from send_shared.outbox.table import SHARDS, OutboxTables

log = logging.getLogger(__name__)
REPUBLISHED = Counter("outbox_republished_events", "Events queued again because the broker lost them.", ["topic"])
UNSENT = Gauge("outbox_unsent_events", "Events in the publish queue not yet acknowledged by the broker.")
OLDEST_UNSENT = Gauge("outbox_oldest_unsent_age_seconds", "Age of the oldest event waiting in the publish queue.")


class BrokerUnavailable(Exception):
    """The broker stopped answering while the loss was being measured; healing waits for it."""


class OutboxHealer:
    def __init__(
        self,
        engine: AsyncEngine,
        tables: OutboxTables,
        probe: LogProbe,
        *,
        lock: asyncio.Lock,
        wake_relay: Callable[[], None] = lambda: None,
        stuck_after: float = 30.0,
        recreate_topic: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.probe = probe
        self.lock = lock
        self.wake_relay = wake_relay
        self.stuck_after = stuck_after
        self.recreate_topic = recreate_topic
        self.audit = ReadBackAudit(engine, tables, probe)
        self._postgres = engine.dialect.name == "postgresql"
        self._healing_since: datetime | None = None
        self._measuring = 0  # heals under way: a loss is known from its detection on, before it is measured
        self._requeued = 0
        self._unsent = 0
        self._oldest_unsent_age = 0.0

    # --- readiness -------------------------------------------------------------------------------

    def status(self) -> str | None:
        if self._measuring:
            return "healing: measuring what the broker lost"
        if self._healing_since is not None:
            return f"healing: republishing {self._requeued} events the broker lost ({self._unsent} still to send)"
        if self._oldest_unsent_age > self.stuck_after:
            return f"stuck: {self._unsent} events unsent, the oldest for {self._oldest_unsent_age:.0f} s"
        return None

    async def refresh_queue_stats(self) -> None:
        q = self.tables.queue
        async with self.engine.connect() as conn:
            unsent, oldest = (
                await conn.execute(select(func.count(), func.min(q.c.created_at)).where(q.c.sent_at.is_(None)))
            ).one()
        self._unsent = int(unsent)
        self._oldest_unsent_age = (datetime.now(UTC) - as_utc(oldest)).total_seconds() if oldest else 0.0
        UNSENT.set(self._unsent)
        OLDEST_UNSENT.set(self._oldest_unsent_age)
        if self._healing_since is not None and (oldest is None or as_utc(oldest) > self._healing_since):
            log.info("healing finished: every lost event was published again", extra={"events": self._requeued})
            self._healing_since = None

    # --- detection -------------------------------------------------------------------------------

    async def check(self) -> int:
        """Asks the broker for every partition's newest acknowledged record; heals those it lost."""
        h = self.tables.heads
        async with self.engine.connect() as conn:
            heads = (await conn.execute(select(h.c.topic, h.c.partition, h.c.offset, h.c.event_id))).all()
        lost: LostPartitions = {}
        topics = await self.probe.topics() if heads else None
        if heads and topics is None:
            raise BrokerUnavailable("no answer to a metadata request")  # not a loss: not known either
        for topic, partition, offset, event_id in heads:
            seen = await self.probe.holds(TopicPartition(topic, partition), offset, event_id, topics)
            if seen is Seen.UNKNOWN:
                raise BrokerUnavailable(f"{topic}[{partition}]")
            if seen is Seen.ABSENT:
                lost.setdefault(topic, set()).add(partition)
        if lost:
            return await self.heal(lost, "the broker no longer holds the newest acknowledged record")
        queued = 0
        for topic, position in sorted((await self.audit.run()).items()):
            detected("hidden_records", "the broker serves other records at acknowledged offsets: queued again",
                     topic=topic, from_position=position)  # fmt: skip
            queued += await self._requeue_from(topic, position)
        return queued

    async def remake(self, topic: str) -> None:
        """For a topic the broker no longer lists: makes it afresh with every relay held off, so that what
        the broker took for it while it was gone is not served in the new log (``kafka.recreate_topics``).
        The next ``check`` finds the partitions' heads gone and heals them."""
        if self.recreate_topic is None:
            return
        async with self.lock, self.engine.begin() as conn:
            await self._hold_every_shard(conn)
            await self.recreate_topic(topic)

    async def _requeue_from(self, topic: str, start: int) -> int:
        """Queues ``topic`` again from store position ``start`` (the partitions' heads stay: what the relay
        publishes now lands after them)."""
        async with self.lock, self.engine.begin() as conn:
            await self._hold_every_shard(conn)
            queued = await self._requeue(conn, topic, start)
        if queued:
            self._healing(queued, {topic: queued})
        return queued

    # --- healing ---------------------------------------------------------------------------------

    async def heal(self, lost: LostPartitions, reason: str) -> int:
        """Queues again what ``lost`` partitions lost; returns how many events. Safe to call twice: a
        partition already healed (its head forgotten) is left alone."""
        started = time.monotonic()
        self._measuring += 1
        try:
            queued = await self._requeue_lost(lost, reason)
        finally:
            self._measuring -= 1
        total = sum(queued.values())
        if queued:
            self._healing(total, queued)
            log.info(
                "heal measured and queued", extra={"events": total, "seconds": round(time.monotonic() - started, 2)}
            )
        return total

    async def _requeue_lost(self, lost: LostPartitions, reason: str) -> dict[str, int]:
        queued: dict[str, int] = {}
        async with self.lock, self.engine.begin() as conn:
            await self._hold_every_shard(conn)
            for topic, partitions in sorted(lost.items()):
                confirmed = await self._confirmed(conn, topic, partitions)
                if not confirmed:
                    continue
                start = await self._first_lost_position(conn, topic, confirmed)
                h = self.tables.heads
                headed = set((await conn.execute(select(h.c.partition).where(h.c.topic == topic))).scalars())
                queued[topic] = await self._requeue(conn, topic, start)
                self.audit.from_start(topic, headed | confirmed)
                await conn.execute(delete(h).where(h.c.topic == topic, h.c.partition.in_(confirmed)))
                log.warning(
                    "broker lost published events; queued again",
                    extra={"topic": topic, "partitions": sorted(confirmed), "from_position": start,
                           "events": queued[topic], "reason": reason},
                )  # fmt: skip
        return queued

    async def _hold_every_shard(self, conn: AsyncConnection) -> None:
        if self._postgres:  # every shard, waiting for relays in other processes to finish their batch
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:ns, s) FROM generate_series(0, :last) AS s"),
                {"ns": ADVISORY_NAMESPACE, "last": SHARDS - 1},
            )

    def _healing(self, total: int, queued: dict[str, int]) -> None:
        for topic, count in queued.items():
            REPUBLISHED.labels(topic).inc(count)
        self._requeued = total + (self._requeued if self._healing_since is not None else 0)
        self._healing_since = datetime.now(UTC)
        self.wake_relay()

    async def _confirmed(self, conn: AsyncConnection, topic: str, partitions: set[int]) -> set[int]:
        h = self.tables.heads
        rows = await conn.execute(
            select(h.c.partition, h.c.offset, h.c.event_id).where(h.c.topic == topic, h.c.partition.in_(partitions))
        )
        confirmed = set()
        for partition, offset, event_id in rows:
            seen = await self.probe.holds(TopicPartition(topic, partition), offset, event_id)
            if seen is Seen.UNKNOWN:
                raise BrokerUnavailable(f"{topic}[{partition}]")
            if seen is Seen.ABSENT:
                confirmed.add(partition)
        return confirmed

    async def _first_lost_position(self, conn: AsyncConnection, topic: str, partitions: set[int]) -> int:
        """The lowest position lost on any of ``partitions``; 0 when nothing of a partition survived."""
        q, s = self.tables.queue, self.tables.store
        starts = []
        for partition in sorted(partitions):
            on_partition = and_(q.c.topic == topic, q.c.partition == partition, q.c.offset.is_not(None))
            low, high = (
                await conn.execute(select(func.min(q.c.offset), func.max(q.c.offset)).where(on_partition))
            ).one()
            if low is None:
                return 0
            intact: int | None = None
            while low <= high:
                middle = (low + high) // 2
                row = (
                    await conn.execute(
                        select(q.c.offset, s.c.event_id)
                        .join(s, s.c.position == q.c.position)
                        .where(on_partition, q.c.offset >= middle)
                        .order_by(q.c.offset)
                        .limit(1)
                    )
                ).one()
                seen = await self.probe.holds(TopicPartition(topic, partition), row.offset, row.event_id)
                if seen is Seen.UNKNOWN:
                    raise BrokerUnavailable(f"{topic}[{partition}]")
                if seen is Seen.FOUND:
                    intact, low = row.offset, row.offset + 1
                else:
                    high = middle - 1
            if intact is None:
                return 0
            first = (
                await conn.execute(select(func.min(q.c.position)).where(on_partition, q.c.offset > intact))
            ).scalar_one()
            if first is not None:
                starts.append(int(first))
        return min(starts) if starts else 0

    async def _requeue(self, conn: AsyncConnection, topic: str, start: int) -> int:
        q, s = self.tables.queue, self.tables.store
        now = datetime.now(UTC)
        again = await conn.execute(
            update(q)
            .where(q.c.topic == topic, q.c.position >= start, q.c.sent_at.is_not(None))
            .values(sent_at=None, partition=None, offset=None, created_at=now)
        )
        pruned = await conn.execute(
            insert(q).from_select(
                ["position", "topic", "shard", "created_at"],
                select(s.c.position, s.c.topic, s.c.shard, literal(now, q.c.created_at.type))
                .where(s.c.topic == topic, s.c.position >= start)
                .where(~exists().where(q.c.position == s.c.position)),
            )
        )
        return int(again.rowcount or 0) + int(pruned.rowcount or 0)
