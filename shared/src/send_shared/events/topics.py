"""Kafka topic names: part of the public contract, versioned with the payloads they carry."""

from __future__ import annotations


class Topics:
    REFERRAL_EVENTS = "referrals.events.v1"
    WAITLIST_ALERTS = "waitlists.alerts.v1"

    @staticmethod
    def dead_letter(consumer_group: str) -> str:
        """Where a consumer group parks messages it could not process."""
        return f"{consumer_group}.dlq.v1"

    @staticmethod
    def replay(consumer_group: str) -> str:
        """Private topic a consumer group also reads: dead letters replayed by an operator land here,
        so a replay reaches only the group that failed, not every subscriber of the public topic."""
        return f"{consumer_group}.replay.v1"
