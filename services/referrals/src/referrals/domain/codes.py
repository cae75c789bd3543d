"""Coded values of the referral contract (brief §3). Extend, never rename: they are public."""

from __future__ import annotations

from enum import StrEnum


class NeedCode(StrEnum):
    """DfE SEN primary and secondary need types."""

    SPLD = "SpLD"
    MLD = "MLD"
    SLD = "SLD"
    PMLD = "PMLD"
    SEMH = "SEMH"
    SLCN = "SLCN"
    HI = "HI"
    VI = "VI"
    MSI = "MSI"
    PD = "PD"
    ASD = "ASD"
    OTH = "OTH"


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    VERY_URGENT = "very_urgent"


class HoldReason(StrEnum):
    FAMILY_UNAVAILABLE = "family_unavailable"
    APPOINTMENT_DECLINED = "appointment_declined"
    SCHOOL_CLOSED_4_WEEKS = "school_closed_4_weeks"
    CHILD_OR_PARENT_AWAY_4_WEEKS = "child_or_parent_away_4_weeks"
    EXCEPTIONAL_PERSONAL_CIRCUMSTANCES = "exceptional_personal_circumstances"
    MISSED_APPOINTMENT_NO_NOTICE = "missed_appointment_no_notice"
    AWAITING_INFORMATION = "awaiting_information"
    SERVICE_CAPACITY = "service_capacity"


class RejectionReason(StrEnum):
    THRESHOLD_NOT_MET = "threshold_not_met"
    OUTSIDE_REMIT = "outside_remit"
    INSUFFICIENT_INFORMATION = "insufficient_information"
    NEEDS_MET_ELSEWHERE = "needs_met_elsewhere"
    DUPLICATE = "duplicate"


class WithdrawalReason(StrEnum):
    """Codes a withdrawal may carry. The referrer may give a code of its own too (recorded as given)."""

    CONSENT_WITHDRAWN = "consent_withdrawn"
    """Consent was withdrawn before the service accepted the referral: the referral ends with it (issue 17)."""


class Outcome(StrEnum):
    PLAN_ISSUED = "plan_issued"
    NO_PLAN = "no_plan"
    SUPPORT_COMPLETED = "support_completed"
    DISCHARGED = "discharged"
    DISENGAGED = "disengaged"


EHC_OUTCOMES = frozenset({Outcome.PLAN_ISSUED, Outcome.NO_PLAN})
