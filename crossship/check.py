"""`crossship check`: is shipment notification healthy? (SPEC §15)

A monitoring probe: it reads the database (opened read only, never migrated), the lock file's
holder line and the clock, and answers one problem per line with a level; the same database at the
same time gives the same answer. It takes no run lock and writes nothing.

Levels (a monitoring plugin's exit code is the worst of them: 0 ok, 1 warning, 2 critical):
- critical — nothing reaches the malls, or will not, without someone acting:
  the database is missing or fails ``PRAGMA quick_check``; a started store's job (notify, results)
  has not run for 3 of its intervals; a batch has waited past half its result deadline (at the
  deadline its orders become 通知結果取得失敗); the run lock has been held for longer than 2
  intervals (every run meanwhile exits 75); a mall's credentials or keys have expired.
- warning — work for the shop staff, or a sign of trouble to come:
  orders now in エラー / 通知失敗 / 通知結果取得失敗 (count and the oldest); a started store that
  has never run although it exists for 3 intervals; a started store whose last run failed;
  credentials or keys near their end; the database schema is behind this crossship (the next run
  applies the migrations).

A mall contributes its own expiry checks through ``Mall.health`` (see MALL_INTERFACE.md):
``health(store_row, now) -> [(level, text), ...]``, the store row with ``mall_settings`` decoded.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crossship import lock
from crossship.errors import CrossshipError
from crossship.i18n import _, ngettext, render_stored
from crossship.statuses import label_of
from crossship.store import BATCH_OPEN_STATES, Store
from crossship.timeutil import from_db, local_iso, to_db

WARNING, CRITICAL = "warning", "critical"
LEVELS = {"ok": 0, WARNING: 1, CRITICAL: 2}
JOBS = ("notify", "results")
LATE_INTERVALS = 3  # a started store's job that has not run for this many intervals
LOCK_INTERVALS = 2  # the run lock held for longer than this many intervals
DEFAULT_INTERVAL = 15  # minutes, when no store is started (the lock's yardstick)

HealthHook = Callable[[dict, datetime], Sequence[tuple[str, str]]]


@dataclass(frozen=True)
class Problem:
    level: str  # WARNING or CRITICAL
    kind: str  # database, schema, job_late, job_never_ran, run_failed, batch_waiting,
    # orders_failed, credentials, lock_held
    text: str
    store: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        where = f"{self.store}: " if self.store else ""
        return f"{self.level.upper()}: {where}{self.text}"


@dataclass
class Report:
    checked_at: datetime
    stores: int = 0  # stores looked at
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        worst = max((LEVELS[p.level] for p in self.problems), default=0)
        return next(name for name, code in LEVELS.items() if code == worst)

    @property
    def exit_code(self) -> int:
        return LEVELS[self.status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "checked_at": local_iso(to_db(self.checked_at)),
            "stores": self.stores,
            "problems": [asdict(p) for p in self.problems],
        }

    def add(self, level: str, kind: str, text: str, store: str | None = None, **details: Any):
        self.problems.append(Problem(level, kind, text, store, details))


def check(
    db_path: Path,
    now: datetime,
    *,
    store_name: str | None = None,
    hooks: Mapping[str, HealthHook] | None = None,
) -> Report:
    """Every problem of the database at ``db_path`` at ``now``; ``store_name`` limits the
    per-store checks to one store (the database and the lock are always checked)."""
    report = Report(checked_at=now)
    try:
        store = Store.open_readonly(db_path)
    except CrossshipError as exc:
        report.add(CRITICAL, "database", exc.message)
        return report
    try:
        _check(store, db_path, now, store_name, report, hooks)
    except sqlite3.DatabaseError as exc:
        report.add(
            CRITICAL,
            "database",
            _("database {path} cannot be read: {error}").format(path=db_path, error=exc),
        )
    finally:
        store.close()
    return report


def _check(
    store: Store,
    db_path: Path,
    now: datetime,
    store_name: str | None,
    report: Report,
    hooks: Mapping[str, HealthHook] | None,
) -> None:
    verdict = store.quick_check()
    if verdict != ["ok"]:
        report.add(
            CRITICAL,
            "database",
            _("database {path} fails PRAGMA quick_check: {findings}").format(
                path=db_path, findings="; ".join(verdict)
            ),
            findings=verdict,
        )
        return
    pending = store.pending_migrations()
    if pending:
        report.add(
            WARNING,
            "schema",
            _(
                "the database lacks migrations {migrations}: the next crossship run applies them"
            ).format(migrations=", ".join(pending)),
            migrations=pending,
        )
        if "0001_initial" in pending:
            return
    rows = [store.get_store(store_name)] if store_name else store.list_stores()
    report.stores = len(rows)
    started = [r for r in rows if r["started"]]
    for row in started:
        _check_jobs(store, row, now, report)
    _check_batches(store, rows, now, report)
    _check_orders(store, store_name, now, report)
    for row in started:
        _check_mall(row, now, report, hooks)
    every_started = store.list_stores(started=True)
    _check_lock(db_path, every_started, now, report)


def _check_jobs(store: Store, row: dict, now: datetime, report: Report) -> None:
    interval = timedelta(minutes=row["interval_minutes"])
    name = row["name"]
    for job in JOBS:
        last = store.latest_run(name, job)
        if last is None:
            age = now - from_db(row["created_at"])
            if age > LATE_INTERVALS * interval:
                report.add(
                    WARNING,
                    "job_never_ran",
                    _(
                        "started, but `{command}` has never run for it: is the crontab or the "
                        "systemd timer installed?"
                    ).format(command=_command(job)),
                    name,
                    job=job,
                )
            continue
        age = now - from_db(last["started_at"])
        if age > LATE_INTERVALS * interval:
            report.add(
                CRITICAL,
                "job_late",
                _(
                    "`{command}` last ran {ago} ago ({last_run}), "
                    "more than {intervals} intervals of {interval}: is cron running it?"
                ).format(
                    command=_command(job),
                    ago=_ago(age),
                    last_run=local_iso(last["started_at"]),
                    intervals=LATE_INTERVALS,
                    interval=_span(interval),
                ),
                name,
                job=job,
                last_run=local_iso(last["started_at"]),
                interval_minutes=row["interval_minutes"],
            )
        elif last["outcome"] == "failed":
            summary = json.loads(last["summary"] or "{}")
            why = "; ".join(filter(None, _run_problems(summary)))
            report.add(
                WARNING,
                "run_failed",
                (
                    _("the last `{command}` ({last_run}) failed: {why}")
                    if why
                    else _("the last `{command}` ({last_run}) failed")
                ).format(command=_command(job), last_run=local_iso(last["started_at"]), why=why),
                name,
                job=job,
                last_run=local_iso(last["started_at"]),
            )


def _check_batches(store: Store, rows: list[dict], now: datetime, report: Report) -> None:
    by_name = {r["name"]: r for r in rows}
    waiting = store.batches(states=(*BATCH_OPEN_STATES, "submitted"))
    for batch in waiting:
        row = by_name.get(batch["store"])
        if row is None:
            continue
        deadline = timedelta(hours=row["result_deadline_hours"])
        since = batch["submitted_at"] or batch["created_at"]
        age = now - from_db(since)
        if age <= deadline / 2:
            continue
        mall_id = batch.get("mall_id") or batch.get("feed_id")
        state = batch["state"]
        if state == "submitted":
            said = _(
                "batch {batch_id} ({mall_id}) has waited {ago} for its result, past half its "
                "{deadline} result deadline ({orders} orders 連携中): check `{fetch}` and `{show}`"
            )
        else:
            said = _(
                "batch {batch_id} ({mall_id}) has waited {ago} in state {state}, past half its "
                "{deadline} result deadline ({orders} orders 連携中): check `{fetch}` and `{show}`"
            )
        report.add(
            CRITICAL,
            "batch_waiting",
            said.format(
                batch_id=batch["id"],
                mall_id=mall_id or _("no mall id yet"),
                ago=_ago(age),
                state=state,
                deadline=_span(deadline),
                orders=batch["order_count"],
                fetch="crossship results fetch",
                show=f"crossship batches show {batch['id']}",
            ),
            batch["store"],
            batch_id=batch["id"],
            mall_id=mall_id,
            state=state,
            since=local_iso(since),
            orders=batch["order_count"],
        )


def _check_orders(store: Store, store_name: str | None, now: datetime, report: Report) -> None:
    for group in store.failed_order_summary(store_name):
        status, count = group["status"], group["count"]
        report.add(
            WARNING,
            "orders_failed",
            ngettext(
                "{count} order {label} ({status}), the oldest {order_no} since {since}: "
                "see `{command}`",
                "{count} orders {label} ({status}), the oldest {order_no} since {since}: "
                "see `{command}`",
                count,
            ).format(
                count=count,
                label=label_of(status),
                status=status,
                order_no=group["order_no"],
                since=local_iso(group["since"]),
                command=f"crossship orders list --store {group['store']} --api-status {status}",
            ),
            group["store"],
            status=status,
            count=count,
            oldest_order_no=group["order_no"],
            oldest_since=local_iso(group["since"]),
        )


def _check_mall(
    row: dict, now: datetime, report: Report, hooks: Mapping[str, HealthHook] | None
) -> None:
    hook = (hooks if hooks is not None else mall_hooks()).get(row["mall"])
    if hook is None:
        return
    for level, text in hook(row, now):  # the row's mall_settings come decoded from the Store
        report.add(
            level if level in (WARNING, CRITICAL) else WARNING, "credentials", text, row["name"]
        )


def mall_hooks() -> dict[str, HealthHook]:
    """Each installed mall's ``health`` check (Mall.health), by mall key."""
    from crossship import malls

    return {key: m.health for key, m in malls.registry().items() if m.health is not None}


