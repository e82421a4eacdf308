"""`crossship orders list|show|move|update` (import has its own module, test_import.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossship.statuses import Status
from crossship.store import StatusChange

# every command but init needs a database: these tests start from an initialised one
pytestmark = pytest.mark.usefixtures("initialised")

FIELDS = [
    "order_no", "store", "mall_order_id", "phase", "category", "fba", "bundle_parent",
    "split_from", "ship_date", "carrier", "tracking_number", "status", "status_label",
]  # fmt: skip
NOW = "2026-11-27T01:00:00.000000+00:00"


def one_error(result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def set_status(store, order_no, status, message=""):
    store.change_statuses([StatusChange(order_no, status, message)], now=NOW)


# ----------------------------------------------------------------------------- list


def test_list_formats(run, imported):
    table = run("orders list", catch=False)
    assert table.exit_code == 0
    assert "未連携" in table.stdout and "pending" not in table.stdout
    lines = run("orders list --format jsonl", catch=False).stdout.splitlines()
    assert len(lines) == 18
    first = json.loads(lines[0])
    assert list(first)[: len(FIELDS)] == FIELDS
    assert first["status"] == "pending" and first["status_label"] == "未連携"
    array = json.loads(run("orders list --format json", catch=False).stdout)
    assert [r["order_no"] for r in array] == [json.loads(x)["order_no"] for x in lines]
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        out = run(["orders", "list", "--format", fmt], catch=False).stdout
        rows = list(csv.DictReader(io.StringIO(out), delimiter=delimiter))
        assert len(rows) == 18
        assert list(rows[0])[: len(FIELDS)] == FIELDS
        assert rows[0]["status_label"] == "未連携"


def test_list_empty_database(run):
    assert json.loads(run("orders list --format json", catch=False).stdout) == []
    assert run("orders list --format jsonl", catch=False).stdout == ""


def test_list_filters(run, imported, store):
    set_status(store, "10002", Status.ERROR, "配送便 missing")
    set_status(store, "10003", Status.NOTIFY_FAILED)

    def order_nos(args):
        result = run(args + " --format jsonl", catch=False)
        assert result.exit_code == 0, result.stderr
        return [json.loads(line)["order_no"] for line in result.stdout.splitlines()]

    assert order_nos("orders list --api-status エラー") == ["10002"]
    assert order_nos("orders list --api-status error --api-status 通知失敗") == ["10002", "10003"]
    assert order_nos("orders list --store rakuten-shop") == ["20001", "20002"]
    assert order_nos("orders list --phase 出荷待ち") == ["10013", "20002"]
    assert order_nos("orders list --store amazon-main --phase 出荷待ち --api-status 未連携") == [
        "10013"
    ]
    assert (
        json.loads(run("orders list --api-status error --format json", catch=False).stdout)[0][
            "message"
        ]
        == "配送便 missing"
    )


@pytest.mark.parametrize(
    "args, text",
    [
        ("orders list --api-status nonsense", "unknown API status"),
        ("orders list --store nosuch", "no store named"),
        ("orders list --phase nosuch", "no phase named"),
    ],
)
def test_list_errors(run, imported, args, text):
    result = run(args)
    assert result.exit_code == 2
    assert text in one_error(result)


def test_list_bad_format_is_a_usage_error(run):
    result = run("orders list --format xml")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_list_into_a_closed_pipe_ends_quietly(imported, tmp_path):
    env = dict(os.environ)
    command = f"{sys.executable} -m crossship orders list --format jsonl | head -1"
    done = subprocess.run(
        ["bash", "-c", "set -o pipefail; " + command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["order_no"] == "10001"
    assert done.stderr == ""


def test_list_many_orders_into_a_closed_pipe(run, configured, tmp_path):
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8") as out:
        out.write("order_no,store,phase,ship_date\n")
        for n in range(30000):
            out.write(f"{n:06d},amazon-main,出荷済み,2026-11-27\n")
    assert run(["orders", "import", str(big)], catch=False).exit_code == 0
    command = f"{sys.executable} -m crossship orders list --format csv | head -2"
    done = subprocess.run(
        ["bash", "-c", "set -o pipefail; " + command], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(done.stdout.splitlines()) == 2


# ----------------------------------------------------------------------------- show


def test_show(run, imported, store):
    set_status(store, "10001", Status.ERROR, "発送日 missing")
    result = run("orders show 10001", catch=False)
    assert result.exit_code == 0
    assert "エラー" in result.stdout and "発送日 missing" in result.stdout
    assert "38204417562913" in result.stdout  # item lines
    assert "history" in result.stdout
    record = json.loads(run("orders show 10001 --format json", catch=False).stdout)
    assert record["status"] == "error" and record["status_label"] == "エラー"
    assert [i["item_id"] for i in record["items"]] == ["38204417562913", "38204417562914"]
    assert record["history"][0]["status"] == "error"
    assert record["history"][0]["status_label"] == "エラー"
    assert record["history"][0]["time"].startswith("2026-11-27")
    no_items = json.loads(run("orders show 10004 --format json", catch=False).stdout)
    assert no_items["items"] == [] and no_items["history"] == []


def test_show_unknown_order(run, imported):
    result = run("orders show 99999")
    assert result.exit_code == 2
    assert "no order '99999'" in one_error(result)


# ----------------------------------------------------------------------------- move


def test_move_into_a_required_phase_needs_a_ship_date(run, imported, store):
    result = run("orders move 10013 10014 --to 出荷済み")
    assert result.exit_code == 1
    assert "requires a ship date" in one_error(result)
    assert "order 10013: no ship date" in result.stderr
    assert store.get_order("10013")["phase"] == "出荷待ち"  # nothing moved
    assert store.get_order("10014")["phase"] == "新規受付"
    moved = run("orders move 10013 10014 --to 出荷済み --ship-date 2026-11-28", catch=False)
    assert moved.exit_code == 0, moved.stderr
    assert "Moved 2 order(s) to 出荷済み" in moved.stderr
    for order_no in ("10013", "10014"):
        order = store.get_order(order_no)
        assert (order["phase"], order["ship_date"]) == ("出荷済み", "2026-11-28")


def test_move_into_an_optional_phase_without_ship_date(run, imported, store):
    result = run("orders move 10014 --to 出荷待ち", catch=False)
    assert result.exit_code == 0
    assert store.get_order("10014")["phase"] == "出荷待ち"
    assert store.get_order("10014")["ship_date"] is None


def test_move_refused_cases(run, imported, store):
    for args, code, text in [
        ("orders move 10001 99999 --to 完了", 2, "no such order: 99999"),
        ("orders move 10001 --to nosuch", 2, "no phase named"),
        ("orders move 10001 --to 完了 --ship-date 2026-11-31", 2, "not a real date"),
        ("orders move 10001 --to 完了 --ship-date 27/11/2026", 2, "YYYY-MM-DD"),
    ]:
        result = run(args)
        assert result.exit_code == code, args
        assert text in one_error(result)
    assert store.get_order("10001")["phase"] == "出荷済み"
    assert run("orders move --to 完了").exit_code == 2  # ORDER_NO... is required


def test_move_warns_about_in_progress_and_already_notified(run, imported, store):
    set_status(store, "10001", Status.IN_PROGRESS)
    set_status(store, "10016", Status.SUCCESS)
    result = run("orders move 10001 10016 --to 出荷済み", catch=False)
    assert result.exit_code == 0
    assert "order 10001 is 連携中" in result.stderr
    assert "order 10016 is 正常" in result.stderr
    assert store.get_order("10016")["phase"] == "出荷済み"
    assert store.get_order("10016")["status"] == "success"  # moving never changes the status


# ----------------------------------------------------------------------------- update


def test_update(run, imported, store):
    result = run(
        "orders update 10004 --carrier 佐川急便 --tracking-number 360100000001 "
        "--ship-date 2026-11-29",
        catch=False,
    )
    assert result.exit_code == 0, result.stderr
    order = store.get_order("10004")
    assert (order["carrier"], order["tracking_number"], order["ship_date"]) == (
        "佐川急便",
        "360100000001",
        "2026-11-29",
    )
    cleared = run(["orders", "update", "10004", "--tracking-number", ""], catch=False)
    assert cleared.exit_code == 0
    assert "Valid Tracking Rate" in cleared.stderr
    assert store.get_order("10004")["tracking_number"] is None
    assert store.get_order("10004")["status"] == "pending"


def test_update_refused_cases(run, imported, store):
    for args, text in [
        (["orders", "update", "10004", "--carrier", "黒猫"], "no carrier named '黒猫'"),
        (["orders", "update", "10004", "--ship-date", "2026-02-30"], "not a real date"),
        (["orders", "update", "10004", "--ship-date", ""], "requires a ship date"),
        (["orders", "update", "10004"], "nothing to change"),
        (["orders", "update", "99999", "--carrier", "佐川急便"], "no order '99999'"),
        (["orders", "update", "10004", "--tracking-number", "12\t34"], "without tabs"),
    ]:
        result = run(args)
        assert result.exit_code == 2, args
        assert text in one_error(result)
    assert store.get_order("10004")["carrier"] == "ヤマト運輸"


def test_update_can_clear_ship_date_in_an_optional_phase(run, imported, store):
    run("orders move 10004 --to 出荷待ち", catch=False)
    assert run(["orders", "update", "10004", "--ship-date", ""], catch=False).exit_code == 0
    assert store.get_order("10004")["ship_date"] is None


def test_update_in_progress_warns(run, imported, store):
    set_status(store, "10002", Status.IN_PROGRESS)
    result = run("orders update 10002 --tracking-number 360100000009", catch=False)
    assert result.exit_code == 0
    assert "Warning: order 10002 is 連携中" in result.stderr


def test_module_entry_point_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "crossship", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "orders" in done.stdout
    assert Path(sys.executable).exists()
