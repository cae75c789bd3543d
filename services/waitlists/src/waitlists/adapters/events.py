"""Events in and out: referral and directory events mapped to the projection's domain values (what the
projection can hold, or refused), and breach alerts mapped to the events the service publishes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Integer, String

from send_shared.consumer import PermanentError
from send_shared.events.envelope import CloudEvent, EventDecodeError, decode_attributes, decode_kafka
from send_shared.events.schemas import (
    CLOCK_BREACH_IMMINENT,
    CLOCK_BREACHED,
    CLOCKS_UPDATED,
    ORGANISATION_UPSERTED,
    REFERRAL_EVENT_TYPES,
    SERVICE_UPSERTED,
    WAIT_ESTIMATE,
    ClockAlertV1,
    ClockStateV1,
    ContractViolation,
    OrganisationV1,
    ReferralClocksV1,
    ReferralEventV1,
    ServiceV1,
    WaitEstimateV1,
    check_attributes,
    validated_payload,
)
from waitlists.adapters.orm import organisations, referral_changes, referrals, services
from waitlists.domain.alerts import AlertKind, ClockAlert
from waitlists.domain.clock_updates import ClockUpdate
from waitlists.domain.directory import OrganisationEntry, ServiceEntry
from waitlists.domain.projection import RecordedChange, ReferralEvent
from waitlists.domain.timeline import DateOutOfRange, business_date
from waitlists.domain.waits import WaitEstimate

Fitting = TypeVar("Fitting", ReferralEventV1, OrganisationV1, ServiceV1)
Projectable = ReferralEvent | ServiceEntry | OrganisationEntry
_INT4 = range(-(2**31), 2**31)
_TABLES = (referrals, referral_changes, services, organisations)
_ALERT_TYPES = {AlertKind.IMMINENT: CLOCK_BREACH_IMMINENT, AlertKind.BREACHED: CLOCK_BREACHED}


class Unprojectable(ValueError):
    """An event the projection cannot hold, whatever the retries: a value longer than its column, a number
    out of its range (PostgreSQL refuses the row; SQLite would keep it), or a business time outside the
    dates the projection counts with. The live consumer parks it at once; a rebuild skips it."""


class RecordRefused(ValueError):
    """A record of the topic that is no valid event, or one the projection cannot hold: a rebuild skips it."""


def _column_limits(schema: type[Any]) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """Which of the schema's fields land in a column of bounded length, and which in an integer column."""
    columns = {c.name: c.type for table in _TABLES for c in table.columns}
    fields = [name for name in schema.model_fields if name in columns]
    lengths = tuple((name, t.length) for name in fields if isinstance(t := columns[name], String) and t.length)
    return lengths, tuple(name for name in fields if isinstance(columns[name], Integer))


_LIMITS = {schema: _column_limits(schema) for schema in (ReferralEventV1, ServiceV1, OrganisationV1)}


def _fits(entry: Fitting) -> Fitting:
    """``entry`` if its values fit their columns; raises ``Unprojectable`` naming the field otherwise."""
    lengths, integers = _LIMITS[type(entry)]
    values = entry.__dict__  # a pydantic model's fields: read here for every event of a rebuild
    for name, length in lengths:
        value = values[name]
        if value is not None and len(value) > length:
            raise Unprojectable(f"{name}: longer than {length} characters")
    for name in integers:
        value = values[name]
        if value is not None and value not in _INT4:
            raise Unprojectable(f"{name}: out of the integer range")
    return entry


def _domain(payload: ReferralEventV1 | ServiceV1 | OrganisationV1) -> Projectable:
    """The payload as the projection holds it; ``Unprojectable`` if it cannot: a value longer than its column, a
    number out of its range, or a business time outside the dates counted with."""
    shared = sys.intern  # a few thousand services and organisations, held once each however many referrals
    if isinstance(payload, ReferralEventV1):
        d = _fits(payload)
        try:
            on = business_date(d.occurred_at)
        except DateOutOfRange as exc:
            raise Unprojectable(f"occurred_at: {exc}") from exc
        change = RecordedChange(d.version, d.status, on, d.reason_code, d.outcome_code, occurred_at=d.occurred_at)
        primary, secondary = (shared(n) if n else None for n in (d.primary_need, d.secondary_need))
        return ReferralEvent(d.referral_id, d.child_ref, shared(d.service_id), shared(d.receiving_org_id),
                             shared(d.referrer_org_id), shared(d.urgency or "routine"), primary, secondary,
                             change)  # fmt: skip
    if isinstance(payload, ServiceV1):
        s = _fits(payload)
        return ServiceEntry(s.service_id, s.organisation_id, s.name, tuple(s.clocks), s.target_days, s.active,
                            s.version)  # fmt: skip
    o = _fits(payload)
    return OrganisationEntry(o.organisation_id, o.name, o.kind, o.area_id, o.version)


