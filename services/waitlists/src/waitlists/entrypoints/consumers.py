"""Consumer of referrals.events.v1: folds referral and directory events into the projection.

Every event is checked against its schema and its own attributes first, then against what the projection can
hold (``adapters.events.from_cloud_event``: column lengths, and business times within the dates counted with,
so an event dated in year 1 or 9999 never reaches the date arithmetic); a violation raises an error the runtime
never retries, and the consumer parks the event on the dead-letter topic and goes on with the next."""

from __future__ import annotations

from send_shared.events.envelope import CloudEvent
from waitlists.adapters.events import from_cloud_event
from waitlists.service_layer.projection import project_event
from waitlists.service_layer.unit_of_work import UnitOfWork


async def on_referral_event(event: CloudEvent, uow: UnitOfWork) -> None:
    entry = from_cloud_event(event)
    if entry is not None:
        await project_event(uow, entry)
