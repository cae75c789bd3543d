"""A child's rights over their data (UK GDPR): erasure of a closed referral's personal data, and subject access."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from referrals.domain.privacy import ErasureRefused
from referrals.entrypoints.dependencies import Party, Settings, Uow, caller_of
from referrals.entrypoints.privacy_schemas import ErasureOut, SubjectAccessIn, SubjectAccessOut, SubjectReferralOut
from referrals.entrypoints.problems import PROBLEM_RESPONSES, not_found, not_readable
from referrals.entrypoints.routers.reading import ReferralId
from referrals.service_layer import privacy as privacy_cases
from referrals.service_layer.errors import NotFound, NotYourReferral
from send_shared.web.problems import Problem

router = APIRouter(prefix="/v1", tags=["personal data"], responses=PROBLEM_RESPONSES)


@router.post(
    "/referrals/{referral_id}/erasure",
    response_model=ErasureOut,
    summary="Erase the child's personal data from a closed referral",
    responses={
        409: {
            "description": "Not erasable: `rule` is `referral_open` (close the referral first) or "
            "`statutory_record` (an EHC plan was issued: the local authority must keep the record)"
        }
    },
)
async def erase(referral_id: ReferralId, caller: Party, uow: Uow) -> ErasureOut:
    """The right to erasure (UK GDPR Article 17), for the referral's referrer or its receiver. The child's names,
    date of birth, NHS number, UPN, the reason for the referral, the family's contact details and the consent notes
    are replaced by a tombstone (when, and by which organisation); the referral itself, its history, its consent
    codes and the events other services received stay, so every waiting-time figure stays the same. Reading the
    referral afterwards shows `child` as the tombstone. Refused while the referral is open, and for an EHC
    assessment completed with a plan issued. Erasing an erased referral answers its tombstone again. Audited."""
    try:
        tombstone = await privacy_cases.erase_referral(referral_id, caller_of(caller), uow)
    except NotFound as exc:
        raise not_found() from exc
    except NotYourReferral as exc:
        raise not_readable(exc) from exc
    except ErasureRefused as exc:
        raise Problem(409, "Erasure refused", str(exc), kind="erasure-refused", rule=exc.rule) from exc
    return ErasureOut.of(referral_id, tombstone)


@router.post(
    "/subject-access",
    response_model=SubjectAccessOut,
    summary="Everything held about a child, for a subject access request",
)
async def subject_access(body: SubjectAccessIn, caller: Party, uow: Uow, settings: Settings) -> SubjectAccessOut:
    """The right of access (UK GDPR Article 15): everything this service holds about the child named by NHS number
    or UPN (in the body, never the URL) in the referrals your organisation sent (role `referrer`) or receives (role
    `receiver`): the child's personal data and the family's contact details (or the tombstone, once erased), each
    referral's history, consent records with the family's notes, family view links (never their tokens) and the
    audit log of who read the referral. A child with no such referral gives an empty list, whether or not another
    organisation holds one. Every export is audited."""
    records = await privacy_cases.subject_access(
        privacy_cases.SubjectAccessRequest(caller_of(caller), body.nhs_number, body.upn),
        uow,
        settings.child_ref_key.get_secret_value().encode(),
    )
    return SubjectAccessOut(
        organisation_id=caller.organisation_id,
        exported_at=datetime.now(UTC),
        referrals=[SubjectReferralOut.of(r) for r in records],
    )
