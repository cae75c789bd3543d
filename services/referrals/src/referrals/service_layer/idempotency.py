"""Idempotent writes: the first response is stored under the caller's organisation and Idempotency-Key, in the
same transaction as the write, and a retry with the same body gets it again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from referrals.domain.errors import DomainError
from referrals.domain.idempotency import StoredResponse
from referrals.service_layer.callers import Caller
from referrals.service_layer.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Idempotency:
    key: str
    request_hash: str


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different request body."""


async def earlier_response(uow: UnitOfWork, caller: Caller, idempotency: Idempotency) -> StoredResponse | None:
    """The response stored under the key, if any; the key with another body is refused."""
    stored = await uow.referrals.stored_response(caller.organisation_id, idempotency.key)
    if stored is not None and stored.request_hash != idempotency.request_hash:
        raise IdempotencyKeyReused(idempotency.key)
    return stored


async def remember(
    uow: UnitOfWork, caller: Caller, idempotency: Idempotency, status_code: int, body: dict[str, Any]
) -> StoredResponse:
    response = StoredResponse(idempotency.request_hash, status_code, body)
    await uow.referrals.store_response(caller.organisation_id, idempotency.key, response)
    return response
