"""What the sandbox does with an uploaded feed: read the Japan shipping-confirmation flat file the
way Amazon does, and write the processing report in the shape of Amazon's (as in
Amazon's published sample reports).

Pure functions over bytes and text; the server decides when to call them.

Error codes 18028, 90011, 90012 and 90061 are Amazon's (seen in the samples); Amazon does not
publish the codes of the other checks, so the sandbox uses its own numbers for them (``CODES``).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date

TEMPLATE_TYPE = "TemplateType=OrderFulfillment"
TEMPLATE_VERSION = "Version=2011.1102"
# the English keys of the template's third row, in the template's order
KEYS = (
    "order-id",
    "order-item-id",
    "quantity",
    "ship-date",
    "carrier-code",
    "carrier-name",
    "tracking-number",
    "ship-method",
    "cod-collection-method",
)
ORDER_ID = re.compile(r"\d{3}-\d{7}-\d{7}")
SHIP_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
QUANTITY = re.compile(r"[1-9]\d*")
# carrier codes offered by the Amazon.co.jp shipping-confirmation template
JP_CARRIER_CODES = frozenset(
    {
        "Yamato Transport",
        "Sagawa Express",
        "Japan Post",
        "Seino Transportation",
        "Fukuyama Transport",
        "Nippon Express",
        "Tonami Transportation",
        "Ecohai",
        "Katlec",
        "Chikuyo",
        "Kintetsu World Express",
        "DHL",
        "FedEx",
        "UPS",
        "USPS",
        "TNT",
        "Other",
    }
)

ERROR, WARNING, FATAL = "Error", "Warning", "Fatal"
LANGUAGES = ("en", "ja")
DEFAULT_MERCHANT_ID = "A1SANDBOXSELLER"

# message key -> error code; only the first four are Amazon's own
CODES = {
    "order_not_found": "18028",
    "bad_headings": "90011",
    "missing_order_id_column": "90012",
    "unknown_heading": "90061",
    "undecodable": "90002",
    "aborted": "90001",
    "missing_ship_date": "99001",
    "bad_ship_date": "99002",
    "missing_carrier_code": "99003",
    "bad_carrier_code": "99004",
    "missing_carrier_name": "99005",
    "bad_quantity": "99006",
    "missing_ship_method": "99101",
    "missing_tracking_number": "99102",
}

_FIX_TEMPLATE_EN = "To correct this error, download the template again and use that new copy, or "
_FIX_TEMPLATE_JA = "テンプレートを再度ダウンロードして新しいコピーを使用するか、"
# message key -> (English, Japanese); placeholders are filled with str.format
MESSAGES: dict[str, tuple[str, str]] = {
    "order_not_found": (
        "Your order cannot be found using Merchant ID {merchant_id} and Merchant Order "
        "{order_id}. Enter the correct order ID and then resubmit your feed.",
        "マーチャントID {merchant_id} と注文番号 {order_id} に一致する注文が見つかりません。"
        "正しい注文番号を入力して、フィードを再送信してください。",
    ),
    "bad_headings": (
        "The file's column headings are missing or invalid. "
        + _FIX_TEMPLATE_EN
        + "insert the correct column headings as row two of your existing file.",
        "ファイルの項目名が見つからないか無効です。"
        + _FIX_TEMPLATE_JA
        + "既存のファイルに正しい項目名を挿入してください。",
    ),
    "missing_order_id_column": (
        "The required order-id field is missing from the file. "
        "To correct this error, download the template again and use the new copy, "
        "or insert the required field into your existing file.",
        "必須項目order-idがファイルにありません。"
        + _FIX_TEMPLATE_JA
        + "既存のファイルに必須項目を挿入してください。",
    ),
    "unknown_heading": (
        "The {heading} field heading is invalid, so values in this field were ignored. "
        "To correct this error, download the template again and use the new copy, "
        "or fix the field heading in your existing file.",
        "項目名{heading}が無効なため、この項目の値は無視されました。"
        + _FIX_TEMPLATE_JA
        + "既存のファイルの項目名を修正してください。",
    ),
    "undecodable": (
        "The file cannot be read in the character set {charset} named in its content type. "
        "Save the file in that character set, or name the file's character set, "
        "and then resubmit your feed.",
        "ファイルをContent-Typeで指定された文字コード{charset}で読み取れません。"
        "ファイルをその文字コードで保存するか正しい文字コードを指定して、"
        "フィードを再送信してください。",
    ),
    "aborted": (
        "Processing of the feed was aborted because of an internal error. Submit the feed again.",
        "内部エラーのためフィードの処理が中止されました。フィードを再度送信してください。",
    ),
    "missing_ship_date": (
        "The ship-date field is missing. Enter the ship date in the format YYYY-MM-DD.",
        "ship-dateの項目が記入されていません。出荷日をYYYY-MM-DDの形式で入力してください。",
    ),
    "bad_ship_date": (
        "The value '{value}' of the ship-date field is invalid. "
        "Enter the ship date in the format YYYY-MM-DD.",
        "ship-dateの値「{value}」が無効です。出荷日をYYYY-MM-DDの形式で入力してください。",
    ),
    "missing_carrier_code": (
        "The carrier-code field is missing. Enter one of the valid carrier codes, "
        "or Other together with a carrier-name.",
        "carrier-codeの項目が記入されていません。有効な配送業者コードを入力するか、"
        "Otherを入力してcarrier-nameを記入してください。",
    ),
    "bad_carrier_code": (
        "The value '{value}' of the carrier-code field is invalid. Enter one of the valid "
        "carrier codes, or Other together with a carrier-name.",
        "carrier-codeの値「{value}」が無効です。有効な配送業者コードを入力するか、"
        "Otherを入力してcarrier-nameを記入してください。",
    ),
    "missing_carrier_name": (
        "The carrier-name field is required when carrier-code is Other. "
        "Enter the name of the carrier.",
        "carrier-codeがOtherの場合はcarrier-nameの項目が必須です。配送業者名を入力してください。",
    ),
    "bad_quantity": (
        "The value '{value}' of the quantity field is invalid. Enter a positive whole number.",
        "quantityの値「{value}」が無効です。正の整数を入力してください。",
    ),
    "missing_ship_method": (
        "The ship-method field is missing or invalid. "
        "Make sure a valid ship-method value is entered.",
        # the warning Amazon Japan sends, word for word (CROSS MALL help: Amazon自動出荷通知, Q2)
        "ship-methodの項目が記入されていないか入力内容が無効です。"
        "有効なship-methodの項目が入力されていることを確認してください。",
    ),
    "missing_tracking_number": (
        "The tracking-number field is blank. "
        "Shipments without a tracking number lower your Valid Tracking Rate.",
        "tracking-numberの項目が記入されていません。"
        "追跡番号のない出荷は有効な追跡率(VTR)を下げます。",
    ),
}

SUMMARY_LINES = {
    "en": (
        "Feed Processing Summary:",
        "Number of records processed",
        "Number of records successful",
    ),
    "ja": ("フィード処理概要:", "処理されたレコード数", "成功したレコード数"),
}
HEADINGS = {
    "en": (
        "original-record-number",
        "order-id",
        "order-item-id",
        "error-code",
        "error-type",
        "error-message",
    ),
    "ja": (
        "元のレコード番号",
        "注文番号",
        "注文商品番号",
        "エラーコード",
        "エラータイプ",
        "エラーメッセージ",
    ),
}
TYPE_LABELS = {
    "en": {ERROR: ERROR, WARNING: WARNING, FATAL: FATAL},
    "ja": {ERROR: "エラー", WARNING: "警告", FATAL: "致命的"},
}
# codecs for the charsets a feed's content type may name (Shift_JIS is read as its superset cp932)
CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "ms932": "cp932",
}
REPORT_CHARSETS = {"utf-8": "UTF-8", "cp932": "windows-31j"}


@dataclass(frozen=True)
class ReportRow:
    record: int  # 0 for file-level rows
    code: str
    kind: str  # ERROR, WARNING or FATAL
    message: str
    order_id: str = ""
    order_item_id: str = ""


@dataclass(frozen=True)
class ProcessingResult:
    processed: int
    successful: int
    rows: tuple[ReportRow, ...] = ()


@dataclass(frozen=True)
class _Issue:
    key: str
    values: dict[str, str]


def message(key: str, language: str, **values: str) -> str:
    """The report text of ``key`` in ``language`` ("en" or "ja")."""
    english, japanese = MESSAGES[key]
    return (japanese if language == "ja" else english).format(**values)


def charset_of(content_type: str) -> str | None:
    """The charset parameter of a content type, as written."""
    match = re.search(r"charset\s*=\s*\"?([^\";\s]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else None


def feed_codec(content_type: str) -> str:
    """The Python codec for the charset a content type names; UTF-8 when it names none."""
    charset = (charset_of(content_type) or "utf-8").lower()
    if charset not in CHARSETS:
        raise LookupError(charset)
    return CHARSETS[charset]


def decode_feed(data: bytes, content_type: str) -> str:
    """The feed's text, read in the charset of its content type (a UTF-8 BOM is dropped)."""
    codec = feed_codec(content_type)
    return data.decode("utf-8-sig" if codec == "utf-8" else codec)


