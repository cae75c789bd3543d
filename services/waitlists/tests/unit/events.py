"""CloudEvents as referrals publishes them, for the unit tests of the projection and the rebuild's fold."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    SERVICE_UPSERTED,
    OrganisationV1,
    ReferralEventV1,
    ReferralStatus,
    ServiceV1,
    referral_event_type,
)


def change(referral_id: str, version: int, status: str, day: str, child: str = "c1", **extra: Any) -> CloudEvent:
    at = datetime.fromisoformat(f"{day}T10:00:00+00:00")
    service = extra.pop("service", "svc-camhs")
    data = ReferralEventV1(
        referral_id=referral_id, version=version, status=ReferralStatus(status), child_ref=child,
        referrer_org_id="org-school", service_id=service, receiving_org_id="org-camhs", occurred_at=at,
        recorded_at=at, **extra,
    )  # fmt: skip
    return CloudEvent(type=referral_event_type(status), source="/t", subject=referral_id,
                      data=data.model_dump(mode="json"))  # fmt: skip


def service(version: int, clocks: list[str], service_id: str = "svc-camhs") -> CloudEvent:
    data = ServiceV1(service_id=service_id, version=version, organisation_id="org-camhs", name=f"v{version}",
                     needs=["SEMH"], urgencies=["routine"], clocks=clocks)  # fmt: skip
    return CloudEvent(type=SERVICE_UPSERTED, source="/t", data=data.model_dump(mode="json"))


def organisation(version: int, name: str, organisation_id: str = "org-camhs") -> CloudEvent:
    data = OrganisationV1(organisation_id=organisation_id, version=version, name=name, kind="camhs", area_id="la-1")
    return CloudEvent(type=ORGANISATION_UPSERTED, source="/t", data=data.model_dump(mode="json"))
