"""CloudEvents as notifications sends and keeps them: rebuilt from the validated payload, as webhook bodies,
and back from the structured form a held event is stored in."""

from __future__ import annotations

from typing import Any

from send_shared.events.envelope import CloudEvent, parse_time
from send_shared.events.schemas import EventPayloadV1, ReferralEventV1


def clean_event(event: CloudEvent, payload: EventPayloadV1) -> CloudEvent:
    """The event rebuilt from its validated payload and the attributes the contract defines."""
    extensions = {"referralversion": str(payload.version)} if isinstance(payload, ReferralEventV1) else {}
    return CloudEvent(
        id=event.id,
        type=event.type,
        source=event.source,
        subject=event.subject,
        time=event.time,
        data=payload.model_dump(mode="json"),
        extensions=extensions,
    )


def webhook_body(event: CloudEvent, referral_link: str | None) -> dict[str, Any]:
    """The (clean) CloudEvent in JSON structured mode, plus a link to fetch the referral (for those allowed to)."""
    body = event.to_structured()
    if referral_link:
        body["referrallink"] = referral_link
    return body


def from_structured(document: dict[str, Any]) -> CloudEvent:
    """The CloudEvent a structured-mode document holds (a held event, as it was stored)."""
    core = {"id", "source", "type", "specversion", "time", "subject", "datacontenttype", "data"}
    return CloudEvent(
        id=document["id"],
        type=document["type"],
        source=document["source"],
        subject=document.get("subject"),
        time=parse_time(document["time"]),
        data=document["data"],
        extensions={k: str(v) for k, v in document.items() if k not in core},
    )
