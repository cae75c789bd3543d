"""Reading referrals: the list an organisation sees, one referral (an audited read), its history."""

from __future__ import annotations

from datetime import UTC, datetime

from referrals.domain.audit import AuditAction, AuditEntry
from referrals.domain.child import PersonalDetails
from referrals.domain.consent import ConsentRecord
from referrals.domain.history import HistoryRecord
from referrals.domain.listing import ListFilter
from referrals.domain.model import Referral
from referrals.domain.privacy import Tombstone
from referrals.service_layer.callers import Caller
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.unit_of_work import UnitOfWork


async def get_referral(
    referral_id: str, caller: Caller, uow: UnitOfWork
) -> tuple[Referral, PersonalDetails | Tombstone | None, list[Referral], ConsentRecord | None]:
    """The referral, the child's details (read audited), the child's other open referrals and the consent in force."""
    async with uow:
        referral = await _readable(referral_id, caller, uow)
        held = await uow.privacy.person_record(referral_id)
        tombstone = held.tombstone if held is not None else None  # an erased child's data is its tombstone
        person: PersonalDetails | Tombstone | None = tombstone or await uow.referrals.person(referral_id)
        consents = await uow.consents.history(referral_id)
        parallel = [r for r in await uow.referrals.open_for_child(referral.child_ref) if r.id != referral.id]
        await uow.audit_log.add(
            AuditEntry(
                at=datetime.now(UTC),
                subject=caller.subject,
                organisation_id=caller.organisation_id,
                role=caller.role,
                action=AuditAction.READ_REFERRAL,
                referral_id=referral_id,
            )
        )
        await uow.commit()
    return referral, person, parallel, (consents[-1] if consents else None)


async def list_referrals(
    f: ListFilter, uow: UnitOfWork, *, limit: int, cursor: str | None
) -> tuple[list[Referral], str | None]:
    async with uow:
        return await uow.referrals.visible(f, limit=limit, cursor=cursor)


async def referral_history(referral_id: str, caller: Caller, uow: UnitOfWork) -> list[HistoryRecord]:
    async with uow:
        await _readable(referral_id, caller, uow)
        return await uow.referrals.history(referral_id)


async def _readable(referral_id: str, caller: Caller, uow: UnitOfWork) -> Referral:
    referral = await uow.referrals.get(referral_id)
    if referral is None or not referral.seen_by(caller.organisation_id):
        raise NotFound(referral_id)
    if not referral.readable_by(caller.organisation_id, caller.role):
        raise NotYourReferral(f"the {caller.role} role of this organisation may not read this referral")
    return referral
