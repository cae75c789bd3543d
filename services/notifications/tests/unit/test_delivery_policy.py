"""Delivery policy and subscription rules, without I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from notifications.domain.delivery import RETRY_DELAYS, Outcome, classify, retry_after, should_disable, verdict
from notifications.domain.subscriptions import (
    Endpoint,
    UnsafeTarget,
    check_address,
    check_url_shape,
    organisations_concerned,
    type_matches,
    wants,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, Outcome.SUCCEEDED), (204, Outcome.SUCCEEDED), (301, Outcome.RETRY), (410, Outcome.GONE),
     (429, Outcome.RETRY), (500, Outcome.RETRY), (None, Outcome.RETRY), (404, Outcome.RETRY)],
)  # fmt: skip
def test_outcomes(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_the_schedule_spans_more_than_a_day_and_then_gives_up() -> None:
    assert sum(RETRY_DELAYS, timedelta()) > timedelta(days=1)
    rng = random.Random(1)
    waits = [verdict(500, n, NOW, rng=rng).next_attempt_at for n in range(1, len(RETRY_DELAYS) + 1)]
    for n, when in enumerate(waits):
        assert when is not None
        assert RETRY_DELAYS[n] * 0.8 <= when - NOW <= RETRY_DELAYS[n] * 1.2
    assert verdict(500, len(RETRY_DELAYS) + 1, NOW).next_attempt_at is None


def test_retry_after_is_honoured_in_seconds_or_as_a_date() -> None:
    assert retry_after("120", NOW) == timedelta(seconds=120)
    assert retry_after("Sun, 01 Mar 2026 12:10:00 GMT", NOW) == timedelta(minutes=10)
    assert retry_after("soon", NOW) is None
    later = verdict(429, 1, NOW, retry_after_header="600").next_attempt_at
    assert later is not None and later - NOW >= timedelta(seconds=600)


def test_five_days_of_failure_disables() -> None:
    assert not should_disable(None, NOW)
    assert not should_disable(NOW - timedelta(days=4, hours=23), NOW)
    assert should_disable(NOW - timedelta(days=5), NOW)


def test_type_patterns() -> None:
    assert type_matches("*", "uk.send.referral.accepted.v1")
    assert type_matches("uk.send.referral.*", "uk.send.referral.accepted.v1")
    assert not type_matches("uk.send.referral.*", "uk.send.waitlist.clock_breached.v1")
    assert type_matches("uk.send.referral.accepted.v1", "uk.send.referral.accepted.v1")


def test_no_filter_can_widen_an_organisations_view() -> None:
    data = {"referrer_org_id": "school", "receiving_org_id": "camhs", "service_id": "svc", "urgency": "routine"}
    concerned = organisations_concerned("uk.send.referral.accepted.v1", data)
    assert concerned == ["camhs", "school"]
    stranger = Endpoint("e1", "other", "https://x", ("*",))
    assert not wants(stranger, "uk.send.referral.accepted.v1", data, concerned)
    assert wants(
        Endpoint("e2", "camhs", "https://x", ("*",), ("svc",)), "uk.send.referral.accepted.v1", data, concerned
    )
    assert not wants(
        Endpoint("e3", "camhs", "https://x", ("*",), ("svc2",)), "uk.send.referral.accepted.v1", data, concerned
    )
    assert organisations_concerned("uk.send.directory.service.upserted.v1", data) == []


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "::1", "fe80::1", "fc00::1",
                "0.0.0.0", "100.64.0.1", "::ffff:127.0.0.1", "224.0.0.1"],
)  # fmt: skip
def test_private_and_special_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_address(address, allow_private=False)


def test_public_addresses_pass_and_development_may_allow_loopback() -> None:
    check_address("93.184.216.34", allow_private=False)
    check_address("2606:4700::1111", allow_private=False)
    check_address("127.0.0.1", allow_private=True)
    with pytest.raises(UnsafeTarget):
        check_address("169.254.169.254", allow_private=True)  # metadata endpoints never


def test_url_shape() -> None:
    assert check_url_shape("https://agency.example/hook", require_https=True) == "agency.example"
    for bad in ("http://agency.example/hook", "ftp://agency.example", "https://u:p@agency.example/", "https:///x"):
        with pytest.raises(UnsafeTarget):
            check_url_shape(bad, require_https=True)