def from_cloud_event(event: CloudEvent) -> Projectable | None:
    """The live consumer's mapping: None for an event the projection does not take; an event its schema or the
    projection refuses raises an error the consumer never retries (it is parked)."""
    payload = validated_payload(event.type, event.data, subject=event.subject, extensions=event.extensions)
    if not isinstance(payload, ReferralEventV1 | ServiceV1 | OrganisationV1):
        return None
    try:
        return _domain(payload)
    except Unprojectable as exc:  # never worth a retry: parked at once
        raise PermanentError(f"{event.type} {event.id}: {exc}") from exc


def from_record(headers: Sequence[tuple[str, bytes | None]], value: bytes | None) -> Projectable | None:
    """The rebuild's mapping of a raw topic record, without building a CloudEvent: refused as the live consumer
    refuses it (``RecordRefused``); None for a valid event of another type."""
    try:
        attributes = decode_attributes(headers).attributes
        kind = attributes["type"]
        if kind in REFERRAL_EVENT_TYPES:
            referral = ReferralEventV1.model_validate_json(value or b"")
            version = attributes.get("referralversion")
            extensions = {} if version is None else {"referralversion": version}
            check_attributes(kind, referral, subject=attributes.get("subject"), extensions=extensions)
            return _domain(referral)
        if kind == SERVICE_UPSERTED:
            return _domain(ServiceV1.model_validate_json(value or b""))
        if kind == ORGANISATION_UPSERTED:
            return _domain(OrganisationV1.model_validate_json(value or b""))
        decode_kafka(headers, value)  # changes nothing, but is refused as the live consumer refuses it
        return None
    except (EventDecodeError, ValidationError, ContractViolation, Unprojectable) as exc:
        raise RecordRefused(str(exc)) from exc


def alert_event(alert: ClockAlert, source: str) -> CloudEvent:
    clock = alert.due.clock
    assert clock.breach_date is not None
    data = ClockAlertV1(
        referral_id=clock.referral_id,
        clock=clock.kind.value,
        service_id=alert.service_id,
        receiving_org_id=alert.receiving_org_id,
        referrer_org_id=alert.referrer_org_id,
        target_days=clock.target,
        start_date=clock.start,
        breach_date=clock.breach_date,
        waiting_days=clock.waiting_days,
        raised_on=alert.raised_on,
    )
    return CloudEvent(
        type=_ALERT_TYPES[alert.due.kind], source=source, subject=clock.referral_id, data=data.model_dump(mode="json")
    )


def clocks_event(update: ClockUpdate, source: str) -> CloudEvent:
    told = update.clocks
    data = ReferralClocksV1(
        referral_id=told.referral_id,
        referral_version=told.referral_version,
        service_id=told.service_id,
        receiving_org_id=update.parties.receiving_org_id,
        referrer_org_id=update.parties.referrer_org_id,
        clocks=[
            ClockStateV1(clock=c.clock, target_days=c.target_days, start_date=c.start_date, state=c.state,
                         breach_date=c.breach_date, stopped_on=c.stopped_on, exception=c.exception)
            for c in told.clocks
        ],
    )  # fmt: skip
    return CloudEvent(type=CLOCKS_UPDATED, source=source, subject=told.referral_id, data=data.model_dump(mode="json"))


def wait_estimate_event(estimate: WaitEstimate, source: str) -> CloudEvent:
    """A service's predicted wait; every figure null when there is not enough data."""
    support, stop = estimate.to_support, estimate.to_clock_stop
    data = WaitEstimateV1(
        service_id=estimate.service_id, as_of=estimate.as_of, window_weeks=estimate.window_weeks,
        children=estimate.children_shown, enough_data=estimate.enough_data,
        to_support_median_days=support.median_days, to_support_p90_days=support.p90_days,
        to_support_p90_low_days=support.p90_low_days, to_support_p90_high_days=support.p90_high_days,
        to_clock_stop_median_days=stop.median_days if stop else None,
        to_clock_stop_p90_days=stop.p90_days if stop else None,
    )  # fmt: skip
    return CloudEvent(type=WAIT_ESTIMATE, source=source, subject=estimate.service_id, data=data.model_dump(mode="json"))
