"""Idempotent requests: a retry with the same key and body gets the first response again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first response to a request, kept under its organisation and Idempotency-Key."""

    request_hash: str
    status_code: int
    body: dict[str, Any]
