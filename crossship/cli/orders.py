"""`crossship orders import|list|show|move|update` (CROSS MALL help: Amazon自動出荷通知, 5-3)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import click
from tabulate import tabulate

from crossship import i18n, importer, settings
from crossship.cli.app import App, cli, output_options, pass_app
from crossship.cli.progress import progress
from crossship.errors import UsageError
from crossship.i18n import _
from crossship.output import headings, shown_values, table_row, write_record, write_rows
from crossship.statuses import label_of, parse_status
from crossship.store import ORDER_FIELDS as STORE_ORDER_FIELDS
from crossship.store import HistoryFilter
from crossship.timeutil import local_iso, to_db

# completion / complete_due: a follow-up after success (Yahoo 完了: scheduled, done, failed)
ORDER_FIELDS = (
    *STORE_ORDER_FIELDS,
    "status",
    "status_label",
    "message",
    "warning",
    "completion",
    "complete_due",
)
# people read the label; the key is for tools
TABLE_FIELDS = tuple(f for f in ORDER_FIELDS if f not in ("status", "message", "complete_due"))
TABLE_HEADERS = {"status_label": "status"}
ITEM_FIELDS = ("line", "item_id", "sku", "quantity")
HISTORY_FIELDS = (
    "time",
    "status",
    "status_label",
    "warning",
    "batch_id",
    "feed_id",
    "source",
    "operator",
    "message",
)


@cli.group()
def orders() -> None:
    """Orders (注文): import them, find them by API status, move them between phases."""


def _with_label(rows: Iterable[dict]) -> Iterator[dict]:
    language = i18n.current()
    for row in rows:
        row["status_label"] = label_of(row["status"])
        if row.get("complete_due"):
            row["complete_due"] = local_iso(row["complete_due"])
        if row.get("message_key"):
            row["message"] = i18n.render_stored(row["message"], row["message_key"], language)
        yield row


# ----------------------------------------------------------------------------- import


@orders.command("import")
@click.argument("file", metavar="FILE|-")
@click.option(
    "--encoding",
    type=click.Choice(importer.ENCODINGS),
    default="auto",
    show_default=True,
    help="auto: UTF-8 (with or without BOM) if it decodes, else cp932 (Shift_JIS).",
)
@pass_app
def orders_import(app: App, file: str, encoding: str) -> None:
    """Import orders from a CSV file (or - for stdin), one row per item line.

    Headings are the English keys or CROSS MALL's Japanese ones (管理番号, 店舗, 注文番号,
    処理フェーズ, 管理区分, FBA, 同梱親, 分割元, 発送日, 配送便, 配送番号, 注文商品番号, SKU, 数量).
    The whole file is checked first: one bad row and nothing is imported. Re-importing an order
    updates it but never changes its API status.

    \b
    Example:
      crossship orders import examples/orders.csv
      iconv -f utf-8 -t cp932 orders.csv | crossship orders import - --encoding cp932
    """
    label = _("importing") if file == "-" else _("importing {name}").format(name=Path(file).name)
    with _open_source(file) as source, progress(app, label) as bar:
        summary = importer.import_file(
            app.store, source, encoding=encoding, now=to_db(app.clock()), progress=bar
        )
    if summary.ignored_columns:
        app.warn(
            _("columns ignored (not known): {columns}").format(
                columns=", ".join(summary.ignored_columns)
            )
        )
    app.say(
        _(
            "Imported {orders} orders ({new} new, {updated} updated), "
            "{items} item lines ({encoding})."
        ).format(
            orders=summary.orders,
            new=summary.new,
            updated=summary.updated,
            items=summary.items,
            encoding=summary.encoding,
        )
    )


class _open_source:
    """A seekable binary stream over FILE, or over stdin spooled to a temporary file (the
    import reads its input twice)."""

    def __init__(self, file: str):
        self.file = file
        self.stream: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if self.file == "-":
            spool = tempfile.TemporaryFile()
            shutil.copyfileobj(sys.stdin.buffer, spool)
            spool.seek(0)
            self.stream = spool
            return spool
        path = Path(self.file)
        try:
            self.stream = path.open("rb")
        except FileNotFoundError:
            raise UsageError(_("no such file: {file}").format(file=self.file)) from None
        except IsADirectoryError:
            raise UsageError(
                _("{file} is a directory: give a CSV file").format(file=self.file)
            ) from None
        except OSError as exc:
            raise UsageError(
                _("cannot read {file}: {error}").format(file=self.file, error=exc.strerror)
            ) from None
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.close()


# ----------------------------------------------------------------------------- list / show


@orders.command("list")
@click.option("--store", metavar="S", help="Only this store's orders.")
@click.option("--phase", metavar="P", help="Only orders in this phase.")
@click.option(
    "--api-status",
    "api_statuses",
    multiple=True,
    metavar="S",
    help="API status key or label (pending / 未連携, error / エラー, ...); repeat for several.",
)
@output_options
@pass_app
def orders_list(
    app: App, store: str | None, phase: str | None, api_statuses: tuple[str, ...], fmt: str
) -> None:
    """List orders, for example those whose notification failed (as 【注文処理>注文一括処理】).

    \b
    Example:
      crossship orders list --api-status エラー --api-status 通知失敗
      crossship orders list --store amazon-main --api-status 未連携 --format jsonl
    """
    statuses = list(dict.fromkeys(parse_status(s).value for s in api_statuses))
    if store:
        app.store.get_store(store)
    if phase:
        app.store.get_phase(phase)
    rows = _with_label(app.store.iter_orders(store=store, phase=phase, statuses=statuses))
    if fmt == "table":
        write_rows(
            rows,
            TABLE_FIELDS,
            fmt,
            sys.stdout,
            headers=TABLE_HEADERS,
            on_truncate=lambda n: app.warn(
                _(
                    "the table shows the first {count} orders: use --format csv or jsonl for all"
                ).format(count=n)
            ),
        )
    else:
        write_rows(rows, ORDER_FIELDS, fmt, sys.stdout)


@orders.command("show")
@click.argument("order_no")
@output_options
@pass_app
def orders_show(app: App, order_no: str, fmt: str) -> None:
    """Show one order: its fields, API status and message, item lines and history.

    \b
    Example:
      crossship orders show 10001
    """
    order = app.store.get_order(order_no)
    record = {f: order.get(f) for f in ORDER_FIELDS}
    record["status_label"] = label_of(order["status"])
    if record.get("complete_due"):
        record["complete_due"] = local_iso(record["complete_due"])
    record["message"] = i18n.render_stored(order["message"], order.get("message_key"))
    record["batch_id"] = order["batch_id"]
    record["updated_at"] = local_iso(order["updated_at"])
    items = [{f: i[f] for f in ITEM_FIELDS} for i in app.store.order_items(order_no)]
    history = []
    for row in app.store.iter_history(HistoryFilter(order_no=order_no), i18n.current()):
        row["time"] = local_iso(row["time"])
        row["status_label"] = label_of(row["status"])
        history.append({f: row.get(f) for f in HISTORY_FIELDS})
    if fmt in ("json", "jsonl"):
        write_record({**record, "items": items, "history": history}, fmt, sys.stdout)
        return
    if fmt in ("csv", "tsv"):
        raise UsageError(_("orders show prints one order: use --format table, json or jsonl"))
    write_record(record, fmt, sys.stdout)
    out = sys.stdout
    out.write("\n" + _("item lines:") + "\n")
    if items:
        titles = [headings().get(f, f) for f in ITEM_FIELDS]
        out.write(tabulate([[i[f] for f in ITEM_FIELDS] for i in items], headers=titles))
        out.write("\n")
    else:
        out.write(_("(none: the order is sent as a whole)") + "\n")
    out.write("\n" + _("history (newest first):") + "\n")
    if history:
        shown = [f for f in HISTORY_FIELDS if f != "status"]
        words = shown_values(shown)
        rows = [table_row(h, shown, words) for h in history]
        names = headings()
        titles = [names.get(f, f) for f in ("status" if f == "status_label" else f for f in shown)]
        out.write(tabulate(rows, headers=titles))
        out.write("\n")
    else:
        out.write(_("(none yet)") + "\n")


# ----------------------------------------------------------------------------- move / update


@orders.command("move")
@click.argument("order_nos", metavar="ORDER_NO...", nargs=-1, required=True)
@click.option("--to", "phase", required=True, metavar="PHASE", help="The phase to move to.")
@click.option(
    "--ship-date",
    metavar="YYYY-MM-DD",
    help="Also set this ship date; needed for orders without one when PHASE requires it.",
)
@pass_app
def orders_move(app: App, order_nos: tuple[str, ...], phase: str, ship_date: str | None) -> None:
    """Move orders into PHASE (all or none).

    Refused when PHASE's ship-date setting is required (必須) and an order has no ship date,
    unless --ship-date is given.

    \b
    Example:
      crossship orders move 10001 10002 --to 出荷済み --ship-date 2026-11-27
    """
    edit = settings.move_orders(app.store, order_nos, phase, ship_date, to_db(app.clock()))
    for warning in edit.warnings:
        app.warn(warning)
    said = (
        _("Moved {count} order(s) to {phase} with ship date {ship_date}.")
        if ship_date
        else _("Moved {count} order(s) to {phase}.")
    )
    app.say(said.format(count=len(edit.order_nos), phase=phase, ship_date=ship_date))


@orders.command("update")
@click.argument("order_no")
@click.option("--ship-date", metavar="YYYY-MM-DD", help='Ship date (発送日); "" clears it.')
@click.option(
    "--carrier", metavar="C", help='Carrier (配送便), one of `config carrier list`; "" clears.'
)
@click.option("--tracking-number", metavar="T", help='Tracking number (配送番号); "" clears it.')
@pass_app
def orders_update(
    app: App,
    order_no: str,
    ship_date: str | None,
    carrier: str | None,
    tracking_number: str | None,
) -> None:
    """Change an order's ship date, carrier or tracking number.

    \b
    Example:
      crossship orders update 10001 --carrier ヤマト運輸 --tracking-number 123456789012
    """
    edit = settings.update_order(
        app.store,
        order_no,
        ship_date=ship_date,
        carrier=carrier,
        tracking_number=tracking_number,
        now=to_db(app.clock()),
    )
    for warning in edit.warnings:
        app.warn(warning)
    app.say(_("Order {order_no} updated.").format(order_no=order_no))
