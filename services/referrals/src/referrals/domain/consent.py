"""Consent to share a referral (issue 17): a record of consent events, the newest in force.

The moves:

| in force | action | becomes | when |
|---|---|---|---|
| none | give | given | the submission (or the referral a hand-off or re-referral opens) |
| given, changed | change | changed | a new scope or a new giver |
| given, changed | withdraw | withdrawn | any time |
| withdrawn | give | given | only while the referral is open |

Anything else is refused (``IllegalConsentMove``). A young person gives, changes or withdraws consent only if
16 or over on the consent's date (SEND Code of Practice). A consent's time is never in the future, nor before
the consent event before it.

Scope applies to onward sharing: a hand-off or a re-referral goes only to a service in the consent in force
(its id in ``scope.service_ids`` or its organisation in ``scope.organisation_ids``; the referral's own service is
always in scope while consent is given); with consent withdrawn it goes nowhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from referrals.domain.directory import Service
from referrals.domain.errors import DomainError
from referrals.domain.model import MissingDetail, check_not_in_future
from send_shared.events.schemas import ConsentGiver, ConsentStatus

__all__ = [
    "AGE_OF_OWN_CONSENT",
    "ConsentAction",
    "ConsentGiver",
    "ConsentRecord",
    "ConsentRecordOf",
    "ConsentScope",
    "ConsentStatus",
    "IllegalConsentMove",
    "OutsideConsent",
    "RecordedVia",
    "age_on",
    "allowed_actions",
]

AGE_OF_OWN_CONSENT = 16
"""From this age a young person takes the decisions about their own SEND support (SEND Code of Practice 8.13)."""


class ConsentAction(StrEnum):
    GIVE = "give"
    CHANGE = "change"
    WITHDRAW = "withdraw"


class RecordedVia(StrEnum):
    """How a consent event reached this service."""

    API = "api"
    IMPORT = "import"
    FAMILY_VIEW = "family_view"


_MOVES: dict[ConsentStatus | None, dict[ConsentAction, ConsentStatus]] = {
    None: {ConsentAction.GIVE: ConsentStatus.GIVEN},
    ConsentStatus.GIVEN: {ConsentAction.CHANGE: ConsentStatus.CHANGED, ConsentAction.WITHDRAW: ConsentStatus.WITHDRAWN},
    ConsentStatus.CHANGED: {
        ConsentAction.CHANGE: ConsentStatus.CHANGED,
        ConsentAction.WITHDRAW: ConsentStatus.WITHDRAWN,
    },
    ConsentStatus.WITHDRAWN: {ConsentAction.GIVE: ConsentStatus.GIVEN},
}


def allowed_actions(current: ConsentStatus | None, *, referral_open: bool = True) -> frozenset[ConsentAction]:
    """What may be done with consent in status ``current`` (None: no consent recorded yet)."""
    actions = frozenset(_MOVES[current])
    if current is ConsentStatus.WITHDRAWN and not referral_open:
        return frozenset()
    return actions


class IllegalConsentMove(DomainError):
    """The action does not apply to the consent in force (a 409: names the current status and what may be done)."""

    def __init__(
        self, current: ConsentStatus | None, action: ConsentAction, allowed: frozenset[ConsentAction], rule: str
    ) -> None:
        now = current.value if current else "none"
        super().__init__(f"cannot {action.value} consent that is {now}")
        self.current = current
        self.action = action
        self.allowed = sorted(a.value for a in allowed)
        self.rule = rule


class OutsideConsent(DomainError):
    """Onward sharing the consent in force does not allow (a 409 with field and rule)."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


@dataclass(frozen=True, slots=True)
class ConsentScope:
    """Who may receive the referral: services, and agencies any of whose services may (directory ids)."""

    service_ids: tuple[str, ...] = ()
    organisation_ids: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, service_ids: list[str] | tuple[str, ...], organisation_ids: list[str] | tuple[str, ...]
    ) -> ConsentScope:
        return cls(tuple(sorted(set(service_ids))), tuple(sorted(set(organisation_ids))))

    @property
    def is_empty(self) -> bool:
        return not (self.service_ids or self.organisation_ids)

    def covers(self, service: Service) -> bool:
        return service.id in self.service_ids or service.organisation_id in self.organisation_ids


