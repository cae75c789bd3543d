"""Organisations and the services they offer (brief §2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.errors import DomainError


class OrganisationKind(StrEnum):
    SCHOOL = "school"
    TRUST = "trust"
    CAMHS = "camhs"
    LOCAL_AUTHORITY = "local_authority"
    HEALTH = "health"
    VOLUNTARY = "voluntary"


class Clock(StrEnum):
    """The waiting-time clocks a service can run (brief §4)."""

    EHC_DECISION_6W = "ehc_decision_6w"
    EHC_NO_PLAN_16W = "ehc_no_plan_16w"
    EHC_PLAN_20W = "ehc_plan_20w"
    RTT_18W = "rtt_18w"
    CYPMH_4W = "cypmh_4w"
    CYPMH_ED = "cypmh_ed"
    CYPMH_CRISIS = "cypmh_crisis"
    SERVICE_TARGET = "service_target"


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    kind: OrganisationKind
    area_id: str
    trust_id: str | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    organisation_id: str
    name: str
    needs: tuple[NeedCode, ...]
    urgencies: tuple[Urgency, ...]
    clocks: tuple[Clock, ...]
    target_days: int | None = None
    active: bool = True
    version: int = 0
    contact_phone: str | None = None
    """How a family reaches the service (directory data, never a person's): shown on the family view."""
    contact_email: str | None = None
    contact_url: str | None = None

    @property
    def is_ehc(self) -> bool:
        return any(c.startswith("ehc_") for c in self.clocks)


class DirectoryConflict(DomainError):
    """A directory entry breaks a rule of the directory; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_service(service: Service) -> None:
    if Clock.SERVICE_TARGET in service.clocks and service.target_days is None:
        raise DirectoryConflict("target_days", "a service_target clock needs target_days")
