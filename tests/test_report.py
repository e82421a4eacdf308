"""Amazon processing reports: decoding, parsing (English and Japanese), per-order outcomes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossship.amazon.report import (
    BatchOutcome,
    OrderOutcome,
    ProcessingReport,
    ReportRow,
    SentRow,
    decode_report,
    parse_report,
)
from crossship.amazon.report import outcomes as kept_outcomes
from crossship.errors import ReportParseError
from crossship.i18n import Message, render
from crossship.statuses import Status


def outcomes(report: ProcessingReport, sent: list[SentRow]) -> BatchOutcome:
    """The outcomes as an English reader sees them (ours are kept as Messages)."""
    batch = kept_outcomes(report, sent)
    return BatchOutcome(
        orders={
            no: OrderOutcome(o.order_no, o.status, render(o.message, "en"), o.warnings)
            for no, o in batch.orders.items()
        },
        notes=[render(n, "en") for n in batch.notes],  # type: ignore[misc]
    )


def test_our_remarks_on_a_report_are_kept_as_messages_and_shown_in_japanese() -> None:
    report = ProcessingReport(processed=3, successful=3, rows=())
    batch = kept_outcomes(report, [*THREE, SentRow(4, "D", "250-0000004-0000004", "")])
    (note,) = batch.notes
    assert isinstance(note, Message)
    assert note.render("en") == "Amazon processed 3 records, 4 were sent"
    assert "Amazon" in note.render("ja") and "were sent" not in note.render("ja")
    unknown = batch.orders["D"].message
    assert isinstance(unknown, Message) and "セラーセントラル" in unknown.render("ja")


SAMPLES = Path(__file__).parent / "fixtures" / "amazon"
FIXTURES = Path(__file__).parent / "fixtures" / "reports"


ORDER_HEADING = (
    "original-record-number\torder-id\torder-item-id\terror-code\terror-type\terror-message"
)


def report_text(processed: int, successful: int, *rows: str, heading: str = ORDER_HEADING) -> str:
    """A report in the exact shape Amazon writes: summary, blank line, table."""
    lines = [
        "Feed Processing Summary:",
        f"\tNumber of records processed\t\t{processed}",
        f"\tNumber of records successful\t\t{successful}",
        "",
    ]
    if rows:
        lines += [heading, *rows]
    return "\n".join(lines) + "\n"


def row(
    record: int | None = None,
    code: str = "",
    kind: str = "error",
    message: str = "",
    order_id: str = "",
    item_id: str = "",
) -> ReportRow:
    return ReportRow(record, order_id, item_id, code, kind, message)


# ---------------------------------------------------------------------------------------------
# The public samples
# ---------------------------------------------------------------------------------------------

SAMPLE_EXPECTED: dict[str, tuple[int, int, list[tuple[int | None, str, str, str]]]] = {
    # file: (processed, successful, [(record_no, order_id, code, kind)])
    "flatfile-report_all-success.txt": (1, 1, []),
    "flatfile-report_peddler-legacy-spec_8026-error.txt": (
        82,
        81,
        [(27, "", "8026", "error")],
    ),
    "flatfile-report_peddler-fixture_sku-warning.txt": (
        11006,
        11006,
        [(1822, "", "5000", "warning")],
    ),
    "flatfile-report_issue1213_90011-fatal.txt": (0, 0, [(0, "", "90011", "fatal")]),
    "flatfile-fulfillment-report_issue1091_90012-90061_RETABBED.txt": (
        0,
        0,
        [(0, "", "90012", "fatal"), (0, "", "90061", "warning")],
    ),
}


def summary(report: ProcessingReport) -> tuple[int | None, int | None, list[tuple]]:
    rows = [(r.record_no, r.order_id, r.code, r.kind) for r in report.rows]
    return report.processed, report.successful, rows


def test_every_flatfile_sample_has_expectations():
    assert {p.name for p in SAMPLES.glob("flatfile-*")} == set(SAMPLE_EXPECTED)


@pytest.mark.parametrize("name", sorted(SAMPLE_EXPECTED))
def test_flatfile_samples_parse(name):
    report = parse_report(decode_report((SAMPLES / name).read_bytes(), None))
    assert summary(report) == SAMPLE_EXPECTED[name]
    assert all(r.message for r in report.rows)


def test_sample_messages_kept_whole():
    text = (SAMPLES / "flatfile-report_peddler-legacy-spec_8026-error.txt").read_text()
    (only,) = parse_report(text).rows
    assert only.message == (
        "Seller is not authorized to list products in this category. For more details, "
        "see http://sellercentral.amazon.com/gp/errorcode/8026"
    )


def test_xml_report_refused():
    data = (
        SAMPLES / "xml-processing-report-orderfulfillment-18028-order-not-found.xml"
    ).read_bytes()
    with pytest.raises(ReportParseError, match="XML"):
        parse_report(decode_report(data, "UTF-8"))


@pytest.mark.parametrize(
    "name",
    [
        "error-429-QuotaExceeded.json",
        "jp-shipping-confirmation-template-header_UTF8.tsv",
    ],
)
def test_other_samples_refused(name):
    with pytest.raises(ReportParseError, match="not an Amazon flat-file processing report"):
        parse_report((SAMPLES / name).read_text(encoding="utf-8"))


TWIN_SAMPLES = {
    "all-success": "flatfile-report_all-success.txt",
    "8026-error": "flatfile-report_peddler-legacy-spec_8026-error.txt",
    "sku-warning": "flatfile-report_peddler-fixture_sku-warning.txt",
    "90011-fatal": "flatfile-report_issue1213_90011-fatal.txt",
    "90012-90061": "flatfile-fulfillment-report_issue1091_90012-90061_RETABBED.txt",
}


@pytest.mark.parametrize("shape", sorted(TWIN_SAMPLES))
def test_english_fixtures_are_the_samples(shape):
    """The English twins are the samples themselves, so the Japanese ones mirror real reports."""
    sample = SAMPLES / TWIN_SAMPLES[shape]
    assert (FIXTURES / f"{shape}.en.txt").read_bytes() == sample.read_bytes()


# ---------------------------------------------------------------------------------------------
# Refusing what is not a report, and format tolerance
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("", "empty"),
        ("\n \r\n\t\n", "empty"),
        ("<!DOCTYPE html>\n<html><body>Service Unavailable</body></html>", "HTML"),
        ('{"errors": [{"code": "QuotaExceeded"}]}', "JSON"),
        ('{\n  "processed": 3,\n  "successful": 3\n}\n', "JSON"),
        ("<?xml version='1.0'?>\n<AmazonEnvelope/>", "XML"),
        ("Feed Processing Summary:\n\tNumber of records processed\t\t1\n", "starting"),
        ("just some words\nand more\n", "starting 'just some words'"),
    ],
)
def test_not_a_report(text, found):
    with pytest.raises(ReportParseError, match=found):
        parse_report(text)


def test_crlf_bom_and_trailing_blank_lines():
    text = report_text(2, 1, "1\t250-1234567-1234567\t\t18028\tError\tnot found")
    variants = [
        text.replace("\n", "\r\n"),
        "\ufeff" + text + "\n\n\n",
        text.rstrip("\n"),
        "\n\n" + text.replace("\n", "\r"),
    ]
    expected = parse_report(text)
    assert expected.rows == (row(1, "18028", "error", "not found", "250-1234567-1234567"),)
    for variant in variants:
        assert parse_report(variant) == expected


def test_summary_only_without_trailing_blank_line():
    text = report_text(5, 5).rstrip("\n")
    assert not text.endswith("\n")
    assert parse_report(text) == ProcessingReport(5, 5, ())


@pytest.mark.parametrize("kind_text", ["Error", "ERROR", "error", " Error ", "エラー"])
def test_error_type_case_and_language(kind_text):
    report = parse_report(report_text(1, 0, f"1\t250-1234567-1234567\t\t18028\t{kind_text}\tx"))
    assert report.rows[0].kind == "error"


@pytest.mark.parametrize(
    ("kind_text", "kind"),
    [
        ("Warning", "warning"),
        ("WARNING", "warning"),
        ("警告", "warning"),
        ("Fatal", "fatal"),
    ]
    + [("FATAL", "fatal"), ("致命的", "fatal"), ("致命的なエラー", "fatal")],
)
def test_warning_and_fatal_types(kind_text, kind):
    report = parse_report(report_text(1, 1, f"0\t\t\t90061\t{kind_text}\tx"))
    assert report.rows[0].kind == kind


def test_unknown_error_type_is_refused():
    with pytest.raises(ReportParseError, match="unknown error type 'Info'"):
        parse_report(report_text(1, 1, "1\t250-1234567-1234567\t\t1\tInfo\tx"))


def test_record_number_that_is_not_a_number_is_refused():
    with pytest.raises(ReportParseError, match="line 6 .*'abc'"):
        parse_report(report_text(1, 0, "abc\t250-1234567-1234567\t\t1\tError\tx"))


def test_table_heading_too_narrow_is_refused():
    with pytest.raises(ReportParseError, match="2 column"):
        parse_report(report_text(1, 0, "x", heading="some\theading"))


def test_columns_found_by_name_in_any_order():
    heading = (
        "error-message\terror-type\terror-code\torder-item-id\torder-id\toriginal-record-number"
    )
    text = report_text(
        1, 0, "not found\tError\t18028\t111\t250-1234567-1234567\t4", heading=heading
    )
    assert parse_report(text).rows == (
        row(4, "18028", "error", "not found", "250-1234567-1234567", "111"),
    )


def test_unknown_headings_fall_back_to_position():
    """Headings in a language we do not know: record first, code/type/message last."""
    heading = "Numéro\tCommande\tArticle\tCode\tType\tMessage d'erreur"
    text = report_text(
        1, 0, "3\t250-1234567-1234567\t222\t18028\tError\tintrouvable", heading=heading
    )
    assert parse_report(text).rows == (
        row(3, "18028", "error", "introuvable", "250-1234567-1234567", "222"),
    )


def test_unknown_single_middle_column_used_only_when_it_holds_order_ids():
    heading = "Nr\tX\tCode\tType\tMessage"
    text = report_text(
        2,
        0,
        "1\t250-1234567-1234567\t1\tError\ta",
        "2\tsku-9\t2\tError\tb",
        heading=heading,
    )
    assert [(r.record_no, r.order_id) for r in parse_report(text).rows] == [
        (1, "250-1234567-1234567"),
        (2, ""),
    ]


def test_rows_without_heading_read_by_position():
    text = report_text(1, 0, "1\t250-1234567-1234567\t\t18028\tError\tx").replace(
        ORDER_HEADING + "\n", ""
    )
    assert parse_report(text).rows == (row(1, "18028", "error", "x", "250-1234567-1234567"),)


def test_tab_inside_message_kept():
    text = report_text(1, 0, "1\t250-1234567-1234567\t\t18028\tError\tpart one\tpart two")
    assert parse_report(text).rows[0].message == "part one\tpart two"


def test_blank_record_number_is_none():
    text = report_text(1, 0, "\t250-1234567-1234567\t\t18028\tError\tx")
    assert parse_report(text).rows[0].record_no is None


def test_summary_found_by_shape_not_wording():
    """Counts with labels we do not know are read in order: processed, then successful."""
    text = "Résumé:\n\tEnregistrements traités\t\t1,200\n\tRéussis\t\t1,199\n\n"
    assert parse_report(text) == ProcessingReport(1200, 1199, ())


def test_japanese_summary_labels_pick_their_counts():
    text = "フィード処理概要:\n\t成功したレコード数\t\t２\n\t処理されたレコード数\t\t３\n"
    assert parse_report(text) == ProcessingReport(3, 2, ())


def test_table_without_summary_has_no_counts():
    text = ORDER_HEADING + "\n1\t250-1234567-1234567\t\t18028\tError\tx\n"
    report = parse_report(text)
    assert (report.processed, report.successful, len(report.rows)) == (None, None, 1)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

JAPANESE = "フィード処理概要:\n\t処理されたレコード数\t\t1\n\t成功したレコード数\t\t1\n\n髙橋①"


@pytest.mark.parametrize(
    "charset",
    ["windows-31j", "Windows-31J", "Shift_JIS", "shift-jis", "cp932", "SJIS", None],
)
def test_decode_cp932(charset):
    assert decode_report(JAPANESE.encode("cp932"), charset) == JAPANESE


@pytest.mark.parametrize("charset", ["UTF-8", "utf8", None, "iso-8859-1", "bogus"])
def test_decode_utf8_strips_bom(charset):
    assert decode_report(b"\xef\xbb\xbf" + JAPANESE.encode("utf-8"), charset) == JAPANESE


def test_decode_mislabelled_report_still_read():
    assert decode_report(JAPANESE.encode("cp932"), "UTF-8") == JAPANESE
    assert decode_report(JAPANESE.encode("utf-8"), "windows-31j") == JAPANESE


def test_decode_whole_content_type_value():
    assert decode_report(JAPANESE.encode("cp932"), "text/plain; charset=Shift_JIS") == JAPANESE


def test_decode_undecodable_bytes_replaced():
    assert decode_report(b"ok \x81", None) == "ok \ufffd"  # a lone cp932 lead byte


@given(
    st.binary(),
    st.one_of(st.none(), st.sampled_from(["windows-31j", "UTF-8", "x"]), st.text()),
)
def test_decode_never_raises(data, charset):
    assert isinstance(decode_report(data, charset), str)


# ---------------------------------------------------------------------------------------------
# English / Japanese twins
# ---------------------------------------------------------------------------------------------


def numbered(count: int) -> list[SentRow]:
    return [SentRow(i, f"ORD{i:05}", f"250-{i:07}-0000001", "") for i in range(1, count + 1)]


SHIPCONFIRM_SENT = [
    SentRow(1, "A-1", "250-1234567-1234567", ""),
    SentRow(2, "A-2", "503-2345678-2345678", ""),
    SentRow(3, "A-3", "249-3456789-3456789", ""),
]

# shape: (processed, successful, rows as in SAMPLE_EXPECTED, the feed rows the report answers)
TWINS: dict[str, tuple[int, int, list[tuple], list[SentRow]]] = {
    "all-success": (1, 1, [], numbered(1)),
    "8026-error": (82, 81, [(27, "", "8026", "error")], numbered(82)),
    "sku-warning": (11006, 11006, [(1822, "", "5000", "warning")], numbered(11006)),
    "90011-fatal": (0, 0, [(0, "", "90011", "fatal")], numbered(3)),
    "90012-90061": (
        0,
        0,
        [(0, "", "90012", "fatal"), (0, "", "90061", "warning")],
        numbered(3),
    ),
    "shipconfirm-error-warning": (
        3,
        2,
        [
            (1, "250-1234567-1234567", "18028", "error"),
            (2, "503-2345678-2345678", "99001", "warning"),
        ],
        SHIPCONFIRM_SENT,
    ),
}


def codes(entries: list[str]) -> list[str]:
    return [entry.split(":", 1)[0] for entry in entries]


def shape(batch: BatchOutcome) -> tuple[dict, list[str]]:
    """What must not depend on the report's language: statuses and the codes behind them."""
    orders = {
        no: (
            o.status,
            codes(o.message.split("; ")) if o.message else [],
            codes(o.warnings),
        )
        for no, o in batch.orders.items()
    }
    notes = [re.sub(r":.*", "", note) for note in batch.notes]
    return orders, notes


