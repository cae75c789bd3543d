"""Support while waiting (issue 18) over the in-memory unit of work: interim offers, signposting on acceptance with a
long predicted wait and on a clock nearing breach, take-up, and the predicted wait in plain words. The expected
offers, orders and wordings are worked out by hand from the fixtures below."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from referrals.domain.codes import NeedCode, Urgency
from referrals.domain.directory import DirectoryConflict, Organisation, OrganisationKind
from referrals.domain.interim import InterimOffer, SignpostNotFound, WaitEstimate, fitting_offers, wait_words
from referrals.domain.lifecycle import Status
from referrals.domain.model import MoveDetails
from referrals.entrypoints.consumers import Signposting, on_waitlists_event
from referrals.service_layer import interim
from referrals.service_layer.callers import Caller, FamilyCaller
from referrals.service_layer.directory import NotOwner
from referrals.service_layer.errors import NotFound, NotYourReferral
from referrals.service_layer.moves import MoveReferral, move_referral
from send_shared.events.envelope import CloudEvent

from .fakes import FakeInterim, FakeReferralClocks, FakeReferralRepository, FakeUnitOfWork
from .test_services import CAMHS, LA, OTHER_SCHOOL, RECEIVER, REFERRER, SCHOOL, submit
from .test_services import uow as uow

VOLUNTARY = "org-voluntary"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def offer(offer_id: str, service_id: str, provider: str, needs: tuple[NeedCode, ...], **more: Any) -> InterimOffer:
    return InterimOffer(
        offer_id, service_id, provider, f"Offer {offer_id}", "Plain words.", needs, contact_phone="01632 960 000",
        **more,
    )  # fmt: skip


# svc-camhs takes SEMH; the referral in these tests is SEMH, routine, at svc-camhs.
OFFERS = [
    offer("io-a-other-semh", "svc-ehc", VOLUNTARY, (NeedCode.SEMH,)),
    offer("io-b-own-semh", "svc-camhs", CAMHS, (NeedCode.SEMH, NeedCode.ASD)),
    offer("io-c-own-asd-only", "svc-camhs", CAMHS, (NeedCode.ASD,)),
    offer("io-d-other-urgent-only", "svc-camhs-nd", VOLUNTARY, (NeedCode.SEMH,), urgencies=(Urgency.URGENT,)),
    offer("io-e-own-inactive", "svc-camhs", CAMHS, (NeedCode.SEMH,), active=False),
    offer("io-f-voluntary-own", "svc-camhs", VOLUNTARY, (NeedCode.SEMH,)),
]
FITTING = ["io-b-own-semh", "io-f-voluntary-own", "io-a-other-semh"]  # own service's first, then by id


def estimate(p90_days: int | None, *, enough: bool = True, as_of: date = date(2026, 3, 1)) -> WaitEstimate:
    return WaitEstimate(
        "svc-camhs", as_of, 26, 40 if enough else None, enough,
        to_support_median_days=61 if enough else None, to_support_p90_days=p90_days if enough else None,
    )  # fmt: skip


async def with_offers(uow: FakeUnitOfWork) -> None:
    uow.committed.organisations[VOLUNTARY] = Organisation(VOLUNTARY, "Voice", OrganisationKind.VOLUNTARY, "area")
    assert await interim.seed_offers_if_empty(OFFERS, uow) == len(OFFERS)


def published(uow: FakeUnitOfWork, event_type: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e, _ in uow.committed.published if e.type == event_type]


SIGNPOSTED = "uk.send.referral.signposted.v1"
TAKEN_UP = "uk.send.referral.signpost_taken_up.v1"


# The domain rules


def test_fitting_offers_match_a_need_and_the_urgency_the_services_own_first() -> None:
    chosen = fitting_offers(OFFERS, "svc-camhs", ["SEMH"], "routine", already=set())
    assert [o.id for o in chosen] == FITTING
    assert [o.id for o in fitting_offers(OFFERS, "svc-camhs", ["ASD"], "routine", already=set())] == [
        "io-b-own-semh",
        "io-c-own-asd-only",
    ]
    urgent = fitting_offers(OFFERS, "svc-camhs", ["SEMH"], "urgent", already={"io-b-own-semh"})
    assert [o.id for o in urgent] == ["io-f-voluntary-own", "io-a-other-semh", "io-d-other-urgent-only"]


def test_fitting_offers_match_the_childs_age_and_an_unknown_age_fits_any() -> None:
    ranged = [
        offer("io-under-11", "svc-camhs", CAMHS, (NeedCode.SEMH,), max_age=10),
        offer("io-11-only", "svc-camhs", CAMHS, (NeedCode.SEMH,), min_age=11, max_age=11),
        offer("io-from-12", "svc-camhs", CAMHS, (NeedCode.SEMH,), min_age=12),
        offer("io-any", "svc-camhs", CAMHS, (NeedCode.SEMH,)),
    ]

    def chosen(age: int | None) -> list[str]:
        return [o.id for o in fitting_offers(ranged, "svc-camhs", ["SEMH"], "routine", already=set(), age=age)]

    assert chosen(10) == ["io-any", "io-under-11"]
    assert chosen(11) == ["io-11-only", "io-any"]
    assert chosen(12) == ["io-any", "io-from-12"]
    assert chosen(None) == ["io-11-only", "io-any", "io-from-12", "io-under-11"]


async def test_a_child_is_signposted_only_to_offers_for_its_age_unless_its_details_were_erased(
    uow: FakeUnitOfWork,
) -> None:
    await with_offers(uow)
    # The child in these tests was born on 2015-04-12: 10 on 2026-03-02 (NOW), 11 from 2026-04-12.
    for offer_id, ages in (("io-0-for-11-and-over", (11, None)), ("io-0-for-under-11", (None, 10))):
        await interim.upsert_offer(offer(offer_id, "svc-camhs", CAMHS, (NeedCode.SEMH,), min_age=ages[0],
                                         max_age=ages[1]), uow)  # fmt: skip
    first, erased = await submit(uow), await submit(uow, "svc-ehc", key="key-2", request_hash="hash-2")
    repository = FakeReferralRepository(uow.committed)
    event = await interim.signpost_on_breach_alert(first, repository, FakeInterim(uow.committed), now=NOW,
                                                   source="/t")  # fmt: skip
    assert event is not None and event.data["offer_ids"] == ["io-0-for-under-11", *FITTING][:5]
    uow.committed.people.pop(erased)  # erased: no date of birth, so no age to match against
    event = await interim.signpost_on_breach_alert(erased, repository, FakeInterim(uow.committed), now=NOW,
                                                   source="/t")  # fmt: skip
    assert event is not None
    assert {"io-0-for-11-and-over", "io-0-for-under-11"} <= set(event.data["offer_ids"])


def test_at_most_five_offers_are_signposted() -> None:
    many = [offer(f"io-{i}", "svc-camhs", CAMHS, (NeedCode.SEMH,)) for i in range(7)]
    assert [o.id for o in fitting_offers(many, "svc-camhs", ["SEMH"], "routine", already=set())] == [
        "io-0", "io-1", "io-2", "io-3", "io-4",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("median", "p90", "enough", "words"),
    [
        (61, 118, True, "Most children wait about 9 weeks; 9 in 10 start within 17 weeks."),
        (7, 7, True, "Most children wait about 1 week; 9 in 10 start within 1 week."),
        (15, None, True, "Most children wait about 3 weeks. Some wait a lot longer."),
        (None, None, False, "Not enough data yet to say how long children wait."),
    ],
)
def test_the_wait_in_plain_words(median: int | None, p90: int | None, enough: bool, words: str) -> None:
    told = WaitEstimate("s", date(2026, 3, 1), 26, 30, enough, to_support_median_days=median, to_support_p90_days=p90)
    assert wait_words(told) == words


def test_no_estimate_is_not_enough_data() -> None:
    assert wait_words(None) == "Not enough data yet to say how long children wait."


# The directory's offers


async def test_an_offer_needs_a_known_service_and_provider_and_a_way_in(uow: FakeUnitOfWork) -> None:
    good = offer("io-new", "svc-camhs", CAMHS, (NeedCode.SEMH,))
    saved = await interim.upsert_offer(good, uow, owner=CAMHS)
    assert saved.version == 1
    assert (await interim.upsert_offer(good, uow)).version == 2
    cases = [
        (offer("io-x", "svc-nowhere", CAMHS, (NeedCode.SEMH,)), "service_id"),
        (offer("io-x", "svc-camhs", "org-nowhere", (NeedCode.SEMH,)), "provider_org_id"),
        (InterimOffer("io-x", "svc-camhs", CAMHS, "n", "d", (NeedCode.SEMH,)), "contact_phone"),
    ]
    for bad, field in cases:
        with pytest.raises(DirectoryConflict) as refused:
            await interim.upsert_offer(bad, uow)
        assert refused.value.field == field
    assert [o.id for o in await interim.all_offers(uow)] == ["io-new"]


async def test_an_organisations_admin_lists_offers_of_its_own_services_only(uow: FakeUnitOfWork) -> None:
    with pytest.raises(NotOwner):
        await interim.upsert_offer(offer("io-x", "svc-camhs", CAMHS, (NeedCode.SEMH,)), uow, owner=SCHOOL)
    # Provided by another organisation is fine: the service is the admin's own.
    await interim.upsert_offer(offer("io-x", "svc-camhs", OTHER_SCHOOL, (NeedCode.SEMH,)), uow, owner=CAMHS)
    with pytest.raises(NotOwner):  # nor may another organisation's admin move the offer to its own service
        await interim.upsert_offer(offer("io-x", "svc-ehc", LA, (NeedCode.SEMH,)), uow, owner=LA)
    assert (await interim.upsert_offer(offer("io-y", "svc-ehc", LA, (NeedCode.SEMH,)), uow, owner=LA)).version == 1


async def test_seed_offers_skip_those_whose_service_is_not_in_the_directory(uow: FakeUnitOfWork) -> None:
    kept = [offer("io-1", "svc-camhs", CAMHS, (NeedCode.SEMH,)), offer("io-2", "svc-gone", CAMHS, (NeedCode.SEMH,))]
    assert await interim.seed_offers_if_empty(kept, uow) == 1
    assert await interim.seed_offers_if_empty(kept, uow) == 0


# Signposting when accepted with a long predicted wait


async def accept(uow: FakeUnitOfWork, referral_id: str, threshold_days: int | None = 84) -> None:
    await move_referral(
        MoveReferral(RECEIVER, referral_id, Status.ACCEPTED, 1, MoveDetails(), signpost_after_days=threshold_days),
        uow,
    )


async def test_accepted_with_a_p90_over_the_threshold_signposts_fitting_offers(uow: FakeUnitOfWork) -> None:
    await with_offers(uow)
    uow.committed.estimates["svc-camhs"] = estimate(85)
    referral_id = await submit(uow)
    await accept(uow, referral_id)
    types = [e.type for e, _ in uow.committed.published]
    assert types.index(SIGNPOSTED) == types.index("uk.send.referral.accepted.v1") + 1
    [event] = published(uow, SIGNPOSTED)
    assert event["offer_ids"] == FITTING
    assert event["provider_org_ids"] == [CAMHS, VOLUNTARY, VOLUNTARY]
    assert (event["trigger"], event["referrer_org_id"], event["receiving_org_id"]) == ("long_wait", SCHOOL, CAMHS)
    assert set(event) == {
        "referral_id", "referrer_org_id", "service_id", "receiving_org_id", "trigger", "offer_ids",
        "provider_org_ids", "primary_need", "occurred_at",
    }  # fmt: skip
    assert [s.offer_id for s in await interim.signposts_of(referral_id, uow)] == FITTING


@pytest.mark.parametrize(
    ("told", "threshold"),
    [(estimate(84), 84), (estimate(None, enough=False), 84), (None, 84), (estimate(200), None)],
    ids=["p90-at-the-threshold", "not-enough-data", "no-estimate", "signposting-off"],
)
async def test_no_signposts_when_the_wait_is_not_long(
    uow: FakeUnitOfWork, told: WaitEstimate | None, threshold: int | None
) -> None:
    await with_offers(uow)
    if told is not None:
        uow.committed.estimates["svc-camhs"] = told
    referral_id = await submit(uow)
    await accept(uow, referral_id, threshold)
    assert published(uow, SIGNPOSTED) == []
    assert await interim.signposts_of(referral_id, uow) == []


# Signposting when a clock nears breach (waitlists' alert, through the consumer)


def alert(referral_id: str, event_type: str = "uk.send.waitlist.clock_breach_imminent.v1") -> CloudEvent:
    data = {
        "referral_id": referral_id, "clock": "cypmh_4w", "service_id": "svc-camhs", "receiving_org_id": CAMHS,
        "referrer_org_id": SCHOOL, "target_days": 28, "start_date": "2026-02-01", "breach_date": "2026-03-01",
        "waiting_days": 24, "raised_on": "2026-02-25",
    }  # fmt: skip
    return CloudEvent(type=event_type, source="/send/waitlists", subject=referral_id, data=data)


async def consume(uow: FakeUnitOfWork, event: CloudEvent) -> list[tuple[CloudEvent, str]]:
    """The consumer's handler over the committed state, as in its own transaction; returns what it published."""
    sent: list[tuple[CloudEvent, str]] = []

    async def publish(e: CloudEvent, key: str) -> None:
        sent.append((e, key))

    state = uow.committed
    signposting = Signposting(FakeReferralRepository(state), FakeInterim(state), publish, "/test")
    await on_waitlists_event(event, FakeReferralClocks(state), signposting)
    return sent


