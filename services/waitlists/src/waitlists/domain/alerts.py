"""Which breach alerts are due on a date. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from waitlists.domain.clocks import Clock, ClockState


class AlertKind(StrEnum):
    IMMINENT = "imminent"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class DueAlert:
    kind: AlertKind
    clock: Clock


def due_alerts(clocks: list[Clock], today: date, lead_days: int) -> list[DueAlert]:
    """An imminent alert for a running clock breaching within ``lead_days``; a breached alert for a
    clock now past its target and still waiting, running or paused (a hold never hides a breach). Each is
    raised once (the caller remembers)."""
    due = []
    for clock in clocks:
        if clock.imminent_on(today, lead_days):
            due.append(DueAlert(AlertKind.IMMINENT, clock))
        elif clock.state is ClockState.BREACHED and clock.stopped_on is None:
            due.append(DueAlert(AlertKind.BREACHED, clock))
    return due


@dataclass(frozen=True, slots=True)
class ClockAlert:
    """A due alert as it is published: with the referral's service and the two organisations it is between."""

    due: DueAlert
    service_id: str
    receiving_org_id: str
    referrer_org_id: str
    raised_on: date
