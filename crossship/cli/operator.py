"""What the operator does by hand: `history`, `status set`, `export feed`
(CROSS MALL help: Amazon自動出荷通知, 5-1, 6 and 7)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import click

from crossship import i18n, manual, prune
from crossship.cli.app import App, cli, finish, output_options, pass_app
from crossship.errors import UsageError
from crossship.i18n import _
from crossship.lock import RunLock
from crossship.output import write_rows
from crossship.statuses import LABELS

# people read the label; the key is for tools
TABLE_FIELDS = tuple(f for f in manual.HISTORY_FIELDS if f != "status")
TABLE_HEADERS = {"status_label": "status"}
LABEL_HELP = ", ".join(f"{s.value} ({label})" for s, label in LABELS.items())


# ------------------------------------------------------------------------------- history


@cli.group("history", invoke_without_command=True)
@click.option("--store", "store_name", metavar="NAME", help="Only this store.")
@click.option("--order", "order_no", metavar="ORDER_NO", help="Only this order (管理番号).")
@click.option("--status", metavar="STATUS", help=f"Only this API status: {LABEL_HELP}.")
@click.option(
    "--since",
    metavar="TIME",
    help="From this time: 2026-11-27, 2026-11-27T09:00, or an age: 30m, 2h, 7d.",
)
@click.option("--until", metavar="TIME", help="Up to this time (same forms as --since).")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N rows (newest).")
@click.option("--warnings-only", is_flag=True, help="Only rows that carry a warning.")
@output_options
@pass_app
def history_command(
    app: App,
    store_name: str | None,
    order_no: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    warnings_only: bool,
    fmt: str,
) -> None:
    """Show the notification history (as 【注文処理>Amazon出荷通知連携履歴】), newest first.

    One row per order per event: the time, the batch and Amazon's feedId, the API status it got,
    the message (what to fix), whether a warning came with it, and who did it (auto or manual,
    and the operator).

    \b
    Examples:
      crossship history --status エラー --since 1d
      crossship history --order 10001
      crossship history --format jsonl | head

    Old rows go with `crossship history prune` (see its --help).
    """
    if click.get_current_context().invoked_subcommand is not None:
        return  # `history prune`
    f = manual.history_filter(
        app.store,
        store_name=store_name,
        order_no=order_no,
        status=status,
        since=since,
        until=until,
        limit=limit,
        warnings_only=warnings_only,
        now=app.clock(),
    )
    if fmt in ("json", "jsonl"):
        _write_json(manual.history_json(app.store, f), fmt, sys.stdout.buffer)
        return
    if fmt in ("csv", "tsv"):
        delimiter = "," if fmt == "csv" else "\t"
        _write_lines(
            delimiter.join(manual.HISTORY_FIELDS).encode(),
            manual.history_csv(app.store, f, delimiter),
            sys.stdout.buffer,
        )
        return
    rows = manual.history_rows(app.store, f)
    if fmt != "table":
        write_rows(rows, manual.HISTORY_FIELDS, fmt, sys.stdout)
        return
    shown = write_rows(
        (r | {"warning": _("yes") if r["warning"] else ""} for r in rows),
        TABLE_FIELDS,
        "table",
        sys.stdout,
        headers=TABLE_HEADERS,
        on_truncate=lambda n: app.warn(
            _(
                "only the newest {count} rows are shown: narrow them down, or use --limit or "
                "--format jsonl for all"
            ).format(count=n)
        ),
    )
    if not shown:
        app.say(_("No history rows match."))


def _write_lines(header: bytes, chunks: Iterable[list[bytes]], out: BinaryIO) -> None:
    """csv / tsv: the header, then each line, "\n" after each."""
    out.write(header + b"\n")
    for lines in chunks:
        out.write(b"\n".join(lines))
        out.write(b"\n")


@history_command.command("prune")
@click.option(
    "--before",
    required=True,
    metavar="DATE",
    help="Delete what is older: 2026-08-01 (local midnight), an ISO time, or an age: 90d.",
)
@click.option("--vacuum", is_flag=True, help="Then VACUUM: give the freed space back to the disk.")
@pass_app
def history_prune(app: App, before: str, vacuum: bool) -> None:
    """Delete history rows, finished batches and run records older than DATE.

    Finished batches (正常 / エラー results, 通知失敗, 通知結果取得失敗, released) go with their
    feed and report; orders and batches still open or waiting for their result are never
    touched, nor the newest run of each store and job. Rows go in small chunks, so runs can go
    on meanwhile; --vacuum rewrites the file at the end and waits for the run lock.

    \b
    Examples:
      crossship history prune --before 2026-08-01
      crossship history prune --before 180d --vacuum
    To prune at every `results fetch`: crossship config history set --keep-days 180
    """
    cutoff = prune.parse_before(before, app.clock())
    if vacuum:
        with RunLock(app.db_path, app.clock()):
            result = prune.prune(app.store, cutoff, vacuum=True)
    else:
        result = prune.prune(app.store, cutoff)
    app.say(result.summary()[0].upper() + result.summary()[1:])
    if result.size_before is not None and result.size_after is not None:
        app.say(
            _("VACUUM: {before} → {after}").format(
                before=_mb(result.size_before), after=_mb(result.size_after)
            )
        )


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _write_json(chunks: Iterable[list[bytes]], fmt: str, out: BinaryIO) -> None:
    """jsonl: one object a line; json: one array, laid out as output.write_rows lays it out."""
    if fmt == "jsonl":
        for objects in chunks:
            out.write(b"\n".join(objects))
            out.write(b"\n")
        return
    first = True
    out.write(b"[")
    for objects in chunks:
        out.write(b"\n " if first else b",\n ")
        out.write(b",\n ".join(objects))
        first = False
    out.write(b"]\n" if first else b"\n]\n")


# ------------------------------------------------------------------------------- status set


@cli.group("status")
def status_group() -> None:
    """Change the API status (出荷通知APIステータス) of orders by hand.

    As CROSS MALL's 「出荷通知APIステータス変更」 on 【注文処理>注文一括処理】.
    """


@status_group.command("set")
@click.argument("order_nos", nargs=-1, metavar="ORDER_NO...|-")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="STATUS",
    help="pending (未連携): notify again; success (正常): Amazon has it already.",
)
@click.option(
    "--move-to",
    metavar="PHASE",
    help="Also move the orders into PHASE (a target phase, to notify them again).",
)
@click.option("--operator", metavar="NAME", help="Who does this, for the history (default: login).")
@click.option("--reason", metavar="TEXT", help="Why, for the history.")
@pass_app
def status_set(
    app: App,
    order_nos: tuple[str, ...],
    to: str,
    move_to: str | None,
    operator: str | None,
    reason: str | None,
) -> None:
    """Set orders' API status to 未連携 (pending) or 正常 (success); - reads numbers from stdin.

    Refused, each with its reason, for orders of non-Amazon stores, FBA orders and orders 連携中
    (in_progress); the others change in one transaction, each with a history row naming the
    operator and the old and new status. Exit 1 when any order was refused.

    \b
    Notify an order again (CROSS MALL help 7, 方法1): set it 未連携 and move it into a target phase;
    the next `notify run` sends it:
      crossship status set 10001 --to pending --move-to 出荷済み --reason "carrier fixed"
    After uploading a file by hand in Seller Central:
      crossship status set 10001 10002 --to 正常
    """
    numbers = manual.order_numbers(order_nos, _stdin_if_asked(order_nos))
    result = manual.set_statuses(
        app.store,
        numbers,
        to,
        move_to=move_to,
        operator=operator,
        reason=reason,
        now=app.clock(),
    )
    for changed in result.changed:
        said = (
            _("{order_no}: {old} → {new}, moved {moved_from} → {phase}")
            if changed.moved_from
            else _("{order_no}: {old} → {new}")
        )
        app.say(
            said.format(
                order_no=changed.order_no,
                old=changed.old.label,
                new=changed.new.label,
                moved_from=changed.moved_from,
                phase=changed.phase,
            )
        )
    for note in result.notes:
        app.warn(note)
    for refusal in result.refused:
        app.fail(
            _("Refused {order_no}: {reason}").format(
                order_no=refusal.order_no, reason=i18n.render(refusal.text)
            )
        )
    moved = sum(1 for c in result.changed if c.moved_from)
    if result.move_to and result.refused:
        said = _("Set {count} order(s) to {target}, moved {moved} to {phase}; refused {refused}.")
    elif result.move_to:
        said = _("Set {count} order(s) to {target}, moved {moved} to {phase}.")
    elif result.refused:
        said = _("Set {count} order(s) to {target}; refused {refused}.")
    else:
        said = _("Set {count} order(s) to {target}.")
    summary = said.format(
        count=len(result.changed),
        target=f"{result.to.label} ({result.to.value})",
        moved=moved,
        phase=result.move_to,
        refused=len(result.refused),
    )
    if result.refused:
        app.fail(summary)
    else:
        app.say(summary)
    finish(app)


def _stdin_if_asked(words: tuple[str, ...]) -> str | None:
    if "-" not in words:
        return None
    return sys.stdin.read()


# ------------------------------------------------------------------------------- export feed


@cli.group("export")
def export_group() -> None:
    """Write files to upload by hand in Seller Central (CROSS MALL help 7, 方法2)."""


@export_group.command("feed")
@click.argument("order_nos", nargs=-1, metavar="[ORDER_NO...|-]")
@click.option("--store", "store_name", required=True, metavar="NAME", help="The Amazon store.")
@click.option("--phase", metavar="PHASE", help="Every order of the store in PHASE.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the file here (atomically) instead of stdout.",
)
@pass_app
def export_feed(
    app: App, order_nos: tuple[str, ...], store_name: str, phase: str | None, output: Path | None
) -> None:
    """Write the shipment-confirmation flat file (出荷通知ファイル) for chosen orders.

    The same bytes `notify run` would send for those orders, for an upload by hand in Seller
    Central. Nothing changes here: a manual upload never updates the API status; set it
    afterwards with `crossship status set ... --to success`. With --phase, every order of the store
    in PHASE whatever its API status, but FBA orders, bundled children and orders whose 管理区分
    is not normal. Orders that fail the checks are listed with the reason and left out (exit 1).

    \b
    Examples:
      crossship export feed --store amazon-main --phase 出荷済み -o shipconfirm.txt
      crossship export feed --store amazon-main 10001 10002 > shipconfirm.txt
    """
    numbers = manual.order_numbers(order_nos, _stdin_if_asked(order_nos)) if order_nos else []
    result = manual.export_feed(app.store, store_name, phase=phase, order_nos=numbers)
    for kind, count in sorted(result.left_out.items()):
        app.say(manual.left_out_text(kind, count))
    for warning in result.warnings:
        app.warn(f"{warning.order_no}: {i18n.render(warning.text)}")
    for refusal in result.refused:
        app.fail(
            _("Left out {order_no}: {reason}").format(
                order_no=refusal.order_no, reason=i18n.render(refusal.text)
            )
        )
    if not result.feeds:
        app.fail(_("Error: {message}").format(message=_("no order to export: nothing written")))
        finish(app)
        return
    size = sum(len(d) for d in result.feeds)
    counts = {"orders": len(result.order_nos), "rows": result.rows, "size": size}
    if output is None:
        if len(result.feeds) > 1:
            raise UsageError(
                _(
                    "the file would pass Amazon's 10 MiB limit, so it is split into "
                    "{count} files: write them with -o FILE"
                ).format(count=len(result.feeds))
            )
        sys.stdout.buffer.write(result.feeds[0])
        app.say(_("Exported {orders} order(s), {rows} row(s), {size} bytes.").format(**counts))
    else:
        paths = manual.part_paths(output, len(result.feeds))
        for path, data in zip(paths, result.feeds, strict=True):
            manual.write_atomically(path, data)
        app.say(
            _("Exported {orders} order(s), {rows} row(s), {size} bytes to {paths}.").format(
                paths=", ".join(str(p) for p in paths), **counts
            )
        )
    finish(app)
