"""Domain events and directory changes to public CloudEvents. Only coded, non-identifying data crosses
this line."""

from __future__ import annotations

from referrals.domain.consent import ConsentRecord
from referrals.domain.directory import Organisation, Service
from referrals.domain.interim import Signpost, SignpostTrigger, TakenUpBy
from referrals.domain.model import Referral, StatusChanged
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    SERVICE_UPSERTED,
    SIGNPOST_TAKEN_UP,
    SIGNPOSTED,
    OrganisationV1,
    ReferralConsentV1,
    ReferralEventV1,
    ReferralSignpostedV1,
    ServiceV1,
    SignpostTakenUpV1,
    consent_event_type,
    referral_event_type,
)


def to_cloud_event(referral: Referral, change: StatusChanged, *, source: str, event_id: str) -> CloudEvent:
    d = change.details
    payload = ReferralEventV1(
        referral_id=referral.id,
        version=change.version,
        status=change.status,
        previous_status=change.previous_status,
        child_ref=referral.child_ref,
        referrer_org_id=referral.referrer_org_id,
        service_id=referral.service_id,
        receiving_org_id=referral.receiving_org_id,
        urgency=referral.urgency,
        primary_need=referral.primary_need,
        secondary_need=referral.secondary_need,
        occurred_at=change.occurred_at,
        recorded_at=change.recorded_at,
        reason_code=d.reason_code,
        outcome_code=d.outcome_code,
        signposted_service_id=d.signposted_service_id,
        linked_referral_id=change.linked_referral_id,
        onward_service_id=(d.target_service_id or d.rereferral_service_id) if change.linked_referral_id else None,
        appointment_at=d.appointment_at,
        expected_resume=d.expected_resume,
        parallel_referral_ids=list(referral.parallel_referral_ids),
    )
    return CloudEvent(
        id=event_id,
        type=referral_event_type(change.status),
        source=source,
        subject=referral.id,
        time=change.recorded_at,
        data=payload.model_dump(mode="json"),
        extensions={"referralversion": str(change.version)},
    )


def consent_cloud_event(referral: Referral, record: ConsentRecord, *, source: str) -> CloudEvent:
    """A consent event: codes and directory ids only; who gave consent is a role, the note never leaves."""
    payload = ReferralConsentV1(
        referral_id=referral.id,
        consent_version=record.version,
        consent_status=record.status,
        given_by=record.given_by,
        scope_service_ids=list(record.scope.service_ids),
        scope_organisation_ids=list(record.scope.organisation_ids),
        child_ref=referral.child_ref,
        referrer_org_id=referral.referrer_org_id,
        service_id=referral.service_id,
        receiving_org_id=referral.receiving_org_id,
        occurred_at=record.occurred_at,
        recorded_at=record.recorded_at,
    )
    return CloudEvent(
        id=record.event_id,
        type=consent_event_type(record.status),
        source=source,
        subject=referral.id,
        time=record.recorded_at,
        data=payload.model_dump(mode="json"),
    )


def ordered_events(
    referral: Referral, changes: list[StatusChanged], consents: list[ConsentRecord]
) -> list[StatusChanged | ConsentRecord]:
    """The referral's new events and consent events in the order they happened in one transaction: a consent event
    comes right after the referral event of the version it was recorded at (the submission's consent after
    ``submitted``; a withdrawal of consent before the ``withdrawn`` it causes)."""
    pending = sorted(consents, key=lambda c: c.version)
    ordered: list[StatusChanged | ConsentRecord] = []
    for change in changes:
        while pending and pending[0].referral_version < change.version:
            ordered.append(pending.pop(0))
        ordered.append(change)
    return ordered + pending


def organisation_event(org: Organisation, source: str) -> CloudEvent:
    data = OrganisationV1(
        organisation_id=org.id,
        version=org.version,
        name=org.name,
        kind=org.kind.value,
        area_id=org.area_id,
        trust_id=org.trust_id,
    )
    return CloudEvent(type=ORGANISATION_UPSERTED, source=source, subject=org.id, data=data.model_dump(mode="json"))


def service_event(service: Service, source: str) -> CloudEvent:
    data = ServiceV1(
        service_id=service.id,
        version=service.version,
        organisation_id=service.organisation_id,
        name=service.name,
        needs=[n.value for n in service.needs],
        urgencies=[u.value for u in service.urgencies],
        clocks=[c.value for c in service.clocks],
        target_days=service.target_days,
        active=service.active,
    )
    return CloudEvent(type=SERVICE_UPSERTED, source=source, subject=service.id, data=data.model_dump(mode="json"))


def signposted_event(
    referral: Referral, signposts: list[Signpost], trigger: SignpostTrigger, source: str
) -> CloudEvent:
    """The referral was signposted to interim offers: ids and codes only."""
    at = signposts[0].signposted_at
    data = ReferralSignpostedV1(
        referral_id=referral.id,
        referrer_org_id=referral.referrer_org_id,
        service_id=referral.service_id,
        receiving_org_id=referral.receiving_org_id,
        trigger=trigger.value,
        offer_ids=[s.offer_id for s in signposts],
        provider_org_ids=[s.provider_org_id for s in signposts],
        primary_need=referral.primary_need,
        occurred_at=at,
    )
    return CloudEvent(type=SIGNPOSTED, source=source, subject=referral.id, time=at, data=data.model_dump(mode="json"))


def taken_up_event(referral: Referral, signpost: Signpost, by: TakenUpBy, source: str) -> CloudEvent:
    at = signpost.taken_up_at
    assert at is not None
    data = SignpostTakenUpV1(
        referral_id=referral.id,
        referrer_org_id=referral.referrer_org_id,
        service_id=referral.service_id,
        receiving_org_id=referral.receiving_org_id,
        offer_id=signpost.offer_id,
        provider_org_id=signpost.provider_org_id,
        recorded_by=by.value,
        occurred_at=at,
    )
    return CloudEvent(
        type=SIGNPOST_TAKEN_UP, source=source, subject=referral.id, time=at, data=data.model_dump(mode="json")
    )
