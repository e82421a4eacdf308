"""The cron jobs (`notify run`, `results fetch`) and the batches they leave (`batches ...`)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from crossship import malls, prune, shell
from crossship.cli.app import App, cli, finish, output_options, pass_app
from crossship.cli.progress import progress
from crossship.errors import UsageError
from crossship.i18n import Message, _, ngettext, render
from crossship.lock import RunLock
from crossship.notify import NotifyOptions, NotifyResult, notify_run
from crossship.output import batch_states, write_record, write_rows
from crossship.pool import DEFAULT_JOBS, MAX_JOBS
from crossship.results import results_fetch
from crossship.runs import StoreRun
from crossship.statuses import label_of
from crossship.timeutil import local_iso


def jobs_option(command: Callable) -> Callable:
    """``--jobs``: how many stores a job works on at once (both cron jobs)."""
    return click.option(
        "--jobs",
        type=click.IntRange(1, MAX_JOBS),
        default=DEFAULT_JOBS,
        show_default=True,
        envvar="CROSSSHIP_JOBS",
        show_envvar=True,
        help="Stores worked on at once; each store's calls keep their own mall's pace.",
    )(command)


@cli.group()
def notify() -> None:
    """Send shipment notifications (出荷通知) to the malls."""


@notify.command("run")
@click.option("--store", "store_name", metavar="NAME", help="Only this store.")
@click.option("--force", is_flag=True, help="Run even if the store's interval has not passed.")
@click.option(
    "--dry-run", is_flag=True, help="Print the feed(s) that would be sent; change nothing."
)
@jobs_option
@pass_app
def notify_run_command(
    app: App, store_name: str | None, force: bool, dry_run: bool, jobs: int
) -> None:
    """Send each started store's eligible orders as one feed (cron, every 15 minutes).

    Orders in a target phase, 管理区分 通常, 未連携, not FBA and not bundled children are
    checked, sent and set 連携中; orders that fail a check become エラー with the reason.
    """
    options = NotifyOptions(
        store=store_name,
        force=force,
        dry_run=dry_run,
        mail_transport=app.mail_transport,
        jobs=jobs,
    )
    store = app.store  # a missing database is said before any lock file is made beside it
    with RunLock(app.db_path, app.clock()), progress(app, "notify run") as bar:
        options.progress = bar
        result = notify_run(store, app.db_path, app.clock, options)
    if dry_run:
        _print_dry_run(app, result)
    _report(app, result)
    finish(app)


def _print_dry_run(app: App, result: NotifyResult) -> None:
    for feed in result.dry_feeds:
        app.say(
            _("{store}: would send {rows} rows ({size} bytes)").format(
                store=feed.store, rows=feed.rows, size=len(feed.data)
            )
        )
        click.echo(feed.data, nl=False)  # bytes: written as they are, in the feed's encoding
    if not result.dry_feeds:
        app.say(_("nothing would be sent"))


@cli.group()
def results() -> None:
    """Learn what the malls did with the sent batches."""


@results.command("fetch")
@click.option("--store", "store_name", metavar="NAME", help="Only this store.")
@click.option("--force", is_flag=True, help="Run even if the store's interval has not passed.")
@jobs_option
@pass_app
def results_fetch_command(app: App, store_name: str | None, force: bool, jobs: int) -> None:
    """Fetch Amazon's processing reports and give each sent order its final status (cron).

    正常 orders move to their target's destination phase; エラー / 通知失敗 / 通知結果取得失敗
    stay where they are, with Amazon's message in the history.
    """
    store = app.store  # a missing database is said before any lock file is made beside it
    with RunLock(app.db_path, app.clock()):
        with progress(app, "results fetch") as bar:
            result = results_fetch(
                store,
                app.db_path,
                app.clock,
                store_name=store_name,
                force=force,
                mail_transport=app.mail_transport,
                jobs=jobs,
                progress=bar,
            )
        pruned = prune.apply_keep_days(app.store, app.clock())  # `config history --keep-days`
    _report(app, result)
    if pruned is not None and pruned.deleted:
        app.say(_("history: {summary}").format(summary=pruned.summary()))
    finish(app)


def _report(app: App, result: NotifyResult) -> None:
    """One line per store on stderr; failures always, the rest unless -q. The runs' messages
    (Messages, or the malls' own words) are shown in the reader's language."""
    if not result.runs:
        app.say(_("nothing to do: no Amazon store is started (`crossship auto start STORE`)"))
    for run in result.runs:
        if run.skipped:
            app.say(
                _("{store}: skipped, {reason}").format(store=run.store, reason=render(run.skipped))
            )
        elif run.dry_run:
            # a rehearsal shows every order it would refuse or warn about, -v or not
            for failure in run.failures:
                app.say(
                    _("{store}: would be {status}: {order_no}: {message}").format(
                        store=run.store,
                        status=failure["status_label"],
                        order_no=failure["order_no"],
                        message=render(failure["message"]),
                    )
                )
            for warning in run.warnings:
                app.say(
                    _("{store}: warning: {order_no}: {message}").format(
                        store=run.store,
                        order_no=warning["order_no"],
                        message=render(warning["message"]),
                    )
                )
        else:
            for line in run.said:
                app.say(f"{run.store}: {render(line)}")
            mall = malls.find(app.store.get_store(run.store)["mall"])
            app.say(f"{run.store}: {_describe(run, mall)}")
            if app.verbose:
                for note in run.notes:
                    app.say(_("  note: {note}").format(note=render(note)))
                for warning in run.warnings:
                    app.say(
                        _("  warning: {order_no}: {message}").format(
                            order_no=warning["order_no"], message=render(warning["message"])
                        )
                    )
                for failure in run.failures:
                    app.say(
                        f"  {failure['status_label']}: {failure['order_no']}: "
                        f"{render(failure['message'])}"
                    )
        for problem in run.problems:
            app.fail(
                _("Error: {store}: {problem}").format(store=run.store, problem=render(problem))
            )
        if run.mail_error:
            app.fail(
                _("Error: {store}: {problem}").format(
                    store=run.store, problem=render(run.mail_error)
                )
            )
        needing = {s: run.count(s) for s in OPERATOR_STATUSES if run.count(s)}
        if app.quiet and needing and not run.dry_run:
            # cron mails MAILTO on any output: the operator hears of them even when the
            # product's own mail is broken
            counts = ", ".join(f"{label_of(s)} {n}" for s, n in needing.items())
            command = " ".join(
                ["crossship", "orders", "list", "--store", shell.word(run.store)]
                + [part for s in needing for part in ("--api-status", s)]
            )
            app.fail(
                _("{store}: {count} orders need you ({counts}): {command}").format(
                    store=run.store, count=sum(needing.values()), counts=counts, command=command
                )
            )


# the API statuses that stay until the operator acts (エラー, 通知失敗, 通知結果取得失敗)
OPERATOR_STATUSES = ("error", "notify_failed", "result_failed")


def _describe(run: StoreRun, mall: malls.Mall | None) -> str:
    """A store's run in one line, what it sent named in its mall's word (feed, request, ...)."""
    unit = Message(mall.unit if mall else "request").render()
    parts = []
    if run.job == "notify":
        parts.append(
            ngettext("sent {count} order", "sent {count} orders", run.sent).format(count=run.sent)
        )
        if run.feed_ids:
            parts.append(_("{unit} {ids}").format(unit=unit, ids=", ".join(run.feed_ids)))
    elif run.feed_ids or not (mall and mall.synchronous):  # Yahoo's answers came at once
        count = len(run.feed_ids)
        parts.append(
            ngettext("{count} {unit} with results", "{count} {unit}s with results", count).format(
                count=count, unit=unit
            )
        )
    parts += [f"{label_of(k)} {n}" for k, n in sorted(run.statuses.items())]
    if run.moved:
        parts.append(_("moved {count}").format(count=run.moved))
    if run.warnings:
        parts.append(_("warnings {count}").format(count=len(run.warnings)))
    return ", ".join(parts) or _("nothing to do")


# ------------------------------------------------------------------------------- batches

BATCH_FIELDS = (
    "batch_id",
    "store",
    "feed_id",
    "state",
    "processing_status",
    "created",
    "submitted",
    "finished",
    "orders",
    "rows",
    "processed",
    "successful",
    "note",
    "last_error",
)


def _batch_view(row: dict) -> dict:
    return {
        "batch_id": row["id"],
        "store": row["store"],
        "feed_id": row["feed_id"],
        "state": row["state"],
        "processing_status": row["processing_status"],
        "created": local_iso(row["created_at"]),
        "submitted": local_iso(row["submitted_at"]),
        "finished": local_iso(row["finished_at"]),
        "orders": row["order_count"],
        "rows": row["row_count"],
        "processed": row["processed"],
        "successful": row["successful"],
        "note": row["note"],
        "last_error": row["last_error"],
    }


@cli.group()
def batches() -> None:
    """Look at the batches (one feed each) sent to the malls."""


@batches.command("list")
@click.option("--store", "store_name", metavar="NAME", help="Only this store.")
@click.option("--state", "states", multiple=True, help="Only batches in this state (repeatable).")
@output_options
@pass_app
def batches_list(app: App, store_name: str | None, states: tuple[str, ...], fmt: str) -> None:
    """List batches: feedId, state, times and counts, oldest first."""
    if store_name:
        app.store.get_store(store_name)
    states = tuple(_batch_state(text) for text in states)
    rows = (_batch_view(b) for b in app.store.batches(store=store_name, states=states))
    write_rows(rows, BATCH_FIELDS, fmt, sys.stdout)


def _batch_state(text: str) -> str:
    """A batch state given to --state: its key, or the word a table shows for it."""
    words = batch_states()
    for key, word in words.items():
        if text.strip() in (key, word):
            return key
    raise UsageError(
        _("unknown batch state {text!r}: use one of {states}").format(
            text=text,
            states=", ".join(
                key if word == key else f"{key} ({word})" for key, word in words.items()
            ),
        )
    )


@batches.command("show")
@click.argument("batch_id", type=int)
@click.option(
    "--part",
    type=click.Choice(["summary", "feed", "report"]),
    default="summary",
    show_default=True,
    help="feed / report: print the exact bytes sent / Amazon's raw report, for piping.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def batches_show(app: App, batch_id: int, part: str, fmt: str) -> None:
    """Show one batch: its summary, its rows, the feed sent and Amazon's raw report."""
    batch = app.store.get_batch(batch_id)
    if part != "summary":
        data = batch["feed"] if part == "feed" else batch["report"]
        if data is None:
            app.fail(
                _("Error: batch {batch_id} has no {part} yet").format(batch_id=batch_id, part=part)
            )
        else:
            click.echo(data, nl=False)  # bytes: written as they are
        finish(app)
        return
    view = _batch_view(batch) | {
        "encoding": batch["encoding"],
        "content_type": batch["content_type"],
        "feed_document_id": batch["feed_document_id"],
        "result_document_id": batch["result_document_id"],
        "fetch_failures": batch["fetch_failures"],
    }
    view["order_nos"] = sorted({r["order_no"] for r in app.store.batch_rows(batch_id)})
    view["feed"] = batch["feed"].decode(_codec(batch["encoding"]), errors="replace")
    view["report"] = (
        _decode_report(batch["report"], batch["report_charset"]) if batch["report"] else None
    )
    if fmt == "json":
        write_record(view, "json", sys.stdout)
        return
    feed, report = view.pop("feed"), view.pop("report")
    view["order_nos"] = ", ".join(view["order_nos"])
    write_record(view, "table", sys.stdout)
    click.echo("\n" + _("--- feed sent ---"))
    click.echo(feed, nl=False)
    click.echo("\n" + _("--- Amazon's processing report ---"))
    click.echo(report if report is not None else _("(none yet)"))


def _codec(encoding: str) -> str:
    return "cp932" if encoding == "cp932" else "utf-8"


def _decode_report(data: bytes, charset: str | None) -> str:
    from crossship.amazon.report import decode_report

    return decode_report(data, charset)
