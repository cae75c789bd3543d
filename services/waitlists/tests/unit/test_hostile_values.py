"""Values at the calendar's ends and hostile strings (issue #13): refused by rule, never an unhandled error.

Oracles are written from the rules: a business date exists only inside the dates counted with; a
date past the calendar's end never comes; a header value is ASCII with the exact name recoverable."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import unquote

import pytest

from send_shared.events.envelope import CloudEvent, encode_kafka
from send_shared.events.schemas import ReferralEventV1, ReferralStatus, referral_event_type
from waitlists.domain.clocks import ClockKind, ClockState, ServiceClocks, clock_on
from waitlists.domain.facts import derive
from waitlists.domain.timeline import DateOutOfRange, StatusChange, Timeline, add_days, business_date
from waitlists.entrypoints.headers import content_disposition
from waitlists.service_layer.replay import ReplayFold

EXTREMES = [
    datetime(1, 1, 1, tzinfo=UTC),  # year 0 in London (LMT is 75 seconds behind)
    datetime(1, 1, 1, 12, tzinfo=UTC),
    datetime(9999, 12, 31, 12, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))),  # year 10000 in UTC
    datetime(1899, 12, 31, 12, tzinfo=UTC),
    datetime(3000, 1, 1, 12, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", EXTREMES, ids=str)
def test_business_times_outside_the_counted_dates_are_refused_by_rule(moment: datetime) -> None:
    with pytest.raises(DateOutOfRange):
        business_date(moment)


def test_business_dates_inside_the_range_still_count() -> None:
    assert business_date(datetime(1900, 1, 1, 12, tzinfo=UTC)) == date(1900, 1, 1)
    assert business_date(datetime(2999, 12, 31, 12, tzinfo=UTC)) == date(2999, 12, 31)


def timeline(start: date, *more: tuple[str, date]) -> Timeline:
    changes = [StatusChange(1, "submitted", start)]
    changes += [StatusChange(v, status, on) for v, (status, on) in enumerate(more, start=2)]
    return Timeline.of("r1", "c1", "svc", "routine", changes)


def test_clocks_near_the_calendars_end_never_overflow() -> None:
    """A clock started three days before 31 December 9999 with a 28-day target would breach after the
    calendar ends: it is running, has not breached, is not imminent, and has no breach date (it never
    comes). Imminence near the end holds too: a lead reaching past the calendar is no error."""
    start = date.max - timedelta(days=3)
    clock = clock_on(timeline(start), ClockKind.CYPMH_4W, date.max)
    assert clock is not None
    assert (clock.state, clock.waiting_days) == (ClockState.RUNNING, 3)
    assert clock.breach_date is None
    assert not clock.imminent_on(date.max - timedelta(days=1))
    near = clock_on(timeline(start - timedelta(days=26)), ClockKind.CYPMH_4W, date.max - timedelta(days=1))
    assert near is not None and near.breach_date == date.max  # start + 28 + 1
    assert near.imminent_on(date.max - timedelta(days=1), lead_days=10**12)
    assert near.imminent_on(date.max - timedelta(days=3))
    facts = derive(timeline(start), ServiceClocks((ClockKind.CYPMH_4W,)), [])
    assert facts is not None and facts.waiting[0].waiting_since == start


@pytest.mark.parametrize("target", [2**31 - 1, 10**12, -(10**12)])
def test_a_huge_service_target_never_overflows(target: int) -> None:
    """A directory event may carry any integer target: the clock is computed, never an OverflowError."""
    start = date(2026, 1, 5)
    clock = clock_on(timeline(start), ClockKind.SERVICE_TARGET, date(2026, 2, 1), target)
    assert clock is not None
    assert clock.waiting_days == 27
    if target > 0:
        assert clock.state is ClockState.RUNNING and not clock.imminent_on(date(2026, 2, 1))
    else:
        assert clock.state is ClockState.BREACHED
    assert derive(timeline(start), ServiceClocks((ClockKind.SERVICE_TARGET,), target), []) is not None


@pytest.mark.parametrize(
    ("day", "days", "expected"),
    [
        (date(2026, 1, 5), 10**12, date.max),
        (date(2026, 1, 5), -(10**12), date.min),
        (date.max, 1, date.max),
        (date.min, -1, date.min),
        (date.max - timedelta(days=1), 1, date.max),
        (date.min + timedelta(days=1), -1, date.min),
        (date(2024, 2, 28), 1, date(2024, 2, 29)),
    ],
)
def test_adding_days_holds_at_the_calendars_ends(day: date, days: int, expected: date) -> None:
    """Inside the calendar a date plus days is the date that many days on; past either end it is that end."""
    assert add_days(day, days) == expected


def referral_event(referral_id: str, occurred_at: datetime) -> CloudEvent:
    """Built as raw JSON, as an old producer might have written it (the schema may refuse it today)."""
    at = datetime(2026, 1, 5, tzinfo=UTC)
    data = ReferralEventV1(
        referral_id=referral_id, version=1, status=ReferralStatus.SUBMITTED, child_ref="c1",
        referrer_org_id="org-school", service_id="svc-camhs", receiving_org_id="org-camhs",
        occurred_at=at, recorded_at=at,
    ).model_dump(mode="json")  # fmt: skip
    return CloudEvent(
        type=referral_event_type("submitted"), source="/t", subject=referral_id,
        data={**data, "occurred_at": occurred_at.isoformat()},
    )  # fmt: skip


def test_a_rebuild_skips_events_dated_outside_the_counted_dates_as_the_consumer_parks_them() -> None:
    folded = ReplayFold()
    folded.add(*encode_kafka(referral_event("r0", datetime(2026, 1, 5, 10, tzinfo=UTC))))
    for n, moment in enumerate(EXTREMES, start=1):
        folded.add(*encode_kafka(referral_event(f"r{n}", moment)))
    assert (folded.events, folded.skipped) == (1, len(EXTREMES))
    topic = folded.result()
    assert list(topic.referrals) == ["r0"]
    assert all(topic.facts(chunk) for chunk in topic.chunks(10))


HOSTILE_NAMES = [
    "rtt-distribution-svc-camhs-2026-03-02.csv",
    'a"b.csv',
    "a;b=c.csv",
    "line\r\nset-cookie: x=1.csv",
    "nul\x00.csv",
    "snowman-\u2603.csv",
    "\u0142\u00f3d\u017a-\U0001f600.csv",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_content_disposition_is_ascii_with_the_exact_name_recoverable(name: str) -> None:
    """RFC 6266 with RFC 5987: a quoted ASCII fallback of safe characters only, and the name itself as
    filename*=UTF-8''<percent-encoded>."""
    value = content_disposition(name)
    value.encode("ascii")  # a header value: ASCII only
    assert all(32 <= ord(ch) < 127 for ch in value), "no control characters"
    disposition, fallback, extended = value.split("; ")
    assert disposition == "attachment"
    assert fallback.startswith('filename="') and fallback.endswith('"')
    inner = fallback[len('filename="') : -1]
    assert inner and all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in inner)
    assert extended.startswith("filename*=UTF-8''")
    encoded = extended[len("filename*=UTF-8''") :]
    assert not set(encoded) & set("\"'; ,\\()<>@:/[]?={}")
    assert unquote(encoded, encoding="utf-8", errors="strict") == name