def load_twins(name: str) -> tuple[ProcessingReport, ProcessingReport]:
    english = parse_report(decode_report((FIXTURES / f"{name}.en.txt").read_bytes(), "UTF-8"))
    data = (FIXTURES / f"{name}.ja-cp932.txt").read_bytes()
    japanese = parse_report(decode_report(data, "windows-31j"))
    return english, japanese


@pytest.mark.parametrize("name", sorted(TWINS))
def test_japanese_twin_gives_same_outcomes(name):
    processed, successful, rows, sent = TWINS[name]
    english, japanese = load_twins(name)
    assert summary(english) == summary(japanese) == (processed, successful, rows)
    assert all(r.message for r in japanese.rows)
    assert not (FIXTURES / f"{name}.ja-cp932.txt").read_bytes().isascii()
    assert shape(outcomes(japanese, sent)) == shape(outcomes(english, sent))


@pytest.mark.parametrize("charset", [None, "Shift_JIS", "cp932"])
def test_japanese_twin_read_whatever_the_label(charset):
    data = (FIXTURES / "shipconfirm-error-warning.ja-cp932.txt").read_bytes()
    assert decode_report(data, charset) == decode_report(data, "windows-31j")


def test_japanese_shipconfirm_outcome():
    _, japanese = load_twins("shipconfirm-error-warning")
    batch = outcomes(japanese, SHIPCONFIRM_SENT)
    assert [o.status for o in batch.orders.values()] == [
        Status.ERROR,
        Status.SUCCESS,
        Status.SUCCESS,
    ]
    assert batch.orders["A-1"].message.startswith("18028: 注文番号250-1234567-1234567")
    assert batch.orders["A-2"].warnings == [
        (
            "99001: ship-methodの項目が記入されていないか入力内容が無効です。"
            "有効なship-methodの項目が入力されていることを確認してください。"
        )
    ]
    assert batch.orders["A-3"].message == "" and batch.orders["A-3"].warnings == []
    assert batch.notes == []


