"""Listings on stdout: table, csv, tsv, json (one array) or jsonl, streamed row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from tabulate import tabulate

from crossship import i18n

FORMATS = ("table", "csv", "tsv", "json", "jsonl")
# tables are for people: they need every row to size columns, so cap what they hold in memory
TABLE_LIMIT = 10_000


def csv_field(value: str, delimiter: str = ",") -> str:
    """One text field as ``write_rows``' csv writer writes it (QUOTE_MINIMAL, "\n" line ends):
    quoted, its quotes doubled, when it holds the delimiter, a double quote or a newline."""
    if delimiter in value or '"' in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def pgettext(context: str, message: str) -> str:
    """``message`` in the current language, ``context`` telling apart the same English word."""
    return i18n.translations(i18n.current()).pgettext(context, message)


def headings() -> dict[str, str]:
    """The column headings of the tables people read, in their language, by field name (a field
    not named here is its own heading). csv, tsv, json and jsonl keep the field names."""
    return {
        "order_no": pgettext("heading", "order_no"),
        "store": pgettext("heading", "store"),
        "mall": pgettext("heading", "mall"),
        "mall_order_id": pgettext("heading", "mall_order_id"),
        "phase": pgettext("heading", "phase"),
        "category": pgettext("heading", "category"),
        "fba": pgettext("heading", "fba"),
        "bundle_parent": pgettext("heading", "bundle_parent"),
        "split_from": pgettext("heading", "split_from"),
        "ship_date": pgettext("heading", "ship_date"),
        "ship_date_label": pgettext("heading", "ship_date_label"),
        "carrier": pgettext("heading", "carrier"),
        "tracking_number": pgettext("heading", "tracking_number"),
        "status": pgettext("heading", "status"),
        "warning": pgettext("heading", "warning"),
        "message": pgettext("heading", "message"),
        "completion": pgettext("heading", "completion"),
        "batch_id": pgettext("heading", "batch_id"),
        "feed_id": pgettext("heading", "feed_id"),
        "time": pgettext("heading", "time"),
        "source": pgettext("heading", "source"),
        "operator": pgettext("heading", "operator"),
        "updated_at": pgettext("heading", "updated_at"),
        "name": pgettext("heading", "name"),
        "automatic": pgettext("heading", "automatic"),
        "target_phases": pgettext("heading", "target_phases"),
        "target_of": pgettext("heading", "target_of"),
        "move_to": pgettext("heading", "move_to"),
        "last_notify": pgettext("heading", "last_notify"),
        "last_notify_outcome": pgettext("heading", "last_notify_outcome"),
        "last_results": pgettext("heading", "last_results"),
        "last_results_outcome": pgettext("heading", "last_results_outcome"),
        "batches_in_flight": pgettext("heading", "batches_in_flight"),
        "line": pgettext("heading", "line"),
        "item_id": pgettext("heading", "item_id"),
        "sku": pgettext("heading", "sku"),
        "quantity": pgettext("heading", "quantity"),
        "status_label": pgettext("heading", "status_label"),
        "complete_due": pgettext("heading", "complete_due"),
        # a store's settings (`config store list/show`)
        "seller_id": pgettext("heading", "seller_id"),
        "marketplace_id": pgettext("heading", "marketplace_id"),
        "endpoint": pgettext("heading", "endpoint"),
        "token_url": pgettext("heading", "token_url"),
        "encoding": pgettext("heading", "encoding"),
        "interval_minutes": pgettext("heading", "interval_minutes"),
        "result_deadline_hours": pgettext("heading", "result_deadline_hours"),
        "time_budget_minutes": pgettext("heading", "time_budget_minutes"),
        "template": pgettext("heading", "template"),
        # the malls' own settings and secrets (`config store show`)
        "lwa_client_id": pgettext("heading", "lwa_client_id"),
        "lwa_client_secret": pgettext("heading", "lwa_client_secret"),
        "client_id": pgettext("heading", "client_id"),
        "client_secret": pgettext("heading", "client_secret"),
        "refresh_token": pgettext("heading", "refresh_token"),
        "service_secret": pgettext("heading", "service_secret"),
        "license_key": pgettext("heading", "license_key"),
        "license_expires": pgettext("heading", "license_expires"),
        "complete_after": pgettext("heading", "complete_after"),
        "public_key": pgettext("heading", "public_key"),
        "public_key_version": pgettext("heading", "public_key_version"),
        "public_key_expires": pgettext("heading", "public_key_expires"),
        "authorized_on": pgettext("heading", "authorized_on"),
        # the malls' codes of a carrier (`config carrier list`)
        "amazon_carrier_code": pgettext("heading", "amazon_carrier_code"),
        "amazon_carrier_name": pgettext("heading", "amazon_carrier_name"),
        "amazon_ship_method": pgettext("heading", "amazon_ship_method"),
        "rakuten_delivery_company": pgettext("heading", "rakuten_delivery_company"),
        "yahoo_ship_company": pgettext("heading", "yahoo_ship_company"),
        "yahoo_no_tracking_reason": pgettext("heading", "yahoo_no_tracking_reason"),
        # batches (`batches list/show`)
        "state": pgettext("heading", "state"),
        "processing_status": pgettext("heading", "processing_status"),
        "created": pgettext("heading", "created"),
        "submitted": pgettext("heading", "submitted"),
        "finished": pgettext("heading", "finished"),
        "orders": pgettext("heading", "orders"),
        "rows": pgettext("heading", "rows"),
        "processed": pgettext("heading", "processed"),
        "successful": pgettext("heading", "successful"),
        "note": pgettext("heading", "note"),
        "last_error": pgettext("heading", "last_error"),
        "content_type": pgettext("heading", "content_type"),
        "feed_document_id": pgettext("heading", "feed_document_id"),
        "result_document_id": pgettext("heading", "result_document_id"),
        "fetch_failures": pgettext("heading", "fetch_failures"),
        "order_nos": pgettext("heading", "order_nos"),
        # the mail settings (`config mail show`) and how long history is kept
        "smtp_host": pgettext("heading", "smtp_host"),
        "smtp_port": pgettext("heading", "smtp_port"),
        "smtp_user": pgettext("heading", "smtp_user"),
        "smtp_password": pgettext("heading", "smtp_password"),
        "starttls": pgettext("heading", "starttls"),
        "from": pgettext("heading", "from"),
        "admin": pgettext("heading", "admin"),
        "notify": pgettext("heading", "notify"),
        "language": pgettext("heading", "language"),
        "keep_days": pgettext("heading", "keep_days"),
    }


def values() -> dict[str, dict[str, str]]:
    """What the tables people read show for the stored values of the enumerated fields, in
    their language, by field name (a value not named here is shown as it is stored). csv, tsv,
    json and jsonl keep the stored values, the same in every language."""
    outcome = {"ok": pgettext("value", "ok"), "failed": pgettext("value", "failed")}
    return {
        "automatic": {
            "started": pgettext("value", "started"),
            "stopped": pgettext("value", "stopped"),
        },
        "last_notify_outcome": outcome,
        "last_results_outcome": outcome,
        "source": {"auto": pgettext("value", "auto"), "manual": pgettext("value", "manual")},
        "category": {
            "normal": pgettext("value", "normal"),
            "hold": pgettext("value", "hold"),
            "cancel": pgettext("value", "cancel"),
        },
        # a phase's ship-date setting (発送日設定); an order's ship date is a date, never these
        "ship_date": {
            "required": pgettext("value", "required"),
            "optional": pgettext("value", "optional"),
        },
        # a follow-up after success (Yahoo's 完了)
        "completion": {
            "scheduled": pgettext("value", "scheduled"),
            "done": pgettext("value", "done"),
            "failed": pgettext("value", "failed"),
        },
        "state": batch_states(),
    }


def batch_states() -> dict[str, str]:
    """A batch's states (crossship.store.BATCH_STATES) in the reader's language."""
    return {
        "prepared": pgettext("batch state", "prepared"),
        "document_created": pgettext("batch state", "document_created"),
        "uploaded": pgettext("batch state", "uploaded"),
        "sending": pgettext("batch state", "sending"),
        "submitting": pgettext("batch state", "submitting"),
        "submitted": pgettext("batch state", "submitted"),
        "done": pgettext("batch state", "done"),
        "notify_failed": pgettext("batch state", "notify_failed"),
        "result_failed": pgettext("batch state", "result_failed"),
        "released": pgettext("batch state", "released"),
    }


def shown_values(fields: Sequence[str]) -> list[dict[str, str]]:
    """For each of ``fields``, how a table shows its stored values (``values()``); a field
    shown beside its own label (``ship_date`` and ``ship_date_label``) keeps its key, the word
    the commands take."""
    known = values()
    return [{} if f"{field}_label" in fields else known.get(field, {}) for field in fields]


def table_row(row: dict, fields: Sequence[str], shown: Sequence[dict[str, str]]) -> list[Any]:
    """``row``'s ``fields`` as a table's cells, enumerated values in the reader's language."""
    return [_word(_cell(row.get(f)), words) for f, words in zip(fields, shown, strict=True)]


