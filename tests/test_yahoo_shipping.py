"""Yahoo checks before sending and the shipments orders become (a split's numbers combined)."""

from __future__ import annotations

import pytest

from crossship.yahoo.shipping import check_order, plan

YAMATO = {"name": "ヤマト運輸", "yahoo_ship_company": "1001", "yahoo_no_tracking_reason": None}
DIRECT = {"name": "直送", "yahoo_ship_company": "1000", "yahoo_no_tracking_reason": "101"}
SAGAWA = {"name": "佐川急便", "yahoo_ship_company": "1002"}


def order(order_no: str = "Y1", **changes) -> dict:
    row = {
        "order_no": order_no,
        "store": "yahoo-shop",
        "mall_order_id": "teststore-10000001",
        "ship_date": "2026-11-27",
        "carrier": "ヤマト運輸",
        "tracking_number": "123456789012",
        "split_from": None,
    }
    row.update(changes)
    return row


def test_a_good_order_passes() -> None:
    assert check_order(order(), YAMATO, "teststore") == ([], [])


@pytest.mark.parametrize(
    ("changes", "carrier", "said"),
    [
        ({"ship_date": None}, YAMATO, "発送日 (ship_date) is missing"),
        ({"ship_date": "2026-02-30"}, YAMATO, "is not a date YYYY-MM-DD"),
        ({"mall_order_id": ""}, YAMATO, "注文番号 (mall_order_id) is missing"),
        ({"mall_order_id": "otherstore-1"}, YAMATO, "is not a Yahoo order id of this store"),
        ({"mall_order_id": "teststore-１２"}, YAMATO, "is not a Yahoo order id"),
        ({"mall_order_id": "teststore-12a"}, YAMATO, "is not a Yahoo order id"),
        ({"carrier": None}, YAMATO, "配送便 (carrier) is missing"),
        ({}, None, "is not a registered carrier"),
        ({}, {"name": "ヤマト運輸"}, "config carrier add ヤマト運輸 --yahoo-ship-company CODE"),
        ({}, {"name": "x", "yahoo_ship_company": "9999"}, "which Yahoo does not know"),
        ({"tracking_number": ""}, YAMATO, "--yahoo-no-tracking-reason CODE"),
        ({"tracking_number": "12\x0134"}, YAMATO, "control character"),
    ],
)
def test_each_problem_is_named_with_its_fix(changes: dict, carrier, said: str) -> None:
    errors, _warnings = check_order(order(**changes), carrier, "teststore")
    assert any(said in str(e) for e in errors), errors


def test_blank_tracking_with_a_reason_passes() -> None:
    assert check_order(order(tracking_number="", carrier="直送"), DIRECT, "teststore")[0] == []


def test_seller_id_is_matched_literally() -> None:
    assert check_order(order(mall_order_id="a.b-1"), YAMATO, "a.b")[0] == []
    assert check_order(order(mall_order_id="axb-1"), YAMATO, "a.b")[0] != []


def test_one_order_is_one_shipment() -> None:
    (planned,) = plan([(order(), YAMATO)])
    shipment = planned.shipment
    assert planned.order_nos == ["Y1"]
    assert (shipment.order_id, shipment.ship_company, shipment.ship_date) == (
        "teststore-10000001",
        "1001",
        "20261127",
    )
    assert shipment.tracking_numbers == ("123456789012",) and shipment.no_tracking_reason == ""


def test_no_tracking_reason_goes_only_without_numbers() -> None:
    (planned,) = plan([(order(tracking_number="", carrier="直送"), DIRECT)])
    assert planned.shipment.tracking_numbers == () and planned.shipment.no_tracking_reason == "101"


def test_a_split_is_one_shipment_with_its_numbers_in_order_and_a_third_left_out() -> None:
    orders = [
        (order("Y3", tracking_number="333", split_from="Y1", ship_date="2026-11-28"), YAMATO),
        (order("Y1", tracking_number="111"), YAMATO),
        (order("Y2", tracking_number="222", split_from="Y1"), SAGAWA),
        (order("Z1", mall_order_id="teststore-2", tracking_number="999"), YAMATO),
    ]
    split, other = plan(orders)
    assert split.order_nos == ["Y1", "Y2", "Y3"]
    assert split.shipment.tracking_numbers == ("111", "222")
    assert split.shipment.ship_date == "20261128"  # the last package's date
    assert "'333' is not sent" in str(split.warnings["Y3"][0])
    assert "one ship company" in str(split.warnings["Y2"][0])
    assert other.order_nos == ["Z1"] and other.warnings == {}


def test_messages_exist_in_japanese_too() -> None:
    errors, _ = check_order(order(tracking_number=""), YAMATO, "teststore")
    (blank,) = errors
    assert "配送番号 (tracking_number) が空で" in blank.render("ja")
    assert "配送番号 (tracking_number) is blank" in blank.render("en")