def test_twin_fatal_outcome():
    english, _ = load_twins("90012-90061")
    batch = outcomes(english, numbered(3))
    assert {o.status for o in batch.orders.values()} == {Status.ERROR}
    assert all(o.message.startswith("90012: The required order-id") for o in batch.orders.values())
    assert all(o.warnings == [] for o in batch.orders.values())
    assert any(note.startswith("warning for the whole feed: 90061") for note in batch.notes)
    assert "Amazon processed 0 records, 3 were sent" in batch.notes


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------

THREE = [
    SentRow(1, "A", "250-0000001-0000001", ""),
    SentRow(2, "B", "250-0000002-0000002", ""),
    SentRow(3, "C", "250-0000003-0000003", ""),
]


def statuses(batch: BatchOutcome) -> dict[str, Status]:
    return {no: o.status for no, o in batch.orders.items()}


def test_all_success():
    batch = outcomes(ProcessingReport(3, 3, ()), THREE)
    assert list(batch.orders) == ["A", "B", "C"]
    assert all(o.status is Status.SUCCESS and o.message == "" for o in batch.orders.values())
    assert batch.notes == []


def test_error_matched_by_order_id_even_with_wrong_record_number():
    report = ProcessingReport(3, 2, (row(9, "18028", "error", "not found", "250-0000002-0000002"),))
    batch = outcomes(report, THREE)
    assert statuses(batch) == {
        "A": Status.SUCCESS,
        "B": Status.ERROR,
        "C": Status.SUCCESS,
    }
    assert batch.orders["B"].message == "18028: not found"
    assert batch.notes == []


