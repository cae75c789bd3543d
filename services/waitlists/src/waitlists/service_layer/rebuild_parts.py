"""A rebuild in several processes, each reading its share of the store replay's partitions (PostgreSQL).

Every event of a referral is on one partition (the key is the referral id), so each process folds whole
referrals. Little has to cross between them: the directory, merged by the live consumer's rule, and the
referrals of children who have referrals in more than one process (a referral's facts look at the child's
others: the hand-off gap). Each process then derives its referrals' facts and copies them into the tables
built beside the live ones on connections of its own; this process adds the directory, builds the indexes
and swaps the tables in (``adapters.projection_store``).

The processes are forked, not spawned: a spawned one imports everything again (about half a second each) and
a forked one starts with the code loaded and the garbage collector as this process left it (off, for the
fold). They use none of this process's connections. The conversation, over one pipe each:

    part    → here: ("read", events so far)…, then ("folded", Folded)
    here    → part: ("share", the whole directory's services, its children held elsewhere too)
    part    → here: ("shared", those children's referrals it holds)
    here    → part: ("write", their referrals the other parts hold)
    part    → here: ("written", referrals written); ("failed", the exception) at any step

A part that failed, or all of them when the rebuild is refused, are terminated: a part's transaction that had not
committed is rolled back, and the tables beside are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from send_shared.store_replay import read_replay
from waitlists.domain.directory import OrganisationEntry, ServiceEntry, newest
from waitlists.domain.projection import ProjectedReferral
from waitlists.service_layer.replay import ReplayFold, telling
from waitlists.service_layer.unit_of_work import ProjectionStore


@dataclass(frozen=True)
class Replay:
    bootstrap_servers: str
    reply_topic: str
    request_id: str | None
    idle_timeout: float


@dataclass(frozen=True)
class Folded:
    """What one part folded, as far as the others need to know."""

    events: int
    skipped: int
    referrals: int
    services: dict[str, ServiceEntry]
    organisations: dict[str, OrganisationEntry]
    children: frozenset[str]


@dataclass(frozen=True)
class PartsReport:
    events: int
    skipped: int
    referrals: int


PART_GRACE = 10.0  # seconds a part has to end after SIGTERM (or, once finished, after its last answer)


class PartFailed(Exception):
    """A part's process ended without saying why (killed, or out of memory)."""


async def rebuild_in_parts(
    store: ProjectionStore,
    replay: Replay,
    *,
    processes: int,
    enough: Callable[[int], None],
    tell: Callable[[str, int], None],
) -> PartsReport:
    """Folds the replay in ``processes`` processes and puts the result in place of the projection; ``enough``
    hears how many referrals were folded and raises to stop before anything is replaced."""
    context = multiprocessing.get_context("fork")
    pipes: list[Connection] = []
    workers: list[BaseProcess] = []
    finished = False
    await store.begin_parts()
    try:
        for index in range(processes):
            here, there = context.Pipe()
            worker = context.Process(target=_part, args=(there, tuple(pipes), store, replay, (index, processes)),
                                     name=f"rebuild-part-{index}", daemon=True)  # fmt: skip
            worker.start()
            there.close()
            pipes.append(here)
            workers.append(worker)
        read = [0] * processes

        def progress(index: int, events: int) -> None:
            read[index] = events
            tell("read", sum(read))

        folded: list[Folded] = list(await _all(_expect(pipe, "folded", i, progress) for i, pipe in enumerate(pipes)))
        events, skipped = sum(f.events for f in folded), sum(f.skipped for f in folded)
        tell("read", events)
        referral_count = sum(f.referrals for f in folded)
        enough(referral_count)
        services, organisations = _directory(folded)
        shared = _held_by_several([f.children for f in folded])
        tell("writing", referral_count)
        for pipe, part in zip(pipes, folded, strict=True):
            pipe.send(("share", services, part.children & shared))
        held_of: list[dict[str, list[ProjectedReferral]]] = list(
            await _all(_expect(pipe, "shared", i) for i, pipe in enumerate(pipes))
        )
        for index, pipe in enumerate(pipes):
            pipe.send(("write", _elsewhere(index, held_of)))
        written = sum(await _all(_expect(pipe, "written", i) for i, pipe in enumerate(pipes)))
        if written != referral_count:
            raise PartFailed(f"the parts wrote {written} referrals of the {referral_count} they folded")
        await store.finish_parts(services, organisations, connections=processes)
        finished = True
        return PartsReport(events, skipped, referral_count)
    finally:
        for pipe in pipes:
            pipe.close()
        _end(workers, finished)  # in this thread: a thread left running would be in every later fork
        if not finished:
            with contextlib.suppress(Exception):  # the error that stopped the rebuild is the one to report
                await store.abandon_parts()


