"""Amazon flat-file processing reports: decode, parse, and turn into per-order outcomes.

Pure functions only: the caller downloads the report document and stores what comes out. The
parser reads the shape of the report (a summary with two counts, a blank line, a tab-separated
table) rather than its English words, because a seller's language setting makes Amazon write the
headings and error types in Japanese.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crossship.errors import ReportParseError
from crossship.i18n import N_, Message, Part, _
from crossship.statuses import Status

# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

# Every name under which Japanese reports arrive; Shift_JIS proper lacks the NEC/IBM extensions
# (①, ㈱, 髙) that Windows-31J text contains, so all of them are read as cp932.
_CP932_NAMES = frozenset(
    {
        "windows-31j",
        "shift-jis",
        "shiftjis",
        "sjis",
        "x-sjis",
        "cp932",
        "ms932",
        "ms-kanji",
        "csshiftjis",
        "cswindows31j",
    }
)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def _codec_for(charset: str | None) -> str | None:
    """The codec for a declared charset, or None when it is missing or not one Amazon uses."""
    if not charset:
        return None
    name = charset.strip()
    if "charset=" in name.lower():  # tolerate a whole Content-Type value
        name = name[name.lower().index("charset=") + len("charset=") :].split(";")[0]
    name = name.strip().strip("\"'").lower().replace("_", "-")
    if name in _CP932_NAMES:
        return "cp932"
    if name in _UTF8_NAMES:
        return "utf-8-sig"
    return None


def decode_report(data: bytes, charset: str | None) -> str:
    """Decode a downloaded report by its response charset; never raises for bytes.

    An unknown or wrong label falls back to trying UTF-8 then cp932, so a mislabelled report is
    still read rather than turned into mojibake; the last resort replaces undecodable bytes so the
    parser (not the decoder) decides whether the text is a report.
    """
    declared = _codec_for(charset)
    for codec in (declared, "utf-8-sig", "cp932"):
        if codec is None:
            continue
        try:
            return _strip_bom(data.decode(codec))
        except UnicodeDecodeError:
            continue
    return _strip_bom(data.decode("utf-8", errors="replace"))


def _strip_bom(text: str) -> str:
    return text.removeprefix("\ufeff")


# ---------------------------------------------------------------------------------------------
# Parsed report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One row of the report's table, with the error type normalised to English."""

    record_no: int | None  # original-record-number (None if blank)
    order_id: str  # "" when absent
    order_item_id: str  # "" when absent
    code: str  # error-code
    kind: str  # "error" | "warning" | "fatal"
    message: str


@dataclass(frozen=True)
class ProcessingReport:
    processed: int | None
    successful: int | None
    rows: tuple[ReportRow, ...]


# Heading names by column role, compared after _heading_key(); English and Japanese.
_HEADINGS: dict[str, frozenset[str]] = {
    "record": frozenset(
        {
            "originalrecordnumber",
            "recordnumber",
            "元のレコード番号",
            "レコード番号",
            "元レコード番号",
            "オリジナルレコード番号",
        }
    ),
    "order_id": frozenset(
        {
            "orderid",
            "amazonorderid",
            "注文番号",
            "注文id",
            "オーダーid",
            "amazon注文番号",
        }
    ),
    "order_item_id": frozenset(
        {
            "orderitemid",
            "注文商品番号",
            "注文商品id",
            "注文アイテムid",
            "注文アイテム番号",
        }
    ),
    "sku": frozenset({"sku", "出品者sku", "sellersku", "skuコード"}),
    "code": frozenset({"errorcode", "エラーコード", "エラー番号"}),
    "type": frozenset(
        {
            "errortype",
            "エラータイプ",
            "エラーの種類",
            "エラー種別",
            "エラー区分",
            "エラーの種別",
        }
    ),
    "message": frozenset(
        {"errormessage", "エラーメッセージ", "エラー内容", "エラーの内容", "メッセージ"}
    ),
}
_TRAILING_ROLES = ("code", "type", "message")
_AMAZON_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")

# A summary count: a label with a letter in it, then tabs/spaces (or a colon), then a number.
_COUNT_LINE = re.compile(r"^\s*(?P<label>.*?)\s*[:：]?[\t ]+(?P<number>[0-9][0-9,]{0,14})\s*$")
_SUCCESS_WORDS = ("success", "成功", "正常")
_PROCESSED_WORDS = ("processed", "処理")


