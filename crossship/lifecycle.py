"""The batch lifecycle: every state a batch goes through, and every transition, in one room.

A batch is what one request to a mall carries (an Amazon feed, an RMS request of ≤100 orders, one
Yahoo order). The store owns the SQL, the mall's session owns the calls; this module decides:

    notify run     recover → select → resolve → check → encode → record → submit → finish
    results fetch  poll → read → apply → follow up

States (``batches.state``)::

    prepared ──► (the mall's own steps: document_created, uploaded) ──► submitting ──► submitted
       │  asynchronous malls: the answer is an id (Accepted); results fetch finishes the batch
       └──► sending ──► done       synchronous malls: the answer is per order (Finished)
    submitting, answer lost ──► reconcile: adopt → submitted | verdicts → done | wait | release
    end states: done, notify_failed, result_failed, released (orders back to 未連携)

A batch is committed before each call (``prepared``, then every state the session commits), so a
crash at any point leaves a state that says what the mall may hold: before ``submitting``
(``sending`` for a synchronous mall, whose calls are harmless to repeat) nothing, so the orders go
back to 未連携; at ``submitting`` maybe something, so it is reconciled, never resent blindly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from crossship import i18n
from crossship.errors import CrossshipError, MallError, OrdersChanged, ReportParseError
from crossship.i18n import N_, Message, Part
from crossship.malls import (
    Accepted,
    Mall,
    MallSession,
    OfflineSession,
    Outcome,
    Poll,
    Request,
    Result,
    Row,
)
from crossship.prepare import Checked, prepare
from crossship.progress import NO_PROGRESS, Progress
from crossship.runs import StoreRun
from crossship.statuses import Status
from crossship.store import StatusChange, Store
from crossship.timeutil import Clock, from_db, to_db

PREPARED = "prepared"
SENDING = "sending"  # a synchronous mall's request is in flight
SUBMITTING = "submitting"  # an asynchronous mall may hold the request from here on
SUBMITTED = "submitted"  # accepted: its result comes later
DONE = "done"
NOTIFY_FAILED = "notify_failed"
RESULT_FAILED = "result_failed"
RELEASED = "released"
END_STATES = (DONE, NOTIFY_FAILED, RESULT_FAILED, RELEASED)

MAX_FETCH_FAILURES = 3
# how often a run selects again after orders changed under it (each time without them)
RESELECT_ATTEMPTS = 3
# a batch released before its request reached the mall keeps no copy of it: an outage must not
# store one every 15 minutes (a batch that reached the mall keeps it as evidence)
DROP = {"feed": b""}
# the clock the time budget is measured on: monotonic, so a faked or jumping wall clock
# changes nothing (tests replace it)
monotonic: Callable[[], float] = time.monotonic
# what one request of a mall is called in messages (``Mall.unit``)
UNITS = (N_("feed"), N_("request"), N_("shipment"))


class Budget:
    """A store's time budget for sending (SPEC §12): checked between requests, never inside."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else float(minutes) * 60
        self.started = monotonic()
        self.sent = 0  # requests sent under it: the first always goes

    def spent(self) -> bool:
        return self.seconds is not None and monotonic() - self.started >= self.seconds


