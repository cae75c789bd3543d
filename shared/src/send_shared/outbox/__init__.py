"""Transactional outbox: write the event in the state change's transaction; a relay publishes it."""

from send_shared.outbox.relay import OutboxRelay
from send_shared.outbox.table import define_outbox_table
from send_shared.outbox.writer import OutboxWriter

__all__ = ["OutboxRelay", "OutboxWriter", "define_outbox_table"]
