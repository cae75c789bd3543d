from __future__ import annotations

from notifications.domain.audience import organisations_concerned


def test_only_referrer_and_receiver_are_concerned() -> None:
    data = {"referrer_org_id": "school", "receiving_org_id": "camhs", "service_id": "svc", "child_ref": "x"}
    assert organisations_concerned(data) == ["camhs", "school"]


def test_an_event_about_no_organisation_concerns_nobody() -> None:
    assert organisations_concerned({"service_id": "svc"}) == []
