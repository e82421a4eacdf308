"""What the two cron jobs share: the due guard, the per-store run record, the result mail."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from crossship import i18n, shell
from crossship import mail as mailer
from crossship.errors import CrossshipError
from crossship.i18n import N_, Message, Part, Text
from crossship.progress import Progress
from crossship.statuses import Status
from crossship.store import Store
from crossship.timeutil import Clock, from_db, local_iso, to_db

EARLY_GRACE = timedelta(seconds=60)  # a cron run that fires up to 60 s early still counts as due

# what the operator does next, per API status (CROSS MALL help: Amazon自動出荷通知, 5-1, 対応方法);
# English message ids, shown in the mail's language
ADVICE = {
    "in_progress": N_("Nothing more to do."),
    "success": N_("Nothing to do."),
    "notify_failed": N_(
        "The shipment is not registered at the mall: notify it again "
        "(crossship status set ORDER_NO --to pending --move-to TARGET_PHASE)."
    ),
    "result_failed": N_(
        "Check the order's shipment at the mall (Seller Central, RMS, ストアクリエイターPro). "
        "If it is not registered, notify it again; if it is, set it 正常 with "
        "crossship status set ORDER_NO --to success."
    ),
    "error": N_(
        "Check and correct the settings or the order (crossship orders update / config carrier "
        "add), then notify it again (crossship status set ORDER_NO --to pending --move-to "
        "TARGET_PHASE)."
    ),
    "pending": N_("It is sent by the next automatic run."),
}


def next_due(last_run: str | None, interval_minutes: int) -> datetime | None:
    """When a job is next due for a store (None: never ran, due now)."""
    if last_run is None:
        return None
    # a value stored before `config store set` refused huge ones must not crash every run
    return from_db(last_run) + timedelta(minutes=min(interval_minutes, 7 * 24 * 60)) - EARLY_GRACE


def not_due(
    store: Store, row: dict, job: str, now: datetime, said: list[Text] | None = None
) -> Message | None:
    """Why a store's job is skipped now (the 15-minute guard), or None when it is due.

    A last run recorded after ``now`` means the clock moved back (or once ran ahead): the job is
    due, and ``said`` gets one line about it. The run this one records becomes the last, so it is
    said once, not at every run until the clock catches up.
    """
    last = store.last_run(row["name"], job)
    if last is not None and from_db(last) > now + EARLY_GRACE:
        if said is not None:
            said.append(
                Message(
                    "the last {job} run is recorded at {last}, after now ({now}): the clock "
                    "moved back; running now",
                    {"job": job, "last": local_iso(last), "now": local_iso(to_db(now))},
                )
            )
        return None
    due = next_due(last, row["interval_minutes"])
    if due is None or now >= due:
        return None
    return Message("not due until {due} (use --force to run now)", {"due": local_iso(to_db(due))})


@dataclass
class StoreRun:
    """One job's run for one store: what it did, for the run record, the mail and the CLI."""

    store: str
    job: str  # "notify" or "results"
    started_at: datetime
    skipped: Text | None = None  # why nothing was done (not due, stopped)
    dry_run: bool = False
    sent: int = 0  # orders sent (notify)
    feed_ids: list[str] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)  # final statuses given in this run
    # messages are Text: ours as Messages, shown in the reader's (stderr) or the mail's language
    failures: list[dict] = field(default_factory=list)  # orders that ended badly, with why
    warnings: list[dict] = field(default_factory=list)
    problems: list[Text] = field(default_factory=list)  # run-level failures: exit 1
    notes: list[Text] = field(default_factory=list)
    said: list[Text] = field(default_factory=list)  # said on stderr even without -v (not -q)
    moved: int = 0
    mail_error: Text | None = None

    def count(self, status: str) -> int:
        return self.statuses.get(status, 0)

    def add_outcome(
        self,
        order: dict,
        status: Status,
        message: Text = "",
        warnings: Sequence[Part] | None = None,
    ) -> None:
        self.statuses[status.value] += 1
        if status not in (Status.SUCCESS, Status.PENDING, Status.IN_PROGRESS):
            self.failures.append(
                {
                    "order_no": order["order_no"],
                    "mall_order_id": order.get("mall_order_id"),
                    "status": status.value,
                    "status_label": status.label,
                    "message": message,
                }
            )
        for warning in warnings or []:
            self.warnings.append({"order_no": order["order_no"], "message": warning})

    @property
    def failed(self) -> bool:
        return bool(self.problems or self.mail_error)

    @property
    def eventful(self) -> bool:
        """Whether the run sent or changed anything (a mail is due)."""
        return bool(self.sent or self.statuses or self.problems)

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "feed_ids": self.feed_ids,
            "batch_ids": self.batch_ids,
            "statuses": dict(self.statuses),
            "moved": self.moved,
            # the run record is read by machines (`auto status --format json`): English
            "problems": [i18n.render(p, "en") for p in self.problems],
            "notes": [i18n.render(n, "en") for n in self.said + self.notes],
            "warnings": len(self.warnings),
            "mail_error": i18n.render(self.mail_error, "en") or None,
            # the same problems as keys and arguments, for a person reading them later
            # (`crossship check`) in their own language; None where a part is not ours
            "problems_kept": [i18n.keep(p)[1] for p in self.problems],
            "mail_error_kept": i18n.keep(self.mail_error)[1],
        }


