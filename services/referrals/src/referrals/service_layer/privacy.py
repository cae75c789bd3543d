"""Erasure (UK GDPR Article 17) and subject access (Article 15), for the organisations that sent or received
the referrals: the referrer role of the referring organisation, the receiver role of the receiving one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from referrals.domain.audit import AuditAction, AuditEntry
from referrals.domain.child import child_reference
from referrals.domain.model import Referral
from referrals.domain.privacy import SubjectRecord, Tombstone, check_erasable
from referrals.service_layer.callers import Caller
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.unit_of_work import UnitOfWork


async def erase_referral(referral_id: str, caller: Caller, uow: UnitOfWork) -> Tombstone:
    """Replaces the child's personal data in the referral by a tombstone; the referral, its history, its consent
    codes and its events stay as they are. Erasing an erased referral changes nothing and answers its tombstone."""
    now = datetime.now(UTC)
    async with uow:
        referral = await _readable(referral_id, caller, uow)
        held = await uow.privacy.person_record(referral_id)
        if held is not None and held.tombstone is not None:
            return held.tombstone
        check_erasable(referral)
        await uow.privacy.erase(referral_id, at=now, by_org_id=caller.organisation_id)
        await uow.audit_log.add(_audit(caller, AuditAction.ERASED, referral_id, now))
        await uow.commit()
    return Tombstone(now, caller.organisation_id)


@dataclass(frozen=True)
class SubjectAccessRequest:
    """Which child: an NHS number, a unique pupil number, or both (normalised: no spaces, upper case)."""

    caller: Caller
    nhs_number: str | None = None
    upn: str | None = None


async def subject_access(request: SubjectAccessRequest, uow: UnitOfWork, child_ref_key: bytes) -> list[SubjectRecord]:
    """Everything held about the child in the referrals the caller may read (those its organisation sent, for the
    referrer role; those it receives, for the receiver role), oldest first; none is an empty list, whether the
    child is unknown or known only to other organisations. The request is audited, once per referral exported
    (once without a referral when none is), before the audit log is read: the export shows it."""
    caller = request.caller
    identifiers = [i for i in (request.nhs_number, request.upn) if i]
    child_refs = [child_reference(i, child_ref_key) for i in identifiers]
    now = datetime.now(UTC)
    async with uow:
        found = await uow.privacy.referrals_of_child(child_refs, nhs_number=request.nhs_number, upn=request.upn)
        mine = [r for r in found if r.readable_by(caller.organisation_id, caller.role)]
        exported: list[str | None] = [r.id for r in mine]
        for referral_id in exported or [None]:
            await uow.audit_log.add(_audit(caller, AuditAction.SUBJECT_ACCESS, referral_id, now))
        audit = await uow.privacy.audit_entries([r.id for r in mine])
        records = [
            SubjectRecord(
                referral=referral,
                person=await uow.privacy.person_record(referral.id),
                history=await uow.referrals.history(referral.id),
                consents=await uow.consents.history(referral.id),
                family_links=await uow.family_links.of_referral(referral.id),
                audit_log=[entry for entry in audit if entry.referral_id == referral.id],
            )
            for referral in mine
        ]
        await uow.commit()
    return records


async def _readable(referral_id: str, caller: Caller, uow: UnitOfWork) -> Referral:
    """As reading a referral: to anyone but its two organisations it does not exist; of those, only the referrer
    role of the referring one and the receiver role of the receiving one may act on the child's data."""
    referral = await uow.referrals.get(referral_id, for_update=True)
    if referral is None or not referral.seen_by(caller.organisation_id):
        raise NotFound(referral_id)
    if not referral.readable_by(caller.organisation_id, caller.role):
        raise NotYourReferral(f"the {caller.role} role of this organisation may not erase this referral's data")
    return referral


def _audit(caller: Caller, action: AuditAction, referral_id: str | None, at: datetime) -> AuditEntry:
    return AuditEntry(
        at=at,
        subject=caller.subject,
        organisation_id=caller.organisation_id,
        role=caller.role,
        action=action,
        referral_id=referral_id,
    )