def test_several_errors_joined():
    report = ProcessingReport(
        3,
        2,
        (
            row(2, "1", "error", "bad date", "250-0000002-0000002"),
            row(2, "2", "Error".lower(), "bad carrier", "250-0000002-0000002"),
        ),
    )
    assert outcomes(report, THREE).orders["B"].message == "1: bad date; 2: bad carrier"


SPLIT = [
    SentRow(1, "P", "250-0000001-0000001", "11111"),
    SentRow(2, "P", "250-0000001-0000001", "22222"),
    SentRow(3, "P-1", "250-0000001-0000001", "33333"),  # split child: same Amazon order id
    SentRow(4, "Q", "250-0000004-0000004", ""),
]


def test_split_order_matched_by_order_item_id():
    report = ProcessingReport(
        4,
        3,
        (row(None, "20001", "error", "bad tracking", "250-0000001-0000001", "33333"),),
    )
    batch = outcomes(report, SPLIT)
    assert list(batch.orders) == ["P", "P-1", "Q"]
    assert statuses(batch) == {
        "P": Status.SUCCESS,
        "P-1": Status.ERROR,
        "Q": Status.SUCCESS,
    }


def test_split_order_error_on_any_row_makes_order_error():
    report = ProcessingReport(
        4,
        3,
        (row(2, "20001", "error", "bad tracking", "250-0000001-0000001", "22222"),),
    )
    assert statuses(outcomes(report, SPLIT))["P"] is Status.ERROR


