"""The consent state machine (issue 17) as examples and as a property: pure domain, no storage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals.domain.consent import (
    ConsentAction,
    ConsentGiver,
    ConsentRecordOf,
    ConsentScope,
    IllegalConsentMove,
    OutsideConsent,
    RecordedVia,
    age_on,
)
from referrals.domain.directory import Service
from referrals.domain.model import MissingDetail

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BORN_2015 = date(2015, 4, 12)
OWN = Service("svc-own", "org-camhs", "CAMHS", (), (), ())
SAME_ORG = Service("svc-camhs-ed", "org-camhs", "Eating disorders", (), (), ())
EHC = Service("svc-ehc", "org-la", "EHC assessment", (), (), ())
ELSEWHERE = Service("svc-slt", "org-trust", "Speech and language", (), (), ())

GIVE, CHANGE, WITHDRAW = ConsentAction.GIVE, ConsentAction.CHANGE, ConsentAction.WITHDRAW
# The moves of the design, written out: (status in force or None, action) -> the status it makes. Anything not
# here is refused.
MOVES = {
    (None, "give"): "given",
    ("given", "change"): "changed",
    ("given", "withdraw"): "withdrawn",
    ("changed", "change"): "changed",
    ("changed", "withdraw"): "withdrawn",
    ("withdrawn", "give"): "given",
}


def consent() -> ConsentRecordOf:
    return ConsentRecordOf("r-1", "svc-own")


def act(
    record_of: ConsentRecordOf,
    action: ConsentAction,
    *,
    at: datetime = NOW,
    by: ConsentGiver = ConsentGiver.PARENT,
    scope: ConsentScope | None = None,
    born: date | None = BORN_2015,
    referral_open: bool = True,
    now: datetime | None = None,
) -> str:
    made = record_of.record(
        action,
        given_by=by,
        scope=scope,
        occurred_at=at,
        now=now or max(at, NOW + timedelta(days=400)),
        event_id=f"e-{len(record_of.records) + 1}",
        date_of_birth=born,
        referral_open=referral_open,
        recorded_via=RecordedVia.API,
        recorded_by_org_id="org-school",
    )
    return made.status.value


def in_status(status: str | None) -> ConsentRecordOf:
    """A consent record whose newest event has ``status``."""
    record_of = consent()
    path = {None: [], "given": [GIVE], "changed": [GIVE, CHANGE], "withdrawn": [GIVE, WITHDRAW]}[status]
    for i, action in enumerate(path):
        scope = ConsentScope(("svc-ehc",), ()) if action is CHANGE else None
        act(record_of, action, at=NOW + timedelta(hours=i), scope=scope)
    return record_of


@pytest.mark.parametrize("status", [None, "given", "changed", "withdrawn"])
@pytest.mark.parametrize("action", list(ConsentAction))
def test_only_the_designed_moves_are_allowed(status: str | None, action: ConsentAction) -> None:
    record_of = in_status(status)
    later = NOW + timedelta(days=1)
    scope = ConsentScope(("svc-slt",), ()) if action is CHANGE else None
    if (status, action.value) in MOVES:
        assert act(record_of, action, at=later, scope=scope) == MOVES[(status, action.value)]
        assert [r.version for r in record_of.records] == list(range(1, len(record_of.records) + 1))
    else:
        before = list(record_of.records)
        with pytest.raises(IllegalConsentMove) as refused:
            act(record_of, action, at=later, scope=scope)
        assert refused.value.rule == "allowed_consent_move"
        assert refused.value.allowed == sorted(a for (s, a) in MOVES if s == status)
        assert record_of.records == before


def test_consent_is_given_again_only_while_the_referral_is_open() -> None:
    with pytest.raises(IllegalConsentMove) as refused:
        act(in_status("withdrawn"), GIVE, at=NOW + timedelta(days=1), referral_open=False)
    assert (refused.value.rule, refused.value.allowed) == ("referral_open", [])
    assert act(in_status("withdrawn"), GIVE, at=NOW + timedelta(days=1), referral_open=True) == "given"
    # A withdrawal is never refused for a closed referral: the family may always stop the sharing.
    assert act(in_status("given"), WITHDRAW, at=NOW + timedelta(days=1), referral_open=False) == "withdrawn"


@pytest.mark.parametrize(
    ("on", "allowed"),
    [
        (date(2031, 4, 11), False),  # the day before the 16th birthday
        (date(2031, 4, 12), True),  # the 16th birthday
        (date(2026, 3, 2), False),  # aged 10
        (date(2033, 1, 1), True),
    ],
)
@pytest.mark.parametrize("action", [GIVE, WITHDRAW])
def test_a_young_person_decides_from_16_on_the_consents_date(on: date, allowed: bool, action: ConsentAction) -> None:
    record_of = in_status(None if action is GIVE else "given")
    at = datetime(on.year, on.month, on.day, 12, tzinfo=UTC)
    if allowed:
        assert act(record_of, action, at=at, by=ConsentGiver.YOUNG_PERSON) in ("given", "withdrawn")
    else:
        with pytest.raises(MissingDetail) as refused:
            act(record_of, action, at=at, by=ConsentGiver.YOUNG_PERSON)
        assert (refused.value.field, refused.value.rule) == ("given_by", "young_person_16_or_over")


def test_a_young_person_without_a_known_date_of_birth_is_refused_and_a_parent_is_not() -> None:
    with pytest.raises(MissingDetail) as refused:
        act(consent(), GIVE, by=ConsentGiver.YOUNG_PERSON, born=None)
    assert refused.value.rule == "young_person_16_or_over"
    assert act(consent(), GIVE, by=ConsentGiver.PARENT, born=None) == "given"
    assert act(consent(), GIVE, by=ConsentGiver.LOCAL_AUTHORITY, born=date(2008, 1, 1)) == "given"


def test_age_counts_whole_years_and_a_leap_day_birthday_turns_over_on_1_march() -> None:
    assert age_on(date(2010, 2, 28), date(2026, 2, 27)) == 15
    assert age_on(date(2010, 2, 28), date(2026, 2, 28)) == 16
    assert age_on(date(2008, 2, 29), date(2024, 2, 28)) == 15
    assert age_on(date(2008, 2, 29), date(2024, 2, 29)) == 16
    assert age_on(date(2008, 2, 29), date(2025, 2, 28)) == 16
    assert age_on(date(2009, 2, 28), date(2025, 3, 1)) == 16


def test_a_consent_is_never_in_the_future_nor_before_the_one_before_it() -> None:
    record_of = in_status("given")
    with pytest.raises(MissingDetail) as future:
        record_of.record(
            WITHDRAW,
            given_by=ConsentGiver.PARENT,
            scope=None,
            occurred_at=NOW + timedelta(minutes=1),
            now=NOW,
            event_id="e-x",
            date_of_birth=BORN_2015,
            referral_open=True,
        )
    assert (future.value.field, future.value.rule) == ("occurred_at", "not_in_future")
    with pytest.raises(MissingDetail) as earlier:
        act(record_of, WITHDRAW, at=NOW - timedelta(seconds=1))
    assert (earlier.value.field, earlier.value.rule) == ("occurred_at", "not_before_previous")
    assert act(record_of, WITHDRAW, at=NOW) == "withdrawn"  # the same instant is not before it
    assert len(record_of.records) == 2


def test_scope_defaults_keeps_and_empties() -> None:
    record_of = consent()
    act(record_of, GIVE)
    assert record_of.records[-1].scope == ConsentScope(("svc-own",), ())
    act(record_of, CHANGE, scope=ConsentScope(("svc-ehc",), ("org-trust",)), at=NOW + timedelta(hours=1))
    act(record_of, CHANGE, by=ConsentGiver.CARER, at=NOW + timedelta(hours=2))  # a new giver keeps the scope
    assert (record_of.records[-1].scope, record_of.records[-1].given_by) == (
        ConsentScope(("svc-ehc",), ("org-trust",)),
        ConsentGiver.CARER,
    )
    with pytest.raises(MissingDetail) as same:
        act(record_of, CHANGE, by=ConsentGiver.CARER, at=NOW + timedelta(hours=3))
    assert same.value.rule == "changes_something"
    act(record_of, WITHDRAW, scope=ConsentScope(("svc-ehc",), ()), at=NOW + timedelta(hours=4))
    assert record_of.records[-1].scope == ConsentScope((), ())
    assert [r.status.value for r in record_of.records] == ["given", "changed", "changed", "withdrawn"]


def test_scope_of_sorts_and_drops_repeats() -> None:
    assert ConsentScope.of(["b", "a", "b"], ["z", "z"]) == ConsentScope(("a", "b"), ("z",))


def test_onward_sharing_goes_only_where_consent_reaches() -> None:
    record_of = consent()
    assert not record_of.in_scope(OWN)  # nothing recorded: nowhere
    act(record_of, GIVE, scope=ConsentScope(("svc-ehc",), ("org-trust",)))
    assert [record_of.in_scope(s) for s in (OWN, SAME_ORG, EHC, ELSEWHERE)] == [True, False, True, True]
    with pytest.raises(OutsideConsent) as outside:
        record_of.check_onward(SAME_ORG, "target_service_id")
    assert (outside.value.field, outside.value.rule) == ("target_service_id", "outside_consent_scope")
    record_of.check_onward(EHC, "target_service_id")
    act(record_of, WITHDRAW, at=NOW + timedelta(hours=1))
    assert [record_of.in_scope(s) for s in (OWN, SAME_ORG, EHC, ELSEWHERE)] == [False] * 4
    with pytest.raises(OutsideConsent) as withdrawn:
        record_of.check_onward(EHC, "rereferral_service_id")
    assert (withdrawn.value.field, withdrawn.value.rule) == ("rereferral_service_id", "consent_withdrawn")


@given(st.lists(st.sampled_from(list(ConsentAction)), max_size=25), st.booleans())
def test_random_actions_never_break_the_machine(actions: list[ConsentAction], referral_open: bool) -> None:
    """Whatever is tried, the record only ever holds designed moves, numbered 1, 2, 3, ... in time order."""
    record_of = consent()
    status: str | None = None
    for i, action in enumerate(actions):
        scope = ConsentScope((f"svc-{i}",), ()) if action is CHANGE else None
        expected = MOVES.get((status, action.value))
        if status == "withdrawn" and action is GIVE and not referral_open:
            expected = None
        try:
            made = act(record_of, action, at=NOW + timedelta(minutes=i), scope=scope, referral_open=referral_open)
        except IllegalConsentMove:
            assert expected is None
            continue
        assert made == expected
        status = made
    assert [r.version for r in record_of.records] == list(range(1, len(record_of.records) + 1))
    times = [r.occurred_at for r in record_of.records]
    assert times == sorted(times)
    for before, after in zip(record_of.records, record_of.records[1:], strict=False):
        assert (before.status.value, after.status.value) in {(s, t) for (s, _), t in MOVES.items() if s}
