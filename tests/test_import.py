"""`crossship orders import` and crossship.importer: encodings, headings, bad rows, re-import."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossship import importer
from crossship.errors import ImportFileError, StoreError
from crossship.statuses import Status
from crossship.store import StatusChange, Store

NOW = "2026-11-27T01:00:00.000000+00:00"
JA_HEADER = (
    "管理番号,店舗,注文番号,処理フェーズ,管理区分,FBA,発送日,配送便,配送番号,注文商品番号,SKU,数量"
)
EN_HEADER = (
    "order_no,store,mall_order_id,phase,category,fba,ship_date,carrier,tracking_number,"
    "item_id,sku,quantity"
)
ROWS = [
    "A1,amazon-main,503-1111111-1111111,出荷済み,通常,0,2026-11-24,ヤマト運輸,401234567890,11,SKU-1,1",
    "A1,amazon-main,503-1111111-1111111,出荷済み,通常,0,2026-11-24,ヤマト運輸,401234567890,12,SKU-2,2",
    "A2,amazon-main,503-2222222-2222222,出荷待ち,保留,0,,佐川急便,,,,",
    "A3,amazon-main,,完了,キャンセル,1,2026-11-20,日本郵便,,,RKT-1,3",
]


def csv_text(header: str = JA_HEADER, rows: list[str] = ROWS) -> str:
    return "\n".join([header, *rows]) + "\n"


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def problems(result) -> list[str]:
    """The indented detail lines under the one Error: line."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert sum(1 for line in lines if line.startswith("Error: ")) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return [line.strip() for line in lines if line.startswith("  ")]


def dump(db_path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, to compare a database before and after."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables
        }
    finally:
        conn.close()


# ----------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize(
    "encoding, label",
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8"), ("cp932", "cp932")],
)
def test_encodings_are_detected(run, configured, store, tmp_path, encoding, label):
    path = write(tmp_path, csv_text(), encoding)
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    result = run(["orders", "import", str(path)], catch=False)
    assert result.exit_code == 0, result.stderr
    assert f"Imported 3 orders (3 new, 0 updated), 3 item lines ({label})" in result.stderr
    assert result.stdout == ""
    a1 = store.get_order("A1")
    assert (a1["phase"], a1["carrier"], a1["category"], a1["status"]) == (
        "出荷済み",
        "ヤマト運輸",
        "normal",
        "pending",
    )
    a3 = store.get_order("A3")
    assert (a3["category"], a3["fba"], a3["mall_order_id"]) == ("cancel", 1, None)
    assert [
        (i["line"], i["item_id"], i["sku"], i["quantity"]) for i in store.order_items("A1")
    ] == [
        (1, "11", "SKU-1", 1),
        (2, "12", "SKU-2", 2),
    ]
    assert store.order_items("A2") == []


def test_explicit_encodings(run, configured, store, tmp_path):
    sjis = write(tmp_path, csv_text(), "cp932")
    assert run(["orders", "import", str(sjis), "--encoding", "cp932"]).exit_code == 0
    wrong = run(["orders", "import", str(sjis), "--encoding", "utf-8"])
    assert wrong.exit_code == 1
    assert "is not UTF-8: line 1" in wrong.stderr


