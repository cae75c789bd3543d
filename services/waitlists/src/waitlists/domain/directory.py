"""The directory as waitlists holds it, from the directory's events: organisations and the services they run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from waitlists.domain.clocks import ServiceClocks


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    service_id: str
    organisation_id: str
    name: str
    clocks: tuple[str, ...]  # as the directory names them, known to this version or not
    target_days: int | None
    active: bool
    version: int

    @property
    def service_clocks(self) -> ServiceClocks:
        return ServiceClocks.named(self.clocks, self.target_days)


@dataclass(frozen=True, slots=True)
class OrganisationEntry:
    organisation_id: str
    name: str
    kind: str
    area_id: str
    version: int


Entry = TypeVar("Entry", ServiceEntry, OrganisationEntry)


def newest(held: Entry | None, entry: Entry) -> Entry:
    """The entry to hold: the newest version, and of equal versions the first seen (a late, older snapshot
    never wins)."""
    return entry if held is None or held.version < entry.version else held


def clocks_changed(held: ServiceEntry | None, entry: ServiceEntry) -> bool:
    """Whether the service's referrals' facts must be derived again: a new service, or a newer version with
    other clocks or another target."""
    return held is None or (
        held.version < entry.version and (held.clocks, held.target_days) != (entry.clocks, entry.target_days)
    )
