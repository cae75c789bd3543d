"""An in-memory unit of work for the use cases: the repositories of ``service_layer.unit_of_work`` over dicts,
with the fact store's reads narrowed to a date and a period in Python (``fake_facts``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta
from types import TracebackType

from waitlists.domain.access import Parties
from waitlists.domain.alerts import AlertKind, ClockAlert
from waitlists.domain.capacity import ServiceActivity, Waiter
from waitlists.domain.clock_updates import ClockUpdate, ToldBefore
from waitlists.domain.clocks import ClockKind, ServiceClocks
from waitlists.domain.directory import OrganisationEntry, ServiceEntry
from waitlists.domain.facts import ReferralFacts, StopCount, StopOutcome
from waitlists.domain.impact import Completion, ImpactRead, Start, Submission, need_codes
from waitlists.domain.metrics import Period, Tally
from waitlists.domain.projection import HeldProjection, ProjectedReferral
from waitlists.domain.scope import Scope
from waitlists.domain.timeline import Timeline
from waitlists.domain.waits import ReferralOutcome, WaitEstimate

from . import fake_facts


class FakeReferrals:
    def __init__(self) -> None:
        self.held: dict[str, ProjectedReferral] = {}

    async def get(self, referral_id: str) -> ProjectedReferral | None:
        return self.held.get(referral_id)

    async def save(self, referral: ProjectedReferral) -> None:
        self.held[referral.referral_id] = referral

    async def any(self) -> bool:
        return bool(self.held)

    async def children_at(self, service_ids: Collection[str]) -> set[str]:
        return {r.child_ref for r in self.held.values() if r.service_id in service_ids}

    async def parties(self, referral_ids: Sequence[str]) -> dict[str, Parties]:
        return {
            rid: Parties(r.referrer_org_id, r.receiving_org_id) for rid in referral_ids if (r := self.held.get(rid))
        }

    async def timeline(self, referral_id: str) -> Timeline | None:
        found = self.held.get(referral_id)
        return found.timeline() if found else None

    async def timelines(self, referral_ids: Sequence[str]) -> list[Timeline]:
        return [self.held[rid].timeline() for rid in sorted(referral_ids) if rid in self.held]

    async def journeys(self, child_refs: Sequence[str]) -> dict[str, list[Timeline]]:
        found: defaultdict[str, list[Timeline]] = defaultdict(list)
        for rid in sorted(self.held):
            if self.held[rid].child_ref in child_refs:
                found[self.held[rid].child_ref].append(self.held[rid].timeline())
        return dict(found)

    async def journeys_after(self, after: str | None, children: int) -> tuple[dict[str, list[Timeline]], str | None]:
        chunk = sorted({r.child_ref for r in self.held.values() if after is None or r.child_ref > after})[:children]
        return (await self.journeys(chunk), chunk[-1]) if chunk else ({}, None)


class FakeDirectory:
    def __init__(self) -> None:
        self.services_held: dict[str, ServiceEntry] = {}
        self.organisations_held: dict[str, OrganisationEntry] = {}

    async def service(self, service_id: str) -> ServiceEntry | None:
        return self.services_held.get(service_id)

    async def services(self, service_ids: Collection[str] | None = None) -> dict[str, ServiceEntry]:
        found = [s for s in self.services_held.values() if service_ids is None or s.service_id in service_ids]
        return {s.service_id: s for s in sorted(found, key=lambda s: s.name)}

    async def save_service(self, entry: ServiceEntry) -> None:
        self.services_held[entry.service_id] = entry

    async def organisation(self, organisation_id: str) -> OrganisationEntry | None:
        return self.organisations_held.get(organisation_id)

    async def save_organisation(self, entry: OrganisationEntry) -> None:
        self.organisations_held[entry.organisation_id] = entry

    async def organisation_known(self, organisation_id: str) -> bool:
        return organisation_id in self.organisations_held

    async def providers(self) -> list[OrganisationEntry]:
        running = {s.organisation_id for s in self.services_held.values()}
        return sorted((o for o in self.organisations_held.values() if o.organisation_id in running),
                      key=lambda o: o.name)  # fmt: skip

    async def local_authorities(self) -> list[OrganisationEntry]:
        return sorted((o for o in self.organisations_held.values() if o.kind == "local_authority"),
                      key=lambda o: o.organisation_id)  # fmt: skip

    async def areas(self) -> list[str]:
        return sorted({o.area_id for o in self.organisations_held.values()})

    async def scope_services(self, scope: Scope, scope_id: str) -> dict[str, ServiceClocks]:
        def within(s: ServiceEntry) -> bool:
            if scope is Scope.SERVICE:
                return s.service_id == scope_id
            if scope is Scope.ORGANISATION:
                return s.organisation_id == scope_id
            org = self.organisations_held.get(s.organisation_id)
            return org is not None and org.area_id == scope_id

        return {sid: s.service_clocks for sid, s in sorted(self.services_held.items()) if within(s)}

    async def service_clocks(self, service_ids: Collection[str] | None = None) -> dict[str, ServiceClocks]:
        return {sid: s.service_clocks for sid, s in sorted(self.services_held.items())
                if service_ids is None or sid in service_ids}  # fmt: skip

    async def area_services(self, scope: Scope, scope_id: str) -> tuple[str, dict[str, str]]:
        if scope is Scope.AREA:
            area_id = scope_id
        else:
            service = self.services_held.get(scope_id)
            org_id = scope_id if scope is Scope.ORGANISATION else (service.organisation_id if service else "")
            org = self.organisations_held.get(org_id)
            area_id = org.area_id if org else ""
        return area_id, {sid: s.organisation_id for sid, s in self.services_held.items()
                         if (o := self.organisations_held.get(s.organisation_id)) and o.area_id == area_id}  # fmt: skip


class FakeFacts:
    def __init__(self, alerts: FakeAlerts, referrals: FakeReferrals) -> None:
        self.held: dict[str, ReferralFacts] = {}
        self._alerts = alerts
        self._referrals = referrals

    async def any(self) -> bool:
        return bool(self.held)

    async def replace(self, referral_ids: Sequence[str], found: Sequence[ReferralFacts]) -> None:
        for rid in referral_ids:
            self.held.pop(rid, None)
        await self.add(found)

    async def add(self, found: Sequence[ReferralFacts]) -> None:
        self.held |= {f.referral_id: f for f in found}

    async def tallies(self, in_scope: Mapping[str, ServiceClocks], day: date, period: Period) -> dict[str, Tally]:
        found = {}
        for service_id, service in in_scope.items():
            tally = fake_facts.tally([f for f in self.held.values() if f.service_id == service_id], day, period)
            for kind in service.clocks:
                tally.clock(kind.value)
            found[service_id] = tally
        return found

    async def children_on_several_lists(self, service_ids: Sequence[str], day: date) -> int:
        mine = [f for f in self.held.values() if f.service_id in service_ids]
        return fake_facts.children_on_several_lists(mine, day)

    async def stops_between(self, service_ids: Sequence[str], first: date, last: date) -> list[StopCount]:
        counted: defaultdict[tuple[str, ClockKind, date, StopOutcome, bool], int] = defaultdict(int)
        for f in self.held.values():
            for s in f.clock_stops:
                if f.service_id in service_ids and first <= s.stopped_on <= last:
                    counted[(f.service_id, s.clock, s.stopped_on, s.outcome, s.exception)] += 1
        return [StopCount(sid, clock, on, outcome, exception, n)
                for (sid, clock, on, outcome, exception), n in counted.items()]  # fmt: skip

    async def activity(
        self, service_ids: Sequence[str], first: date, day: date, boundaries: Sequence[date]
    ) -> dict[str, ServiceActivity]:
        found = {service_id: ServiceActivity() for service_id in service_ids}
        for f in self.held.values():
            if f.service_id not in found:
                continue
            mine = found[f.service_id]
            for counts, on in ((mine.submitted, f.outcome.submitted_on), (mine.started, f.outcome.started_on)):
                if on is not None and first <= on <= day:
                    counts[on] = counts.get(on, 0) + 1
            for b in boundaries:
                if b <= day and any(w.valid_from <= b < w.valid_to for w in f.waiting):
                    mine.waiting_on[b] = mine.waiting_on.get(b, 0) + 1
            for w in f.waiting:
                if w.valid_from <= day < w.valid_to:
                    waited = w.paused_days if w.waiting_since is None else (day - w.waiting_since).days
                    dues = [c.breach_on for c in f.clock_spells
                            if c.valid_from <= day < c.valid_to and c.breach_on is not None]  # fmt: skip
                    mine.queue.append(Waiter(f.referral_id, waited or 0, min(dues, default=None)))
        return found

    async def impact(self, service_ids: Sequence[str], first: date, day: date) -> ImpactRead:
        """As the SQL read, less what the facts do not hold: no outcome codes, referrers of unknown kind (need codes
        from the referrals held)."""
        found = ImpactRead()
        held = list(self.held.values())
        for f in held:
            o = f.outcome
            done = o.closed_on if o.closed_status == "completed" else None
            if f.service_id in service_ids and done is not None and first <= done <= day:
                found.completions.append(Completion(f.child_ref, f.service_id, done, None))
            if f.service_id in service_ids and o.started_on is not None and 0 <= (day - o.started_on).days <= 364:
                r = self._referrals.held[f.referral_id]
                needs = need_codes(r.primary_need, r.secondary_need)
                found.starts.append(Start(f.service_id, "unknown", (o.started_on - o.submitted_on).days, 1, needs))
        children = {c.child_ref for c in found.completions}
        found.submissions = [Submission(f.child_ref, f.service_id, f.outcome.submitted_on) for f in held
                             if f.child_ref in children and first < f.outcome.submitted_on <= day]  # fmt: skip
        return found

    async def due_for_alert(self, day: date, lead_days: int) -> list[str]:
        announced = {(rid, clock) for rid, clock, kind in self._alerts.sent if kind is AlertKind.BREACHED}
        return sorted({
            f.referral_id for f in self.held.values() for c in f.clock_spells
            if c.valid_from <= day < c.valid_to and c.breach_on is not None
            and c.breach_on <= day + timedelta(days=lead_days) and (f.referral_id, c.clock.value) not in announced
        })  # fmt: skip


class FakeAlerts:
    def __init__(self) -> None:
        self.sent: set[tuple[str, str, AlertKind]] = set()
        self.published: list[tuple[ClockAlert, str]] = []

    async def raise_once(self, alert: ClockAlert, source: str) -> bool:
        key = (alert.due.clock.referral_id, alert.due.clock.kind.value, alert.due.kind)
        if key in self.sent:
            return False
        self.sent.add(key)
        self.published.append((alert, source))
        return True


class FakeClockUpdates:
    def __init__(self, referrals: FakeReferrals) -> None:
        self._referrals = referrals
        self.fingerprints: dict[str, str] = {}
        self.published: list[tuple[ClockUpdate, str]] = []

    async def told_before(self, referral_ids: Sequence[str]) -> dict[str, ToldBefore]:
        parties = await self._referrals.parties(referral_ids)
        return {rid: ToldBefore(p, self.fingerprints.get(rid)) for rid, p in parties.items()}

    async def tell(self, updates: Sequence[ClockUpdate], source: str) -> None:
        for update in updates:
            self.fingerprints[update.clocks.referral_id] = update.clocks.fingerprint
            self.published.append((update, source))


class FakeWaits:
    """The referrals' outcomes read from the facts held; the estimates sent kept in a list."""

    def __init__(self, facts: FakeFacts) -> None:
        self._facts = facts
        self.computed: dict[str, date] = {}
        self.last_sent: dict[str, tuple[object, ...]] = {}
        self.sent: list[tuple[WaitEstimate, str]] = []

    async def outcomes(
        self, first_clocks: Mapping[str, str | None], first: date, last: date
    ) -> dict[str, list[ReferralOutcome]]:
        found: defaultdict[str, list[ReferralOutcome]] = defaultdict(list)
        for f in self._facts.held.values():
            o = f.outcome
            if f.service_id not in first_clocks or not first <= o.submitted_on <= last:
                continue
            stop = next((s for s in f.clock_stops if s.clock.value == first_clocks[f.service_id]), None)
            found[f.service_id].append(ReferralOutcome(o.submitted_on, o.started_on, o.closed_on,
                                                       stop.stopped_on if stop else None,
                                                       stop.outcome if stop else None))  # fmt: skip
        return dict(found)

    async def computed_on(self, service_ids: Collection[str]) -> dict[str, date]:
        return {sid: on for sid, on in self.computed.items() if sid in service_ids}

    async def send_if_changed(self, estimate: WaitEstimate, source: str) -> bool:
        self.computed[estimate.service_id] = estimate.as_of
        if self.last_sent.get(estimate.service_id) == estimate.fingerprint():
            return False
        self.last_sent[estimate.service_id] = estimate.fingerprint()
        self.sent.append((estimate, source))
        return True