def parse_report(text: str) -> ProcessingReport:
    """Parse a flat-file processing report, in English or Japanese.

    Raises ReportParseError, saying what was found instead, for anything that is not one: the
    caller then keeps the raw text and marks the batch's orders result_failed rather than guess.
    """
    lines = _strip_bom(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    pos = _skip_blank(lines, 0)
    if pos == len(lines):
        raise ReportParseError(_("the processing report is empty"))
    if lines[pos].lstrip()[:1] in ("<", "{", "["):
        # markup or JSON can contain lines that look like counts; never read one as a report
        raise _not_a_report(text)
    counts, pos = _read_summary(lines, pos)
    if counts is None:
        if not _is_heading(lines[pos]):
            raise _not_a_report(text)
        processed = successful = None
    else:
        processed, successful = counts
    pos = _skip_blank(lines, pos)
    rows = _read_table(lines, pos) if pos < len(lines) else ()
    return ProcessingReport(processed=processed, successful=successful, rows=rows)


def _skip_blank(lines: list[str], pos: int) -> int:
    while pos < len(lines) and not lines[pos].strip():
        pos += 1
    return pos


def _count(line: str) -> tuple[str, int] | None:
    """(label, number) when the line is a summary count such as '\\tNumber of ...\\t\\t3'."""
    match = _COUNT_LINE.match(unicodedata.normalize("NFKC", line))
    if match is None or not any(ch.isalpha() for ch in match["label"]):
        return None
    return match["label"].lower(), int(match["number"].replace(",", ""))


def _read_summary(lines: list[str], pos: int) -> tuple[tuple[int, int] | None, int]:
    """Read the title line and the consecutive count lines after it.

    Identified by having two counts, not by their wording: the label decides which is which
    when it says so (English or Japanese), otherwise the order (processed, then successful).
    """
    start = pos
    if _count(lines[pos]) is None:
        # the title line: 'Feed Processing Summary:', 'フィード処理概要:', ...
        pos += 1
    found: list[tuple[str, int]] = []
    while pos < len(lines) and (count := _count(lines[pos])) is not None:
        found.append(count)
        pos += 1
    if len(found) < 2:
        return None, start
    return _pick_counts(found), pos


def _pick_counts(found: list[tuple[str, int]]) -> tuple[int, int]:
    successful = next((n for label, n in found if _has_any(label, _SUCCESS_WORDS)), None)
    processed = next(
        (
            n
            for label, n in found
            if _has_any(label, _PROCESSED_WORDS) and not _has_any(label, _SUCCESS_WORDS)
        ),
        None,
    )
    if processed is None or successful is None:
        return found[0][1], found[1][1]
    return processed, successful


def _has_any(text: str, words: Iterable[str]) -> bool:
    return any(word in text for word in words)


def _not_a_report(text: str) -> ReportParseError:
    return ReportParseError(
        _(
            "not an Amazon flat-file processing report: found {found}; expected a summary "
            "line followed by the numbers of records processed and successful"
        ).format(found=_describe(text))
    )


def _describe(text: str) -> str:
    """A short phrase naming what the text looks like, for the error message."""
    head = _strip_bom(text).lstrip()
    lowered = head[:200].lower()
    if lowered.startswith("<?xml") or "<amazonenvelope" in lowered:
        return _("an XML document (an XML processing report?)")
    if lowered.startswith(("<!doctype html", "<html")) or "<body" in lowered:
        return _("an HTML page")
    if lowered.startswith(("{", "[")):
        return "JSON"
    first = head.split("\n", 1)[0].strip()
    return _("text starting {text}").format(text=repr(first[:60]))


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


def _heading_key(cell: str) -> str:
    """Compare headings without caring about width, case, spaces, hyphens or underscores."""
    return re.sub(r"[\s\-_]", "", unicodedata.normalize("NFKC", cell)).lower()


def _role_of(cell: str) -> str | None:
    key = _heading_key(cell)
    return next((role for role, names in _HEADINGS.items() if key in names), None)


def _is_heading(line: str) -> bool:
    """True when the line is a table heading we recognise by name (a report without summary)."""
    roles = {_role_of(cell) for cell in line.split("\t")}
    return "record" in roles and {"code", "type"} <= roles


def _read_table(lines: list[str], pos: int) -> tuple[ReportRow, ...]:
    first = lines[pos].split("\t")
    if len(first) < 4:
        raise ReportParseError(
            _(
                "the processing report's table heading has {count} column(s), expected at "
                "least 4: {line}"
            ).format(count=len(first), line=repr(lines[pos][:80]))
        )
    if _cell_int(first[0]) is not None:
        # no heading: data rows straight after the summary
        columns = _columns_by_position(len(first))
    else:
        columns, pos = _columns(first), pos + 1
    rows: list[ReportRow] = []
    for line_no in range(pos, len(lines)):
        cells = lines[line_no].split("\t")
        if not any(cell.strip() for cell in cells):
            continue
        rows.append(_row(cells, columns, line_no + 1))
    return tuple(rows)


@dataclass(frozen=True)
class _Columns:
    """Column index of each role; the message column takes any surplus cells of a row."""

    width: int
    record: int | None
    code: int
    type: int
    message: int
    order_id: int | None = None
    order_item_id: int | None = None
    # unnamed columns whose values are taken as order ids when they look like one
    sniff: tuple[int, ...] = ()


def _columns_by_position(width: int) -> _Columns:
    middle = tuple(range(1, width - 3))
    return _Columns(width, 0, width - 3, width - 2, width - 1, sniff=middle)


def _columns(heading: list[str]) -> _Columns:
    """Find columns by English or Japanese heading; fall back to the position Amazon uses."""
    found: dict[str, int] = {}
    for index, cell in enumerate(heading):
        role = _role_of(cell)
        if role is not None and role not in found:
            found[role] = index
    width = len(heading)
    for offset, role in enumerate(_TRAILING_ROLES):
        found.setdefault(role, width - 3 + offset)
    if "record" not in found and 0 not in found.values():
        found["record"] = 0
    claimed = set(found.values())
    unnamed = [i for i in range(width) if i not in claimed]
    if "order_id" not in found and "order_item_id" not in found and len(unnamed) == 2:
        # the shipment-confirmation shape with headings we do not know: order-id, order-item-id
        found["order_id"], found["order_item_id"] = unnamed
        unnamed = []
    return _Columns(
        width=width,
        record=found.get("record"),
        code=found["code"],
        type=found["type"],
        message=found["message"],
        order_id=found.get("order_id"),
        order_item_id=found.get("order_item_id"),
        sniff=tuple(unnamed) if "order_id" not in found else (),
    )


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _cell_int(cell: str) -> int | None:
    text = unicodedata.normalize("NFKC", cell).strip()
    return int(text) if re.fullmatch(r"[0-9]{1,15}", text) else None


def _row(cells: list[str], columns: _Columns, line_no: int) -> ReportRow:
    record_text = _cell(cells, columns.record)
    record_no = _cell_int(record_text)
    if record_text and record_no is None:
        raise ReportParseError(
            _("line {line} of the processing report: record number {value} is not a number").format(
                line=line_no, value=repr(record_text[:40])
            )
        )
    message = _cell(cells, columns.message)
    if columns.message == columns.width - 1 and len(cells) > columns.width:
        message = "\t".join(cells[columns.message :]).strip()  # a tab inside Amazon's message
    order_id = _cell(cells, columns.order_id)
    if not order_id:
        order_id = next(
            (v for i in columns.sniff if _AMAZON_ORDER_ID.match(v := _cell(cells, i))),
            "",
        )
    return ReportRow(
        record_no=record_no,
        order_id=order_id,
        order_item_id=_cell(cells, columns.order_item_id),
        code=_cell(cells, columns.code),
        kind=_kind(_cell(cells, columns.type), line_no),
        message=message,
    )


def _kind(text: str, line_no: int) -> str:
    """Normalise the error type: 'Error'/'ERROR'/'エラー', 'Warning'/'警告', 'Fatal'/'致命的'."""
    key = unicodedata.normalize("NFKC", text).strip().lower()
    if "fatal" in key or "致命" in key:  # before 'error': '致命的なエラー', 'Fatal Error'
        return "fatal"
    if "warn" in key or "警告" in key:
        return "warning"
    if "error" in key or "エラー" in key:
        return "error"
    # an unknown type could be either; deciding for the seller would hide a failed notification
    raise ReportParseError(
        _("line {line} of the processing report: unknown error type {value}").format(
            line=line_no, value=repr(text[:40])
        )
    )


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentRow:
    """One data row of the feed we sent (the batch's row map)."""

    record_no: int  # 1-based; the first row after the three header rows is 1
    order_no: str
    order_id: str
    order_item_id: str  # "" when the row is per order


@dataclass
class OrderOutcome:
    order_no: str
    status: Status
    # errors ("code: message", Amazon's words) joined with "; ", or ours (a Message); "" for
    # clean success
    message: Part
    warnings: list[str]  # "code: message" of each Warning row


@dataclass
class BatchOutcome:
    orders: dict[str, OrderOutcome]  # one per distinct order_no of the sent rows, in feed order
    # batch-level remarks: count mismatch, file-level warnings, unmatched rows
    notes: list[Message]


class _SentIndex:
    """Find the orders a report row speaks of: by order-id (+ order-item-id), else by record."""

    def __init__(self, sent: Sequence[SentRow]):
        self.by_record: dict[int, SentRow] = {}
        self.by_order_id: dict[str, list[SentRow]] = {}
        for row in sent:
            self.by_record.setdefault(row.record_no, row)
            self.by_order_id.setdefault(row.order_id, []).append(row)

    def match(self, row: ReportRow) -> list[str]:
        at_record = self.by_record.get(row.record_no) if row.record_no is not None else None
        if not row.order_id:
            return [at_record.order_no] if at_record else []
        candidates = self.by_order_id.get(row.order_id, [])
        if row.order_item_id:
            # a split order shares its Amazon order id: the item id tells the parts apart
            by_item = [c for c in candidates if c.order_item_id == row.order_item_id]
            candidates = by_item or candidates
        if at_record is not None and at_record in candidates:
            return [at_record.order_no]
        # a row naming an order we did not send is not re-attributed by record number
        return list(dict.fromkeys(c.order_no for c in candidates))


def _entry(row: ReportRow) -> str:
    return f"{row.code}: {row.message}" if row.code else row.message


def _is_file_level(row: ReportRow) -> bool:
    return row.record_no in (0, None) or not row.order_id


def _where(row: ReportRow) -> Part:
    parts = []
    if row.record_no is not None:
        parts.append(f"record {row.record_no}")
    if row.order_id:
        parts.append(f"order-id {row.order_id}")
    if row.order_item_id:
        parts.append(f"order-item-id {row.order_item_id}")
    # Amazon's own column names, as in its report
    return ", ".join(parts) if parts else Message("no record")


def outcomes(report: ProcessingReport, sent: Sequence[SentRow]) -> BatchOutcome:
    """Apply a parsed report to the rows of the feed that was sent (SPEC §5 results fetch, §8).

    Errors and fatal rows make their order `error`; a file-level fatal makes every order `error`;
    warnings stay on `success` orders. An error we cannot attribute makes every order without an
    error of its own `result_failed`, since any of them may be the one that failed; so does a
    report that does not account for every row sent (its processed count differs, or it names an
    order id or record this batch did not send). Every order sent gets an explicit outcome.
    """
    order_nos = list(dict.fromkeys(row.order_no for row in sent))
    # only the orders the report names get lists: most of 100,000 orders are clean successes
    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    notes: list[Message] = []
    unmatched_errors: list[str] = []
    index = _SentIndex(sent)

    for row in report.rows:
        entry = _entry(row)
        if row.kind == "fatal" and _is_file_level(row):
            notes.append(Message("Amazon rejected the whole feed: {entry}", {"entry": entry}))
            for no in order_nos:
                errors.setdefault(no, []).append(entry)
            continue
        targets = index.match(row)
        if targets:
            bucket = warnings if row.kind == "warning" else errors
            for no in targets:
                bucket.setdefault(no, []).append(entry)
        elif row.kind == "warning":
            if row.order_id or row.record_no not in (0, None):
                notes.append(
                    Message(
                        "warning for {where}, which matches no row sent: {entry}",
                        {"where": _where(row), "entry": entry},
                    )
                )
            else:
                notes.append(Message("warning for the whole feed: {entry}", {"entry": entry}))
        else:
            unmatched_errors.append(entry)
            kinds = {
                "error": N_("error for {where}, which matches no row sent: {entry}"),
                "fatal": N_("fatal for {where}, which matches no row sent: {entry}"),
            }
            notes.append(Message(kinds[row.kind], {"where": _where(row), "entry": entry}))

    unmatched = (
        Message(
            "Amazon reported an error that matches no order of this batch ({entries}): it may "
            "concern this order, check it in Seller Central",
            {"entries": "; ".join(_unique(unmatched_errors))},
        )
        if unmatched_errors
        else None
    )
    why = _unaccounted(report, sent)
    unaccounted = None
    if why:
        if report.processed is None or report.processed == len(sent):
            notes.append(why)  # (a count that differs has its own note below)
        unaccounted = Message(
            "{why}: the report may be another feed's, so whether Amazon received this order is "
            "unknown; check it in Seller Central",
            {"why": why},
        )
    unknown: Message | None
    if unmatched and unaccounted:
        unknown = Message("{first}; {second}", {"first": unmatched, "second": unaccounted})
    else:
        unknown = unmatched or unaccounted
    orders = {
        no: _order_outcome(no, errors.get(no, ()), warnings.get(no, ()), unknown)
        for no in order_nos
    }
    notes.extend(_count_notes(report, len(sent)))
    return BatchOutcome(orders=orders, notes=notes)


def _unaccounted(report: ProcessingReport, sent: Sequence[SentRow]) -> Message | None:
    """Why the report does not account for every row sent ("" when it does).

    A report is ours only when Amazon processed exactly the rows we sent and every order id and
    record number it names is one of them: a feed someone else created (adopted after a lost
    createFeed answer) must never turn our orders 正常.
    """
    if report.processed is None:
        return Message("Amazon's report gives no count of the records it processed")
    if report.processed != len(sent):
        return Message(
            "Amazon's report counts {records} processed, {sent} were sent",
            {"records": _records(report.processed), "sent": len(sent)},
        )
    ours = {row.order_id for row in sent}
    foreign = _unique(
        [row.order_id for row in report.rows if row.order_id and row.order_id not in ours]
    )
    if foreign:
        return Message(
            "Amazon's report names order ids this batch did not send ({order_ids})",
            {"order_ids": ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")},
        )
    beyond = [  # a row without an order id is placed by its record number alone
        r.record_no
        for r in report.rows
        if not r.order_id and r.record_no is not None and r.record_no > len(sent)
    ]
    if beyond:
        return Message(
            "Amazon's report names record {record}, beyond the {sent} sent",
            {"record": beyond[0], "sent": len(sent)},
        )
    return None


def _order_outcome(
    order_no: str, errors: Sequence[str], warnings: Sequence[str], unmatched: Message | None
) -> OrderOutcome:
    """``unmatched``: the message for an order without errors of its own when the report has
    errors matching no order (None when it has none)."""
    own_errors = _unique(errors)
    if own_errors:
        return OrderOutcome(order_no, Status.ERROR, "; ".join(own_errors), _unique(warnings))
    if unmatched:
        return OrderOutcome(order_no, Status.RESULT_FAILED, unmatched, _unique(warnings))
    return OrderOutcome(order_no, Status.SUCCESS, "", _unique(warnings))


def _unique(items: Sequence[str]) -> list[str]:
    """Drop repeats (a split order gets the same message once per row), keeping order."""
    return list(dict.fromkeys(items)) if items else []


def _count_notes(report: ProcessingReport, sent_count: int) -> list[Message]:
    """Remarks when Amazon's counts do not add up; they never change a status by themselves."""
    notes: list[Message] = []
    processed, successful = report.processed, report.successful
    if processed is not None and processed != sent_count:
        said = (
            N_("Amazon processed {records}, {sent} was sent")
            if sent_count == 1
            else N_("Amazon processed {records}, {sent} were sent")
        )
        notes.append(Message(said, {"records": _records(processed), "sent": sent_count}))
    if processed is not None and successful is not None:
        failed = len(
            {
                row.record_no or (row.order_id, row.order_item_id)
                for row in report.rows
                if row.kind != "warning" and (row.record_no or row.order_id)
            }
        )
        if successful + failed != processed:
            notes.append(
                Message(
                    "Amazon counted {successful} successful of {processed} processed, but the "
                    "report lists {failed} with errors",
                    {
                        "successful": successful,
                        "processed": _records(processed),
                        "failed": _records(failed),
                    },
                )
            )
    return notes


def _records(count: int) -> Message:
    if count == 1:
        return Message("{count} record", {"count": count})
    return Message("{count} records", {"count": count})
