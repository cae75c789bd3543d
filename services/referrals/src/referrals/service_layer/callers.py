"""Who asks: the authenticated caller as the use cases see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    organisation_id: str
    role: str
    subject: str
