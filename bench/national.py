"""A deterministic national dataset for the benchmarks, as the referrals service would publish it.

    python bench/national.py --scale small --out var/bench/small.jsonl.gz       # writes the events for reuse
    python bench/national.py --scale national --out var/bench/national.jsonl.gz

The directory is England's shape: 153 local authority areas and about 20,000 schools. Each
area has its council's EHC needs assessment service, a CAMHS provider (core and eating
disorders), a multi-academy trust's educational psychology and speech and language
therapy, and a voluntary family support service, with the clocks of the seeded demo area.
Areas differ in size (a seeded log-normal spread). Referral histories follow the demo's
proportions (`send_devkit.demo.plan_steps`): which services schools refer to, rejection,
hand-off and hold rates, EHC outcomes. One child in seven has a second referral in the
same area, and a hand-off to the EHC service opens the child's onward referral there.
The same seed and end date give the same events, byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from send_devkit.demo import NEEDS, WEIGHTS, plan_steps
from send_shared.events.envelope import CloudEvent
from send_shared.events.schemas import (
    ORGANISATION_UPSERTED,
    SERVICE_UPSERTED,
    OrganisationV1,
    ReferralEventV1,
    ReferralStatus,
    ServiceV1,
    referral_event_type,
)

SOURCE = "/send/referrals"


@dataclass(frozen=True)
class Scale:
    areas: int
    referrals: int
    years: int
    schools_per_area: int = 131  # 153 areas x 131 = 20,043 schools


SCALES = {
    "small": Scale(areas=2, referrals=10_000, years=1, schools_per_area=20),
    "national": Scale(areas=153, referrals=1_000_000, years=3),
}

# The demo area's services, by template name: (kind of provider, name, clocks, target days, urgencies).
SERVICE_TEMPLATES = {
    "svc-ehc-assessment": ("la", "EHC needs assessment", ["ehc_decision_6w", "ehc_no_plan_16w", "ehc_plan_20w"], None,
                           ["routine"]),
    "svc-camhs-core": ("camhs", "CAMHS core", ["cypmh_4w"], None, ["routine", "urgent", "very_urgent"]),
    "svc-camhs-eating-disorders": ("camhs", "CAMHS eating disorders", ["cypmh_ed"], None, ["routine", "urgent"]),
    "svc-trust-ed-psych": ("mat", "Educational psychology", ["service_target"], 42, ["routine", "urgent"]),
    "svc-trust-slt": ("mat", "Speech and language therapy", ["service_target"], 56, ["routine", "urgent"]),
    "svc-family-support": ("voluntary", "Family support and advice", ["service_target"], 28, ["routine"]),
}  # fmt: skip
PROVIDER_KINDS = {"la": "local_authority", "camhs": "camhs", "mat": "trust", "voluntary": "voluntary"}


def area_id(area: int) -> str:
    return f"la-{area:03d}"


def provider_id(area: int, provider: str) -> str:
    return f"org-{provider}-{area:03d}"


def service_id(area: int, template: str) -> str:
    return f"{template.removeprefix('svc-')}-{area:03d}"


def directory(scale: Scale) -> list[CloudEvent]:
    """Organisation and service events for every area."""
    found = []
    for area in range(1, scale.areas + 1):
        orgs = [(provider_id(area, p), f"{p.upper()} of area {area}", kind) for p, kind in PROVIDER_KINDS.items()]
        orgs += [(f"org-school-{area:03d}-{n:03d}", f"School {n} of area {area}", "school")
                 for n in range(1, scale.schools_per_area + 1)]  # fmt: skip
        for org, name, kind in orgs:
            data = OrganisationV1(organisation_id=org, version=1, name=name, kind=kind, area_id=area_id(area))
            found.append(_event(ORGANISATION_UPSERTED, org, data.model_dump(mode="json")))
        for template, (provider, name, clocks, target, urgencies) in SERVICE_TEMPLATES.items():
            data = ServiceV1(service_id=service_id(area, template), version=1, organisation_id=provider_id(area, provider),
                             name=name, needs=NEEDS[template], urgencies=urgencies, clocks=clocks,
                             target_days=target)  # fmt: skip
            found.append(_event(SERVICE_UPSERTED, data.service_id, data.model_dump(mode="json")))
    return found


def area_weights(scale: Scale, rng: random.Random) -> list[float]:
    """Relative area sizes: log-normal, as council sizes are (a county is many times a small borough)."""
    return [math.exp(rng.gauss(0.0, 0.5)) for _ in range(scale.areas)]


def referral_events(scale: Scale, *, seed: int = 7, end: date | None = None) -> Iterator[CloudEvent]:
    """Every referral's events up to ``end`` (default today), referral by referral."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC).date()
    weights = area_weights(scale, rng)
    templates = list(WEIGHTS)
    recent_children: dict[int, list[tuple[str, set[str]]]] = {}
    for _ in range(scale.referrals):
        area = rng.choices(range(1, scale.areas + 1), weights=weights)[0]
        template = rng.choices(templates, weights=[WEIGHTS[t] for t in templates])[0]
        pool = recent_children.setdefault(area, [])
        known = rng.choice(pool) if pool and rng.random() < 1 / 7 else None
        if known is None or template in known[1]:  # never a second referral to the same service
            known = (f"{rng.getrandbits(128):032x}", set())
            pool.append(known)
            del pool[:-50]
        child = known[0]
        known[1].add(template)
        referred = end - timedelta(days=rng.randrange(365 * scale.years))
        urgency = "urgent" if template == "svc-camhs-eating-disorders" and rng.random() < 0.4 else "routine"
        steps = plan_steps(rng, template, referred)
        school = f"org-school-{area:03d}-{rng.randrange(1, scale.schools_per_area + 1):03d}"
        yield from _history(rng, area, template, child, school, urgency, referred, steps, end)
        if steps[-1][0] == "handed_off" and steps[-1][1] <= end:
            onward = plan_steps(rng, "svc-ehc-assessment", steps[-1][1])
            yield from _history(rng, area, "svc-ehc-assessment", child, school, "routine", steps[-1][1], onward, end)


