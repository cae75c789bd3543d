"""Per-referral order of what an agency hears. Pure Python.

Every change of a referral carries the next version, and a receiver must never hear version 5 before
version 4. Events normally arrive in order (one referral, one partition); after the broker lost
records they may not: what was lost comes back later, behind newer events. So a referral's event is
sent on only when it is the next version; one that arrives early is held until the versions before it
are in, or until it has waited ``hold_limit`` (a version that never comes back must not silence the
referral for ever)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Arrival(StrEnum):
    STALE = "stale"  # this version, or a later one, was already sent on: a repeat
    NEXT = "next"  # the version after the last one sent on
    EARLY = "early"  # a version before it is still missing: hold it


def arrival(last_sent: int, version: int) -> Arrival:
    if version <= last_sent:
        return Arrival.STALE
    if version == last_sent + 1:
        return Arrival.NEXT
    return Arrival.EARLY


@dataclass(frozen=True, slots=True)
class HeldEvent:
    event_id: str
    version: int
    event: dict[str, Any]  # the clean CloudEvent, structured mode
