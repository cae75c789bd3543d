"""The backtest on generated data with a known distribution: steady arrivals, waits to support drawn from a
fixed distribution, one child in ten closed without support before it. The estimate is then calibrated by
construction, so the backtest must find about 90% started within the predicted p90 (tolerance 0.03 for some 6,000
children judged: the sampling error alone is about 0.004) and about half within the median (tolerance 0.05)."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from datetime import date, timedelta
from types import TracebackType

from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.facts import StopOutcome
from waitlists.domain.waits import ReferralOutcome, WaitPolicy
from waitlists.service_layer.backtest import backtest

OBSERVED_ON = date(2026, 6, 30)


def generated() -> dict[str, list[ReferralOutcome]]:
    """Six referrals a day to each service from 2024 to mid-2026. svc-a: exponential waits of mean 30 days;
    svc-b: uniform from 10 to 100 days. Ten percent close without support at a uniform time before their wait.
    Only what had happened by OBSERVED_ON is known."""
    rng = random.Random(18)
    found: dict[str, list[ReferralOutcome]] = {"svc-a": [], "svc-b": []}
    on = date(2024, 1, 1)
    while on <= OBSERVED_ON:
        for sid in found:
            for _ in range(6):
                wait = round(rng.expovariate(1 / 30)) if sid == "svc-a" else rng.randint(10, 100)
                started = on + timedelta(days=wait)
                if rng.random() < 0.1:
                    closed = on + timedelta(days=rng.randint(0, wait))
                    found[sid].append(ReferralOutcome(on, None, closed if closed <= OBSERVED_ON else None,
                                                      closed if closed <= OBSERVED_ON else None,
                                                      StopOutcome.ENDED if closed <= OBSERVED_ON else None))  # fmt: skip
                elif started <= OBSERVED_ON:
                    found[sid].append(ReferralOutcome(on, started, None, started, StopOutcome.MET))
                else:
                    found[sid].append(ReferralOutcome(on, None, None))
        on += timedelta(days=1)
    return found


class Directory:
    async def service_clocks(self, service_ids: Collection[str] | None = None) -> dict[str, ServiceClocks]:
        held = {"svc-a": ServiceClocks((ClockKind.CYPMH_4W,)), "svc-b": ServiceClocks((ClockKind.SERVICE_TARGET,), 90)}
        return {sid: c for sid, c in held.items() if service_ids is None or sid in service_ids}


class Waits:
    def __init__(self) -> None:
        self.held = generated()

    async def outcomes(
        self, first_clocks: Mapping[str, str | None], first: date, last: date
    ) -> dict[str, list[ReferralOutcome]]:
        return {sid: [r for r in self.held[sid] if first <= r.submitted_on <= last] for sid in first_clocks}


class UnitOfWork:
    def __init__(self) -> None:
        self.directory = Directory()
        self.waits = Waits()

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None


async def test_the_backtest_finds_the_estimate_calibrated_on_a_known_distribution() -> None:
    result = await backtest(UnitOfWork(), first=date(2024, 9, 2), last=date(2026, 1, 5), every_weeks=4,  # type: ignore[arg-type]
                            cohort_weeks=4, observed_on=OBSERVED_ON, policy=WaitPolicy(26, 20))  # fmt: skip
    report = result.report()
    assert report["as_of_dates"] == 18 and report["estimates"] == 36 and report["estimates_without_p90"] == 0
    support = report["to_support"]
    assert support["children_judged"] > 5000
    assert abs(support["calibration_p90"] - 0.90) <= 0.03, support
    assert abs(support["share_within_median"] - 0.50) <= 0.05, support
    # The stop here is the start (or an end at the closure): the same calibration.
    assert abs(report["to_clock_stop"]["calibration_p90"] - 0.90) <= 0.03, report["to_clock_stop"]


async def test_a_miscalibrated_estimate_is_caught() -> None:
    """The same referrals, but from mid-2025 every wait is doubled: estimates built on the old waits now say
    too little, and the backtest over that time finds well under 90% within the p90."""
    uow = UnitOfWork()
    change = date(2025, 7, 1)
    for sid, held in uow.waits.held.items():
        slowed = []
        for r in held:
            if r.submitted_on >= change and r.started_on is not None:
                started = r.submitted_on + 2 * (r.started_on - r.submitted_on)
                slowed.append(ReferralOutcome(r.submitted_on, started if started <= OBSERVED_ON else None, None,
                                              started if started <= OBSERVED_ON else None,
                                              StopOutcome.MET if started <= OBSERVED_ON else None))  # fmt: skip
            else:
                slowed.append(r)
        uow.waits.held[sid] = slowed
    result = await backtest(uow, first=date(2025, 7, 7), last=date(2025, 10, 27), every_weeks=4, cohort_weeks=4,  # type: ignore[arg-type]
                            observed_on=OBSERVED_ON, policy=WaitPolicy(26, 20))  # fmt: skip
    assert result.report()["to_support"]["calibration_p90"] < 0.8
