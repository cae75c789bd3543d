"""The directory of organisations and services, loaded from the seed file.

Held in memory for now; the admin API and directory events replace this (issue 4).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from referrals.domain.directory import Organisation, OrganisationKind, Service


class Directory:
    def __init__(self, organisations: list[Organisation], services: list[Service]) -> None:
        self.organisations = {o.id: o for o in organisations}
        self.services = {s.id: s for s in services}

    def service(self, service_id: str) -> Service | None:
        return self.services.get(service_id)

    def organisation(self, organisation_id: str) -> Organisation | None:
        return self.organisations.get(organisation_id)


@cache
def seeded_directory() -> Directory:
    doc = json.loads(files("referrals").joinpath("seed/directory.json").read_text())
    organisations = [
        Organisation(
            id=o["id"],
            name=o["name"],
            kind=OrganisationKind(o["kind"]),
            area_id=o["area_id"],
            trust_id=o.get("trust_id"),
        )
        for o in doc["organisations"]
    ]
    services = [
        Service(
            id=s["id"],
            organisation_id=s["organisation_id"],
            name=s["name"],
            needs=tuple(s["needs"]),
            urgencies=tuple(s["urgencies"]),
            clocks=tuple(s["clocks"]),
            target_days=s.get("target_days"),
        )
        for s in doc["services"]
    ]
    return Directory(organisations, services)
