"""`notify run`: send each started store's eligible orders to its mall, safely (SPEC §3, §5).

Per store: finish what an interrupted run left → select → check → render → record the batch
(orders ``in_progress``, one transaction) → send, committing the batch's state before each call →
record the run → mail. A batch whose submission answer was lost is reconciled, never resent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from crossship import malls
from crossship.errors import CrossshipError, MallError, OrdersChanged, UsageError
from crossship.malls import (
    Accepted,
    MallSession,
    SessionFactory,
    context_for,
    offline_session,
    open_session,
)
from crossship.pool import DEFAULT_JOBS, describe, map_stores
from crossship.prepare import prepare
from crossship.progress import NO_PROGRESS, Progress
from crossship.runs import (
    StoreRun,
    Transport,
    end_batch,
    not_due,
    record,
    send_mail,
)
from crossship.shell import word as q
from crossship.statuses import Status
from crossship.store import BATCH_OPEN_STATES, StatusChange, Store
from crossship.timeutil import Clock, to_db

# a batch released before createFeed reached the mall keeps no copy of its request: an outage
# must not store one every 15 minutes (a batch that reached the mall keeps it as evidence)
DROP = {"feed": b""}


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
                f"store {name!r} is a {row['mall']} store: only Amazon stores are notified so far"
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

    def work(worker: Store, row: dict) -> tuple[StoreRun, list[DryFeed]]:
        return _store_run(worker, row, db_path, clock, options, session_factory)

    def failed(row: dict, exc: Exception) -> tuple[StoreRun, list[DryFeed]]:
        run = StoreRun(store=row["name"], job="notify", started_at=clock(), dry_run=options.dry_run)
        run.problems.append(describe(exc))
        return run, []

    rows = stores_for_run(store, options.store, also_with=BATCH_OPEN_STATES)
    mall_of = {r["name"]: r["mall"] for r in rows}
    overall = options.progress
    if len(rows) > 1:  # the bar counts stores; a store's own requests are not drawn
        overall.add(len(rows))
        options = replace(options, progress=NO_PROGRESS)
    for run, dry_feeds in map_stores(
        rows, work, failed, open_store=lambda: Store(db_path), jobs=options.jobs
    ):
        if len(rows) > 1:
            overall.advance()
        result.runs.append(run)
        result.dry_feeds.extend(dry_feeds)
        if run.skipped or run.dry_run:
            continue
        send_mail(
            store,
            db_path,
            run,
            malls.get(mall_of[run.store]).subjects["notify"],
            "mail_notify.txt.j2",
            options.mail_transport,
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
        run.skipped = f"automatic processing is stopped: `crossship auto start {q(row['name'])}`"
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
        session = session_factory(context_for(row, db_path, clock))
        _notify_store(store, row, session, clock, run, options.progress)
    except CrossshipError as exc:  # one store's failure (a broken template) stops no other
        run.problems.append(exc.message)
    return run, []


# ------------------------------------------------------------------------------- one store


def _notify_store(
    store: Store,
    row: dict,
    session: MallSession,
    clock: Clock,
    run: StoreRun,
    progress: Progress = NO_PROGRESS,
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
    changed: set[str] = set()
    warnings_before = len(run.warnings)
    for _attempt in range(RESELECT_ATTEMPTS):
        del run.warnings[warnings_before:]  # a new selection says its warnings again
        ready, requests = _select(
            store, row["name"], session, clock, run, apply=True, leave_out=changed
        )
        if not ready:
            return
        outcome = _record_and_send(store, row, session, clock, run, ready, requests, progress)
        if isinstance(outcome, set):
            # an import or a change by hand touched these orders after they were selected:
            # they wait for the next run with their fresh data; the others go now
            changed |= outcome
            continue
        return
    run.notes.append(
        f"{len(changed)} orders kept changing while their feed was prepared; the rest wait "
        "for the next run"
    )


# how often a run selects again after orders changed under it (each time without them)
RESELECT_ATTEMPTS = 3


def _record_and_send(
    store: Store,
    row: dict,
    session: MallSession,
    clock: Clock,
    run: StoreRun,
    ready: list[tuple[str, str]],
    requests: list[malls.Request],
    progress: Progress = NO_PROGRESS,
) -> set[str] | None:
    """Record and send each request; the order numbers that changed since their selection
    (nothing of that request recorded), or None when done."""
    expected = dict(ready)
    warned: dict[str, list] = {}  # an order's warnings, the parts of one kept message
    for warning in run.warnings:
        warned.setdefault(warning["order_no"], []).append(warning["message"])
    progress.add(len(requests))  # one order a request for a synchronous mall (Yahoo)
    for left, request in zip(range(len(requests), 0, -1), requests, strict=True):
        rows = [(r.record_no, r.order_no, r.order_id, r.item_id) for r in request.rows]
        try:
            batch = store.create_batch(
                store=row["name"],
                encoding=request.encoding,
                content_type=request.content_type,
                feed=request.body,
                rows=rows,
                now=to_db(clock()),
                expected=expected,
                warnings=warned,
            )
        except OrdersChanged as exc:
            run.notes.append(
                f"{exc.message}; they are left out of this run's feed and sent by the next run"
            )
            progress.advance(left)  # not sent by this attempt: the bar still ends
            return set(exc.order_nos)
        run.batch_ids.append(batch["id"])
        sent = _send(store, session, batch, request, clock, run)
        if not sent:
            # the rest stay 未連携: a second lost answer would make the reconciliation ambiguous
            run.notes.append("the remaining orders wait until that batch is reconciled")
            progress.advance(left)
            return None
        progress.advance()
    return None


def _select(
    store: Store,
    name: str,
    session: malls.OfflineSession,
    clock: Clock,
    run: StoreRun,
    *,
    apply: bool,
    leave_out: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[tuple[str, str]], list[malls.Request]]:
    """(order_no, updated_at) of the eligible orders that pass the mall's checks, and the
    requests that send them; the orders are streamed, never all held.

    Orders that fail a check become ``error`` (when ``apply``), with the message saying what to fix.
    """
    prepared = prepare(
        store,
        session,
        (o for o in store.eligible_orders(name) if o["order_no"] not in leave_out),
        keep=lambda order: (order["order_no"], order["updated_at"]),
    )
    errors = []
    for order, message in prepared.errors:
        errors.append(StatusChange(order["order_no"], Status.ERROR, message))
        run.add_outcome(order, Status.ERROR, message)
    run.warnings.extend({"order_no": o, "message": w} for o, w in prepared.warnings)
    if errors and apply:
        store.change_statuses(errors, now=to_db(clock()))
    return prepared.ready, prepared.requests


def _send(
    store: Store,
    session: MallSession,
    batch: dict,
    request: malls.Request,
    clock: Clock,
    run: StoreRun,
) -> bool:
    """Send one batch; False when its createFeed outcome is unknown (it awaits reconciliation)."""
    batch_id = batch["id"]

    def commit(changes: dict) -> dict:
        return store.update_batch(batch_id, changes, to_db(clock()))

    try:
        answer = session.submit(batch, request, commit)
    except MallError as exc:
        _submit_failed(store, store.get_batch(batch_id), exc, clock, run)
        return store.get_batch(batch_id)["state"] != "submitting"
    assert isinstance(answer, Accepted)  # synchronous malls come with the lifecycle module
    feed_id = answer.mall_id
    store.mark_submitted(batch_id, feed_id, to_db(clock()))
    run.sent += batch["order_count"]
    run.feed_ids.append(feed_id)
    return True


def _submit_failed(store: Store, batch: dict, exc: MallError, clock: Clock, run: StoreRun) -> None:
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
        end_batch(
            store, batch, Status.PENDING, message, "released", clock, run, count=False, extra=DROP
        )
        run.problems.append(f"batch {batch['id']} not sent: {exc.message}")


# ------------------------------------------------------------------------------- recovery


def _recover(store: Store, name: str, session: MallSession, clock: Clock, run: StoreRun) -> bool:
    """Resolve batches an interrupted run left open; True while one still awaits reconciliation."""
    waiting = False
    for batch in store.batches(store=name, states=("prepared", "document_created", "uploaded")):
        # createFeed was never called for these: Amazon holds no feed of them
        message = "an interrupted run had not submitted this batch; back to 未連携"
        end_batch(
            store, batch, Status.PENDING, message, "released", clock, run, count=False, extra=DROP
        )
        run.notes.append(f"batch {batch['id']} released: {message}")
    for batch in store.batches(store=name, states=("submitting",)):
        waiting |= _reconcile(store, session, batch, clock, run)
    return waiting


def _reconcile(
    store: Store, session: MallSession, batch: dict, clock: Clock, run: StoreRun
) -> bool:
    mall = malls.get(store.get_store(batch["store"])["mall"])
    try:
        found = session.reconcile(
            batch, _rows(store, batch["id"]), store.claimed_mall_ids(mall.key)
        )
    except MallError as exc:
        run.problems.append(
            f"batch {batch['id']}: cannot look for its feed at {mall.label} yet ({exc.message}); "
            "tried again next run"
        )
        return True
    if found.kind == "adopt" and found.mall_id:
        store.mark_submitted(batch["id"], found.mall_id, to_db(clock()))
        run.feed_ids.append(found.mall_id)
        run.notes.append(f"batch {batch['id']}: {found.message}")
        return False
    if found.kind == "ambiguous":
        end_batch(store, batch, Status.RESULT_FAILED, found.message, "result_failed", clock, run)
        run.problems.append(f"batch {batch['id']}: {found.message}")
        return False
    if found.kind == "release":
        end_batch(store, batch, Status.PENDING, found.message, "released", clock, run, count=False)
        run.notes.append(f"batch {batch['id']} released: {found.message}")
        return False
    run.notes.append(f"batch {batch['id']}: {found.message}")
    return True


def _rows(store: Store, batch_id: int) -> list[malls.Row]:
    return [
        malls.Row(r["record_no"], r["order_no"], r["order_id"], r["item_id"] or "")
        for r in store.batch_rows(batch_id)
    ]


# ------------------------------------------------------------------------------- dry run


def _dry_run(store: Store, row: dict, run: StoreRun) -> list[DryFeed]:
    """The feeds a run would send now, without a call to the mall or a change to the database."""
    session = offline_session(row)
    ready, requests = _select(store, row["name"], session, lambda: run.started_at, run, apply=False)
    return [DryFeed(row["name"], r.body, len(r.rows)) for r in requests] if ready else []
