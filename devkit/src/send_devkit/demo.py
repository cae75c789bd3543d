"""Demo history for a new installation: a year of referrals in the seeded area, sent through the
referrals service's public API exactly as schools and agencies would (never written into any
service's tables), so a first `make run` shows a live dashboard.

    python -m send_devkit.demo --referrals http://127.0.0.1:8001 [--seed 7] [--referrals-count 240]

Deterministic for a given seed and end date.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx

from send_devkit.tokens import mint_token

SCHOOLS = ["org-riverside-primary", "org-millbrook-primary", "org-hillcrest-secondary", "org-st-marys-primary",
           "org-oakfield-high"]  # fmt: skip
RECEIVERS = {
    "svc-camhs-core": "org-northshire-camhs",
    "svc-camhs-eating-disorders": "org-northshire-camhs",
    "svc-ehc-assessment": "org-northshire-la",
    "svc-trust-ed-psych": "org-riverside-mat",
    "svc-trust-slt": "org-riverside-mat",
    "svc-family-support": "org-family-voice",
}
WEIGHTS = {"svc-camhs-core": 30, "svc-ehc-assessment": 25, "svc-trust-ed-psych": 15, "svc-trust-slt": 12,
           "svc-family-support": 10, "svc-camhs-eating-disorders": 8}  # fmt: skip
NEEDS = {"svc-camhs-core": ["SEMH", "ASD"], "svc-camhs-eating-disorders": ["SEMH"], "svc-trust-slt": ["SLCN", "ASD"],
         "svc-trust-ed-psych": ["SpLD", "MLD", "SEMH", "ASD"], "svc-ehc-assessment": ["ASD", "SEMH", "SLCN", "MLD", "PD"],
         "svc-family-support": ["SEMH", "MLD", "ASD"]}  # fmt: skip
GIVEN = ["Alex", "Sam", "Jordan", "Priya", "Mohammed", "Olivia", "Noah", "Amelia", "Leo", "Isla", "Zara", "Oscar"]
FAMILY = ["Taylor", "Khan", "Smith", "Jones", "Patel", "Brown", "Wilson", "Ahmed", "Evans", "Nowak", "Okafor"]


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


@dataclass
class Plan:
    """One referral's intended history: (status, day, extra body) steps after submission."""

    school: str
    service: str
    child: dict[str, str]
    need: str
    urgency: str
    referred_on: date
    steps: list[tuple[str, date, dict[str, Any]]] = field(default_factory=list)
    onward_steps: list[tuple[str, date, dict[str, Any]]] = field(default_factory=list)


def plan_history(rng: random.Random, end: date, count: int) -> list[Plan]:
    plans = []
    services = list(WEIGHTS)
    for _ in range(count):
        service = rng.choices(services, weights=[WEIGHTS[s] for s in services])[0]
        referred = end - timedelta(days=rng.randint(0, 364))
        child = {
            "given_name": rng.choice(GIVEN),
            "family_name": rng.choice(FAMILY),
            "date_of_birth": (end - timedelta(days=rng.randint(5 * 365, 16 * 365))).isoformat(),
            "nhs_number": nhs_number(rng),
        }
        urgency = "urgent" if service == "svc-camhs-eating-disorders" and rng.random() < 0.4 else "routine"
        plan = Plan(rng.choice(SCHOOLS), service, child, rng.choice(NEEDS[service]), urgency, referred)
        plan.steps = plan_steps(rng, service, referred)
        if plan.steps[-1][0] == "handed_off":
            plan.onward_steps = plan_steps(rng, "svc-ehc-assessment", plan.steps[-1][1])
        plans.append(plan)
    return plans


