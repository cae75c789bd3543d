"""Consumer of referral events and waitlist alerts: queues what concerns someone for delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from notifications.service_layer.fanout import fan_out, read_ahead
from notifications.service_layer.unit_of_work import UnitOfWork
from send_shared.events.envelope import CloudEvent

Transaction = TypeVar("Transaction")  # the consumer's session; only the adapters know its type


def event_handler(
    *,
    unit_of_work_in: Callable[[Transaction], UnitOfWork],
    referral_link_template: str,
    emails: bool = True,
    after: Callable[[], None] | None = None,
) -> Callable[[CloudEvent, Transaction], Awaitable[None]]:
    """The consumer's handler, run in the consumer's transaction (``unit_of_work_in`` gives the repositories
    in it); ``after`` is told when deliveries were queued (it wakes the dispatcher); ``emails``: whether email is
    sent at all."""

    async def on_event(event: CloudEvent, transaction: Transaction) -> None:
        queued = await fan_out(
            event, unit_of_work_in(transaction), referral_link_template=referral_link_template, emails=emails
        )
        if queued and after is not None:
            after()

    return on_event


def batch_reader(
    *, unit_of_work_in: Callable[[Transaction], UnitOfWork]
) -> Callable[[Sequence[CloudEvent], Transaction], Awaitable[None]]:
    """The consumer's step before a batch's handlers: what they would each read, read at once."""

    async def before_batch(events: Sequence[CloudEvent], transaction: Transaction) -> None:
        await read_ahead(events, unit_of_work_in(transaction))

    return before_batch


def batch_writer(*, unit_of_work_in: Callable[[Transaction], UnitOfWork]) -> Callable[[Transaction], Awaitable[None]]:
    """The consumer's step before each commit: what the handlers kept for the end of the transaction, written."""

    async def before_commit(transaction: Transaction) -> None:
        await unit_of_work_in(transaction).flush()

    return before_commit
