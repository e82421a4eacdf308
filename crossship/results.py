"""`results fetch`: learn what the mall did with each submitted batch (SPEC §5, §8).

Which stores, on the pool (``each_store``); per store the batch lifecycle (``lifecycle.Cycle``):
per submitted batch poll → (done) keep the raw result, read it, apply each order's outcome and
move the successful orders to their destination phase; (failed) 通知失敗; (waiting) wait until
the result deadline; (the poll itself failing) 通知結果取得失敗 after three successive runs. Then
the follow-ups that are due (Yahoo's 完了).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crossship import malls
from crossship.lifecycle import MAX_FETCH_FAILURES, Cycle
from crossship.malls import SessionFactory, closing, context_for, open_session
from crossship.notify import NotifyResult, stores_for_run
from crossship.pool import DEFAULT_JOBS
from crossship.progress import NO_PROGRESS, Progress
from crossship.runs import StoreRun, Transport, each_store, not_due
from crossship.store import Store
from crossship.timeutil import Clock, to_db

__all__ = ["MAX_FETCH_FAILURES", "results_fetch"]


def results_fetch(
    store: Store,
    db_path: Path,
    clock: Clock,
    *,
    store_name: str | None = None,
    force: bool = False,
    session_factory: SessionFactory = open_session,
    mail_transport: Transport | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress = NO_PROGRESS,
) -> NotifyResult:
    """Each store's batches on a pool of ``jobs`` threads; mails and run records in store name
    order, each as soon as its store (and every one before it) is done. ``progress`` counts the
    stores done, when there are several."""
    result = NotifyResult()

    def work(worker: Store, row: dict, run: StoreRun) -> None:
        _store_run(worker, row, db_path, clock, force, session_factory, run)

    rows = stores_for_run(store, store_name, also_with=("submitted",))
    for run, _nothing in each_store(
        "results",
        rows,
        work,
        store=store,
        db_path=db_path,
        clock=clock,
        jobs=jobs,
        mail_transport=mail_transport,
        progress=progress if len(rows) > 1 else None,
    ):
        result.runs.append(run)
    return result


def _store_run(
    store: Store,
    row: dict,
    db_path: Path,
    clock: Clock,
    force: bool,
    session_factory: SessionFactory,
    run: StoreRun,
) -> None:
    """One store's part of a fetch, on a worker thread with its own ``store`` connection."""
    if not force:
        run.skipped = not_due(store, row, "results", run.started_at, run.said)
        if run.skipped:
            return
    waiting = store.batches(store=row["name"], states=("submitted",))
    if not waiting and not store.completions_due(row["name"], to_db(clock())):
        return  # nothing to ask the mall: no session, no token
    deadline = timedelta(hours=min(row["result_deadline_hours"], 30 * 24))
    with closing(session_factory(context_for(row, db_path, clock))) as session:
        Cycle(store, row, malls.get(row["mall"]), session, clock, run).fetch(deadline)
