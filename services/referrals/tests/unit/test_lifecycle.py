"""The referral state machine (brief §3) as examples and as a property."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from referrals.domain.codes import Urgency
from referrals.domain.lifecycle import FINAL, Actor, Status, allowed_moves
from referrals.domain.model import IllegalMove, MissingDetail, MoveDetails, NotYourMove, Referral

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

VALID_DETAILS = {
    Status.REJECTED: MoveDetails(reason_code="outside_remit", explanation="why", signposted_service_id="svc-2"),
    Status.ON_HOLD: MoveDetails(reason_code="family_unavailable", expected_resume=date(2026, 4, 1)),
    Status.SCHEDULED: MoveDetails(appointment_at=NOW),
    Status.COMPLETED: MoveDetails(outcome_code="support_completed"),
    Status.HANDED_OFF: MoveDetails(target_service_id="svc-2"),
}


def new_referral() -> Referral:
    return Referral.submit(
        id="r-1",
        child_ref="c" * 32,
        referrer_org_id="school",
        service_id="svc",
        receiving_org_id="camhs",
        urgency=Urgency.ROUTINE,
        referred_at=NOW,
        recorded_at=NOW,
    )


def test_submission_is_version_one_with_one_event() -> None:
    referral = new_referral()
    assert (referral.status, referral.version) == (Status.SUBMITTED, 1)
    assert [e.status for e in referral.events] == [Status.SUBMITTED]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (Status.SUBMITTED, {"acknowledged", "accepted", "rejected", "handed_off", "withdrawn"}),
        (Status.ACKNOWLEDGED, {"accepted", "rejected", "on_hold", "handed_off", "withdrawn"}),
        (Status.ACCEPTED, {"scheduled", "in_progress", "on_hold", "completed", "handed_off", "withdrawn"}),
        (Status.SCHEDULED, {"scheduled", "in_progress", "on_hold", "handed_off", "withdrawn"}),
        (Status.IN_PROGRESS, {"on_hold", "completed", "handed_off", "withdrawn"}),
    ],
)
def test_allowed_moves_follow_the_brief(source: Status, expected: set[str]) -> None:
    assert {s.value for s in allowed_moves(source)} == expected | {"entered_in_error"}


def test_on_hold_returns_to_where_it_left_or_onwards() -> None:
    moves = allowed_moves(Status.ON_HOLD, held_from=Status.SCHEDULED)
    assert Status.SCHEDULED in moves and Status.IN_PROGRESS in moves
    assert Status.ACCEPTED not in moves


@pytest.mark.parametrize("held_from", [Status.ACKNOWLEDGED, Status.ACCEPTED, Status.SCHEDULED, Status.IN_PROGRESS])
def test_on_hold_may_go_on_hold_again_with_a_new_reason(held_from: Status) -> None:
    # Brief §3: on_hold may move to "any status that one [the status it left] may move to"; each may go on hold.
    assert Status.ON_HOLD in allowed_moves(Status.ON_HOLD, held_from=held_from)


def test_a_new_hold_reason_keeps_the_status_the_referral_left() -> None:
    referral = new_referral()
    referral.move(Status.ACCEPTED, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW)
    capacity = MoveDetails(reason_code="service_capacity", expected_resume=date(2026, 4, 1))
    referral.move(Status.ON_HOLD, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW, details=capacity)
    family = MoveDetails(reason_code="family_unavailable", expected_resume=date(2026, 5, 1))
    event = referral.move(Status.ON_HOLD, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW, details=family)
    assert (event.previous_status, event.details.reason_code, event.version) == (
        Status.ON_HOLD,
        "family_unavailable",
        4,
    )
    assert (referral.status, referral.held_from) == (Status.ON_HOLD, Status.ACCEPTED)
    referral.move(Status.ACCEPTED, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW)
    assert (referral.status, referral.held_from) == (Status.ACCEPTED, None)


def test_final_statuses_admit_only_entered_in_error() -> None:
    for status in FINAL - {Status.ENTERED_IN_ERROR}:
        assert allowed_moves(status) == frozenset({Status.ENTERED_IN_ERROR}), status
    assert allowed_moves(Status.ENTERED_IN_ERROR) == frozenset()


@pytest.mark.parametrize("actor", list(Actor))
def test_a_completed_referral_can_be_marked_entered_in_error(actor: Actor) -> None:
    referral = new_referral()
    referral.move(Status.ACCEPTED, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW)
    referral.move(
        Status.COMPLETED,
        actor=Actor.RECEIVER,
        occurred_at=NOW,
        recorded_at=NOW,
        details=VALID_DETAILS[Status.COMPLETED],
    )
    event = referral.move(Status.ENTERED_IN_ERROR, actor=actor, occurred_at=NOW, recorded_at=NOW)
    assert (event.previous_status, referral.status, referral.version) == (Status.COMPLETED, Status.ENTERED_IN_ERROR, 4)
    with pytest.raises(IllegalMove):
        referral.move(Status.ENTERED_IN_ERROR, actor=actor, occurred_at=NOW, recorded_at=NOW)


def test_illegal_move_names_current_status_and_allowed_moves() -> None:
    referral = new_referral()
    with pytest.raises(IllegalMove) as caught:
        referral.move(Status.COMPLETED, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW)
    assert caught.value.current is Status.SUBMITTED
    assert "accepted" in caught.value.allowed
    assert referral.version == 1


def test_only_the_referrer_withdraws_and_only_the_receiver_accepts() -> None:
    referral = new_referral()
    with pytest.raises(NotYourMove):
        referral.move(Status.WITHDRAWN, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW)
    with pytest.raises(NotYourMove):
        referral.move(Status.ACCEPTED, actor=Actor.REFERRER, occurred_at=NOW, recorded_at=NOW)


@given(st.lists(st.tuples(st.sampled_from(list(Status)), st.sampled_from(list(Actor))), max_size=30))
def test_random_moves_never_break_the_machine(moves: list[tuple[Status, Actor]]) -> None:
    referral = new_referral()
    referral.events.clear()
    for target, actor in moves:
        before = (referral.status, referral.version, referral.held_from)
        legal = target in referral.allowed_moves()
        try:
            event = referral.move(
                target, actor=actor, occurred_at=NOW, recorded_at=NOW, details=VALID_DETAILS.get(target, MoveDetails())
            )
        except (IllegalMove, NotYourMove):
            assert (referral.status, referral.version, referral.held_from) == before
            continue
        assert legal
        assert referral.status is target
        assert referral.version == before[1] + 1 == event.version
        assert event.previous_status is before[0]
        assert (referral.held_from is not None) == (referral.status is Status.ON_HOLD)
    assert [e.version for e in referral.events] == list(range(2, referral.version + 1))


@pytest.mark.parametrize(
    ("target", "details", "field"),
    [
        (Status.REJECTED, MoveDetails(explanation="x", signposted_service_id="s"), "reason_code"),
        (Status.REJECTED, MoveDetails(reason_code="duplicate", signposted_service_id="s"), "explanation"),
        (Status.REJECTED, MoveDetails(reason_code="duplicate", explanation="x"), "signposted_service_id"),
        (Status.HANDED_OFF, MoveDetails(), "target_service_id"),
    ],
)
def test_moves_need_their_data(target: Status, details: MoveDetails, field: str) -> None:
    referral = new_referral()
    with pytest.raises(MissingDetail) as caught:
        referral.move(target, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW, details=details)
    assert caught.value.field == field
    assert referral.version == 1


def test_ehc_services_complete_with_ehc_outcomes_only() -> None:
    referral = new_referral()
    referral.is_ehc = True
    referral.move(Status.ACCEPTED, actor=Actor.RECEIVER, occurred_at=NOW, recorded_at=NOW)
    with pytest.raises(MissingDetail):
        referral.move(
            Status.COMPLETED,
            actor=Actor.RECEIVER,
            occurred_at=NOW,
            recorded_at=NOW,
            details=MoveDetails(outcome_code="support_completed"),
        )
    referral.move(
        Status.COMPLETED,
        actor=Actor.RECEIVER,
        occurred_at=NOW,
        recorded_at=NOW,
        details=MoveDetails(outcome_code="no_plan"),
    )
    assert referral.status is Status.COMPLETED
