"""Rebuild: the projection made again from every event the referrals service ever published.

The source is the producer's event store, never a topic that may have forgotten: the rebuild asks
referrals for a store replay (``send_shared.store_replay``) and reads the reply to its end markers,
which say how many events each partition must hold; a reply short of one event is refused. The
events are folded in memory first (``replay.ReplayFold``: the live consumer's own rules, without a query
per event). A rebuild that would hold fewer referrals than the projection it replaces refuses too,
unless told it may (the projection may hold referrals the store does not, only if something is wrong).

Run it with the service's consumer stopped (``RUN_WORKERS=false``, or the workers scaled to 0): the
command refuses while the consumer group has members. The API may keep serving: the projection is put
in place in one short step (``adapters.projection_store``).
The consumer group's inbox and positions are left as they are: every write of this projection is
idempotent, so an event the consumer meets again after a rebuild changes nothing.
Alerts already raised (``alerts_sent``) and the outbox are kept: a rebuild never raises an alert twice.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from send_shared.store_replay import read_replay
from waitlists.service_layer.rebuild_parts import Replay, rebuild_in_parts
from waitlists.service_layer.replay import ReplayFold, telling
from waitlists.service_layer.unit_of_work import ProjectionStore

log = logging.getLogger(__name__)


class RebuildRefused(Exception):
    """The rebuild would lose what the projection holds; nothing was changed."""


@dataclass(frozen=True)
class RebuildReport:
    events: int
    skipped: int
    referrals: int
    seconds: float


Progress = Callable[[str, int], None]  # (step, count): ("read", events so far) then ("writing", referrals)


async def rebuild(
    store: ProjectionStore,
    *,
    bootstrap_servers: str,
    reply_topic: str,
    request_id: str | None = None,
    allow_fewer: bool = False,
    idle_timeout: float = 60.0,
    progress: Progress | None = None,
    processes: int = 1,
) -> RebuildReport:
    """Folds the store replay on ``reply_topic`` and puts the result in place of the projection; ``progress``
    hears how far it got (every ``PROGRESS_EVERY`` events read, then each later step). With ``processes`` above
    one and a store that can be written in parts, that many processes share the replay's partitions
    (``rebuild_parts``)."""
    started = time.perf_counter()
    tell = progress or (lambda step, count: None)
    held = await store.referrals_held()

    def enough(count: int) -> None:
        if count < held and not allow_fewer:
            raise RebuildRefused(
                f"the store replay holds {count} referrals and the projection {held}: "
                "rebuilding would lose referrals (allow it only if the projection is known to be wrong)"
            )

    with _no_cycle_collection():
        if processes > 1 and store.writes_in_parts:
            replay = Replay(bootstrap_servers, reply_topic, request_id, idle_timeout)
            parts = await rebuild_in_parts(store, replay, processes=processes, enough=enough, tell=tell)
            events, skipped, count = parts.events, parts.skipped, parts.referrals
        else:
            fold = ReplayFold()
            add = fold.add if progress is None else telling(fold, lambda events: tell("read", events))
            await read_replay(bootstrap_servers, reply_topic, add, request_id=request_id, idle_timeout=idle_timeout)
            tell("read", fold.events)
            events, skipped, folded = fold.events, fold.skipped, fold.result()
            del fold
            count = len(folded.referrals)
            enough(count)
            tell("writing", count)
            await store.replace(folded)
            del folded  # gigabytes at national size: not held through VACUUM
    report = RebuildReport(events, skipped, count, time.perf_counter() - started)
    log.info("projection rebuilt", extra={"events": events, "skipped": skipped, "referrals": count,
                                          "processes": processes, "seconds": round(report.seconds, 2)})  # fmt: skip
    return report


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The fold holds millions of tuples, and every collection of the oldest generation walks them
    all (it took a fifth of the rebuild). The fold makes no reference cycles; the little cyclic
    garbage of the client libraries meanwhile waits for the first collection after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
