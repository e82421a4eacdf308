"""Listings on stdout: table, csv, tsv, json (one array) or jsonl, streamed row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from tabulate import tabulate

FORMATS = ("table", "csv", "tsv", "json", "jsonl")
# tables are for people: they need every row to size columns, so cap what they hold in memory
TABLE_LIMIT = 10_000


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
    for row in rows:
        if len(data) == TABLE_LIMIT:
            if on_truncate:
                on_truncate(TABLE_LIMIT)
            break
        data.append([_cell(row.get(f)) for f in fields])
    if data:
        # numparse off: order numbers like 00123 must print as they are, not as 123
        titles = [headers.get(f, f) for f in fields]
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
    rows = [[key, _format_value(value)] for key, value in record.items()]
    out.write(tabulate(rows, tablefmt="plain"))
    out.write("\n")


def _format_value(value: Any) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)