def fatal_result(key: str, language: str, **values: str) -> ProcessingResult:
    """A report that rejects the whole file with one Fatal row."""
    return ProcessingResult(0, 0, (_file_row(FATAL, key, language, **values),))


def process_feed(
    data: bytes,
    content_type: str,
    *,
    known_order_ids: Collection[str] | None = None,
    language: str = "en",
    merchant_id: str = DEFAULT_MERCHANT_ID,
) -> ProcessingResult:
    """Check an uploaded shipping-confirmation flat file as Amazon Japan would.

    ``known_order_ids`` None means every well-formed order id exists. Records are the non-blank
    rows after the three header rows, numbered from 1. A record is successful when it has no Error
    row; Amazon reports at most one Error per record, so the first failed check wins and its
    warnings are not reported.
    """
    try:
        text = decode_feed(data, content_type)
    except (LookupError, UnicodeDecodeError):
        return fatal_result("undecodable", language, charset=charset_of(content_type) or "UTF-8")
    lines = text.splitlines()
    keys, header_rows = _read_headers(lines, language)
    if keys is None:
        return ProcessingResult(0, 0, tuple(header_rows))
    rows = list(header_rows)
    processed = successful = 0
    for line in lines[3:]:
        cells = line.split("\t")
        if not any(cell.strip() for cell in cells):
            continue  # Amazon skips blank lines (an editor's trailing newline, for example)
        processed += 1
        record_rows = check_record(
            processed, _values(keys, cells), known_order_ids, language, merchant_id
        )
        successful += not any(row.kind == ERROR for row in record_rows)
        rows.extend(record_rows)
    return ProcessingResult(processed, successful, tuple(rows))