def plan_steps(rng: random.Random, service: str, day: date) -> list[tuple[str, date, dict[str, Any]]]:
    steps: list[tuple[str, date, dict[str, Any]]] = []

    def after(low: int, high: int) -> date:
        return (steps[-1][1] if steps else day) + timedelta(days=rng.randint(low, high))

    if service == "svc-ehc-assessment":
        steps.append(("acknowledged", after(1, 5), {}))
        if rng.random() < 0.2:
            steps.append(("rejected", after(25, 45), {"reason_code": "threshold_not_met", "explanation": "Needs can be met from SEN support.", "signposted_service_id": "svc-trust-ed-psych"}))  # fmt: skip
            return steps
        steps.append(("accepted", after(28, 48), {}))
        if rng.random() < 0.15:
            steps.append(("on_hold", after(10, 30), {"reason_code": "school_closed_4_weeks", "expected_resume": after(35, 40).isoformat()}))  # fmt: skip
            steps.append(("accepted", after(28, 35), {}))
        outcome = "no_plan" if rng.random() < 0.2 else "plan_issued"
        steps.append(("completed", after(60, 110), {"outcome_code": outcome}))
        return steps
    steps.append(("acknowledged", after(1, 4), {}))
    roll = rng.random()
    if roll < 0.22:
        steps.append(("rejected", after(3, 14), {"reason_code": rng.choice(["threshold_not_met", "outside_remit", "insufficient_information"]), "explanation": "Not for this service; see signposting.", "signposted_service_id": "svc-family-support"}))  # fmt: skip
        return steps
    if roll < 0.30 and service == "svc-camhs-core":
        steps.append(("handed_off", after(5, 20), {"target_service_id": "svc-ehc-assessment"}))
        return steps
    steps.append(("accepted", after(3, 15), {}))
    if rng.random() < 0.25:
        steps.append(("on_hold", after(5, 20), {"reason_code": rng.choice(["family_unavailable", "appointment_declined", "service_capacity"]), "expected_resume": after(20, 30).isoformat()}))  # fmt: skip
        steps.append(("accepted", after(7, 25), {}))
    steps.append(("scheduled", after(5, 40), {"appointment_at": f"{after(7, 21).isoformat()}T10:00:00Z"}))
    steps.append(("in_progress", after(7, 21), {}))
    if rng.random() < 0.1:
        steps.append(("withdrawn", after(5, 30), {}))
    else:
        steps.append(("completed", after(30, 120), {"outcome_code": rng.choice(["support_completed", "discharged", "disengaged"])}))  # fmt: skip
    return steps


def _at(day: date) -> str:
    return datetime.combine(day, time(10, 0), tzinfo=UTC).isoformat()


async def _replay(http: httpx.AsyncClient, plan: Plan, index: int, end: date, seed: int) -> int:
    school = {"authorization": f"Bearer {mint_token(plan.school, 'referrer')}"}
    body = {
        "service_id": plan.service,
        "child": plan.child,
        "primary_need": plan.need,
        "reason": "Demo referral.",
        "urgency": plan.urgency,
        "consent": {
            "given_by": "parent",
            "given_at": _at(plan.referred_on - timedelta(days=2)),
            "scope": "Referral",
            # A CAMHS referral may be handed off to the EHC assessment (issue 17: hand-offs stay within consent).
            "scope_service_ids": sorted({plan.service, "svc-ehc-assessment"}),
        },
        "referred_at": _at(plan.referred_on),
    }
    created = await http.post("/v1/referrals", json=body, headers={**school, "idempotency-key": f"demo-{seed}-{index}"})
    if created.status_code != 201:
        return 0
    referral = created.json()
    version = referral["version"]
    if referral["status"] != "submitted":  # replayed by idempotency: already loaded
        return 0
    moves = 0
    receiver = {"authorization": f"Bearer {mint_token(RECEIVERS[plan.service], 'receiver')}"}
    for status, day, extra in plan.steps:
        if day > end:
            break
        headers = {**(school if status == "withdrawn" else receiver), "if-match": f'"{version}"'}
        moved = await http.post(f"/v1/referrals/{referral['id']}/status", json={"status": status, "occurred_at": _at(day), **extra}, headers=headers)  # fmt: skip
        if moved.status_code != 200:
            break
        version = moved.json()["version"]
        moves += 1
        if status == "handed_off":
            onward = {"authorization": f"Bearer {mint_token(RECEIVERS['svc-ehc-assessment'], 'receiver')}"}
            moves += await _follow(http, moved.json()["linked_to_id"], plan.onward_steps, onward, end)
    return moves


