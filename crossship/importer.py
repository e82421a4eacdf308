"""The order import file (SPEC §10): a CSV with one row per item line, order fields repeated.

The file is read twice, streaming: once to find its encoding (UTF-8 with or without BOM, else
cp932), once to check and write each row inside one write transaction. Any bad row rolls the
whole import back, so a file goes in entirely or not at all; every bad row is reported with its
physical line (the header is line 1) and column. Memory holds one entry per order number, and a
buffer of a few thousand rows.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from crossship.errors import ImportFileError, UsageError
from crossship.i18n import _
from crossship.progress import NO_PROGRESS, Progress
from crossship.store import ORDER_FIELDS, ImportKnown, OrderImport, Store

# field -> Japanese heading (CROSS MALL's names); either is accepted in the header row
HEADINGS: dict[str, str] = {
    "order_no": "管理番号",
    "store": "店舗",
    "mall_order_id": "注文番号",
    "phase": "処理フェーズ",
    "category": "管理区分",
    "fba": "FBA",
    "bundle_parent": "同梱親",
    "split_from": "分割元",
    "ship_date": "発送日",
    "carrier": "配送便",
    "tracking_number": "配送番号",
    "item_id": "注文商品番号",
    "sku": "SKU",
    "quantity": "数量",
    "basket_id": "送付先ID",  # 楽天市場: the order's basket (optional; looked up when missing)
}
REQUIRED = ("order_no", "store", "phase")
ITEM_FIELDS = ("item_id", "sku", "quantity")
CATEGORIES = {
    "normal": "normal",
    "hold": "hold",
    "cancel": "cancel",
    "通常": "normal",
    "保留": "hold",
    "キャンセル": "cancel",
}
FBA_VALUES = {
    "": 0,
    "0": 0,
    "1": 1,
    "false": 0,
    "true": 1,
    "no": 0,
    "yes": 1,
}
ENCODINGS = ("auto", "utf-8", "cp932")
MAX_REPORTED = 1000  # bad rows listed; a file of a million bad rows gives their count beyond
_READ_SIZE = 1 << 20
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_QUANTITY = re.compile(r"[0-9]+")
MAX_QUANTITY = 999_999  # no shipment line holds more; a longer number is a typo, not a quantity
# NUL and the other C0/C1 controls: no field of an order may carry one. A tab or a line break
# (a quoted cell spanning lines in a spreadsheet export) is kept: the order's check before
# sending makes it エラー with what to fix, since a feed cannot carry one
_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_CONTROL = re.compile(r"[\t\r\n\u2028\u2029]")


@dataclass
class ImportSummary:
    orders: int = 0
    new: int = 0
    updated: int = 0
    items: int = 0
    encoding: str = ""
    ignored_columns: list[str] = field(default_factory=list)


def _field_by_heading() -> dict[str, str]:
    names: dict[str, str] = {}
    for key, heading in HEADINGS.items():
        names[key] = key
        names[_norm_heading(heading)] = key
    return names


def _norm_heading(text: str) -> str:
    # full-width letters (ＳＫＵ) and stray spaces are common in spreadsheet exports
    return unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "_")


_BY_HEADING = _field_by_heading()


# ----------------------------------------------------------------------------- encoding


def detect_encoding(source: IO[bytes], encoding: str = "auto") -> str:
    """The Python codec to read ``source`` with, checked over the whole file.

    auto: a UTF-8 BOM means UTF-8; else UTF-8 if every byte decodes strictly; else cp932.
    """
    if encoding not in ENCODINGS:
        raise UsageError(
            _("{option} {text!r}: use one of {choices}").format(
                option="--encoding", text=encoding, choices=", ".join(ENCODINGS)
            )
        )
    if encoding == "utf-8":
        _check_decodes(source, "utf-8-sig", "UTF-8")
        return "utf-8-sig"
    if encoding == "cp932":
        _check_decodes(source, "cp932", "cp932 (Shift_JIS)")
        return "cp932"
    source.seek(0)
    if source.read(3) == codecs.BOM_UTF8:
        _check_decodes(source, "utf-8-sig", "UTF-8")
        return "utf-8-sig"
    not_utf8 = _first_bad_line(source, "utf-8")
    if not_utf8 is None:
        return "utf-8-sig"
    not_cp932 = _first_bad_line(source, "cp932")
    if not_cp932 is None:
        return "cp932"
    raise ImportFileError(
        _(
            "the file is neither UTF-8 (line {utf8} is not) nor cp932 (Shift_JIS; line "
            "{cp932} is not): save it as UTF-8 and import again"
        ).format(utf8=not_utf8, cp932=not_cp932)
    )


def _check_decodes(source: IO[bytes], codec: str, name: str) -> None:
    bad = _first_bad_line(source, codec)
    if bad is not None:
        raise ImportFileError(
            _(
                "the file is not {name}: line {line} cannot be read as {name}; give the file's "
                "encoding with --encoding, or --encoding auto"
            ).format(name=name, line=bad)
        )


def _first_bad_line(source: IO[bytes], codec: str) -> int | None:
    """The line holding the first byte that ``codec`` cannot decode, or None if all decode."""
    source.seek(0)
    decoder = codecs.getincrementaldecoder(codec)("strict")
    newlines = 0
    while True:
        chunk = source.read(_READ_SIZE)
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            # the decoder may hold back a few bytes of the previous chunk; close enough for a line
            return newlines + chunk[: max(exc.start, 0)].count(b"\n") + 1
        if not chunk:
            return None
        newlines += chunk.count(b"\n")


# ----------------------------------------------------------------------------- rows


@dataclass
class _Problems:
    lines: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, heading: str | None, what: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_REPORTED:
            said = (
                _("line {line}, column {column}: {problem}")
                if heading
                else _("line {line}: {problem}")
            )
            self.lines.append(said.format(line=line, column=heading, problem=what))

    def details(self) -> list[str]:
        more = self.count - len(self.lines)
        extra = [_("... and {count} more problems").format(count=more)] if more > 0 else []
        return self.lines + extra


class _Columns:
    """Where each known field sits in the header, and the heading the file gave it."""

    def __init__(self, header: list[str], problems: _Problems):
        self.index: dict[str, int] = {}
        self.heading: dict[str, str] = {}
        self.ignored: list[str] = []
        for position, raw in enumerate(header):
            text = raw.strip()
            key = _BY_HEADING.get(_norm_heading(text))
            if key is None:
                if text:
                    self.ignored.append(text)
                continue
            if key in self.index:
                problems.add(
                    1,
                    text,
                    _("{heading} ({key}) appears twice: keep one column").format(
                        heading=HEADINGS[key], key=key
                    ),
                )
                continue
            self.index[key] = position
            self.heading[key] = text
        for key in REQUIRED:
            if key not in self.index:
                problems.add(
                    1,
                    HEADINGS[key],
                    _("the required column {heading} ({key}) is missing from the header").format(
                        heading=HEADINGS[key], key=key
                    ),
                )
        self.width = len(header)
        # the order columns this file carries, order_no first: only these are written
        self.order_columns = tuple(f for f in ORDER_FIELDS if f in self.index)

    def name(self, key: str) -> str:
        return self.heading.get(key, HEADINGS[key])


def import_file(
    store: Store,
    source: IO[bytes],
    *,
    encoding: str = "auto",
    now: str,
    progress: Progress = NO_PROGRESS,
) -> ImportSummary:
    """Check and import an order file (a seekable binary stream); all rows or none.

    Raises ImportFileError listing every bad row; the database is then unchanged. ``progress``
    hears of the bytes checked and written.
    """
    codec = detect_encoding(source, encoding)
    progress.add(source.seek(0, io.SEEK_END))
    source.seek(0)
    text = io.TextIOWrapper(source, encoding=codec, newline="")
    try:
        return _import_text(store, text, codec, now, _BytesRead(source, progress))
    finally:
        text.detach()  # the caller owns (and closes) the binary stream


class _BytesRead:
    """Tells ``progress`` how far into the file the rows are, every few thousand rows."""

    EVERY = 2000

    def __init__(self, source: IO[bytes], progress: Progress):
        self.source, self.progress, self.rows, self.told = source, progress, 0, 0

    def row(self) -> None:
        self.rows += 1
        if self.rows % self.EVERY == 0:
            self.tell()

    def tell(self) -> None:
        position = self.source.tell()
        if position > self.told:
            self.progress.advance(position - self.told)
            self.told = position


def _import_text(
    store: Store, text: IO[str], codec: str, now: str, read: _BytesRead
) -> ImportSummary:
    problems = _Problems()
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(
            _("the file is empty: its first line must be the header ({example})").format(
                example="管理番号,店舗,処理フェーズ,..."
            )
        ) from None
    except csv.Error as exc:
        raise ImportFileError(
            _("line 1: the header is not valid CSV ({error})").format(error=exc)
        ) from None
    columns = _Columns(header, problems)
    if problems.count:
        raise ImportFileError(
            _("the file's header is not usable: nothing imported"), details=problems.details()
        )
    summary = ImportSummary(encoding="cp932" if codec == "cp932" else "utf-8")
    summary.ignored_columns = columns.ignored
    with store.order_import(columns.order_columns, now) as writer:
        before = writer.count_orders()
        checker = _RowChecker(columns, writer.known(), writer, problems)
        try:
            for line, cells in _logical_rows_after_header(reader):
                checker.check(line, cells)
                read.row()
        except csv.Error as exc:
            problems.add(
                reader.line_num,
                None,
                _("the file is not valid CSV here ({error})").format(error=exc),
            )
        if problems.count:
            raise ImportFileError(
                _(
                    "{count} problem(s) in the file: nothing imported; fix these and "
                    "import the whole file again"
                ).format(count=problems.count),
                details=problems.details(),
            )
        writer.flush()
        _keep_baskets(store, checker.baskets)
        read.tell()
        summary.orders = len(checker.seen)
        summary.new = writer.count_orders() - before
        summary.updated = summary.orders - summary.new
        summary.items = writer.items_written
    return summary


def _keep_baskets(store: Store, baskets: dict[str, str]) -> None:
    """送付先ID (basket_id) into the orders' mall references; a row RMS gave for another basket
    no longer applies."""
    if not baskets:
        return
    current = store.refs_for(list(baskets))
    changes: dict[str, dict[str, object]] = {}
    for order_no, basket in baskets.items():
        change: dict[str, object] = {"basket_id": basket}
        if current.get(order_no, {}).get("basket_id") not in (None, basket):
            change["shipping_detail_id"] = None
        changes[order_no] = change
    store.set_refs(changes)


def _logical_rows_after_header(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, cells) of each non-blank row; csv's line_num counts the lines a
    quoted field spans, so the numbers are the file's own."""
    previous = reader.line_num
    for cells in reader:
        start = previous + 1
        previous = reader.line_num
        if cells and any(c.strip() for c in cells):
            yield start, cells