def test_split_order_without_item_id_uses_record_number_to_tell_parts_apart():
    report = ProcessingReport(4, 3, (row(3, "1", "error", "x", "250-0000001-0000001"),))
    assert statuses(outcomes(report, SPLIT)) == {
        "P": Status.SUCCESS,
        "P-1": Status.ERROR,
        "Q": Status.SUCCESS,
    }


def test_same_message_on_two_rows_of_an_order_said_once():
    report = ProcessingReport(
        4,
        2,
        (
            row(1, "7", "error", "x", "250-0000001-0000001", "11111"),
            row(2, "7", "error", "x", "250-0000001-0000001", "22222"),
        ),
    )
    assert outcomes(report, SPLIT).orders["P"].message == "7: x"


def test_error_matched_by_record_number_when_order_id_blank():
    report = ProcessingReport(3, 2, (row(3, "8026", "error", "not authorised"),))
    batch = outcomes(report, THREE)
    assert statuses(batch) == {
        "A": Status.SUCCESS,
        "B": Status.SUCCESS,
        "C": Status.ERROR,
    }
    assert batch.orders["C"].message == "8026: not authorised"


def test_file_level_fatal_fails_every_order():
    report = ProcessingReport(0, 0, (row(0, "90011", "fatal", "headings invalid"),))
    batch = outcomes(report, SPLIT)
    assert set(statuses(batch).values()) == {Status.ERROR}
    assert all(o.message == "90011: headings invalid" for o in batch.orders.values())
    assert "Amazon rejected the whole feed: 90011: headings invalid" in batch.notes