@dataclass
class Cycle:
    """One store's part of one job: the store (this worker's connection), its mall and session."""

    store: Store
    row: dict
    mall: Mall
    session: MallSession
    clock: Clock
    run: StoreRun
    progress: Progress = NO_PROGRESS  # requests sent, when a run works on one store

    @property
    def name(self) -> str:
        return str(self.row["name"])

    def now(self) -> str:
        return to_db(self.clock())

    @property
    def unit(self) -> Message:
        """The mall's word for one request (feed, request), in the reader's language."""
        return Message(self.mall.unit)

    def _label(self, batch: dict) -> Message:
        mall_id = batch.get("mall_id") or batch.get("feed_id")
        if mall_id:
            return Message(
                "batch {batch_id} ({unit} {mall_id})",
                {"batch_id": batch["id"], "unit": self.unit, "mall_id": mall_id},
            )
        return _batch(batch)

    # =========================================================================== notify run

    def notify(self) -> None:
        self.run.notes.extend(_notices(self.session))
        waiting = self.recover()
        if not self.row["started"]:
            return  # only what an interrupted run left open is resolved for a stopped store
        if waiting:
            # nothing new is selected, checked or mailed about until the lost submission is settled
            self.run.notes.append(
                Message(
                    "new orders wait for the next run: an earlier batch's submission is being "
                    "reconciled with {mall} first",
                    {"mall": self.mall.label},
                )
            )
            return
        budget = Budget(self.row.get("time_budget_minutes"))
        changed: set[str] = set()
        warnings_before = len(self.run.warnings)
        for _attempt in range(RESELECT_ATTEMPTS):
            del self.run.warnings[warnings_before:]  # a new selection says its warnings again
            try:
                checked = select(
                    self.store,
                    self.name,
                    self.session,
                    self.clock,
                    self.run,
                    apply=True,
                    leave_out=changed,
                )
            except MallError as exc:  # a lookup (resolve) failed: nothing is marked, all wait
                self.run.problems.append(
                    Message(
                        "{mall} could not be asked for what the orders lack ({error}); they are "
                        "sent by a later run",
                        {"mall": self.mall.label, "error": exc.kept},
                    )
                )
                return
            if not checked.ready:
                return
            again = self.send_all(checked, budget)
            if again is None:
                return
            # an import or a change by hand touched these orders after they were selected: they
            # wait for the next run with their fresh data; the others go now
            changed |= again
        self.run.notes.append(
            Message(
                "{count} orders kept changing while their {unit} was prepared; the rest wait for "
                "the next run",
                {"count": len(changed), "unit": self.unit},
            )
        )

    def send_all(self, checked: Checked, budget: Budget) -> set[str] | None:
        """Record and send each request; the orders that changed since their selection (nothing
        of that request recorded), or None when done."""
        expected = dict(checked.ready)
        warned: dict[str, list] = {}  # an order's warnings, the parts of one kept message
        for warning in self.run.warnings:
            warned.setdefault(warning["order_no"], []).append(warning["message"])
        requests = checked.requests
        self.progress.add(len(requests))  # one order a request for a synchronous mall
        for index, request in enumerate(requests):
            left = len(requests) - index
            if (index or budget.sent) and budget.spent():
                self.progress.advance(left)
                waiting_orders = {r.order_no for rest in requests[index:] for r in rest.rows}
                self.run.notes.append(
                    Message(
                        "time budget of {minutes} minutes spent: {count} orders wait 未連携 for "
                        "the next run",
                        {"minutes": self.row["time_budget_minutes"], "count": len(waiting_orders)},
                    )
                )
                return None
            try:
                batch = self.record(request, expected, warned)
            except OrdersChanged as exc:
                self.run.notes.append(
                    Message(
                        "{error}; they are left out of this run's {unit} and sent by the next run",
                        {"error": exc.kept, "unit": self.unit},
                    )
                )
                self.progress.advance(left)  # not sent by this attempt: the bar still ends
                return set(exc.order_nos)
            budget.sent += 1
            if not self.submit(batch, request):
                self.progress.advance(left)
                return None
            self.progress.advance()
        return None

    def record(self, request: Request, expected: dict, warned: dict) -> dict:
        """The batch, its rows and its orders 連携中, in one transaction, before any call;
        OrdersChanged (nothing recorded) when one changed since it was selected."""
        rows = [(r.record_no, r.order_no, r.order_id, r.item_id) for r in request.rows]
        batch = self.store.create_batch(
            store=self.name,
            encoding=request.encoding,
            content_type=request.content_type,
            feed=request.body,
            rows=rows,
            now=self.now(),
            expected=expected,
            warnings=warned,
        )
        self.run.batch_ids.append(batch["id"])
        return batch

    def submit(self, batch: dict, request: Request) -> bool:
        """Send one recorded batch; False when the run must send no more (a lost answer, a halt)."""
        batch_id = batch["id"]

        def commit(changes: dict) -> dict:
            return self.store.update_batch(batch_id, changes, self.now())

        if self.mall.synchronous:
            batch = commit({"state": SENDING})
        try:
            answer = self.session.submit(batch, request, commit)
        except MallError as exc:
            return self.submit_failed(self.store.get_batch(batch_id), exc)
        if isinstance(answer, Accepted):
            self.accepted(batch_id, answer.mall_id)
            self.run.sent += batch["order_count"]
            return True
        self.finish(self.store.get_batch(batch_id), answer.outcomes)
        self.run.sent += batch["order_count"]
        return True

    def accepted(self, batch_id: int, mall_id: str) -> None:
        self.store.mark_submitted(batch_id, mall_id, self.now())
        self.run.feed_ids.append(mall_id)

    def submit_failed(self, batch: dict, exc: MallError) -> bool:
        label = _batch(batch)
        may_hold = batch["state"] == SUBMITTING and not self.mall.synchronous
        if may_hold and exc.outcome == "unknown":
            self.store.update_batch(
                batch["id"], {"last_error": i18n.render(exc.kept, "en")}, self.now()
            )
            lost = {"label": label, "error": exc.kept, "mall": self.mall.label}
            if exc.operation:
                lost["operation"] = exc.operation
                said = (
                    N_(
                        "{label}: the answer to {operation} was lost ({error}); it is not sent "
                        "again: the next run looks for it at {mall} ({lookup})"
                    )
                    if self.mall.lost_lookup
                    else N_(
                        "{label}: the answer to {operation} was lost ({error}); it is not sent "
                        "again: the next run looks for it at {mall}"
                    )
                )
            else:
                said = (
                    N_(
                        "{label}: the answer to the submission was lost ({error}); it is not "
                        "sent again: the next run looks for it at {mall} ({lookup})"
                    )
                    if self.mall.lost_lookup
                    else N_(
                        "{label}: the answer to the submission was lost ({error}); it is not "
                        "sent again: the next run looks for it at {mall}"
                    )
                )
            if self.mall.lost_lookup:
                lost["lookup"] = self.mall.lost_lookup
            self.run.problems.append(Message(said, lost))
            # the rest stay 未連携: a second lost answer would make the reconciliation ambiguous
            self.run.notes.append(
                Message("the remaining orders wait until that batch is reconciled")
            )
            return False
        if (may_hold or self.mall.synchronous) and exc.outcome == "rejected" and not exc.halt:
            message = Message(
                "{mall} rejected the {unit}: {error}",
                {"mall": self.mall.label, "unit": self.unit, "error": exc.kept},
            )
            self.end(batch, Status.NOTIFY_FAILED, message, NOTIFY_FAILED)
            self.run.problems.append(
                Message("{label}: {message}", {"label": label, "message": message})
            )
            return True
        # nothing took effect (or, for a synchronous mall, repeating it is harmless): 未連携 again
        message = Message("not sent, retried by the next run: {error}", {"error": exc.kept})
        self.end(batch, Status.PENDING, message, RELEASED, count=False, extra=DROP)
        self.run.problems.append(
            Message("{label} not sent: {error}", {"label": label, "error": exc.kept})
        )
        if exc.halt:
            self.run.notes.append(
                Message(
                    "{mall} stopped this store's run: the remaining orders stay 未連携",
                    {"mall": self.mall.label},
                )
            )
            return False
        return True

    # =========================================================================== recovery

    def recover(self) -> bool:
        """Resolve batches an interrupted run left open; True while one awaits reconciliation."""
        waiting = False
        before = ("prepared", "document_created", "uploaded", SENDING)
        for batch in self.store.batches(store=self.name, states=before):
            # the mall holds nothing of these, or (a synchronous mall) repeating them is harmless
            message = Message("an interrupted run had not submitted this batch; back to 未連携")
            self.end(batch, Status.PENDING, message, RELEASED, count=False, extra=DROP)
            self.run.notes.append(_released(batch, message))
        for batch in self.store.batches(store=self.name, states=(SUBMITTING,)):
            waiting |= self.reconcile(self.store.get_batch(batch["id"]))
        return waiting

    def reconcile(self, batch: dict) -> bool:
        label = _batch(batch)
        try:
            found = self.session.reconcile(
                batch,
                batch_rows(self.store, batch["id"]),
                self.store.claimed_mall_ids(self.mall.key),
            )
        except MallError as exc:
            self.run.problems.append(
                Message(
                    "{label}: cannot look for its {unit} at {mall} yet ({error}); tried again "
                    "next run",
                    {"label": label, "unit": self.unit, "mall": self.mall.label, "error": exc.kept},
                )
            )
            return True
        said = _said(label, found.message)
        if found.kind == "adopt" and found.mall_id:
            self.accepted(batch["id"], found.mall_id)
            self.run.notes.append(said)
            return False
        if found.kind == "verdicts":
            named = {o.order_no for o in found.outcomes}
            rest = [
                Outcome(
                    o["order_no"],
                    Status.PENDING,
                    _one(found.message) or Message("not at the mall: sent again by the next run"),
                )
                for o in self.store.batch_orders(batch["id"])
                if o["order_no"] not in named
            ]
            self.finish(batch, [*found.outcomes, *rest])
            self.run.notes.append(
                Message(
                    "{label}: its lost submission was settled at {mall}, order by order",
                    {"label": label, "mall": self.mall.label},
                )
            )
            return False
        if found.kind == "ambiguous":
            self.end(batch, Status.RESULT_FAILED, found.message, RESULT_FAILED)
            self.run.problems.append(said)
            return False
        if found.kind == "release":
            self.end(batch, Status.PENDING, found.message, RELEASED, count=False)
            self.run.notes.append(_released(batch, found.message))
            return False
        self.run.notes.append(said)
        return True

    # =========================================================================== results fetch

    def fetch(self, deadline: timedelta) -> None:
        self.run.notes.extend(_notices(self.session))
        for listed in self.store.batches(store=self.name, states=(SUBMITTED,)):
            self.fetch_batch(self.store.get_batch(listed["id"]), deadline)
        self.follow_up()

    def fetch_batch(self, batch: dict, deadline: timedelta) -> None:
        label = self._label(batch)
        mall_id = str(batch.get("mall_id") or batch.get("feed_id"))
        try:
            poll = self.session.poll(batch)
        except MallError as exc:
            self.fetch_failed(batch, label, exc)
            return
        self.run.feed_ids.append(mall_id)
        now = self.clock()
        kept: dict[str, Any] = {
            "fetch_failures": 0,
            "processing_status": poll.processing_status,
            "result_document_id": poll.result_document_id,
        }
        if poll.report is not None:
            kept |= {"report": poll.report, "report_charset": poll.report_charset}
        self.store.update_batch(batch["id"], kept, to_db(now))  # kept raw before it is read
        if poll.state == "waiting":
            self.waiting(batch, poll, deadline, now)
            return
        if poll.state == "failed":
            words = self.session.failure_text(poll)  # the mall's own words
            ended = {
                "mall": self.mall.label,
                "unit": self.unit,
                "mall_id": mall_id,
                "status": poll.processing_status,
            }
            message = (
                Message(
                    "{mall} ended {unit} {mall_id} {status}: {words}", {**ended, "words": words}
                )
                if words
                else Message("{mall} ended {unit} {mall_id} {status}", ended)
            )
            self.end(batch, Status.NOTIFY_FAILED, message, NOTIFY_FAILED)
            return
        try:
            result = self.session.read_result(batch, poll, batch_rows(self.store, batch["id"]))
        except ReportParseError as exc:
            message = Message(
                "{mall}'s result for {unit} {mall_id} could not be read ({error}); it is kept "
                "(`crossship batches show {batch_id}`): check the orders in {where}",
                {
                    "mall": self.mall.label,
                    "unit": self.unit,
                    "mall_id": mall_id,
                    "error": exc.kept,
                    "batch_id": batch["id"],
                    "where": self.mall.where_to_check,
                },
            )
            self.end(batch, Status.RESULT_FAILED, message, RESULT_FAILED)
            self.run.problems.append(_said(label, message))
            return
        self.apply(batch, result)

    def fetch_failed(self, batch: dict, label: Message, exc: MallError) -> None:
        failures = batch["fetch_failures"] + 1
        if failures >= MAX_FETCH_FAILURES:
            message = Message(
                "the result could not be obtained from {mall} in {failures} successive runs "
                "({error}): check the orders in {where}",
                {
                    "mall": self.mall.label,
                    "failures": failures,
                    "error": exc.kept,
                    "where": self.mall.where_to_check,
                },
            )
            self.end(
                batch,
                Status.RESULT_FAILED,
                message,
                RESULT_FAILED,
                extra={"fetch_failures": failures},
            )
            self.run.problems.append(_said(label, message))
        else:
            self.store.update_batch(
                batch["id"],
                {"fetch_failures": failures, "last_error": i18n.render(exc.kept, "en")},
                self.now(),
            )
            self.run.problems.append(
                Message(
                    "{label}: result not obtained ({failures}/{most}): {error}; tried again "
                    "next run",
                    {
                        "label": label,
                        "failures": failures,
                        "most": MAX_FETCH_FAILURES,
                        "error": exc.kept,
                    },
                )
            )

    def waiting(self, batch: dict, poll: Poll, deadline: timedelta, now: Any) -> None:
        mall_id = str(batch.get("mall_id") or batch.get("feed_id"))
        if now - from_db(batch["submitted_at"]) > deadline:
            hours = int(deadline.total_seconds() // 3600)
            message = Message(
                "{mall} had not finished {unit} {mall_id} after {hours} h ({status}): check the "
                "orders in {where}",
                {
                    "mall": self.mall.label,
                    "unit": self.unit,
                    "mall_id": mall_id,
                    "hours": hours,
                    "status": poll.processing_status,
                    "where": self.mall.where_to_check,
                },
            )
            self.end(batch, Status.RESULT_FAILED, message, RESULT_FAILED)
        else:
            self.run.feed_ids.remove(mall_id)  # nothing learned yet

    def apply(self, batch: dict, result: Result) -> None:
        """Every order still in the batch gets its outcome; the result must name each one."""
        mall_id = batch.get("mall_id") or batch.get("feed_id")
        missing = Message(
            "the result of {mall}'s {unit} {mall_id} does not account for this order: check it "
            "in {where}",
            {
                "mall": self.mall.label,
                "unit": self.unit,
                "mall_id": mall_id,
                "where": self.mall.where_to_check,
            },
        )
        outcomes = [
            result.outcomes.get(o["order_no"])
            or Outcome(o["order_no"], Status.RESULT_FAILED, missing)
            for o in self.store.batch_orders(batch["id"])
        ]
        notes = list(result.notes)
        self.run.notes.extend(
            Message("{unit} {mall_id}: {note}", {"unit": self.unit, "mall_id": mall_id, "note": n})
            for n in notes
        )
        self.finish(
            batch,
            outcomes,
            {
                "processed": result.processed,
                "successful": result.successful,
                "note": i18n.render(notes, "en") or None,  # the batch row keeps English
            },
        )

    def follow_up(self) -> None:
        """Work due after success (Yahoo's 完了): its outcome on the order and in the history."""
        due = self.store.completions_due(self.name, self.now())
        if not due:
            return
        try:
            outcomes = self.session.follow_up(due)
        except MallError as exc:
            self.run.problems.append(
                Message(
                    "{count} follow-ups at {mall} not done ({error}); tried again next run",
                    {"count": len(due), "mall": self.mall.label, "error": exc.kept},
                )
            )
            return
        if not outcomes:
            return
        orders = {o["order_no"]: o for o in due}
        with self.store.atomic():
            self.store.set_refs({o.order_no: o.refs for o in outcomes if o.refs})
            self.store.change_statuses(
                [
                    StatusChange(o.order_no, Status(o.status), o.message, bool(o.warnings))
                    for o in outcomes
                ],
                now=self.now(),
            )
        for outcome in outcomes:
            order = orders.get(outcome.order_no, {"order_no": outcome.order_no})
            self.run.add_outcome(order, Status(outcome.status), outcome.message, outcome.warnings)

    # =========================================================================== finishing

    def finish(self, batch: dict, outcomes: Sequence[Outcome], extra: dict | None = None) -> None:
        """A batch's orders get their outcomes in one transaction: successes move to their
        target's destination phase; ``pending`` ones go back to 未連携 (not counted); the refs
        the mall gave are kept."""
        targets = {t["phase"]: t["move_to"] for t in self.store.list_targets(self.name)}
        orders = {o["order_no"]: o for o in self.store.batch_orders(batch["id"])}
        changes, moves = [], {}
        for outcome in outcomes:
            order = orders.get(outcome.order_no)
            if order is None:  # not (or no longer) in this batch: never touched
                continue
            status = Status(outcome.status)  # a mall may give the status's value
            warnings = list(outcome.warnings)
            message = outcome.message
            changes.append(
                StatusChange(outcome.order_no, status, [message, *warnings], bool(warnings))
            )
            if status is not Status.PENDING:
                self.run.add_outcome(order, status, message, warnings)
            destination = targets.get(order["phase"])
            if status is Status.SUCCESS and destination:
                moves[outcome.order_no] = destination
        with self.store.atomic():
            refs = {o.order_no: o.refs for o in outcomes if o.refs and o.order_no in orders}
            self.store.set_refs(refs)
            self.store.finish_batch(
                batch,
                changes,
                state=DONE,
                now=self.now(),
                batch_changes=extra or {},
                move_to=moves,
            )
        self.run.moved += len(moves)

    def end(
        self,
        batch: dict,
        status: Status,
        message: i18n.Text,
        state: str,
        *,
        count: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Every order still in the batch gets one status, and the batch its end state."""
        orders = self.store.batch_orders(batch["id"])
        self.store.finish_batch(
            batch,
            [StatusChange(o["order_no"], status, message) for o in orders],
            state=state,
            now=self.now(),
            batch_changes={"last_error": i18n.render(message, "en"), **(extra or {})},
        )
        if count:
            for order in orders:
                self.run.add_outcome(order, status, message)


# =============================================================================== selection


def select(
    store: Store,
    name: str,
    session: OfflineSession,
    clock: Clock,
    run: StoreRun,
    *,
    apply: bool,
    leave_out: set[str] | frozenset[str] = frozenset(),
) -> Checked:
    """The eligible orders, streamed: their missing references resolved (a session that can
    call), checked, and the passing ones encoded. Orders that fail a check become ``error``
    (when ``apply``), with the message saying what to fix."""
    resolve = getattr(session, "resolve", None) if apply else None
    if resolve is not None and getattr(session, "resolve_ahead", False):
        # the lookups of the whole run at once, packed to the mall's limit a call (RMS's getOrder:
        # 100 orders), instead of a partly filled call for every chunk of the selection
        _resolve_ahead(store, name, resolve, leave_out)
        resolve = None

    def refs(chunk: list[dict]) -> dict[str, dict]:
        known = store.refs_for([o["order_no"] for o in chunk])
        if resolve is None:
            return known
        found = resolve(chunk, known)
        if found:
            store.set_refs(found)
            for order_no, values in found.items():
                known[order_no] = {**known.get(order_no, {}), **values}
        return known

    checked = prepare(
        store,
        session,
        (o for o in store.eligible_orders(name) if o["order_no"] not in leave_out),
        keep=lambda order: (order["order_no"], order["updated_at"]),
        refs=refs,
    )
    errors = []
    for order, message in checked.errors:
        errors.append(StatusChange(order["order_no"], Status.ERROR, message))
        run.add_outcome(order, Status.ERROR, message)
    run.warnings.extend({"order_no": o, "message": w} for o, w in checked.warnings)
    if errors and apply:
        store.change_statuses(errors, now=to_db(clock()))
    return checked


def _resolve_ahead(
    store: Store,
    name: str,
    resolve: Callable[[Sequence[dict], dict[str, dict]], dict[str, dict]],
    leave_out: set[str] | frozenset[str],
) -> None:
    """Look up what every eligible order lacks before any is checked; only the number and the
    mall's order id of each order are held."""
    orders = [
        {"order_no": o["order_no"], "mall_order_id": o["mall_order_id"]}
        for o in store.eligible_orders(name)
        if o["order_no"] not in leave_out
    ]
    found = resolve(orders, store.refs_for([o["order_no"] for o in orders]))
    if found:
        store.set_refs(found)


def _batch(batch: dict) -> Message:
    return Message("batch {batch_id}", {"batch_id": batch["id"]})


def _said(label: Message, message: i18n.Text) -> Message:
    return Message("{label}: {message}", {"label": label, "message": _one(message)})


def _released(batch: dict, message: i18n.Text) -> Message:
    return Message(
        "batch {batch_id} released: {message}",
        {"batch_id": batch["id"], "message": _one(message)},
    )


def _one(message: i18n.Text) -> Part:
    """One part for a message that may have several (joined in English: rarely more than one)."""
    if isinstance(message, str | Message):
        return message
    parts = list(message)
    return parts[0] if len(parts) == 1 else i18n.render(parts)


def batch_rows(store: Store, batch_id: int) -> list[Row]:
    return [
        Row(r["record_no"], r["order_no"], r["order_id"], r["item_id"] or "")
        for r in store.batch_rows(batch_id)
    ]


def _notices(session: object) -> Iterable[str]:
    """A session's reminders for the run's mail (an RMS licenseKey about to expire)."""
    notices = getattr(session, "notices", None)
    return notices() if callable(notices) else []


__all__ = ["Budget", "CrossshipError", "Cycle", "END_STATES", "batch_rows", "select"]