def record(store: Store, run: StoreRun, finished_at: datetime) -> None:
    """Write the run record; only a run that did its work moves the guard's clock."""
    store.record_run(
        store=run.store,
        job=run.job,
        started_at=to_db(run.started_at),
        finished_at=to_db(finished_at),
        outcome="failed" if run.failed else "ok",
        summary=run.summary(),
    )


Transport = Callable[[mailer.MailSettings, "str | None", mailer.Mail], None]

# a result mail stays well under 1 MB however many orders fail: 40,000 failures must not make a
# mail the SMTP server refuses, so nobody hears of them
MAIL_ORDERS = 100  # orders (and warnings, notes, problems) listed one by one
MAIL_MESSAGES = 20  # distinct messages counted
MAIL_MESSAGE_CHARS = 300
MAIL_MAX_BYTES = 256 * 1024


@dataclass
class MailDigest:
    """What a result mail shows of a run: counts for everything, the first items one by one."""

    failures: list[dict]
    failures_more: int
    by_message: list[dict]  # {"status_label", "message", "count"}, most frequent first
    messages_more: int
    warnings: list[dict]
    warnings_more: int
    notes: list[Any]
    notes_more: int
    problems: list[Any]
    problems_more: int
    commands: list[str]  # `crossship history ...` lines that list every order of the run


def mail_digest(run: StoreRun, language: str) -> MailDigest:
    def text(message: Any) -> str:
        shown = i18n.render(message, language)
        return shown if len(shown) <= MAIL_MESSAGE_CHARS else shown[: MAIL_MESSAGE_CHARS - 1] + "…"

    counts: Counter = Counter(
        (f["status"], f["status_label"], text(f["message"])) for f in run.failures
    )
    groups = [
        {"status_label": label, "message": message, "count": count}
        for (_status, label, message), count in counts.most_common(MAIL_MESSAGES)
    ]
    since = shell.word(local_iso(to_db(run.started_at - timedelta(seconds=1))))
    store = shell.word(run.store)
    statuses = list(dict.fromkeys(f["status"] for f in run.failures))
    commands = [
        f"crossship history --store {store} --since {since} --status {status}"
        for status in statuses
    ]
    if run.warnings:
        commands.append(f"crossship history --store {store} --since {since} --warnings-only")

    def first(items: list) -> list:
        return [
            {**item, "message": text(item["message"])} if isinstance(item, dict) else text(item)
            for item in items[:MAIL_ORDERS]
        ]

    return MailDigest(
        failures=first(run.failures),
        failures_more=max(0, len(run.failures) - MAIL_ORDERS),
        by_message=groups,
        messages_more=max(0, len(counts) - MAIL_MESSAGES),
        warnings=first(run.warnings),
        warnings_more=max(0, len(run.warnings) - MAIL_ORDERS),
        notes=first(run.notes),
        notes_more=max(0, len(run.notes) - MAIL_ORDERS),
        problems=first(run.problems),
        problems_more=max(0, len(run.problems) - MAIL_ORDERS),
        commands=commands,
    )