class FakeUnitOfWork:
    """One store shared by every ``async with``; ``commits`` counts the commits."""

    def __init__(self) -> None:
        self.referrals = FakeReferrals()
        self.directory = FakeDirectory()
        self.alerts = FakeAlerts()
        self.clock_updates = FakeClockUpdates(self.referrals)
        self.facts = FakeFacts(self.alerts, self.referrals)
        self.waits = FakeWaits(self.facts)
        self.marked_children: set[str] = set()
        self.marked_services: set[str] = set()
        self.commits = 0

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1

    def mark_child(self, child_ref: str) -> None:
        self.marked_children.add(child_ref)

    def mark_service(self, service_id: str) -> None:
        self.marked_services.add(service_id)

    def take_marked(self) -> tuple[set[str], set[str]]:
        taken = self.marked_children, self.marked_services
        self.marked_children, self.marked_services = set(), set()
        return taken


class FakeProjectionStore:
    def __init__(self, referrals_held: int = 0) -> None:
        self.held = referrals_held
        self.replacements: list[HeldProjection] = []

    writes_in_parts = False  # one process, replaced at once: the parts are the SQL store's (integration tests)

    async def referrals_held(self) -> int:
        return self.held

    async def replace(self, held: HeldProjection) -> None:
        self.replacements.append(held)