def test_fatal_naming_one_order_fails_that_order():
    report = ProcessingReport(3, 2, (row(2, "1", "fatal", "boom", "250-0000002-0000002"),))
    assert statuses(outcomes(report, THREE)) == {
        "A": Status.SUCCESS,
        "B": Status.ERROR,
        "C": Status.SUCCESS,
    }


def test_unmatched_error_makes_other_orders_result_failed():
    report = ProcessingReport(
        3,
        1,
        (
            row(1, "18028", "error", "not found", "250-0000001-0000001"),
            row(None, "99999", "error", "mystery", "999-9999999-9999999"),
        ),
    )
    batch = outcomes(report, THREE)
    assert statuses(batch) == {
        "A": Status.ERROR,
        "B": Status.RESULT_FAILED,
        "C": Status.RESULT_FAILED,
    }
    assert batch.orders["A"].message == "18028: not found"
    assert "Seller Central" in batch.orders["B"].message
    assert "99999: mystery" in batch.orders["B"].message
    assert any("999-9999999-9999999" in note and "matches no row" in note for note in batch.notes)


def test_error_with_record_number_outside_the_feed_is_unmatched():
    report = ProcessingReport(3, 2, (row(7, "1", "error", "x"),))
    batch = outcomes(report, THREE)
    assert set(statuses(batch).values()) == {Status.RESULT_FAILED}
    assert any("record 7" in note for note in batch.notes)


def test_warning_attached_to_successful_order():
    report = ProcessingReport(
        3,
        3,
        (
            row(2, "99001", "warning", "ship-method missing", "250-0000002-0000002"),
            row(3, "5000", "warning", "identical update"),
        ),
    )
    batch = outcomes(report, THREE)
    assert set(statuses(batch).values()) == {Status.SUCCESS}
    assert batch.orders["B"].warnings == ["99001: ship-method missing"]
    assert batch.orders["B"].message == ""
    assert batch.orders["C"].warnings == ["5000: identical update"]
    assert batch.notes == []


def test_error_order_keeps_its_warnings():
    report = ProcessingReport(
        3,
        2,
        (
            row(1, "1", "error", "e", "250-0000001-0000001"),
            row(1, "2", "warning", "w", "250-0000001-0000001"),
        ),
    )
    outcome = outcomes(report, THREE).orders["A"]
    assert (outcome.status, outcome.message, outcome.warnings) == (
        Status.ERROR,
        "1: e",
        ["2: w"],
    )


def test_file_level_warning_goes_to_notes():
    report = ProcessingReport(3, 3, (row(0, "90061", "warning", "heading ignored"),))
    batch = outcomes(report, THREE)
    assert set(statuses(batch).values()) == {Status.SUCCESS}
    assert all(o.warnings == [] for o in batch.orders.values())
    assert batch.notes == ["warning for the whole feed: 90061: heading ignored"]