def _word(value: Any, words: dict[str, str]) -> Any:
    return words.get(value, value) if words and isinstance(value, str) else value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (list, dict)):  # a setting's list (notify addresses) as JSON
        return json.dumps(value, ensure_ascii=False)
    return value


def write_rows(
    rows: Iterable[dict],
    fields: Sequence[str],
    fmt: str,
    out: IO[str],
    *,
    headers: dict[str, str] | None = None,
    on_truncate: Callable[[int], None] | None = None,
) -> int:
    """Write ``rows`` (only ``fields``, in that order) to ``out``; return the number written.

    Every format but ``table`` streams: memory stays flat whatever the number of rows.
    """
    if fmt == "table":
        return _write_table(rows, fields, out, headers or {}, on_truncate)
    with utf8(out) as stream:
        return _write_machine(rows, fields, fmt, stream)


@contextmanager
def utf8(out: IO[str]) -> Iterator[IO[str]]:
    """``out``, writing UTF-8 whatever the locale: machine formats are read by tools, which must
    not get a Shift_JIS or ASCII stream because of the terminal's locale."""
    encoding = (getattr(out, "encoding", None) or "utf-8").replace("_", "-").lower()
    buffer = getattr(out, "buffer", None)
    if encoding in ("utf-8", "utf8") or buffer is None:
        yield out
        return
    out.flush()
    wrapped = io.TextIOWrapper(buffer, encoding="utf-8", newline="", write_through=True)
    try:
        yield wrapped
    finally:
        wrapped.flush()
        wrapped.detach()  # the buffer stays open: it is stdout's


