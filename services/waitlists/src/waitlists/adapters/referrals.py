"""Referrals in the projection: what is held of each (written back after ``domain.projection.project``),
and their timelines read back, one referral, a child's journey, or a range of children at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Insert, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from send_shared import direct
from send_shared.db import ByDialect, InList, dialect_name, json_rows, json_rows_insert
from waitlists.adapters.orm import referral_changes, referrals
from waitlists.domain.access import Parties
from waitlists.domain.projection import ProjectedReferral, RecordedChange
from waitlists.domain.timeline import Status, StatusChange, Timeline

_CHUNK = 500


def _with_changes(*columns: Any) -> Select[Any]:
    r, c = referrals, referral_changes
    return select(*columns).join(c, c.c.referral_id == r.c.referral_id)


# The consumer's statements (each event reads and writes its referral, each batch reads its children's journeys),
# built once: a statement built per call costs its construction and its cache key every time.
_HELD = (
    _with_changes(referrals.c.child_ref, referrals.c.service_id, referrals.c.receiving_org_id,
                  referrals.c.referrer_org_id, referrals.c.urgency, referrals.c.primary_need,
                  referrals.c.secondary_need, referral_changes.c.version, referral_changes.c.status,
                  referral_changes.c.occurred_at, referral_changes.c.occurred_on, referral_changes.c.reason_code,
                  referral_changes.c.outcome_code)
    .where(referrals.c.referral_id == bindparam("referral_id"))
    .order_by(referral_changes.c.version)
)  # fmt: skip
_HELD_MANY = (
    _with_changes(referrals.c.referral_id, *_HELD.selected_columns)
    .where(InList(referrals.c.referral_id, "referral_ids"))
    .order_by(referrals.c.referral_id, referral_changes.c.version)
)
_TIMELINES = _with_changes(
    referrals.c.referral_id, referrals.c.child_ref, referrals.c.service_id, referrals.c.urgency,
    referral_changes.c.version, referral_changes.c.status, referral_changes.c.occurred_on,
    referral_changes.c.reason_code, referral_changes.c.outcome_code,
).order_by(referrals.c.referral_id, referral_changes.c.version)  # fmt: skip
_JOURNEYS = _TIMELINES.where(InList(referrals.c.child_ref, "child_refs"))
_LATEST = ("latest_version", "latest_status")


def _save_change(insert: Any) -> Any:
    return insert(referral_changes).on_conflict_do_nothing()


def _save_referral(insert: Any) -> Any:
    stmt = insert(referrals)
    return stmt.on_conflict_do_update(
        index_elements=[referrals.c.referral_id], set_={name: stmt.excluded[name] for name in _LATEST}
    )


_SAVE_CHANGES = ByDialect(_save_change)
_SAVE_REFERRAL = ByDialect(_save_referral)


def _write_saved() -> Insert:
    """PostgreSQL: the saved referrals' new changes and their rows in one statement (a data-modifying WITH), each
    table's rows one JSON document (``send_shared.db.json_rows_insert``), so a transaction's writes of the
    projection are one round trip whatever the events it folds."""
    changes = json_rows_insert(referral_changes, "changes").on_conflict_do_nothing().cte("saved")
    rows = json_rows_insert(referrals, "referrals")
    return rows.on_conflict_do_update(
        index_elements=[referrals.c.referral_id], set_={name: rows.excluded[name] for name in _LATEST}
    ).add_cte(changes)


_WRITE_SAVED = _write_saved()
# On the session, not on the repository: each event of a consumer's transaction sees them through a unit of work of
# its own. Referral id -> the referral as last saved, and its changes not yet written, by version; and the
# referrals read ahead for the transaction's events (None: not held).
_SAVED = "waitlists.saved_referrals"
_Saved = dict[str, tuple[ProjectedReferral, dict[int, dict[str, Any]]]]
_READ_AHEAD = "waitlists.read_ahead"


class SqlReferrals:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._held: dict[str, set[int]] = {}  # versions already stored, by referral read through ``get``

    async def get(self, referral_id: str) -> ProjectedReferral | None:
        """The referral as saved in this transaction, or else as the database holds it."""
        if (saved := self._saved().get(referral_id)) is not None:
            found: ProjectedReferral | None = saved[0]
        elif referral_id in (read_ahead := self._session.info.get(_READ_AHEAD, {})):
            found = read_ahead[referral_id]
        else:
            rows = (await direct.execute(self._session, _HELD, {"referral_id": referral_id})).rows
            found = _held_referral(referral_id, rows) if rows else None
        if found is not None:
            self._held[referral_id] = {change.version for change in found.changes}
        return found

    async def read_ahead(self, referral_ids: Collection[str]) -> None:
        """Reads these referrals in one statement, for ``get`` to give in this transaction."""
        rows = (await direct.execute(self._session, _HELD_MANY, {"referral_ids": sorted(referral_ids)})).rows
        by_referral: dict[str, list[Any]] = {referral_id: [] for referral_id in referral_ids}
        for row in rows:
            by_referral[row.referral_id].append(row)
        read: dict[str, ProjectedReferral | None] = self._session.info.setdefault(_READ_AHEAD, {})
        read.update({referral_id: _held_referral(referral_id, found) if found else None
                     for referral_id, found in by_referral.items()})  # fmt: skip

    async def save(self, referral: ProjectedReferral) -> None:
        """Kept, with what ``get`` did not read, until ``write_saved`` (which every other read runs first) writes
        the transaction's saved referrals in one go; idempotent (a change already stored stays as it is)."""
        held = self._held.setdefault(referral.referral_id, set())
        new = {c.version: {"referral_id": referral.referral_id, "version": c.version, "status": c.status.value,
                           "occurred_at": c.occurred_at, "occurred_on": c.on, "reason_code": c.reason_code,
                           "outcome_code": c.outcome_code} for c in referral.changes if c.version not in held}  # fmt: skip
        saved = self._saved()
        unwritten = saved[referral.referral_id][1] if referral.referral_id in saved else {}
        saved[referral.referral_id] = (referral, {**unwritten, **new})
        held.update(new)

    async def write_saved(self) -> None:
        """Writes the referrals saved in this transaction: their new changes, and their rows with the latest
        version and status (written over a referral already held, the ``excluded`` row's)."""
        saved: _Saved = self._session.info.pop(_SAVED, {})
        if not saved:
            return
        # Written, so as the database now holds them: what ``get`` gives for the rest of the transaction.
        self._session.info.setdefault(_READ_AHEAD, {}).update({key: referral for key, (referral, _) in saved.items()})
        changes = [change for _, unwritten in saved.values() for change in unwritten.values()]
        rows = [_row(referral) for referral, _ in saved.values()]
        if dialect_name(self._session) == "postgresql":
            await direct.execute(
                self._session, _WRITE_SAVED, {"changes": json_rows(changes), "referrals": json_rows(rows)}
            )
            return
        await direct.execute(self._session, _SAVE_CHANGES(self._session), changes)  # SQLite: no INSERT in a WITH
        await direct.execute(self._session, _SAVE_REFERRAL(self._session), rows)

    def _saved(self) -> _Saved:
        found: _Saved = self._session.info.setdefault(_SAVED, {})
        return found

    async def any(self) -> bool:
        await self.write_saved()
        return (await self._session.execute(select(referrals.c.referral_id).limit(1))).first() is not None

    async def children_at(self, service_ids: Collection[str]) -> set[str]:
        await self.write_saved()
        rows = await self._session.execute(
            select(referrals.c.child_ref).where(referrals.c.service_id.in_(service_ids)).distinct()
        )
        return set(rows.scalars())

    async def parties(self, referral_ids: Sequence[str]) -> dict[str, Parties]:
        await self.write_saved()
        rows = await self._session.execute(
            select(referrals.c.referral_id, referrals.c.referrer_org_id, referrals.c.receiving_org_id).where(
                referrals.c.referral_id.in_(referral_ids)
            )
        )
        return {r.referral_id: Parties(r.referrer_org_id, r.receiving_org_id) for r in rows}

    async def timeline(self, referral_id: str) -> Timeline | None:
        found = await self._timelines(referrals.c.referral_id == referral_id)
        return found[0] if found else None

    async def timelines(self, referral_ids: Sequence[str]) -> list[Timeline]:
        return await self._timelines(referrals.c.referral_id.in_(referral_ids))

    async def journeys(self, child_refs: Sequence[str]) -> dict[str, list[Timeline]]:
        """Every referral of these children, by child."""
        await self.write_saved()
        found: list[Timeline] = []
        for start in range(0, len(child_refs), _CHUNK):
            rows = await direct.execute(
                self._session, _JOURNEYS, {"child_refs": list(child_refs[start : start + _CHUNK])}
            )
            found += _grouped(rows)
        return _journeys(found)

    async def journeys_after(self, after: str | None, children: int) -> tuple[dict[str, list[Timeline]], str | None]:
        """The journeys of the next ``children`` children (in the database's order of child references) after
        ``after``, and the last of them: a rebuild walks every journey so, a range read at a time."""
        await self.write_saved()
        refs = select(referrals.c.child_ref).distinct().order_by(referrals.c.child_ref).limit(children)
        if after is not None:
            refs = refs.where(referrals.c.child_ref > after)
        chunk = list((await self._session.execute(refs)).scalars())
        if not chunk:
            return {}, None
        return _journeys(await self._timelines(referrals.c.child_ref.between(chunk[0], chunk[-1]))), chunk[-1]

    async def _timelines(self, condition: ColumnElement[bool]) -> list[Timeline]:
        await self.write_saved()
        return _grouped(await self._session.execute(_TIMELINES.where(condition)))