def test_warning_for_another_order_id_means_the_report_is_not_this_batchs():
    # a report naming an order id we did not send may be another system's feed: nothing is 正常
    report = ProcessingReport(3, 3, (row(None, "1", "warning", "w", "999-9999999-9999999"),))
    batch = outcomes(report, THREE)
    assert set(statuses(batch).values()) == {Status.RESULT_FAILED}
    assert "999-9999999-9999999" in batch.orders["A"].message
    assert "Seller Central" in batch.orders["A"].message
    assert any("matches no row" in note for note in batch.notes)


def test_count_mismatch_makes_the_orders_without_a_verdict_result_failed():
    batch = outcomes(
        ProcessingReport(3, 3, ()), [*THREE, SentRow(4, "D", "250-0000004-0000004", "")]
    )
    assert set(statuses(batch).values()) == {Status.RESULT_FAILED}
    assert "3 records processed, 4 were sent" in batch.orders["D"].message
    assert "Seller Central" in batch.orders["D"].message
    assert batch.notes == ["Amazon processed 3 records, 4 were sent"]


def test_adopted_foreign_report_accounts_for_fewer_rows_than_sent():
    # issue 10: another system's feed (1 record processed, clean) adopted for our 2-row batch
    two = THREE[:2]
    batch = outcomes(ProcessingReport(1, 1, ()), two)
    assert statuses(batch) == {"A": Status.RESULT_FAILED, "B": Status.RESULT_FAILED}


def test_an_order_with_its_own_error_keeps_it_when_the_counts_differ():
    report = ProcessingReport(2, 1, (row(1, "18028", "error", "not found", "250-0000001-0000001"),))
    batch = outcomes(report, THREE)
    assert statuses(batch) == {
        "A": Status.ERROR,
        "B": Status.RESULT_FAILED,
        "C": Status.RESULT_FAILED,
    }


def test_successful_plus_failed_mismatch_is_a_note():
    batch = outcomes(
        ProcessingReport(3, 1, (row(1, "1", "error", "x", "250-0000001-0000001"),)),
        THREE,
    )
    assert batch.notes == [
        "Amazon counted 1 successful of 3 records processed, "
        "but the report lists 1 record with errors"
    ]
    assert statuses(batch) == {
        "A": Status.ERROR,
        "B": Status.SUCCESS,
        "C": Status.SUCCESS,
    }


def test_counts_that_add_up_give_no_note():
    report = ProcessingReport(
        3,
        2,
        (
            row(1, "1", "error", "x", "250-0000001-0000001"),
            row(1, "2", "error", "y", "250-0000001-0000001"),  # same record: counted once
            row(2, "3", "warning", "z", "250-0000002-0000002"),
        ),
    )
    assert outcomes(report, THREE).notes == []


def test_missing_counts_account_for_nothing():
    batch = outcomes(ProcessingReport(None, None, ()), THREE)
    assert set(statuses(batch).values()) == {Status.RESULT_FAILED}
    assert batch.notes == ["Amazon's report gives no count of the records it processed"]


def test_no_sent_rows():
    batch = outcomes(ProcessingReport(0, 0, ()), [])
    assert batch.orders == {} and batch.notes == []


# ---------------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------------

REPORT_PIECES = st.sampled_from(
    [
        "Feed Processing Summary:",
        "フィード処理概要:",
        "\tNumber of records processed\t\t3",
        "\t成功したレコード数\t\t２",
        "\tlabel\t\t99999999999999999999",
        "",
        ORDER_HEADING,
        "元のレコード番号\tSKU\tエラーコード\tエラータイプ\tエラーメッセージ",
        "0\t\t\t90012\tFatal\tx",
        "1\t250-1234567-1234567\t\t1\tError\ty",
        "\t\t\t\tWarning\t",
        "x\ty\tz\tw",
        "１２\ta\tb\tc\td",
        "<html>",
    ]
)


@given(st.text())
def test_parse_report_only_raises_report_parse_error(text):
    try:
        report = parse_report(text)
    except ReportParseError:
        return
    assert all(r.kind in {"error", "warning", "fatal"} for r in report.rows)


@given(
    st.lists(st.one_of(REPORT_PIECES, st.text(max_size=20)), max_size=12),
    st.sampled_from(["\n", "\r\n"]),
)
def test_parse_report_report_like_text_only_raises_report_parse_error(pieces, newline):
    try:
        report = parse_report(newline.join(pieces))
    except ReportParseError:
        return
    outcomes(report, THREE)  # whatever parses can be applied