async def _follow(
    http: httpx.AsyncClient,
    referral_id: str,
    steps: list[tuple[str, date, dict[str, Any]]],
    headers: dict[str, str],
    end: date,
) -> int:
    version, moves = 1, 0
    for status, day, extra in steps:
        if day > end:
            break
        body = {"status": status, "occurred_at": _at(day), **extra}
        moved = await http.post(
            f"/v1/referrals/{referral_id}/status", json=body, headers={**headers, "if-match": f'"{version}"'}
        )
        if moved.status_code != 200:
            break
        version = moved.json()["version"]
        moves += 1
    return moves


async def register_contacts(notifications_url: str) -> None:
    """Email contacts for the seeded schools and agencies, so the demo's emails land in the mail sink."""
    async with httpx.AsyncClient(base_url=notifications_url, timeout=30) as http:
        for org in [*SCHOOLS, *sorted(set(RECEIVERS.values()))]:
            role = "referrer" if org in SCHOOLS else "receiver"
            await http.put(
                "/v1/contacts",
                json={"emails": [f"send-contact@{org.removeprefix('org-')}.example"]},
                headers={"authorization": f"Bearer {mint_token(org, role)}"},
            )


async def send_family_links(referrals_url: str, count: int = 2) -> list[str]:
    """Family view links (issue 17) for a few of the first school's open referrals, each to a made-up family
    address: the referrals service emails them (into the mail sink under ``make run``). Returns the referral ids."""
    school = SCHOOLS[0]
    headers = {"authorization": f"Bearer {mint_token(school, 'referrer')}"}
    linked: list[str] = []
    async with httpx.AsyncClient(base_url=referrals_url, timeout=30) as http:
        for status in ("acknowledged", "submitted", "accepted", "on_hold", "in_progress"):
            listed = await http.get("/v1/referrals", params={"status": status, "limit": count}, headers=headers)
            for referral in listed.json().get("items", []) if listed.status_code == 200 else []:
                if len(linked) >= count:
                    return linked
                made = await http.post(
                    f"/v1/referrals/{referral['id']}/family-links",
                    json={"email": f"family-{len(linked) + 1}@families.example"},
                    headers=headers,
                )
                if made.status_code == 201:
                    linked.append(referral["id"])
    return linked


async def load(
    referrals_url: str,
    *,
    seed: int = 7,
    count: int = 240,
    end: date | None = None,
    notifications_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    family_links: int = 0,
) -> tuple[int, int]:
    """Loads the demo history; returns (referrals submitted, moves made). ``progress(done, total)`` is called
    as each referral's history is in."""
    end = end or (datetime.now(UTC).date() - timedelta(days=1))
    if notifications_url:
        await register_contacts(notifications_url)
    plans = plan_history(random.Random(seed), end, count)
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=referrals_url, timeout=30) as http:
        done = 0

        async def one(index: int, plan: Plan) -> int:
            nonlocal done
            async with limit:
                moved = await _replay(http, plan, index, end, seed)
            done += 1
            if progress is not None:
                progress(done, len(plans))
            return moved

        moves = await asyncio.gather(*(one(i, p) for i, p in enumerate(plans)))
    if family_links:
        await send_family_links(referrals_url, family_links)
    return len(plans), sum(moves)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--referrals", default="http://127.0.0.1:8001", help="base URL of the referrals service")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--referrals-count", type=int, default=240)
    args = parser.parse_args(argv)
    submitted, moves = asyncio.run(load(args.referrals, seed=args.seed, count=args.referrals_count))
    print(f"demo history loaded: {submitted} referrals, {moves} moves")


if __name__ == "__main__":
    main()
