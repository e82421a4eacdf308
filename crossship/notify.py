"""`notify run`: send each started store's eligible orders to its mall, safely (SPEC §3, §5).

Which stores, on the pool (``each_store``); per store the batch lifecycle (``lifecycle.Cycle``):
finish what an interrupted run left → select → resolve → check → encode → record → submit →
finish; then the run is recorded and mailed. A lost submission is reconciled, never resent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from crossship import malls
from crossship.errors import UsageError
from crossship.i18n import Message, _
from crossship.lifecycle import Cycle, select
from crossship.malls import (
    SessionFactory,
    closing,
    context_for,
    offline_session,
    open_session,
)
from crossship.pool import DEFAULT_JOBS
from crossship.progress import NO_PROGRESS, Progress
from crossship.runs import StoreRun, Transport, each_store, not_due
from crossship.shell import word as q
from crossship.store import BATCH_OPEN_STATES, Store
from crossship.timeutil import Clock


@dataclass
class NotifyOptions:
    store: str | None = None
    force: bool = False
    dry_run: bool = False
    mail_transport: Transport | None = None  # None: SMTP; the demo collects the mails instead
    jobs: int = DEFAULT_JOBS  # stores worked on at once
    # stores done when there are several; else the one store's requests sent (a bar on a terminal)
    progress: Progress = NO_PROGRESS


@dataclass
class DryFeed:
    store: str
    data: bytes
    rows: int


@dataclass
class NotifyResult:
    runs: list[StoreRun] = field(default_factory=list)
    dry_feeds: list[DryFeed] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.runs)


def stores_for_run(
    store: Store, name: str | None, *, also_with: tuple[str, ...] = ()
) -> list[dict]:
    """The stores a job works on: the named one, or every started store of a supported mall,
    plus the stopped ones that have batches in one of the states ``also_with`` (stopping a store
    stops sending, never finishing what it already sent)."""
    if name:
        row = store.get_store(name)
        if malls.find(row["mall"]) is None:
            raise UsageError(
                _("store {store} is a {mall} store: this crossship notifies {malls} stores").format(
                    store=repr(name),
                    mall=row["mall"],
                    malls=", ".join(m.label for m in malls.registry().values()),
                )
            )
        return [row]
    supported = malls.supported()
    rows = [r for r in store.list_stores(started=True) if r["mall"] in supported]
    chosen = {r["name"] for r in rows}
    pending = {b["store"] for b in store.batches(states=also_with)} - chosen if also_with else set()
    stopped = [r for r in store.list_stores() if r["name"] in pending and r["mall"] in supported]
    return sorted(rows + stopped, key=lambda r: r["name"])


def notify_run(
    store: Store,
    db_path: Path,
    clock: Clock,
    options: NotifyOptions,
    session_factory: SessionFactory = open_session,
) -> NotifyResult:
    """Each store's work on a pool of ``options.jobs`` threads; mails and run records in store
    name order, each as soon as its store (and every one before it) is done."""
    result = NotifyResult()

    def work(worker: Store, row: dict, run: StoreRun) -> list[DryFeed]:
        return _store_run(worker, row, db_path, clock, options, session_factory, run)

    rows = stores_for_run(store, options.store, also_with=BATCH_OPEN_STATES)
    # several stores: the bar counts stores; one store: its requests (lifecycle.Cycle)
    overall = options.progress if len(rows) > 1 else None
    if overall is not None:
        options = replace(options, progress=NO_PROGRESS)
    for run, dry_feeds in each_store(
        "notify",
        rows,
        work,
        store=store,
        db_path=db_path,
        clock=clock,
        jobs=options.jobs,
        mail_transport=options.mail_transport,
        dry_run=options.dry_run,
        progress=overall,
    ):
        result.runs.append(run)
        result.dry_feeds.extend(dry_feeds or [])
    return result


def _store_run(
    store: Store,
    row: dict,
    db_path: Path,
    clock: Clock,
    options: NotifyOptions,
    session_factory: SessionFactory,
    run: StoreRun,
) -> list[DryFeed]:
    """One store's part of a run, on a worker thread with its own ``store`` connection."""
    if not row["started"] and (options.store or options.dry_run):
        run.skipped = Message(
            "automatic processing is stopped: `crossship auto start {store}`",
            {"store": q(row["name"])},
        )
        if options.store:
            run.problems.append(
                Message("store {store} is stopped; nothing was sent", {"store": repr(row["name"])})
            )
        return []
    if not options.force and not options.dry_run:
        run.skipped = not_due(store, row, "notify", run.started_at, run.said)
        if run.skipped:
            return []
    if options.dry_run:
        return _dry_run(store, row, run)
    with closing(session_factory(context_for(row, db_path, clock))) as session:
        cycle = Cycle(store, row, malls.get(row["mall"]), session, clock, run, options.progress)
        cycle.notify()
    return []


def _dry_run(store: Store, row: dict, run: StoreRun) -> list[DryFeed]:
    """What a run would send now, without a call to the mall or a change to the database."""
    session = offline_session(row)
    checked = select(store, row["name"], session, lambda: run.started_at, run, apply=False)
    if not checked.ready:
        return []
    return [DryFeed(row["name"], r.body, len(r.rows)) for r in checked.requests]