def _history(
    rng: random.Random, area: int, template: str, child: str, school: str, urgency: str, referred: date,
    steps: list[tuple[str, date, dict[str, Any]]], end: date,
) -> Iterator[CloudEvent]:  # fmt: skip
    referral_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    service = service_id(area, template)
    receiving = provider_id(area, SERVICE_TEMPLATES[template][0])
    moves = [("submitted", referred, {})] + [s for s in steps if s[1] <= end]
    for version, (status, day, extra) in enumerate(moves, start=1):
        at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
        data = ReferralEventV1(
            referral_id=referral_id, version=version, status=ReferralStatus(status), child_ref=child,
            referrer_org_id=school, service_id=service, receiving_org_id=receiving, urgency=urgency, occurred_at=at,
            recorded_at=at, reason_code=extra.get("reason_code"), outcome_code=extra.get("outcome_code"),
        )  # fmt: skip
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield _event(referral_event_type(status), referral_id, data.model_dump(mode="json"), event_id, at)


def _event(type_: str, subject: str, data: dict[str, Any], event_id: str | None = None,
           at: datetime | None = None) -> CloudEvent:  # fmt: skip
    fixed = {"id": event_id or f"directory-{subject}", "time": at or datetime(2020, 1, 1, tzinfo=UTC)}
    return CloudEvent(type=type_, source=SOURCE, subject=subject, data=data, **fixed)


def write(path: Path, events: Iterator[CloudEvent]) -> int:
    """CloudEvents in the JSON structured format, one per line, gzipped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event.to_structured(), separators=(",", ":")) + "\n")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    scale = SCALES[args.scale]

    def everything() -> Iterator[CloudEvent]:
        yield from directory(scale)
        yield from referral_events(scale, seed=args.seed)

    print(json.dumps({"scale": args.scale, "events": write(args.out, everything()), "out": str(args.out)}))


if __name__ == "__main__":
    main()
