"""The referral state machine (brief §3), with who may make each move."""

from __future__ import annotations

from enum import StrEnum

from send_shared.events.schemas import ReferralStatus as Status

__all__ = ["FINAL", "Actor", "Status", "actor_may_move", "allowed_moves"]


class Actor(StrEnum):
    REFERRER = "referrer"
    RECEIVER = "receiver"


FINAL: frozenset[Status] = frozenset(
    {Status.REJECTED, Status.HANDED_OFF, Status.WITHDRAWN, Status.COMPLETED, Status.ENTERED_IN_ERROR}
)

_MOVES: dict[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset(
        {Status.ACKNOWLEDGED, Status.ACCEPTED, Status.REJECTED, Status.HANDED_OFF, Status.WITHDRAWN}
    ),
    Status.ACKNOWLEDGED: frozenset(
        {Status.ACCEPTED, Status.REJECTED, Status.ON_HOLD, Status.HANDED_OFF, Status.WITHDRAWN}
    ),
    Status.ACCEPTED: frozenset(
        {Status.SCHEDULED, Status.IN_PROGRESS, Status.ON_HOLD, Status.COMPLETED, Status.HANDED_OFF, Status.WITHDRAWN}
    ),
    Status.SCHEDULED: frozenset(
        {Status.SCHEDULED, Status.IN_PROGRESS, Status.ON_HOLD, Status.HANDED_OFF, Status.WITHDRAWN}
    ),
    Status.IN_PROGRESS: frozenset({Status.ON_HOLD, Status.COMPLETED, Status.HANDED_OFF, Status.WITHDRAWN}),
}

_REFERRER_MOVES = frozenset({Status.WITHDRAWN, Status.ENTERED_IN_ERROR})


def allowed_moves(status: Status, held_from: Status | None = None) -> frozenset[Status]:
    """Statuses reachable from ``status`` (brief §3). An on_hold referral may go back to the status it
    left or anywhere that status may go, on hold again included (a new hold reason). Any status, a
    final one included, may become entered_in_error ("any → entered_in_error": a completed referral
    for the wrong child must be removable); nothing follows entered_in_error."""
    if status is Status.ENTERED_IN_ERROR:
        return frozenset()
    if status in FINAL:
        return frozenset({Status.ENTERED_IN_ERROR})
    if status is Status.ON_HOLD:
        if held_from is None:
            raise ValueError("an on_hold referral must remember the status it left")
        moves = _MOVES[held_from] | {held_from}
    else:
        moves = _MOVES[status]
    return moves | {Status.ENTERED_IN_ERROR}


def actor_may_move(actor: Actor, target: Status) -> bool:
    """The referrer withdraws (and may mark its own mistake); every other move is the receiver's."""
    if target is Status.ENTERED_IN_ERROR:
        return True
    return (target in _REFERRER_MOVES) == (actor is Actor.REFERRER)