def _held_referral(referral_id: str, rows: Sequence[Any]) -> ProjectedReferral:
    """A referral from its rows of ``_HELD`` (its fields and one change each, in version order)."""
    changes = tuple(RecordedChange(row.version, Status(row.status), row.occurred_on, row.reason_code,
                                   row.outcome_code, occurred_at=row.occurred_at) for row in rows)  # fmt: skip
    first = rows[0]
    return ProjectedReferral(referral_id, first.child_ref, first.service_id, first.receiving_org_id,
                             first.referrer_org_id, first.urgency, first.primary_need, first.secondary_need,
                             changes)  # fmt: skip


def _row(referral: ProjectedReferral) -> dict[str, Any]:
    return {"referral_id": referral.referral_id, "child_ref": referral.child_ref, "service_id": referral.service_id,
            "receiving_org_id": referral.receiving_org_id, "referrer_org_id": referral.referrer_org_id,
            "urgency": referral.urgency, "primary_need": referral.primary_need,
            "secondary_need": referral.secondary_need, "latest_version": referral.latest.version,
            "latest_status": referral.latest.status.value}  # fmt: skip


def _grouped(rows: Iterable[Any]) -> list[Timeline]:
    """The timelines in rows of a referral's fields and one of its changes each."""
    grouped: dict[str, tuple[tuple[str, str, str], list[StatusChange]]] = {}
    for row in rows:
        entry = grouped.setdefault(row.referral_id, ((row.child_ref, row.service_id, row.urgency), []))
        entry[1].append(
            StatusChange(row.version, Status(row.status), row.occurred_on, row.reason_code, row.outcome_code)
        )
    return [
        Timeline.of(referral_id, child_ref, service_id, urgency, changes)
        for referral_id, ((child_ref, service_id, urgency), changes) in grouped.items()
    ]


def _journeys(timelines: Iterable[Timeline]) -> dict[str, list[Timeline]]:
    journeys: defaultdict[str, list[Timeline]] = defaultdict(list)
    for timeline in timelines:
        journeys[timeline.child_ref].append(timeline)
    return dict(journeys)