def check_record(
    record: int,
    values: dict[str, str],
    known_order_ids: Collection[str] | None,
    language: str = "en",
    merchant_id: str = DEFAULT_MERCHANT_ID,
) -> list[ReportRow]:
    """The report rows of one data record: its first Error, or else its Warnings."""
    order_id = values.get("order-id", "")

    def row(kind: str, issue: _Issue) -> ReportRow:
        text = message(issue.key, language, **issue.values)
        return ReportRow(
            record, CODES[issue.key], kind, text, order_id, values.get("order-item-id", "")
        )

    for check in _ERROR_CHECKS:
        issue = check(values, known_order_ids, merchant_id)
        if issue:
            return [row(ERROR, issue)]
    return [row(WARNING, issue) for issue in _warnings(values)]


def render_report(result: ProcessingResult, language: str = "en") -> str:
    """The processing report text, line for line in the shape of Amazon's flat-file reports."""
    title, processed, successful = SUMMARY_LINES[language]
    lines = [
        title,
        f"\t{processed}\t\t{result.processed}",
        f"\t{successful}\t\t{result.successful}",
        "",
    ]
    if result.rows:
        labels = TYPE_LABELS[language]
        lines.append("\t".join(HEADINGS[language]))
        lines.extend(
            "\t".join(
                (str(r.record), r.order_id, r.order_item_id, r.code, labels[r.kind], r.message)
            )
            for r in result.rows
        )
    return "\n".join(lines) + "\n"


