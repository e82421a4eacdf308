"""`results fetch`: learn what the mall did with each submitted batch (SPEC §5, §8).

Per batch: poll → (done) keep the raw report, parse, apply per-order outcomes and move the
successful orders to their target's destination phase; (failed) 通知失敗; (waiting) wait until the
result deadline; (the poll itself failing) 通知結果取得失敗 after three successive runs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crossship import i18n, malls
from crossship.errors import CrossshipError, MallError, ReportParseError
from crossship.i18n import Message, Part
from crossship.malls import MallSession, Result, Row, SessionFactory, context_for, open_session
from crossship.notify import NotifyResult, stores_for_run
from crossship.pool import DEFAULT_JOBS, describe, map_stores
from crossship.progress import NO_PROGRESS, Progress
from crossship.runs import (
    StoreRun,
    Transport,
    end_batch,
    not_due,
    record,
    send_mail,
)
from crossship.statuses import Status
from crossship.store import StatusChange, Store
from crossship.timeutil import Clock, from_db, to_db

MAX_FETCH_FAILURES = 3


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

    def work(worker: Store, row: dict) -> StoreRun:
        return _store_run(worker, row, db_path, clock, force, session_factory)

    def failed(row: dict, exc: Exception) -> StoreRun:
        run = StoreRun(store=row["name"], job="results", started_at=clock())
        run.problems.append(describe(exc))
        return run

    rows = stores_for_run(store, store_name, also_with=("submitted",))
    mall_of = {r["name"]: r["mall"] for r in rows}
    if len(rows) > 1:
        progress.add(len(rows))
    for run in map_stores(rows, work, failed, open_store=lambda: Store(db_path), jobs=jobs):
        if len(rows) > 1:
            progress.advance()
        result.runs.append(run)
        if run.skipped:
            continue
        subject = malls.get(mall_of[run.store]).subjects["results"]
        send_mail(store, db_path, run, subject, "mail_results.txt.j2", mail_transport)
        record(store, run, clock())
    return result


def _store_run(
    store: Store,
    row: dict,
    db_path: Path,
    clock: Clock,
    force: bool,
    session_factory: SessionFactory,
) -> StoreRun:
    """One store's part of a fetch, on a worker thread with its own ``store`` connection."""
    run = StoreRun(store=row["name"], job="results", started_at=clock())
    if not force:
        run.skipped = not_due(store, row, "results", run.started_at, run.said)
        if run.skipped:
            return run
    batches = store.batches(store=row["name"], states=("submitted",))
    if batches:
        try:
            session = session_factory(context_for(row, db_path, clock))
        except CrossshipError as exc:
            run.problems.append(exc.message)
        else:
            targets = {t["phase"]: t["move_to"] for t in store.list_targets(row["name"])}
            deadline = timedelta(hours=min(row["result_deadline_hours"], 30 * 24))
            for batch in batches:
                _fetch_batch(store, session, batch, targets, deadline, clock, run)
    return run