def test_neither_utf8_nor_cp932(run, configured, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(JA_HEADER.encode() + b"\nA1,amazon-main,\x82\xff\x81,x\n")
    result = run(["orders", "import", str(path)])
    assert result.exit_code == 1
    assert "neither UTF-8 (line 2 is not) nor cp932" in result.stderr


def test_english_headings_and_stdin(run, configured, store):
    result = run(["orders", "import", "-"], input=csv_text(EN_HEADER).encode("cp932"), catch=False)
    assert result.exit_code == 0, result.stderr
    assert "(cp932)" in result.stderr
    assert store.get_order("A2")["category"] == "hold"


def test_english_category_and_fba_words(run, configured, store, tmp_path):
    text = csv_text(
        "order_no,store,phase,category,fba,ship_date",
        [
            "B1,amazon-main,出荷済み,Hold,yes,2026-11-01",
            "B2,amazon-main,出荷済み,normal,FALSE,2026-11-01",
        ],
    )
    assert run(["orders", "import", str(write(tmp_path, text))], catch=False).exit_code == 0
    assert (store.get_order("B1")["category"], store.get_order("B1")["fba"]) == ("hold", 1)
    assert (store.get_order("B2")["category"], store.get_order("B2")["fba"]) == ("normal", 0)


def test_unknown_columns_are_ignored_with_a_warning(run, configured, store, tmp_path):
    text = (
        "管理番号,店舗,処理フェーズ,注文者氏名,発送日\n"
        "C1,amazon-main,出荷済み,山田太郎,2026-11-02\n"
    )
    result = run(["orders", "import", str(write(tmp_path, text))], catch=False)
    assert result.exit_code == 0
    assert "columns ignored (not known): 注文者氏名" in result.stderr


def test_header_only_and_blank_lines(run, configured, tmp_path):
    result = run(["orders", "import", str(write(tmp_path, JA_HEADER + "\n\n\n"))], catch=False)
    assert result.exit_code == 0
    assert "Imported 0 orders" in result.stderr


def test_example_file_imports(run, configured, store):
    path = Path(__file__).resolve().parent.parent / "examples" / "orders.csv"
    result = run(["orders", "import", str(path)], catch=False)
    assert result.exit_code == 0, result.stderr
    assert "Imported 18 orders (18 new, 0 updated), 14 item lines" in result.stderr
    assert store.get_order("10005")["fba"] == 1
    assert store.get_order("10009")["bundle_parent"] == "10008"
    assert store.get_order("10012")["split_from"] == "10011"
    assert store.get_order("10013")["ship_date"] is None
    assert store.get_order("10004")["tracking_number"] is None
    assert len(store.order_items("10015")) == 3


# ----------------------------------------------------------------------------- re-import


def test_reimport_updates_fields_replaces_items_and_keeps_status(run, configured, store, tmp_path):
    assert run(["orders", "import", str(write(tmp_path, csv_text()))], catch=False).exit_code == 0
    store.change_statuses([StatusChange("A1", Status.SUCCESS, "ok")], now=NOW)
    store.change_statuses([StatusChange("A2", Status.ERROR, "no date")], now=NOW)
    again = csv_text(
        rows=[
            "A1,amazon-main,503-1111111-1111111,完了,通常,0,2026-11-24,ヤマト運輸,401234567999,13,SKU-3,5",
            "A2,amazon-main,503-2222222-2222222,出荷待ち,保留,0,,佐川急便,,,,",
            "A4,amazon-main,,新規受付,,,,,,,,",
        ]
    )
    result = run(["orders", "import", str(write(tmp_path, again, name="again.csv"))], catch=False)
    assert result.exit_code == 0, result.stderr
    assert "Imported 3 orders (1 new, 2 updated), 1 item lines" in result.stderr
    a1 = store.get_order("A1")
    assert (a1["phase"], a1["tracking_number"], a1["status"], a1["message"]) == (
        "完了",
        "401234567999",
        "success",
        "ok",
    )
    assert [(i["line"], i["item_id"], i["quantity"]) for i in store.order_items("A1")] == [
        (1, "13", 5)
    ]
    assert store.get_order("A2")["status"] == "error"
    assert store.get_order("A4")["category"] == "normal"


def test_reimport_without_a_column_keeps_its_value(run, configured, store, tmp_path):
    assert run(["orders", "import", str(write(tmp_path, csv_text()))], catch=False).exit_code == 0
    text = "order_no,store,phase\nA1,amazon-main,出荷済み\n"
    result = run(["orders", "import", str(write(tmp_path, text, name="b.csv"))], catch=False)
    assert result.exit_code == 0, result.stderr  # 出荷済み requires a ship date: A1 has one stored
    a1 = store.get_order("A1")
    assert (a1["carrier"], a1["ship_date"]) == ("ヤマト運輸", "2026-11-24")
    assert len(store.order_items("A1")) == 2  # rows without item columns keep the item lines


def test_in_progress_order_row_is_refused(run, configured, store, tmp_path):
    assert run(["orders", "import", str(write(tmp_path, csv_text()))], catch=False).exit_code == 0
    store.change_statuses([StatusChange("A2", Status.IN_PROGRESS)], now=NOW)
    before = dump(store.path)
    changed = csv_text(rows=[ROWS[0], ROWS[1], ROWS[2].replace("出荷待ち", "完了")])
    result = run(["orders", "import", str(write(tmp_path, changed, name="c.csv"))])
    assert problems(result) == [
        "line 4, column 管理番号: order A2 is 連携中 (in_progress) in a batch that is not "
        "finished: it cannot be changed now; leave it out, or import it after "
        "`crossship results fetch` has finished the batch"
    ]
    assert dump(store.path) == before


def test_required_phase_without_ship_date_is_refused(run, configured, store, tmp_path):
    text = csv_text(rows=["D1,amazon-main,,出荷済み,通常,0,,ヤマト運輸,,,,"])
    result = run(["orders", "import", str(write(tmp_path, text))])
    assert problems(result) == [
        "line 2, column 発送日: phase '出荷済み' requires a ship date (発送日設定=必須): give one "
        "as YYYY-MM-DD, or import the order into another phase"
    ]
    assert store.find_orders(["D1"]) == {}


# ----------------------------------------------------------------------------- bad rows


def test_every_bad_row_is_reported_with_line_and_column(run, configured, store, tmp_path):
    rows = [
        "E1,nosuch,,出荷済み,通常,0,2026-11-24,ヤマト運輸,,,,",
        "E2,amazon-main,,nophase,通常,0,2026-11-24,ヤマト運輸,,,,",
        "E3,amazon-main,,出荷済み,通常,0,2026/11/24,ヤマト運輸,,,,",
        "E4,amazon-main,,出荷済み,通常,0,2026-11-24,黒猫,,,,",
        "E5,amazon-main,,出荷済み,通常,0,2026-11-24,ヤマト運輸,,1,SKU,0",
        "E6,amazon-main,,出荷済み,緊急,0,2026-11-24,ヤマト運輸,,1,SKU,1.5",
        ",amazon-main,,出荷済み,通常,0,2026-11-24,ヤマト運輸,,,,",
        "E8,amazon-main,,出荷済み,通常,2,2026-11-24,ヤマト運輸,,,,",
        "E9,amazon-main,,出荷済み,通常,0,2026-11-24,ヤマト運輸,,1,SKU,",
    ]
    result = run(["orders", "import", str(write(tmp_path, csv_text(rows=rows)))])
    found = problems(result)
    assert "10 problem(s) in the file: nothing imported" in result.stderr
    assert [re.match(r"line (\d+), column ([^:]+):", p).groups() for p in found] == [
        ("2", "店舗"),
        ("3", "処理フェーズ"),
        ("4", "発送日"),
        ("5", "配送便"),
        ("6", "数量"),
        ("7", "管理区分"),
        ("7", "数量"),
        ("8", "管理番号"),
        ("9", "FBA"),
        ("10", "数量"),
    ]
    assert list(store.iter_orders()) == []


def test_english_heading_names_the_column_as_written(run, configured, tmp_path):
    text = csv_text(EN_HEADER, ["F1,amazon-main,,出荷済み,normal,0,tomorrow,,,,,"])
    found = problems(run(["orders", "import", str(write(tmp_path, text))]))
    assert found == [
        "line 2, column ship_date: 'tomorrow' is not a date: write it as YYYY-MM-DD (2026-11-27)"
    ]


def test_quoted_multiline_field_shifts_line_numbers(run, configured, tmp_path):
    rows = [
        'G1,amazon-main,,出荷済み,通常,0,2026-11-24,ヤマト運輸,"line one\nline two\nline three",,,',
        "G2,amazon-main,,出荷済み,通常,0,2026-11-24,nosuch,,,,",
    ]
    found = problems(run(["orders", "import", str(write(tmp_path, csv_text(rows=rows)))]))
    # G1 spans lines 2-4, so G2 is on the file's line 5
    assert found == [
        "line 5, column 配送便: unknown carrier 'nosuch': add it with "
        "`crossship config carrier add` or fix the name"
    ]


def test_conflicting_repeated_order_fields(run, configured, tmp_path):
    rows = [ROWS[0], ROWS[1].replace("401234567890", "401234567891")]
    found = problems(run(["orders", "import", str(write(tmp_path, csv_text(rows=rows)))]))
    assert len(found) == 1
    assert found[0].startswith("line 3, column 配送番号: 401234567891 differs from line 2")


def test_missing_required_column(run, configured, tmp_path):
    text = "管理番号,店舗,発送日\nH1,amazon-main,2026-11-24\n"
    found = problems(run(["orders", "import", str(write(tmp_path, text))]))
    assert found == [
        "line 1, column 処理フェーズ: the required column 処理フェーズ (phase) is missing "
        "from the header"
    ]


def test_too_many_cells(run, configured, tmp_path):
    text = "order_no,store,phase\nI1,amazon-main,出荷待ち,extra\n"
    found = problems(run(["orders", "import", str(write(tmp_path, text))]))
    assert found[0].startswith("line 2: the row has 4 cells but the header has 3")


def test_empty_file_and_missing_file(run, configured, tmp_path):
    result = run(["orders", "import", str(write(tmp_path, ""))])
    assert result.exit_code == 1
    assert "the file is empty" in result.stderr
    missing = run(["orders", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr
    assert run(["orders", "import"]).exit_code == 2


def test_many_bad_rows_are_counted_beyond_the_report(configured, store):
    text = csv_text(
        rows=[f"X{n},nosuch,,出荷待ち,,,,,,,," for n in range(importer.MAX_REPORTED + 5)]
    )
    with pytest.raises(ImportFileError) as caught:
        importer.import_file(store, io.BytesIO(text.encode()), now=NOW)
    assert len(caught.value.details) == importer.MAX_REPORTED + 1
    assert caught.value.details[-1] == "... and 5 more problems"


# ----------------------------------------------------------------------------- property


def _valid_rows(count: int) -> list[str]:
    rows = []
    for n in range(count):
        order = f"P{n},amazon-main,503-0000000-{n:07d},出荷済み,通常,0,2026-11-2{n % 9},ヤマト運輸"
        rows.append(f"{order},4012{n:08d},{n}1,SKU-{n},1")
        if n % 3 == 0:  # a second item line of the same order
            rows.append(f"{order},4012{n:08d},{n}2,SKU-{n}b,2")
    return rows


# (column index, bad value, heading) of a single bad cell
BAD_CELLS = [
    (1, "nosuch-store", "店舗"),
    (3, "nosuch-phase", "処理フェーズ"),
    (4, "至急", "管理区分"),
    (5, "maybe", "FBA"),
    (6, "2026-11-31", "発送日"),
    (6, "", "発送日"),  # 出荷済み requires a ship date
    (7, "nosuch-carrier", "配送便"),
    (11, "-1", "数量"),
    (11, "two", "数量"),
    (0, "", "管理番号"),
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(min_value=1, max_value=25),
    where=st.integers(min_value=0, max_value=10_000),
    bad=st.sampled_from(BAD_CELLS),
    seed_first=st.booleans(),
)
def test_one_bad_row_changes_nothing_and_is_reported(
    configured, run, count, where, bad, seed_first
):
    db_path = configured
    if seed_first:  # the database already holds some of the orders
        with Store(db_path) as opened:
            importer.import_file(
                opened, io.BytesIO(csv_text(rows=_valid_rows(2)).encode()), now=NOW
            )
    rows = _valid_rows(count)
    position = where % (len(rows) + 1)
    column, value, heading = bad
    cells = f"Q{where},amazon-main,,出荷済み,通常,0,2026-11-20,ヤマト運輸,,1,SKU-Q,1".split(",")
    cells[column] = value
    rows.insert(position, ",".join(cells))
    before = dump(db_path)
    with Store(db_path) as opened, pytest.raises(ImportFileError) as caught:
        importer.import_file(opened, io.BytesIO(csv_text(rows=rows).encode()), now=NOW)
    assert dump(db_path) == before
    expected = f"line {position + 2}, column {heading}: "
    assert any(d.startswith(expected) for d in caught.value.details), caught.value.details
    assert all(d.startswith(f"line {position + 2},") for d in caught.value.details)


# ----------------------------------------------------------------------------- scale


def test_a_large_file_imports_in_one_transaction(configured, store, tmp_path):
    path = tmp_path / "large.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write(EN_HEADER + "\n")
        for n in range(20000):
            order = n // 2  # two item lines per order
            out.write(
                f"L{order},amazon-main,503-0000000-{order:07d},出荷済み,normal,0,2026-11-27,"
                f"ヤマト運輸,4012{order:08d},{n},SKU-{n},1\n"
            )
    with path.open("rb") as source:
        summary = importer.import_file(store, source, now=NOW)
    assert (summary.orders, summary.new, summary.items) == (10000, 10000, 20000)
    assert [i["line"] for i in store.order_items("L9999")] == [1, 2]


def test_a_busy_database_is_one_error_not_a_traceback(configured, store, tmp_path):
    other = sqlite3.connect(configured)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    try:
        store.db.conn.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(StoreError) as caught:
            importer.import_file(store, io.BytesIO(csv_text().encode()), now=NOW)
        assert "database is busy" in caught.value.message
    finally:
        other.rollback()
        other.close()


def test_crlf_cp932_export_with_multiline_field(run, configured, store, tmp_path):
    # spreadsheet exports on Windows: cp932, CRLF, a quoted value spanning lines
    rows = [
        'J1,amazon-main,,出荷済み,通常,0,2026-11-24,ヤマト運輸,"4012\r\n3456",,,',
        "J2,amazon-main,,出荷済み,通常,0,2026-11-24,nosuch,,,,",
    ]
    text = "\r\n".join([JA_HEADER, *rows]) + "\r\n"
    found = problems(run(["orders", "import", str(write(tmp_path, text, "cp932"))]))
    assert [f.split(":")[0] for f in found] == ["line 4, column 配送便"]


def test_a_heading_twice_is_refused(run, configured, tmp_path):
    text = "管理番号,店舗,処理フェーズ,order_no\nK1,amazon-main,出荷待ち,K1\n"
    found = problems(run(["orders", "import", str(write(tmp_path, text))]))
    assert found == ["line 1, column order_no: 管理番号 (order_no) appears twice: keep one column"]


def test_fba_is_refused_on_another_malls_order(run, configured, store, tmp_path):
    text = csv_text(
        "order_no,store,phase,fba,ship_date",
        ["C1,amazon-main,出荷済み,1,2026-11-01", "C2,rakuten-shop,出荷済み,1,2026-11-01"],
    )
    result = run(["orders", "import", str(write(tmp_path, text))])
    assert result.exit_code == 1
    assert "line 3" in result.stderr and "only Amazon orders can be FBA" in result.stderr
    assert store.find_orders(["C1", "C2"]) == {}  # nothing imported
