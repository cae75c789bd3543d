"""The rebuild's in-memory fold applies the live consumer's rules: first copy of a repeated event, newest
directory entry, fixed facts from the first event seen, and invalid records skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime

from send_shared.events.envelope import CloudEvent, encode_kafka
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    OrganisationV1,
)
from waitlists.domain.clocks import ClockKind
from waitlists.service_layer.replay import ReplayFold

from .events import change, service


def fold(*events: CloudEvent) -> ReplayFold:
    folded = ReplayFold()
    for event in events:
        folded.add(*encode_kafka(event))
    return folded


def test_changes_settle_in_version_order_and_a_repeat_keeps_its_first_copy() -> None:
    first = change("r1", 2, "accepted", "2026-01-12")
    repeat = change("r1", 2, "rejected", "2026-01-13")  # same version again: the consumer keeps the first
    found = fold(first, change("r1", 1, "submitted", "2026-01-05"), repeat).result()
    changes = found.referrals["r1"].changes
    assert [(c.version, c.status, c.on) for c in changes] == [
        (1, "submitted", date(2026, 1, 5)),
        (2, "accepted", date(2026, 1, 12)),
    ]


def test_a_referrals_fixed_facts_come_from_the_first_event_seen() -> None:
    found = fold(change("r1", 2, "accepted", "2026-01-12", urgency="urgent", primary_need="SEMH", secondary_need="ASD"),
                 change("r1", 1, "submitted", "2026-01-05", urgency="routine", primary_need="SLCN")).result()  # fmt: skip
    assert found.referrals["r1"].urgency == "urgent"
    assert found.referrals["r1"].child_ref == "c1"
    assert (found.referrals["r1"].primary_need, found.referrals["r1"].secondary_need) == ("SEMH", "ASD")


def test_the_directory_keeps_the_newest_version_and_the_first_of_equal_versions() -> None:
    org = OrganisationV1(organisation_id="org-camhs", version=1, name="first", kind="camhs", area_id="la-1")
    same_version = org.model_copy(update={"name": "second"})
    found = fold(service(2, ["rtt_18w"]), service(1, ["cypmh_4w"]),
                 *(CloudEvent(type=ORGANISATION_UPSERTED, source="/t", data=o.model_dump(mode="json"))
                   for o in (org, same_version))).result()  # fmt: skip
    assert found.services["svc-camhs"].name == "v2"
    assert found.clocks["svc-camhs"].clocks == (ClockKind.RTT_18W,)
    assert found.organisations["org-camhs"].name == "first"


def test_records_the_live_consumer_would_refuse_are_skipped() -> None:
    folded = fold(change("r1", 1, "submitted", "2026-01-05"))
    headers, value = encode_kafka(change("r2", 1, "submitted", "2026-01-05"))
    folded.add([h for h in headers if h[0] != "ce_id"], value)  # not a CloudEvent: no id
    folded.add(headers, b"not json")
    folded.add(headers, b'{"referral_id": "r3"}')  # the schema refuses it
    folded.add([*headers[:-1], ("ce_type", b"uk.send.other.v1")], b"[1]")  # another type, but its body is no object
    folded.add([*headers[:-1], ("ce_type", b"uk.send.other.v1")], b"{}")  # another type: changes nothing
    assert (folded.events, folded.skipped) == (2, 4)
    assert list(folded.result().referrals) == ["r1"]


def test_facts_come_with_the_childs_other_referrals_as_the_journey() -> None:
    """c1 is rejected at CAMHS on 20 Jan and accepted at SLT on 25 Jan: a handoff gap of five days."""
    found = fold(
        service(1, ["cypmh_4w"]),
        change("r1", 1, "submitted", "2026-01-05"),
        change("r1", 2, "rejected", "2026-01-20", reason_code="outside_remit"),
        change("r2", 1, "submitted", "2026-01-21", service="svc-slt"),
        change("r2", 2, "accepted", "2026-01-25", service="svc-slt"),
        change("r3", 1, "submitted", "2026-02-01", child="c2"),
        change("r3", 2, "entered_in_error", "2026-02-02", child="c2"),
    ).result()
    chunks = list(found.chunks(2))
    assert [[r.referral_id for r in chunk] for chunk in chunks] == [["r1", "r2"], ["r3"]]
    facts = {f.referral_id: f for chunk in chunks for f in found.facts(chunk)}
    assert set(facts) == {"r1", "r2"}  # r3 was entered in error: out of every figure
    gap = facts["r1"].gap
    assert gap is not None
    assert (gap.opened_on, gap.closed_on) == (date(2026, 1, 20), date(2026, 1, 25))
    assert facts["r1"].clock_stops[0].clock is ClockKind.CYPMH_4W
    assert datetime(2026, 1, 5, tzinfo=UTC).date() == facts["r1"].outcome.submitted_on


def test_values_postgresql_would_refuse_are_skipped_as_the_consumer_parks_them() -> None:
    """The schemas set no lengths, the columns do: such an event fails its insert live and is parked; the
    rebuild, which would fail as a whole, skips it."""
    folded = fold(
        change("r1", 1, "submitted", "2026-01-05"),
        change("r2", 1, "submitted", "2026-01-05", service="svc-" + "x" * 61),
        change("r3", 1, "submitted", "2026-01-05", reason_code="r" * 65),
        change("r4", 2**31, "submitted", "2026-01-05"),
        change("r5", 1, "submitted", "2026-01-05", primary_need="N" * 9),
    )
    assert (folded.events, folded.skipped) == (1, 4)
    assert list(folded.result().referrals) == ["r1"]
