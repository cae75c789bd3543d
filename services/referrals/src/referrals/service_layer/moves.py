"""Moving a referral to a new status, opening the linked referral a hand-off or a re-referral needs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from referrals.domain.lifecycle import Status
from referrals.domain.model import MoveDetails, Referral, check_no_open_duplicate, check_not_in_future
from referrals.service_layer.callers import Caller
from referrals.service_layer.consent import consent_of, copy_consent
from referrals.service_layer.directory import find_service
from referrals.service_layer.errors import NotFound, VersionMismatch
from referrals.service_layer.interim import signpost_if_long_wait
from referrals.service_layer.unit_of_work import UnitOfWork
from send_shared.conflicts import retried_on_conflict


@dataclass(frozen=True)
class MoveReferral:
    caller: Caller
    referral_id: str
    target: Status
    expected_version: int
    details: MoveDetails
    occurred_at: datetime | None = None
    signpost_after_days: int | None = None
    """Accepting signposts the referral to interim offers when its service's predicted p90 wait to support is over
    this many days (None: never)."""
    event_source: str = "/send/referrals"


@retried_on_conflict
async def move_referral(cmd: MoveReferral, uow: UnitOfWork) -> Referral:
    now = datetime.now(UTC)
    occurred_at = cmd.occurred_at or now
    d = cmd.details
    check_not_in_future(occurred_at, now)
    onward_id = d.target_service_id if cmd.target is Status.HANDED_OFF else d.rereferral_service_id
    onward_field = "target_service_id" if cmd.target is Status.HANDED_OFF else "rereferral_service_id"
    async with uow:
        if d.signposted_service_id:
            await find_service(uow.directory, d.signposted_service_id, "signposted_service_id")
        onward = await find_service(uow.directory, onward_id, onward_field) if onward_id else None
        referral = await uow.referrals.get(cmd.referral_id, for_update=True)
        if referral is None or not referral.seen_by(cmd.caller.organisation_id):
            raise NotFound(cmd.referral_id)
        actor = referral.actor_for(cmd.caller.organisation_id, cmd.caller.role, cmd.target)
        if referral.version != cmd.expected_version:
            raise VersionMismatch(referral.version)
        linked: Referral | None = None
        if onward is not None and cmd.target in (Status.HANDED_OFF, Status.REJECTED):
            referral.check_onward_service(onward.id, onward_field)
            (await consent_of(uow, referral)).check_onward(onward, onward_field)
            check_no_open_duplicate(await uow.referrals.open_for_child(referral.child_ref), onward.id)
            linked = referral.linked_copy(
                id=str(uuid.uuid4()),
                service_id=onward.id,
                receiving_org_id=onward.organisation_id,
                is_ehc=onward.is_ehc,
                at=occurred_at,
                recorded_at=now,
                recorded_by=cmd.caller.organisation_id,
            )
        referral.move(
            cmd.target,
            actor=actor,
            occurred_at=occurred_at,
            recorded_at=now,
            details=d,
            linked_referral_id=linked.id if linked else None,
            recorded_by=cmd.caller.organisation_id,
        )
        await uow.referrals.save(referral, expected_version=cmd.expected_version)
        if linked is not None:
            person = await uow.referrals.person(referral.id)
            if person is None:
                raise NotFound(referral.id)
            await uow.referrals.add(linked, person)
            await copy_consent(uow, referral, linked, now=now, recorded_by=cmd.caller.organisation_id)
        if cmd.signpost_after_days is not None:
            await signpost_if_long_wait(
                referral, uow, threshold_days=cmd.signpost_after_days, now=now, source=cmd.event_source
            )
        await uow.commit()
    return referral
