"""Body of every service's Alembic ``env.py`` (online migrations over the async engine), and migration steps
the services share (tables ``send_shared`` defines)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from send_shared.db import create_engine


def run_alembic_env(target_metadata: MetaData) -> None:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL, or migrate through the service's `migrate` command")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, target_metadata))


async def _run_online(url: str, target_metadata: MetaData) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate, target_metadata)
            await connection.commit()
    finally:
        await engine.dispose()


def _migrate(connection: Connection, target_metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def create_positions_table(op: Any) -> None:
    """Migration step: the consumer positions table (``send_shared.consumer.positions``)."""
    op.create_table(
        "consumer_positions",
        sa.Column("consumer_group", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "topic", "partition", name=op.f("pk_consumer_positions")),
    )


def outbox_to_event_store(op: Any) -> None:
    """Migration step: the single ``outbox`` table becomes the event store, the publish queue and the
    published heads (``send_shared.outbox.table``). Every row the old outbox still held goes into the
    store in its old order; unsent rows stay queued, sent ones are kept as sent (with no offset known)."""
    position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "event_store",
        sa.Column("position", position, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("message_key", sa.String(length=200), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_event_store")),
        sa.UniqueConstraint("event_id", name=op.f("uq_event_store_event_id")),
    )
    op.create_index("ix_event_store_topic_position", "event_store", ["topic", "position"], unique=False)
    op.execute(
        "INSERT INTO event_store (event_id, topic, message_key, shard, headers, payload, created_at) "
        "SELECT event_id, topic, message_key, shard, headers, payload, created_at FROM outbox ORDER BY id"
    )
    op.rename_table("outbox", "outbox_before_store")
    if op.get_bind().dialect.name == "postgresql":  # constraint names are the schema's, not the table's
        for name in ("pk_outbox", "uq_outbox_event_id"):
            op.execute(f"ALTER TABLE outbox_before_store RENAME CONSTRAINT {name} TO {name}_before_store")
    for index in ("ix_outbox_unsent", "ix_outbox_sent_at"):
        op.drop_index(index, table_name="outbox_before_store")
    op.create_table(
        "outbox",
        sa.Column("position", position, autoincrement=False, nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("partition", sa.Integer(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"], unique=False)
    op.create_index("ix_outbox_topic_partition_offset", "outbox", ["topic", "partition", "offset"], unique=False)
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["position"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.execute(
        "INSERT INTO outbox (position, topic, shard, created_at, sent_at) "
        "SELECT s.position, o.topic, o.shard, o.created_at, o.sent_at "
        "FROM outbox_before_store o JOIN event_store s ON s.event_id = o.event_id"
    )
    op.drop_table("outbox_before_store")
    op.create_table(
        "published_heads",
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", name=op.f("pk_published_heads")),
    )