def age_on(date_of_birth: date, day: date) -> int:
    """Whole years from ``date_of_birth`` to ``day`` (a 29 February birthday counts from 1 March)."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One consent event of a referral. ``note`` is the family's words: it never leaves this service."""

    referral_id: str
    version: int
    status: ConsentStatus
    given_by: ConsentGiver
    scope: ConsentScope
    occurred_at: datetime
    recorded_at: datetime
    event_id: str
    recorded_via: RecordedVia = RecordedVia.API
    recorded_by_org_id: str | None = None
    """The organisation that recorded it; None when the family did, through the family view."""
    note: str | None = None
    referral_version: int = field(default=0, compare=False)
    """The referral's version when this was recorded: orders its event among the referral's own events of the same
    transaction (after the referral event of that version). Not stored."""

    @property
    def is_withdrawn(self) -> bool:
        return self.status is ConsentStatus.WITHDRAWN


@dataclass
class ConsentRecordOf:
    """The consent record of one referral: every consent event, oldest first; the newest is in force."""

    referral_id: str
    own_service_id: str
    records: list[ConsentRecord] = field(default_factory=list)

    @property
    def in_force(self) -> ConsentRecord | None:
        return self.records[-1] if self.records else None

    @property
    def status(self) -> ConsentStatus | None:
        current = self.in_force
        return current.status if current else None

    def in_scope(self, service: Service) -> bool:
        """May the referral go to ``service``? Never with consent withdrawn (or none recorded)."""
        current = self.in_force
        if current is None or current.is_withdrawn:
            return False
        return service.id == self.own_service_id or current.scope.covers(service)

    def check_onward(self, service: Service, field: str) -> None:
        """Refuses a hand-off or re-referral to ``service`` that consent does not allow."""
        if self.status is ConsentStatus.WITHDRAWN:
            raise OutsideConsent(field, "consent_withdrawn", "consent has been withdrawn: the referral goes nowhere")
        if not self.in_scope(service):
            raise OutsideConsent(
                field, "outside_consent_scope", f"consent does not cover sharing the referral with {service.id}"
            )

    def record(
        self,
        action: ConsentAction,
        *,
        given_by: ConsentGiver,
        scope: ConsentScope | None,
        occurred_at: datetime,
        now: datetime,
        event_id: str,
        date_of_birth: date | None,
        referral_open: bool,
        recorded_via: RecordedVia = RecordedVia.API,
        recorded_by_org_id: str | None = None,
        note: str | None = None,
        referral_version: int = 0,
    ) -> ConsentRecord:
        """Checks ``action`` against the consent in force and the rules, and appends the consent event it makes.

        ``scope`` None (give or change): the scope in force when changing, else the referral's own service.
        A withdrawal's scope is always empty."""
        current = self.in_force
        status = current.status if current else None
        allowed = allowed_actions(status, referral_open=referral_open)
        if action not in allowed:
            rule = (
                "referral_open"
                if status is ConsentStatus.WITHDRAWN and action is ConsentAction.GIVE
                else "allowed_consent_move"
            )
            raise IllegalConsentMove(status, action, allowed_actions(status, referral_open=referral_open), rule)
        check_not_in_future(occurred_at, now)
        if current is not None and occurred_at < current.occurred_at:
            raise MissingDetail(
                "occurred_at", "not_before_previous", "a consent event cannot precede the consent event before it"
            )
        if given_by is ConsentGiver.YOUNG_PERSON and (
            date_of_birth is None or age_on(date_of_birth, occurred_at.date()) < AGE_OF_OWN_CONSENT
        ):
            raise MissingDetail(
                "given_by",
                "young_person_16_or_over",
                "a young person decides about consent only from 16: a parent or carer decides before then",
            )
        if action is ConsentAction.WITHDRAW:
            new_scope = ConsentScope()
        elif scope is None or scope.is_empty:
            if action is ConsentAction.CHANGE and current is not None and scope is None:
                new_scope = current.scope
            else:
                new_scope = ConsentScope((self.own_service_id,), ())
        else:
            new_scope = scope
        unchanged = current is not None and new_scope == current.scope and given_by is current.given_by
        if action is ConsentAction.CHANGE and unchanged:
            raise MissingDetail(
                "scope_service_ids",
                "changes_something",
                "a change of consent needs a new scope or a new giver; this is the consent in force",
            )
        made = ConsentRecord(
            referral_id=self.referral_id,
            version=(current.version if current else 0) + 1,
            status=_MOVES[status][action],
            given_by=given_by,
            scope=new_scope,
            occurred_at=occurred_at,
            recorded_at=now,
            event_id=event_id,
            recorded_via=recorded_via,
            recorded_by_org_id=recorded_by_org_id,
            note=note,
            referral_version=referral_version,
        )
        self.records.append(made)
        return made
