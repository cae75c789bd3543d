"""The seed directory a new installation starts with (a packaged JSON file)."""

from __future__ import annotations

import json
from importlib.resources import files

from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import Clock, Organisation, OrganisationKind, Service
from referrals.domain.interim import InterimOffer


def seed_file() -> tuple[list[Organisation], list[Service]]:
    """The realistic small area a new installation starts with."""
    doc = json.loads(files("referrals").joinpath("seed/directory.json").read_text())
    orgs = [
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
            needs=tuple(NeedCode(n) for n in s["needs"]),
            urgencies=tuple(Urgency(u) for u in s["urgencies"]),
            clocks=tuple(Clock(c) for c in s["clocks"]),
            target_days=s.get("target_days"),
            contact_phone=s.get("contact_phone"),
            contact_email=s.get("contact_email"),
            contact_url=s.get("contact_url"),
        )
        for s in doc["services"]
    ]
    return orgs, services


def seed_offers() -> list[InterimOffer]:
    """The seed directory's interim offers: support while waiting, from the services' own organisations, a trust's
    in-house specialists and the voluntary sector."""
    doc = json.loads(files("referrals").joinpath("seed/directory.json").read_text())
    return [
        InterimOffer(
            id=o["id"],
            service_id=o["service_id"],
            provider_org_id=o["provider_org_id"],
            name=o["name"],
            description=o["description"],
            needs=tuple(NeedCode(n) for n in o["needs"]),
            urgencies=tuple(Urgency(u) for u in o.get("urgencies", [])),
            min_age=o.get("min_age"),
            max_age=o.get("max_age"),
            contact_phone=o.get("contact_phone"),
            contact_email=o.get("contact_email"),
            contact_url=o.get("contact_url"),
        )
        for o in doc.get("interim_offers", [])
    ]
