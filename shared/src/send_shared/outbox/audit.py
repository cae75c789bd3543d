"""Reads back what the broker acknowledged: the record it serves at each acknowledged offset must be the
event the relay sent there.

Probing each partition's newest record (the healer's ``check``) notices a log that was lost or cut
short. It cannot notice a log that keeps its newest record but serves something else further down:
the embedded broker does this when a topic is deleted and created again while producers write, since
record batches of the earlier topic outlive it and are served at the new topic's offsets, hiding what
was written there. So every acknowledged record is read back once, a little after it was sent: per
partition, from the first offset not yet read back up to the newest acknowledged one. Where the broker
serves another record, the audit answers the lowest store position that was hidden, and the healer
queues the topic again from there.

What was acknowledged before this process started is taken as read back, except after a loss: the
healer then asks for the topic's partitions to be read back from their first offset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import TopicPartition
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from send_shared.log_probe import LogProbe
from send_shared.outbox.table import OutboxTables

log = logging.getLogger(__name__)
READ_BACK = Counter("outbox_read_back_events", "Acknowledged events read back from the broker.", ["outcome"])
CHUNK = 5_000  # offsets compared per query and per read, so a long log is read back in bounded memory


class ReadBackAudit:
    def __init__(self, engine: AsyncEngine, tables: OutboxTables, probe: LogProbe) -> None:
        self.engine = engine
        self.tables = tables
        self.probe = probe
        # Per partition, the first acknowledged offset not yet read back; None until the first run.
        self._next: dict[tuple[str, int], int] | None = None

    def from_start(self, topic: str, partitions: Iterable[int]) -> None:
        """After a loss: what is acknowledged on these partitions from now on is read back from offset 0."""
        marks = self._next if self._next is not None else {}
        for partition in partitions:
            marks[(topic, partition)] = 0
        self._next = marks

    async def run(self) -> dict[str, int]:
        """Reads back what was acknowledged since the last run; returns, per topic where the broker serves
        something else, the lowest store position it hides."""
        h = self.tables.heads
        async with self.engine.connect() as conn:
            heads = (await conn.execute(select(h.c.topic, h.c.partition, h.c.offset))).all()
        if self._next is None:  # what was acknowledged before this process started is trusted
            self._next = {(topic, partition): head + 1 for topic, partition, head in heads}
        hidden: dict[str, int] = {}
        for topic, partition, head in heads:
            start = self._next.setdefault((topic, partition), 0)
            if start > head:
                continue
            position = await self._read_back(TopicPartition(topic, partition), start, head)
            if position is not None:
                hidden[topic] = min(position, hidden.get(topic, position))
        return hidden

    async def _read_back(self, tp: TopicPartition, start: int, head: int) -> int | None:
        """Compares offsets ``start``..``head`` chunk by chunk and moves the partition's mark past what
        matched; stops at a chunk holding a record the broker hides (answering its lowest position) or
        one it did not serve whole (read back next time; a lost log is the head probe's to notice)."""
        q, s = self.tables.queue, self.tables.store
        while start <= head:
            end = min(start + CHUNK - 1, head)
            async with self.engine.connect() as conn:
                rows = await conn.execute(
                    select(q.c.offset, s.c.event_id, q.c.position)
                    .join(s, s.c.position == q.c.position)
                    .where(q.c.topic == tp.topic, q.c.partition == tp.partition, q.c.offset.between(start, end))
                    .order_by(q.c.offset, q.c.sent_at)
                )
                expected = {offset: (event_id, position) for offset, event_id, position in rows}  # latest send wins
            if expected:
                served = await self.probe.read_range(tp, min(expected), max(expected))
                if served is None:
                    return None
                hidden = [position for offset, (event_id, position) in expected.items()
                          if offset in served and served[offset] != event_id]  # fmt: skip
                READ_BACK.labels("matched").inc(len(expected) - len(hidden))
                if hidden:
                    READ_BACK.labels("hidden").inc(len(hidden))
                    log.warning("the broker serves other records at acknowledged offsets",
                                extra={"partition": str(tp), "from_offset": start, "hidden": len(hidden)})  # fmt: skip
                    return int(min(hidden))
                if len(served) < len(expected):
                    return None
            assert self._next is not None
            self._next[(tp.topic, tp.partition)] = start = end + 1
        return None
