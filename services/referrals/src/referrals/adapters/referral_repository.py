"""Referral repository over SQLAlchemy Core, with optimistic concurrency on the version column."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime
from typing import Any, cast

import orjson
from sqlalchemy import Table, and_, bindparam, false, or_, select, update
from sqlalchemy.engine import CursorResult

from referrals.adapters.orm import idempotency_keys, referral_history, referral_people, referrals
from referrals.domain.child import PersonalDetails
from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.history import HistoryRecord
from referrals.domain.idempotency import StoredResponse
from referrals.domain.lifecycle import FINAL, Status
from referrals.domain.listing import ListFilter
from referrals.domain.model import MoveDetails, Referral
from send_shared import direct
from send_shared.db import Db, InList, as_utc

# The submission's statements, built once: a statement built per call (``.values(...)``, a new ``where``) costs its
# construction and its cache key on every request, a third of the service's CPU per submission.
_PERSON_FIELDS = ("given_name", "family_name", "date_of_birth", "nhs_number", "upn", "reason")
# The final statuses as a parameter (not an expanding list of constants), so the statement runs on the driver.
_OPEN_FOR_CHILD = select(referrals).where(
    referrals.c.child_ref == bindparam("child_ref"), ~InList(referrals.c.status, "final")
)
_FINAL = [s.value for s in FINAL]
_STORED_RESPONSE = select(idempotency_keys).where(
    idempotency_keys.c.organisation_id == bindparam("organisation_id"), idempotency_keys.c.key == bindparam("key")
)


_NO_PERSON = dict.fromkeys(
    str(column.name) for column in referral_people.columns
)  # contact and erasure columns: none yet


class ConcurrentUpdate(Exception):
    """Someone else changed the referral since it was read."""


class SqlReferralRepository:
    def __init__(self, session: Db) -> None:
        self.session = session
        self.seen: set[Referral] = set()
        self._kept: dict[Table, list[dict[str, Any]]] = {referrals: [], referral_people: [], idempotency_keys: []}

    def kept(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        """The rows ``add`` and ``store_response`` kept for the unit of work's commit, which writes them with the
        change's events (on PostgreSQL in one statement); taken, so kept no more."""
        kept = list(self._kept.items())
        self._kept = {table: [] for table in self._kept}
        return kept

    async def add(self, referral: Referral, person: PersonalDetails) -> None:
        """Kept for the unit of work's commit: ``get`` and ``open_for_child`` do not see it before."""
        self._kept[referrals].append(_row(referral))
        self._kept[referral_people].append({**_NO_PERSON, "referral_id": referral.id, **_person_row(person)})
        self.seen.add(referral)

    async def get(self, referral_id: str, *, for_update: bool = False) -> Referral | None:
        query = select(referrals).where(referrals.c.id == referral_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().first()
        if row is None:
            return None
        referral = _from_row(row)
        self.seen.add(referral)
        return referral

    async def save(self, referral: Referral, *, expected_version: int) -> None:
        values = _row(referral)
        values.pop("id")
        result = await self.session.execute(
            update(referrals)
            .where(referrals.c.id == referral.id, referrals.c.version == expected_version)
            .values(**values)
        )
        if cast("CursorResult[Any]", result).rowcount != 1:
            raise ConcurrentUpdate(referral.id)

    async def open_for_child(self, child_ref: str) -> list[Referral]:
        rows = (
            await direct.execute(self.session, _OPEN_FOR_CHILD, {"child_ref": child_ref, "final": _FINAL})
        ).mappings()
        return [_from_row(row) for row in rows]

    async def person(self, referral_id: str) -> PersonalDetails | None:
        row = (
            (await self.session.execute(select(referral_people).where(referral_people.c.referral_id == referral_id)))
            .mappings()
            .first()
        )
        if row is None or row["erased_at"] is not None:  # erased: nothing is held but the tombstone
            return None
        return PersonalDetails(
            given_name=row["given_name"],
            family_name=row["family_name"],
            date_of_birth=row["date_of_birth"],
            nhs_number=row["nhs_number"],
            upn=row["upn"],
            reason=row["reason"],
        )

    async def visible(self, f: ListFilter, *, limit: int, cursor: str | None) -> tuple[list[Referral], str | None]:
        """Referrals the organisation sent (role referrer) or receives (role receiver), newest first,
        keyset-paginated."""
        c = referrals.c
        if f.role == "referrer":
            query = select(referrals).where(c.referrer_org_id == f.organisation_id)
        elif f.role == "receiver":
            query = select(referrals).where(c.receiving_org_id == f.organisation_id)
        else:
            query = select(referrals).where(false())
        if f.status:
            query = query.where(c.status == f.status.value)
        if f.service_id:
            query = query.where(c.service_id == f.service_id)
        if f.urgency:
            query = query.where(c.urgency == f.urgency)
        if f.referred_from:
            query = query.where(c.referred_at >= f.referred_from)
        if f.referred_to:
            query = query.where(c.referred_at <= f.referred_to)
        if cursor:
            after_at, after_id = decode_cursor(cursor)
            query = query.where(or_(c.referred_at < after_at, and_(c.referred_at == after_at, c.id < after_id)))
        rows = (
            await self.session.execute(query.order_by(c.referred_at.desc(), c.id.desc()).limit(limit + 1))
        ).mappings()
        found = [_from_row(row) for row in rows]
        next_cursor = encode_cursor(found[limit - 1]) if len(found) > limit else None
        return found[:limit], next_cursor

    async def history(self, referral_id: str) -> list[HistoryRecord]:
        query = select(referral_history).where(referral_history.c.referral_id == referral_id)
        rows = (await self.session.execute(query.order_by(referral_history.c.version))).mappings()
        return [_history_from_row(row) for row in rows]

    async def stored_response(self, organisation_id: str, key: str) -> StoredResponse | None:
        found = await direct.execute(self.session, _STORED_RESPONSE, {"organisation_id": organisation_id, "key": key})
        row = found.first_mapping()
        if row is None:
            return None
        return StoredResponse(row["request_hash"], row["status_code"], row["response_body"])

    async def store_response(self, organisation_id: str, key: str, response: StoredResponse) -> None:
        """Kept for the unit of work's commit, which writes it with the change's events."""
        self._kept[idempotency_keys].append(
            {
                "organisation_id": organisation_id,
                "key": key,
                "request_hash": response.request_hash,
                "status_code": response.status_code,
                "response_body": response.body,
                "created_at": datetime.now(UTC),
            }
        )


def encode_cursor(referral: Referral) -> str:
    raw = orjson.dumps([referral.referred_at.isoformat(), referral.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSOR_ID = re.compile(r"[0-9a-f-]{1,36}")
_CURSOR_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_CURSOR_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; anything this API did not issue (a naive or absurd time, an id with
    characters no referral id has) is a ValueError, never a database error."""
    try:
        at, referral_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(at)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError("not a cursor this API issued") from exc
    if (
        when.tzinfo is None
        or not _CURSOR_EARLIEST <= when <= _CURSOR_LATEST
        or not isinstance(referral_id, str)
        or not _CURSOR_ID.fullmatch(referral_id)
    ):
        raise ValueError("not a cursor this API issued")
    return when, referral_id


def _person_row(p: PersonalDetails) -> dict[str, Any]:
    return {name: getattr(p, name) for name in _PERSON_FIELDS}


def _row(r: Referral) -> dict[str, Any]:
    d = r.last_details
    return {
        "id": r.id,
        "child_ref": r.child_ref,
        "referrer_org_id": r.referrer_org_id,
        "service_id": r.service_id,
        "receiving_org_id": r.receiving_org_id,
        "urgency": r.urgency,
        "primary_need": r.primary_need,
        "secondary_need": r.secondary_need,
        "is_ehc": r.is_ehc,
        "status": r.status.value,
        "held_from": r.held_from.value if r.held_from else None,
        "version": r.version,
        "referred_at": r.referred_at,
        "status_at": r.status_at,
        "linked_from_id": r.linked_from_id,
        "linked_to_id": r.linked_to_id,
        "parallel_referral_ids": list(r.parallel_referral_ids),
        "last_reason_code": d.reason_code,
        "last_outcome_code": d.outcome_code,
        "signposted_service_id": d.signposted_service_id,
        "appointment_at": d.appointment_at,
        "expected_resume": d.expected_resume,
        "updated_at": datetime.now(UTC),
    }


def _from_row(row: Any) -> Referral:
    expected_resume: date | None = row["expected_resume"]
    return Referral(
        id=row["id"],
        child_ref=row["child_ref"],
        referrer_org_id=row["referrer_org_id"],
        service_id=row["service_id"],
        receiving_org_id=row["receiving_org_id"],
        urgency=Urgency(row["urgency"]),
        referred_at=as_utc(row["referred_at"]),
        primary_need=NeedCode(row["primary_need"]),
        secondary_need=NeedCode(row["secondary_need"]) if row["secondary_need"] else None,
        is_ehc=row["is_ehc"],
        status=Status(row["status"]),
        held_from=Status(row["held_from"]) if row["held_from"] else None,
        version=row["version"],
        linked_from_id=row["linked_from_id"],
        linked_to_id=row["linked_to_id"],
        parallel_referral_ids=tuple(row["parallel_referral_ids"]),
        last_details=MoveDetails(
            reason_code=row["last_reason_code"],
            outcome_code=row["last_outcome_code"],
            signposted_service_id=row["signposted_service_id"],
            appointment_at=as_utc(row["appointment_at"]) if row["appointment_at"] else None,
            expected_resume=expected_resume,
        ),
        status_at=as_utc(row["status_at"]),
    )


def history_row(record: HistoryRecord) -> dict[str, Any]:
    return {
        "referral_id": record.referral_id,
        "version": record.version,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "status": record.status.value,
        "previous_status": record.previous_status.value if record.previous_status else None,
        "reason_code": record.reason_code,
        "outcome_code": record.outcome_code,
        "explanation": record.explanation,
        "linked_referral_id": record.linked_referral_id,
        "actor_org_id": record.actor_org_id,
        "occurred_at": record.occurred_at,
        "recorded_at": record.recorded_at,
    }


def _history_from_row(row: Any) -> HistoryRecord:
    return HistoryRecord(
        referral_id=row["referral_id"],
        version=row["version"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        status=Status(row["status"]),
        previous_status=Status(row["previous_status"]) if row["previous_status"] else None,
        reason_code=row["reason_code"],
        outcome_code=row["outcome_code"],
        explanation=row["explanation"],
        linked_referral_id=row["linked_referral_id"],
        actor_org_id=row["actor_org_id"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
    )