async def test_a_clock_nearing_breach_signposts_once_per_offer(uow: FakeUnitOfWork) -> None:
    await with_offers(uow)
    referral_id = await submit(uow)
    [(event, key)] = await consume(uow, alert(referral_id))
    assert (event.type, key, event.subject) == (SIGNPOSTED, referral_id, referral_id)
    assert (event.data["trigger"], event.data["offer_ids"]) == ("clock_breach_imminent", FITTING)
    assert await consume(uow, alert(referral_id)) == []  # told again: nothing new fits
    uow.committed.offers["io-g-new"] = offer("io-g-new", "svc-camhs", CAMHS, (NeedCode.SEMH,), version=1)
    [(again, _)] = await consume(uow, alert(referral_id))
    assert again.data["offer_ids"] == ["io-g-new"]


async def test_a_breach_or_an_unknown_or_closed_referral_signposts_nothing(uow: FakeUnitOfWork) -> None:
    await with_offers(uow)
    referral_id = await submit(uow)
    assert await consume(uow, alert(referral_id, "uk.send.waitlist.clock_breached.v1")) == []
    assert await consume(uow, alert("00000000-0000-4000-8000-000000000000")) == []
    await move_referral(MoveReferral(REFERRER, referral_id, Status.WITHDRAWN, 1, MoveDetails()), uow)
    assert await consume(uow, alert(referral_id)) == []


