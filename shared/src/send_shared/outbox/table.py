"""The outbox table, added to a service's own metadata so Alembic migrates it with the service's tables."""

from __future__ import annotations

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


def define_outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    return Table(
        name,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(249), nullable=False),
        Column("message_key", String(200), nullable=False),
        Column("shard", SmallInteger, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        Index(
            f"ix_{name}_unsent",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
        Index(f"ix_{name}_sent_at", "sent_at"),
    )
