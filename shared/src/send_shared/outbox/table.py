"""The outbox tables, added to a service's own metadata so Alembic migrates them with the service's tables.

- ``event_store``: every event the service ever published, with its position (the order it was written
  in). Append-only and never pruned: it is what the service publishes again when the broker forgets.
- ``outbox``: the publish queue. One row per store position waiting to be published, or published
  (``sent_at``, and the partition and offset the broker acknowledged). Sent rows are pruned after a
  retention period; a republish puts store positions back on the queue.
- ``published_heads``: per topic partition, the newest record the broker acknowledged (offset and
  event id). The broker still holding that record is how the service knows the partition is intact.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    text,
)

# The relay claims rows shard by shard; all events of one key share a shard (see relay.py).
SHARDS = 64
_POSITION = BigInteger().with_variant(Integer, "sqlite")


@dataclass(frozen=True)
class OutboxTables:
    store: Table
    queue: Table
    heads: Table


def define_outbox_tables(metadata: MetaData) -> OutboxTables:
    store = Table(
        "event_store",
        metadata,
        Column("position", _POSITION, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(249), nullable=False),
        Column("message_key", String(200), nullable=False),
        Column("shard", SmallInteger, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Index("ix_event_store_topic_position", "topic", "position"),
    )
    queue = Table(
        "outbox",
        metadata,
        Column("position", _POSITION, primary_key=True, autoincrement=False),
        Column("topic", String(249), nullable=False),
        Column("shard", SmallInteger, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        Column("partition", Integer, nullable=True),
        Column("offset", BigInteger, nullable=True),
        Index(
            "ix_outbox_unsent",
            "position",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
        Index("ix_outbox_sent_at", "sent_at"),
        Index("ix_outbox_topic_partition_offset", "topic", "partition", "offset"),
    )
    heads = Table(
        "published_heads",
        metadata,
        Column("topic", String(249), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("offset", BigInteger, nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    return OutboxTables(store, queue, heads)
