"""`notify run`: send each started store's eligible orders to its mall, safely (SPEC §3, §5).

Per store: finish what an interrupted run left → select → check → render → record the batch
(orders ``in_progress``, one transaction) → send, committing the batch's state before each call →
record the run → mail. A batch whose submission answer was lost is reconciled, never resent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from crossship import mail
from crossship.errors import AmazonError, CrossshipError, OrdersChanged, UsageError
from crossship.malls import SUPPORTED, MallSession, SessionFactory, offline_session, open_session
from crossship.pool import DEFAULT_JOBS, describe, map_stores
from crossship.prepare import prepare
from crossship.runs import (
    StoreRun,
    Transport,
    end_batch,
    not_due,
    record,
    send_mail,
)
from crossship.statuses import Status
from crossship.store import BATCH_OPEN_STATES, StatusChange, Store
from crossship.timeutil import Clock, from_db, to_db

# a lost createFeed answer with no matching feed at Amazon after this long: it never happened
RELEASE_AFTER = timedelta(minutes=10)


@dataclass
class NotifyOptions:
    store: str | None = None
    force: bool = False
    dry_run: bool = False
    mail_transport: Transport | None = None  # None: SMTP; the demo collects the mails instead
    jobs: int = DEFAULT_JOBS  # stores worked on at once


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
        if row["mall"] not in SUPPORTED:
            raise UsageError(
                f"store {name!r} is a {row['mall']} store: only Amazon stores are notified so far"
            )
        return [row]
    rows = [r for r in store.list_stores(started=True) if r["mall"] in SUPPORTED]
    chosen = {r["name"] for r in rows}
    pending = {b["store"] for b in store.batches(states=also_with)} - chosen if also_with else set()
    stopped = [r for r in store.list_stores() if r["name"] in pending and r["mall"] in SUPPORTED]
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

    def work(worker: Store, row: dict) -> tuple[StoreRun, list[DryFeed]]:
        return _store_run(worker, row, db_path, clock, options, session_factory)

    def failed(row: dict, exc: Exception) -> tuple[StoreRun, list[DryFeed]]:
        run = StoreRun(store=row["name"], job="notify", started_at=clock(), dry_run=options.dry_run)
        run.problems.append(describe(exc))
        return run, []

    rows = stores_for_run(store, options.store, also_with=BATCH_OPEN_STATES)
    for run, dry_feeds in map_stores(
        rows, work, failed, open_store=lambda: Store(db_path), jobs=options.jobs
    ):
        result.runs.append(run)
        result.dry_feeds.extend(dry_feeds)
        if run.skipped or run.dry_run:
            continue
        send_mail(
            store, db_path, run, mail.NOTIFY_SUBJECT, "mail_notify.txt.j2", options.mail_transport
        )
        record(store, run, clock())
    return result


def _store_run(
    store: Store,
    row: dict,
    db_path: Path,
    clock: Clock,
    options: NotifyOptions,
    session_factory: SessionFactory,
) -> tuple[StoreRun, list[DryFeed]]:
    """One store's part of a run, on a worker thread with its own ``store`` connection."""
    run = StoreRun(store=row["name"], job="notify", started_at=clock(), dry_run=options.dry_run)
    if not row["started"] and (options.store or options.dry_run):
        run.skipped = f"automatic processing is stopped: `crossship auto start {row['name']}`"
        if options.store:
            run.problems.append(f"store {row['name']!r} is stopped; nothing was sent")
        return run, []
    if not options.force and not options.dry_run:
        run.skipped = not_due(store, row, "notify", run.started_at, run.said)
        if run.skipped:
            return run, []
    if options.dry_run:
        try:
            return run, _dry_run(store, row, run)
        except CrossshipError as exc:
            run.problems.append(exc.message)
            return run, []
    try:
        session = session_factory(row, db_path, clock)
        _notify_store(store, row, session, clock, run)
    except CrossshipError as exc:  # one store's failure (a broken template) stops no other
        run.problems.append(exc.message)
    return run, []


# ------------------------------------------------------------------------------- one store


def _notify_store(
    store: Store, row: dict, session: MallSession, clock: Clock, run: StoreRun
) -> None:
    waiting = _recover(store, row["name"], session, clock, run)
    if not row["started"]:
        return  # only what an interrupted run left open is resolved for a stopped store
    if waiting:
        # nothing new is selected, checked or mailed about until the lost submission is settled
        run.notes.append(
            "new orders wait for the next run: an earlier batch's submission is being "
            "reconciled with Amazon first"
        )
        return
    ready, lines = _select(store, row["name"], session, clock, run, apply=True)
    if not ready:
        return
    expected = dict(ready)
    warned: dict[str, str] = {}
    for warning in run.warnings:
        text = warned.get(warning["order_no"])
        warned[warning["order_no"]] = (
            f"{text}; {warning['message']}" if text else warning["message"]
        )
    for data, feed_lines in session.render(lines):
        rows = [
            (number, line.order_no, line.order_id, line.order_item_id)
            for number, line in enumerate(feed_lines, start=1)
        ]
        try:
            batch = store.create_batch(
                store=row["name"],
                encoding=session.encoding,
                content_type=session.content_type,
                feed=data,
                rows=rows,
                now=to_db(clock()),
                expected=expected,
                warnings=warned,
            )
        except OrdersChanged as exc:
            # an import or a change by hand raced this run: send the fresh data next run
            run.notes.append(f"{exc.message}; this feed is sent by the next run instead")
            return
        run.batch_ids.append(batch["id"])
        if not _send(store, session, batch, clock, run):
            # the rest stay 未連携: a second lost answer would make the reconciliation ambiguous
            run.notes.append("the remaining orders wait until that batch is reconciled")
            return