def _capped(mail: mailer.Mail, language: str) -> mailer.Mail:
    """The last guard: a body over MAIL_MAX_BYTES is cut at a line, saying so."""
    data = mail.body.encode("utf-8")
    if len(data) <= MAIL_MAX_BYTES:
        return mail
    cut = data[:MAIL_MAX_BYTES].decode("utf-8", errors="ignore").rsplit("\n", 1)[0]
    return mailer.Mail(
        mail.subject,
        cut
        + "\n\n"
        + Message("[... cut at 256 KB: see `crossship history` for the rest]").render(language)
        + "\n",
    )


def send_mail(
    store: Store,
    db_path: Path,
    run: StoreRun,
    subject: str,
    template: str,
    transport: Transport | None = None,
    *,
    synchronous: bool = False,
) -> None:
    """Mail the run's result when it sent or failed anything; a failure is noted, never raised.
    ``synchronous``: the store's mall answers each request at once (no later result to wait for).
    """
    if not run.eventful:
        return
    from crossship.secrets import smtp_password  # late: only runs that mail read credentials

    try:
        settings = mailer.MailSettings.from_stored(store.get_settings("mail"))
        if not settings.smtp_host and not settings.recipients:
            run.notes.append(
                Message("no result mail: mail is not configured (`crossship config mail set`)")
            )
            return
        context = {
            "run": run,
            "time": local_iso(to_db(run.started_at)),
            "advice": ADVICE,
            "digest": mail_digest(run, settings.language),
            "synchronous": synchronous,
        }
        deliver = transport or mailer.send
        mail = _capped(
            mailer.compose(subject, template, context, settings.language), settings.language
        )
        deliver(settings, smtp_password(db_path), mail)
    except CrossshipError as exc:
        run.mail_error = exc.kept
    except Exception as exc:  # a mail is a report: whatever breaks it, the run and the others go on
        run.mail_error = Message(
            "the result mail could not be sent: {kind}: {error}",
            {"kind": type(exc).__name__, "error": str(exc)},
        )


T = TypeVar("T")
log = logging.getLogger("crossship.runs")
JOB_MAIL = {
    "notify": ("notify", "mail_notify.txt.j2"),
    "results": ("results", "mail_results.txt.j2"),
}


def each_store(
    job: str,
    rows: Sequence[dict],
    work: Callable[[Store, dict, StoreRun], T],
    *,
    store: Store,
    db_path: Path,
    clock: Clock,
    jobs: int,
    mail_transport: Transport | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> Iterator[tuple[StoreRun, T | None]]:
    """``work(worker_store, row, run)`` for each store on the bounded pool, cron-safe.

    Everything a store raises is caught: an unexpected exception is that store's failed run
    (one line in ``run.problems``, the traceback at -vv), recorded and mailed like any other;
    the next store runs. In store order (as the pool yields them), each run that did not skip is
    mailed with its mall's subject and recorded, then yielded with what ``work`` returned.
    ``progress`` counts the stores done.
    """
    from crossship import malls  # late: the registry loads the mall packages
    from crossship.pool import describe, map_stores

    def task(worker: Store, row: dict) -> tuple[StoreRun, T | None]:
        run = StoreRun(store=row["name"], job=job, started_at=clock(), dry_run=dry_run)
        try:
            return run, work(worker, row, run)
        except Exception as exc:  # one store's failure, expected or not, stops no other
            log.debug("store %s: %s failed", row["name"], job, exc_info=True)
            run.problems.append(describe(exc))
            return run, None

    def failed(row: dict, exc: Exception) -> tuple[StoreRun, T | None]:
        run = StoreRun(store=row["name"], job=job, started_at=clock(), dry_run=dry_run)
        run.problems.append(describe(exc))
        return run, None

    mall_of = {r["name"]: r["mall"] for r in rows}
    subject_key, template = JOB_MAIL[job]
    if progress is not None:
        progress.add(len(rows))
    for run, extra in map_stores(rows, task, failed, open_store=lambda: Store(db_path), jobs=jobs):
        if progress is not None:
            progress.advance()
        if not (run.skipped or run.dry_run):
            mall = malls.find(mall_of[run.store])
            subject = mall.subjects[subject_key] if mall else f"(CROSSMALL) crossship {job}"
            synchronous = bool(mall and mall.synchronous)
            send_mail(
                store, db_path, run, subject, template, mail_transport, synchronous=synchronous
            )
            record(store, run, clock())
        yield run, extra