class _RowChecker:
    """Checks each row against the configuration and the rows before it, and hands good rows to
    the writer. Keeps one small entry per order: the first line and the count of item lines."""

    def __init__(
        self, columns: _Columns, known: ImportKnown, writer: OrderImport, problems: _Problems
    ):
        self.columns = columns
        self.known = known
        self.writer = writer
        self.problems = problems
        # order_no -> [first line, item lines so far, 1 if its first row was good]
        self.seen: dict[str, list[int]] = {}
        self.good_dates: set[str] = set()
        self.idx = columns.index
        self.compare = [f for f in columns.order_columns if f != "order_no"]
        self.positions = list(self.idx.items())
        # the previous order's first row: repeated rows usually follow it, so no lookup is needed
        self.last: tuple[str, dict[str, object]] = ("", {})
        self.baskets: dict[str, str] = {}  # order_no -> 送付先ID given in the file

    def check(self, line: int, cells: list[str]) -> None:
        bad = self.problems.count
        name = self.columns.name
        add = self.problems.add
        if len(cells) > self.columns.width and any(c.strip() for c in cells[self.columns.width :]):
            add(
                line,
                None,
                _(
                    "the row has {cells} cells but the header has {width}: "
                    "check for an unquoted comma"
                ).format(cells=len(cells), width=self.columns.width),
            )
        if len(cells) < self.columns.width:  # spreadsheets drop trailing empty cells
            cells = cells + [""] * (self.columns.width - len(cells))
        row = {key: cells[position].strip() for key, position in self.positions}
        for key, cell in row.items():
            if key != "order_no" and _ANY_CONTROL.search(cell):
                add(
                    line,
                    name(key),
                    _("{value!r} contains a control character (NUL, ESC, ...): remove it").format(
                        value=cell
                    ),
                )
        get = row.get
        order_no = get("order_no", "")
        store = get("store", "")
        phase = get("phase", "")
        values: dict[str, object] = {"order_no": order_no, "store": store, "phase": phase}
        for key in REQUIRED:
            if not values[key]:
                add(
                    line,
                    name(key),
                    _("{heading} ({key}) is empty: every row needs one").format(
                        heading=HEADINGS[key], key=key
                    ),
                )
        if _ANY_CONTROL.search(order_no) or _LINE_CONTROL.search(order_no):
            add(
                line,
                name("order_no"),
                _("{value!r} must be one line without tabs or other control characters").format(
                    value=order_no
                ),
            )
        if store and store not in self.known.stores:
            add(
                line,
                name("store"),
                _("unknown store {name!r}: add it with `{command}` or fix the name").format(
                    name=store, command="crossship config store add"
                ),
            )
        if phase and phase not in self.known.phases:
            add(
                line,
                name("phase"),
                _("unknown phase {name!r}: create it with `{command}` or fix the name").format(
                    name=phase, command="crossship config phase create"
                ),
            )
        for key in ("mall_order_id", "bundle_parent", "split_from", "tracking_number"):
            if key in self.idx:
                values[key] = get(key, "") or None
        if "category" in self.idx:
            raw = get("category", "")
            category = CATEGORIES.get(raw.lower() if raw.isascii() else raw) if raw else "normal"
            if category is None:
                add(
                    line,
                    name("category"),
                    _(
                        "unknown category {value!r}: use 通常 (normal), 保留 (hold) "
                        "or キャンセル (cancel)"
                    ).format(value=raw),
                )
            values["category"] = category
        if "fba" in self.idx:
            raw = get("fba", "")
            fba = FBA_VALUES.get(raw.lower())
            if fba is None:
                add(line, name("fba"), _("FBA {value!r} is not 0 or 1").format(value=raw))
            values["fba"] = fba
        ship_date = None
        if "ship_date" in self.idx:
            ship_date = get("ship_date", "") or None
            if ship_date and not self._date_ok(ship_date):
                add(
                    line,
                    name("ship_date"),
                    _("{value!r} is not a date: write it as YYYY-MM-DD (2026-11-27)").format(
                        value=ship_date
                    ),
                )
            values["ship_date"] = ship_date
        if "carrier" in self.idx:
            carrier = get("carrier", "") or None
            if carrier and carrier not in self.known.carriers:
                add(
                    line,
                    name("carrier"),
                    _("unknown carrier {name!r}: add it with `{command}` or fix the name").format(
                        name=carrier, command="crossship config carrier add"
                    ),
                )
            values["carrier"] = carrier
        for key in ("bundle_parent", "split_from"):
            if order_no and values.get(key) == order_no:
                add(
                    line,
                    name(key),
                    _("an order cannot name itself as its {heading} ({key})").format(
                        heading=HEADINGS[key], key=key
                    ),
                )
        if order_no in self.known.in_progress:
            add(
                line,
                name("order_no"),
                _(
                    "order {order_no} is 連携中 (in_progress) in a batch that is not finished: "
                    "it cannot be changed now; leave it out, or import it after "
                    "`{command}` has finished the batch"
                ).format(order_no=order_no, command="crossship results fetch"),
            )
        basket = get("basket_id", "")
        if basket:
            digits = unicodedata.normalize("NFKC", basket)
            if not _QUANTITY.fullmatch(digits) or len(digits) > 18:
                add(
                    line,
                    name("basket_id"),
                    _("送付先ID (basket_id) {value!r} is not a number").format(value=basket),
                )
            elif order_no and self.baskets.setdefault(order_no, digits) != digits:
                add(
                    line,
                    name("basket_id"),
                    _(
                        "送付先ID (basket_id) {value} differs from an earlier row of order "
                        "{order_no} ({earlier}): an order has one basket"
                    ).format(value=basket, order_no=order_no, earlier=self.baskets[order_no]),
                )
        # items
        item_id = get("item_id", "") or None
        sku = get("sku", "") or None
        raw_quantity = get("quantity", "")
        quantity = None
        has_item = bool(item_id or sku or raw_quantity)
        if has_item:
            digits = unicodedata.normalize("NFKC", raw_quantity)
            if not raw_quantity:
                add(
                    line,
                    name("quantity"),
                    _(
                        "数量 (quantity) is empty on an item line: give the quantity shipped "
                        "(a positive whole number)"
                    ),
                )
            elif not _QUANTITY.fullmatch(digits) or int(digits) <= 0:
                add(
                    line,
                    name("quantity"),
                    _("{value!r} is not a positive whole number").format(value=raw_quantity),
                )
            elif int(digits) > MAX_QUANTITY:
                add(
                    line,
                    name("quantity"),
                    _("{value!r} is too large: a quantity is at most {most}").format(
                        value=raw_quantity, most=MAX_QUANTITY
                    ),
                )
            else:
                quantity = int(digits)

        entry = self.seen.get(order_no) if order_no else None
        if entry is None:
            # first row of this order: the required-phase rule, then write it
            if phase in self.known.phases and self.known.phases[phase] == "required" and order_no:
                if "ship_date" in self.idx:
                    dated = bool(ship_date)
                else:
                    stored = self.writer.stored(order_no)
                    dated = bool(stored and stored.get("ship_date"))
                if not dated:
                    add(
                        line,
                        name("ship_date") if "ship_date" in self.idx else HEADINGS["ship_date"],
                        _(
                            "phase {phase!r} requires a ship date (発送日設定=必須): give one "
                            "as YYYY-MM-DD, or import the order into another phase"
                        ).format(phase=phase),
                    )
            good = self.problems.count == bad
            if order_no:
                self.seen[order_no] = [line, 0, int(good)]
                if good:
                    self.writer.add_order(tuple(values[f] for f in self.columns.order_columns))
                    self.last = (order_no, values)
            entry = self.seen.get(order_no)
        else:
            if entry[2]:
                self._compare(line, order_no, entry[0], values)
        if has_item and entry is not None and self.problems.count == bad:
            if entry[1] == 0:
                self.writer.replace_items(order_no)
            entry[1] += 1
            self.writer.add_item(order_no, entry[1], item_id, sku, quantity)

    def _compare(self, line: int, order_no: str, first: int, values: dict[str, object]) -> None:
        if self.last[0] == order_no:
            stored = self.last[1]
            if all(values.get(key) == stored.get(key) for key in self.compare):
                return
        else:
            stored = self.writer.stored(order_no) or {}
        for key in self.compare:
            if values.get(key) != stored.get(key):
                self.problems.add(
                    line,
                    self.columns.name(key),
                    _(
                        "{value} differs from line {first} of the same order "
                        "{order_no} ({before}): the order fields must be the "
                        "same on every row of an order"
                    ).format(
                        value=values.get(key) or _("(empty)"),
                        first=first,
                        order_no=order_no,
                        before=stored.get(key) or _("(empty)"),
                    ),
                )

    def _date_ok(self, text: str) -> bool:
        if text in self.good_dates:
            return True
        if not _DATE.fullmatch(text):
            return False
        try:
            date.fromisoformat(text)
        except ValueError:
            return False
        self.good_dates.add(text)
        return True