def encode_report(text: str, encoding: str = "utf-8", compress: bool = False) -> bytes:
    """The bytes of a report document; characters cp932 cannot hold become '?' as at Amazon."""
    data = text.encode(encoding, errors="replace")
    # mtime=0 keeps the bytes of one report the same on every download
    return gzip.compress(data, mtime=0) if compress else data


def report_content_type(encoding: str) -> str:
    """The Content-Type a report download is answered with."""
    return f"text/plain; charset={REPORT_CHARSETS[encoding]}"


def _file_row(kind: str, key: str, language: str, **values: str) -> ReportRow:
    return ReportRow(0, CODES[key], kind, message(key, language, **values))


def _read_headers(lines: list[str], language: str) -> tuple[list[str] | None, list[ReportRow]]:
    """The column keys of the third row (None when the file is refused) and file-level rows."""
    template = [cell.strip() for cell in lines[0].split("\t")] if lines else []
    if len(lines) < 3 or template[:2] != [TEMPLATE_TYPE, TEMPLATE_VERSION]:
        return None, [_file_row(FATAL, "bad_headings", language)]
    keys = [cell.strip() for cell in lines[2].split("\t")]
    if not set(keys) & set(KEYS):
        return None, [_file_row(FATAL, "bad_headings", language)]
    warnings = [
        _file_row(WARNING, "unknown_heading", language, heading=key)
        for key in keys
        if key and key not in KEYS
    ]
    if "order-id" not in keys:
        return None, [_file_row(FATAL, "missing_order_id_column", language), *warnings]
    return keys, warnings


def _values(keys: list[str], cells: list[str]) -> dict[str, str]:
    """A record's values by key; a short row leaves its last fields blank, unknown columns drop."""
    values = {key: "" for key in KEYS}
    for key, cell in zip(keys, cells, strict=False):
        if key in values:
            values[key] = cell.strip()
    return values


def _check_order_id(
    values: dict[str, str], known: Collection[str] | None, merchant_id: str
) -> _Issue | None:
    order_id = values["order-id"]
    if ORDER_ID.fullmatch(order_id) and (known is None or order_id in known):
        return None
    return _Issue("order_not_found", {"merchant_id": merchant_id, "order_id": order_id})


def _check_quantity(values: dict[str, str], *_: object) -> _Issue | None:
    quantity = values["quantity"]
    if not quantity or QUANTITY.fullmatch(quantity):
        return None
    return _Issue("bad_quantity", {"value": quantity})


def _check_ship_date(values: dict[str, str], *_: object) -> _Issue | None:
    ship_date = values["ship-date"]
    if not ship_date:
        return _Issue("missing_ship_date", {})
    if not SHIP_DATE.fullmatch(ship_date) or not _is_calendar_date(ship_date):
        return _Issue("bad_ship_date", {"value": ship_date})
    return None


def _check_carrier(values: dict[str, str], *_: object) -> _Issue | None:
    code = values["carrier-code"]
    if not code:
        return _Issue("missing_carrier_code", {})
    if code not in JP_CARRIER_CODES:
        return _Issue("bad_carrier_code", {"value": code})
    if code == "Other" and not values["carrier-name"]:
        return _Issue("missing_carrier_name", {})
    return None


_ERROR_CHECKS: tuple[Callable[..., _Issue | None], ...] = (
    _check_order_id,
    _check_quantity,
    _check_ship_date,
    _check_carrier,
)


def _warnings(values: dict[str, str]) -> list[_Issue]:
    issues = []
    if not values["tracking-number"]:
        issues.append(_Issue("missing_tracking_number", {}))
    if not values["ship-method"]:
        issues.append(_Issue("missing_ship_method", {}))
    return issues


def _is_calendar_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