async def test_without_signposting_the_consumer_still_keeps_clocks_only(uow: FakeUnitOfWork) -> None:
    referral_id = await submit(uow)
    await on_waitlists_event(alert(referral_id), FakeReferralClocks(uow.committed))
    assert uow.committed.signposts == {}


# The wait estimate waitlists tells


def estimate_event(as_of: str, p90: int | None, *, enough: bool = True, service_id: str = "svc-camhs") -> CloudEvent:
    data = {
        "service_id": service_id, "as_of": as_of, "window_weeks": 26, "children": 40 if enough else None,
        "enough_data": enough, "to_support_median_days": 30 if enough else None, "to_support_p90_days": p90,
    }  # fmt: skip
    return CloudEvent(type="uk.send.waitlist.wait_estimate.v1", source="/send/waitlists", subject=service_id, data=data)


async def test_the_newest_estimate_of_each_service_is_kept(uow: FakeUnitOfWork) -> None:
    assert await consume(uow, estimate_event("2026-03-02", 90)) == []
    await consume(uow, estimate_event("2026-03-01", 10))  # older, told late: ignored
    await consume(uow, estimate_event("2026-03-02", None, enough=False, service_id="svc-ehc"))
    held = await interim.estimates(uow)
    assert {k: (v.as_of, v.to_support_p90_days, v.enough_data) for k, v in held.items()} == {
        "svc-camhs": (date(2026, 3, 2), 90, True),
        "svc-ehc": (date(2026, 3, 2), None, False),
    }
    await consume(uow, estimate_event("2026-03-03", 120))
    assert (await interim.estimates(uow, ["svc-camhs"]))["svc-camhs"].to_support_p90_days == 120


