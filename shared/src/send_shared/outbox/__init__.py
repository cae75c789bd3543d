"""Transactional outbox: write the event in the state change's transaction; a relay publishes it; the
event store keeps every event, so what the broker forgets is published again."""

from send_shared.outbox.relay import OutboxRelay
from send_shared.outbox.table import OutboxTables, define_outbox_tables
from send_shared.outbox.writer import OutboxWriter

__all__ = ["OutboxRelay", "OutboxTables", "OutboxWriter", "define_outbox_tables"]