def _check_lock(db_path: Path, started: list[dict], now: datetime, report: Report) -> None:
    held = lock.holder(db_path)
    if held is None:
        return
    minutes = min((r["interval_minutes"] for r in started), default=DEFAULT_INTERVAL)
    limit = LOCK_INTERVALS * timedelta(minutes=minutes)
    age = now - from_db(held.since)
    if age > limit:
        report.add(
            CRITICAL,
            "lock_held",
            _(
                "the run lock has been held for {ago} by process {pid} (since "
                "{since}), longer than {intervals} intervals of "
                "{interval}: every run meanwhile does nothing; see what "
                "process {pid} is doing"
            ).format(
                ago=_ago(age),
                pid=held.pid,
                since=local_iso(held.since),
                intervals=LOCK_INTERVALS,
                interval=_span(timedelta(minutes=minutes)),
            ),
            pid=held.pid,
            since=local_iso(held.since),
        )


def _command(job: str) -> str:
    return "crossship notify run" if job == "notify" else "crossship results fetch"


def _run_problems(summary: Mapping[str, Any]) -> list[str]:
    """A failed run's problems and mail error in the reader's language: from their keys when
    the run kept them, else as recorded (English, or a record from before keys were kept)."""
    texts = list(summary.get("problems") or [])
    kept = list(summary.get("problems_kept") or [])
    kept += [None] * (len(texts) - len(kept))  # a record from before problems were kept
    shown = [render_stored(text, key) for text, key in zip(texts, kept, strict=False)]
    if summary.get("mail_error"):
        shown.append(render_stored(summary["mail_error"], summary.get("mail_error_kept")))
    return shown


def _ago(age: timedelta) -> str:
    minutes = max(int(age.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("{days}d {hours}h").format(days=days, hours=hours)
    if hours:
        return _("{hours}h {minutes}m").format(hours=hours, minutes=minutes)
    return _("{minutes}m").format(minutes=minutes)


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 60 == 0:
        return _("{hours}h").format(hours=minutes // 60)
    return _("{minutes} min").format(minutes=minutes)