def _write_machine(rows: Iterable[dict], fields: Sequence[str], fmt: str, out: IO[str]) -> int:
    count = 0
    if fmt in ("csv", "tsv"):
        writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow([_cell(row.get(f)) for f in fields])
            count += 1
    elif fmt == "jsonl":
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        for row in rows:
            out.write(dumps({f: row.get(f) for f in fields}))
            out.write("\n")
            count += 1
    elif fmt == "json":
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        out.write("[")
        for row in rows:
            out.write(",\n " if count else "\n ")
            out.write(dumps({f: row.get(f) for f in fields}))
            count += 1
        out.write("\n]\n" if count else "]\n")
    else:  # click.Choice keeps this unreachable from the command line
        raise ValueError(f"unknown format {fmt!r}")
    return count


def _write_table(
    rows: Iterable[dict],
    fields: Sequence[str],
    out: IO[str],
    headers: dict[str, str],
    on_truncate: Callable[[int], None] | None,
) -> int:
    data: list[list[Any]] = []
    shown = shown_values(fields)
    for row in rows:
        if len(data) == TABLE_LIMIT:
            if on_truncate:
                on_truncate(TABLE_LIMIT)
            break
        data.append(table_row(row, fields, shown))
    if data:
        # numparse off: order numbers like 00123 must print as they are, not as 123
        names = headings()
        titles = [names.get(title, title) for title in (headers.get(f, f) for f in fields)]
        out.write(tabulate(data, headers=titles, disable_numparse=True))
        out.write("\n")
    return len(data)


def write_record(record: dict, fmt: str, out: IO[str]) -> None:
    """One object: key/value lines for people, a header and one row in csv / tsv, JSON in json
    and jsonl (one line)."""
    if fmt in ("csv", "tsv"):
        write_rows([record], list(record), fmt, out)
        return
    if fmt in ("json", "jsonl"):
        with utf8(out) as stream:
            text = json.dumps(record, ensure_ascii=False, indent=2 if fmt == "json" else None)
            stream.write(text + "\n")
        return
    names = headings()
    keys = list(record)
    rows = [
        [names.get(key, key), _format_value(_word(value, words))]
        for (key, value), words in zip(record.items(), shown_values(keys), strict=True)
    ]
    out.write(tabulate(rows, tablefmt="plain"))
    out.write("\n")


def _format_value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)