def _fetch_batch(
    store: Store,
    session: MallSession,
    batch: dict,
    targets: dict[str, str | None],
    deadline: timedelta,
    clock: Clock,
    run: StoreRun,
) -> None:
    label = f"batch {batch['id']} (feed {batch['feed_id']})"
    try:
        poll = session.poll(batch)
    except MallError as exc:
        failures = batch["fetch_failures"] + 1
        if failures >= MAX_FETCH_FAILURES:
            message = (
                f"the result could not be obtained from Amazon in {failures} successive runs "
                f"({exc.message}): check the orders in Seller Central"
            )
            end_batch(
                store,
                batch,
                Status.RESULT_FAILED,
                message,
                "result_failed",
                clock,
                run,
                extra={"fetch_failures": failures},
            )
            run.problems.append(f"{label}: {message}")
        else:
            store.update_batch(
                batch["id"], {"fetch_failures": failures, "last_error": exc.message}, to_db(clock())
            )
            run.problems.append(
                f"{label}: result not obtained ({failures}/{MAX_FETCH_FAILURES}): {exc.message}; "
                "tried again next run"
            )
        return
    run.feed_ids.append(batch["feed_id"])
    now = clock()
    kept = {
        "fetch_failures": 0,
        "processing_status": poll.processing_status,
        "result_document_id": poll.result_document_id,
    }
    if poll.report is not None:
        kept |= {"report": poll.report, "report_charset": poll.report_charset}
    store.update_batch(batch["id"], kept, to_db(now))  # the raw report is kept before it is read
    if poll.state == "waiting":
        age = now - from_db(batch["submitted_at"])
        if age > deadline:
            hours = int(deadline.total_seconds() // 3600)
            message = (
                f"Amazon had not finished feed {batch['feed_id']} after {hours} h "
                f"({poll.processing_status}): check the orders in Seller Central"
            )
            end_batch(store, batch, Status.RESULT_FAILED, message, "result_failed", clock, run)
        else:
            run.feed_ids.remove(batch["feed_id"])  # nothing learned yet
        return
    if poll.state == "failed":
        words = session.failure_text(poll)
        message = f"Amazon ended feed {batch['feed_id']} {poll.processing_status}" + (
            f": {words}" if words else ""
        )
        end_batch(store, batch, Status.NOTIFY_FAILED, message, "notify_failed", clock, run)
        return
    try:
        rows = [
            Row(r["record_no"], r["order_no"], r["order_id"], r["item_id"] or "")
            for r in store.batch_rows(batch["id"])
        ]
        outcome = session.read_result(batch, poll, rows)
    except ReportParseError as exc:
        message = (
            f"Amazon's processing report for feed {batch['feed_id']} could not be read "
            f"({exc.message}); it is kept (`crossship batches show {batch['id']}`): "
            "check the orders in Seller Central"
        )
        end_batch(store, batch, Status.RESULT_FAILED, message, "result_failed", clock, run)
        run.problems.append(f"{label}: {message}")
        return
    _apply(store, batch, outcome, targets, clock, run, malls.get(session_mall(store, batch)))


def session_mall(store: Store, batch: dict) -> str:
    return store.get_store(batch["store"])["mall"]


def _apply(
    store: Store,
    batch: dict,
    outcome: Result,
    targets: dict[str, str | None],
    clock: Clock,
    run: StoreRun,
    mall: malls.Mall,
) -> None:
    """Every order still in the batch gets its outcome; successes move to their destination."""
    changes, moves = [], {}
    for order in store.batch_orders(batch["id"]):
        order_no = order["order_no"]
        found = outcome.outcomes.get(order_no)
        if found is None:  # never assumed a success: the mall must account for every order
            status, warnings = Status.RESULT_FAILED, []
            message: Part = Message(
                "the result of {mall}'s batch {batch} does not account for this order: check it "
                "in {where}",
                {
                    "mall": mall.label,
                    "batch": batch["mall_id"] or batch["feed_id"],
                    "where": mall.where_to_check,
                },
            )
        else:
            status, message, warnings = found.status, found.message, list(found.warnings)
        changes.append(StatusChange(order_no, status, [message, *warnings], warning=bool(warnings)))
        run.add_outcome(order, status, message, warnings)
        destination = targets.get(order["phase"])
        if status is Status.SUCCESS and destination:
            moves[order_no] = destination
    notes = list(outcome.notes)
    run.notes.extend(
        Message("feed {feed_id}: {note}", {"feed_id": batch["feed_id"], "note": n}) for n in notes
    )
    store.finish_batch(
        batch,
        changes,
        state="done",
        now=to_db(clock()),
        batch_changes={
            "processed": outcome.processed,
            "successful": outcome.successful,
            "note": i18n.render(notes, "en") or None,  # the batch row keeps English
        },
        move_to=moves,
    )
    run.moved += len(moves)