def _end(workers: Sequence[BaseProcess], finished: bool) -> None:
    """Waits for every part to end (terminated first unless the rebuild finished); one that will not end on
    SIGTERM within ``PART_GRACE`` seconds is killed."""
    for process in workers:
        if not finished:
            process.terminate()
        process.join(PART_GRACE)
        if process.is_alive():
            process.kill()
            process.join()


async def _all(waits: Any) -> list[Any]:
    """Every part's answer; the first failure cancels the waits for the others."""
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(wait) for wait in waits]
    except ExceptionGroup as failed:  # the first part's own error (a refused replay, say), as one process raises it
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _expect(pipe: Connection, step: str, index: int, progress: Callable[[int, int], None] | None = None) -> Any:
    """The part's next answer, which must be ``step``; its progress on the way goes to ``progress``."""
    while True:
        try:
            message = await _receive(pipe)
        except EOFError:
            raise PartFailed(f"rebuild part {index} ended before it had {step}") from None
        kind, *body = message
        if kind == "read":
            if progress is not None:
                progress(index, body[0])
            continue
        if kind == "failed":
            raise body[0]
        if kind != step:
            raise PartFailed(f"rebuild part {index} answered {kind!r} where {step!r} was due")
        return body[0]


async def _receive(pipe: Connection) -> Any:
    """The next message, without holding up the event loop while none has come (a pipe has no asyncio API)."""
    loop = asyncio.get_running_loop()
    while not pipe.poll():
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(pipe.fileno(), _settle, readable)
        try:
            await readable
        finally:
            loop.remove_reader(pipe.fileno())
    return pipe.recv()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _directory(folded: Sequence[Folded]) -> tuple[dict[str, ServiceEntry], dict[str, OrganisationEntry]]:
    services: dict[str, ServiceEntry] = {}
    organisations: dict[str, OrganisationEntry] = {}
    for part in folded:
        for sid, service in part.services.items():
            services[sid] = newest(services.get(sid), service)
        for oid, organisation in part.organisations.items():
            organisations[oid] = newest(organisations.get(oid), organisation)
    return services, organisations


def _held_by_several(children: Sequence[frozenset[str]]) -> set[str]:
    seen: set[str] = set()
    several: set[str] = set()
    for held in children:
        several |= held & seen
        seen |= held
    return several


def _elsewhere(index: int, held_of: Sequence[dict[str, list[ProjectedReferral]]]) -> dict[str, list[ProjectedReferral]]:
    """The referrals the other parts hold of the children part ``index`` shares with them."""
    found: dict[str, list[ProjectedReferral]] = {}
    for other, held in enumerate(held_of):
        if other == index:
            continue
        for child in held_of[index]:
            if child in held:
                found.setdefault(child, []).extend(held[child])
    return found


# --- in the part's process --------------------------------------------------------------------------------


def _part(
    pipe: Connection, others: Sequence[Connection], store: ProjectionStore, replay: Replay, share: tuple[int, int]
) -> None:
    for other in others:  # the parent's ends of the parts forked before: held open here, a dead parent goes unseen
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # not the parent loop's handler, which would wake the parent
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    try:
        asyncio.run(_fold_and_write(pipe, store, replay, share))
    except BaseException as exc:  # noqa: BLE001 - every failure is the parent's to report
        with contextlib.suppress(OSError):
            try:
                pipe.send(("failed", exc))
            except Exception:  # noqa: BLE001 - an exception that cannot be pickled
                pipe.send(("failed", PartFailed(f"rebuild part {share[0]}: {exc!r}")))
    finally:
        pipe.close()


async def _fold_and_write(pipe: Connection, store: ProjectionStore, replay: Replay, share: tuple[int, int]) -> None:
    fold = ReplayFold()
    add = telling(fold, lambda events: pipe.send(("read", events)))
    await read_replay(replay.bootstrap_servers, replay.reply_topic, add, request_id=replay.request_id,
                      idle_timeout=replay.idle_timeout, share=share)  # fmt: skip
    children = frozenset(r.child_ref for r in fold.referrals.values())
    pipe.send(("folded", Folded(fold.events, fold.skipped, len(fold.referrals), fold.services, fold.organisations,
                                children)))  # fmt: skip
    _, services, shared = pipe.recv()
    pipe.send(("shared", fold.of_children(shared)))
    _, elsewhere = pipe.recv()
    held = fold.result(services, elsewhere=elsewhere)
    own = store.in_this_process()
    try:
        await own.write_part(held)
    finally:
        await own.close()
    pipe.send(("written", len(held.referrals)))
