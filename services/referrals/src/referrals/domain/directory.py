"""Organisations and the services they offer (brief §2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class OrganisationKind(StrEnum):
    SCHOOL = "school"
    TRUST = "trust"
    CAMHS = "camhs"
    LOCAL_AUTHORITY = "local_authority"
    HEALTH = "health"
    VOLUNTARY = "voluntary"


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    kind: OrganisationKind
    area_id: str
    trust_id: str | None = None


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    organisation_id: str
    name: str
    needs: tuple[str, ...]
    urgencies: tuple[str, ...]
    clocks: tuple[str, ...]
    target_days: int | None = None