# Take-up


async def signposted_referral(uow: FakeUnitOfWork) -> str:
    await with_offers(uow)
    referral_id = await submit(uow)
    await consume(uow, alert(referral_id))
    return referral_id


@pytest.mark.parametrize(("caller", "by"), [(REFERRER, "referrer"), (RECEIVER, "receiver")])
async def test_a_party_records_a_take_up_once(uow: FakeUnitOfWork, caller: Caller, by: str) -> None:
    referral_id = await signposted_referral(uow)
    taken = await interim.take_up(referral_id, "io-f-voluntary-own", caller, uow, now=NOW, source="/test")
    assert (taken.taken_up_at, taken.taken_up_by) == (NOW, by)
    again = await interim.take_up(referral_id, "io-f-voluntary-own", caller, uow, now=NOW, source="/test")
    assert again.taken_up_at == NOW
    [event] = published(uow, TAKEN_UP)
    assert (event["offer_id"], event["provider_org_id"], event["recorded_by"]) == ("io-f-voluntary-own", VOLUNTARY, by)


async def test_the_family_records_a_take_up_on_their_own_childs_referral_only(uow: FakeUnitOfWork) -> None:
    referral_id = await signposted_referral(uow)
    child_ref = uow.committed.referrals[referral_id].child_ref
    with pytest.raises(NotFound):
        await interim.take_up(
            referral_id, "io-b-own-semh", FamilyCaller("l1", "another-child"), uow, now=NOW, source="/t"
        )
    await interim.take_up(referral_id, "io-b-own-semh", FamilyCaller("l1", child_ref), uow, now=NOW, source="/t")
    assert [e["recorded_by"] for e in published(uow, TAKEN_UP)] == ["family"]


async def test_a_take_up_is_refused_to_others_and_for_offers_not_signposted(uow: FakeUnitOfWork) -> None:
    referral_id = await signposted_referral(uow)
    with pytest.raises(NotFound):
        await interim.take_up(referral_id, "io-b-own-semh", Caller(OTHER_SCHOOL, "referrer", "x"), uow, now=NOW,
                              source="/t")  # fmt: skip
    with pytest.raises(NotYourReferral):
        await interim.take_up(referral_id, "io-b-own-semh", Caller(SCHOOL, "ops", "x"), uow, now=NOW, source="/t")
    with pytest.raises(SignpostNotFound):
        await interim.take_up(referral_id, "io-c-own-asd-only", REFERRER, uow, now=NOW, source="/t")
    assert published(uow, TAKEN_UP) == []
    assert all(s.taken_up_at is None for s in await interim.signposts_of(referral_id, uow))