def _select(
    store: Store, name: str, session: MallSession, clock: Clock, run: StoreRun, *, apply: bool
) -> tuple[list[tuple[str, str]], list]:
    """(order_no, updated_at) of the eligible orders that pass the mall's checks, and their feed
    lines; the orders are streamed, never all held.

    Orders that fail a check become ``error`` (when ``apply``), with the message saying what to fix.
    """
    prepared = prepare(
        store,
        session,
        store.eligible_orders(name),
        keep=lambda order: (order["order_no"], order["updated_at"]),
    )
    errors = []
    for order, message in prepared.errors:
        errors.append(StatusChange(order["order_no"], Status.ERROR, message))
        run.add_outcome(order, Status.ERROR, message)
    run.warnings.extend({"order_no": o, "message": w} for o, w in prepared.warnings)
    if errors and apply:
        store.change_statuses(errors, now=to_db(clock()))
    return prepared.ready, prepared.lines


def _send(store: Store, session: MallSession, batch: dict, clock: Clock, run: StoreRun) -> bool:
    """Send one batch; False when its createFeed outcome is unknown (it awaits reconciliation)."""
    batch_id = batch["id"]

    def commit(changes: dict) -> dict:
        return store.update_batch(batch_id, changes, to_db(clock()))

    try:
        feed_id = session.submit(batch, commit)
    except AmazonError as exc:
        _submit_failed(store, store.get_batch(batch_id), exc, clock, run)
        return store.get_batch(batch_id)["state"] != "submitting"
    store.mark_submitted(batch_id, feed_id, to_db(clock()))
    run.sent += batch["order_count"]
    run.feed_ids.append(feed_id)
    return True


def _submit_failed(
    store: Store, batch: dict, exc: AmazonError, clock: Clock, run: StoreRun
) -> None:
    if batch["state"] == "submitting" and exc.outcome == "unknown":
        store.update_batch(batch["id"], {"last_error": exc.message}, to_db(clock()))
        run.problems.append(
            f"batch {batch['id']}: the answer to createFeed was lost ({exc.message}); it is not "
            "sent again: the next run looks for it at Amazon (getFeeds)"
        )
    elif batch["state"] == "submitting" and exc.outcome == "rejected":
        message = f"Amazon rejected the feed: {exc.message}"
        end_batch(store, batch, Status.NOTIFY_FAILED, message, "notify_failed", clock, run)
        run.problems.append(f"batch {batch['id']}: {message}")
    else:
        # nothing reached Amazon as a feed: the orders go back to 未連携 for the next run
        message = f"not sent, retried by the next run: {exc.message}"
        end_batch(store, batch, Status.PENDING, message, "released", clock, run, count=False)
        run.problems.append(f"batch {batch['id']} not sent: {exc.message}")


# ------------------------------------------------------------------------------- recovery


def _recover(store: Store, name: str, session: MallSession, clock: Clock, run: StoreRun) -> bool:
    """Resolve batches an interrupted run left open; True while one still awaits reconciliation."""
    waiting = False
    for batch in store.batches(store=name, states=("prepared", "document_created", "uploaded")):
        # createFeed was never called for these: Amazon holds no feed of them
        message = "an interrupted run had not submitted this batch; back to 未連携"
        end_batch(store, batch, Status.PENDING, message, "released", clock, run, count=False)
        run.notes.append(f"batch {batch['id']} released: {message}")
    for batch in store.batches(store=name, states=("submitting",)):
        waiting |= _reconcile(store, session, batch, clock, run)
    return waiting


def _reconcile(
    store: Store, session: MallSession, batch: dict, clock: Clock, run: StoreRun
) -> bool:
    try:
        candidates = session.find_lost(batch, store.claimed_feed_ids())
    except AmazonError as exc:
        run.problems.append(
            f"batch {batch['id']}: cannot look for its feed at Amazon yet ({exc.message}); "
            "tried again next run"
        )
        return True
    if len(candidates) == 1:
        store.mark_submitted(batch["id"], candidates[0], to_db(clock()))
        run.feed_ids.append(candidates[0])
        run.notes.append(
            f"batch {batch['id']}: its lost submission was found at Amazon as feed {candidates[0]}"
        )
        return False
    if len(candidates) > 1:
        message = (
            f"Amazon shows {len(candidates)} feeds that could be this batch "
            f"({', '.join(candidates)}): check the orders in Seller Central"
        )
        end_batch(store, batch, Status.RESULT_FAILED, message, "result_failed", clock, run)
        run.problems.append(f"batch {batch['id']}: {message}")
        return False
    age = session.now() - from_db(batch["submit_started_at"])  # both on the mall's clock
    if age >= RELEASE_AFTER:
        message = "Amazon never created a feed for this batch; back to 未連携 to be sent again"
        end_batch(store, batch, Status.PENDING, message, "released", clock, run, count=False)
        run.notes.append(f"batch {batch['id']} released: {message}")
        return False
    run.notes.append(
        f"batch {batch['id']}: no feed at Amazon yet for its lost submission; "
        "checked again next run"
    )
    return True


# ------------------------------------------------------------------------------- dry run


def _dry_run(store: Store, row: dict, run: StoreRun) -> list[DryFeed]:
    """The feeds a run would send now, without a call to the mall or a change to the database."""
    session = offline_session(row)
    ready, lines = _select(store, row["name"], session, lambda: run.started_at, run, apply=False)
    return (
        [DryFeed(row["name"], data, len(part)) for data, part in session.render(lines)]
        if ready
        else []
    )
