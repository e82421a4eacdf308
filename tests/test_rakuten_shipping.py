"""Rakuten's checks, request encoding, result reading, lost-answer reconciliation and key expiry."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from crossship.rakuten import license
from crossship.rakuten.codes import DELIVERY_COMPANIES
from crossship.rakuten.result import (
    ResultUnreadable,
    basket_ids,
    no_result_yet,
    read_result,
    reconcile,
)
from crossship.rakuten.shipping import (
    SentRow,
    Shipment,
    check_order,
    encode,
    sent_shipments,
    shipment,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rakuten"
N1, N2, N3 = (f"123456-20261120-000000180{i}" for i in (1, 2, 3))
YAMATO = {"name": "ヤマト運輸", "rakuten_delivery_company": "1001"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def order(**changes) -> dict:
    base = {
        "order_no": "R1",
        "mall_order_id": N1,
        "ship_date": "2026-11-27",
        "carrier": "ヤマト運輸",
        "tracking_number": "400000000001",
    }
    return {**base, **changes}


# ---- checks -----------------------------------------------------------------------------


def test_a_complete_order_passes():
    assert check_order(order(), YAMATO, {}) == []


def test_codes_are_rakutens_1000_to_1028():
    assert sorted(DELIVERY_COMPANIES) == [str(c) for c in range(1000, 1029)]
    assert DELIVERY_COMPANIES["1001"] == "ヤマト運輸"


@pytest.mark.parametrize(
    ("changes", "carrier", "expected"),
    [
        ({"ship_date": None}, YAMATO, "発送日 (ship_date) is missing"),
        ({"ship_date": "2026-02-30"}, YAMATO, "is not a date YYYY-MM-DD"),
        ({"mall_order_id": "123-1234567-1234567"}, YAMATO, "NNNNNN-YYYYMMDD-NNNNNNNNNN"),
        ({"mall_order_id": ""}, YAMATO, "注文番号 (mall_order_id) is missing"),
        ({"carrier": None}, None, "配送便 (carrier) is missing"),
        ({}, None, "is not a registered carrier"),
        ({}, {"name": "ヤマト運輸"}, "--rakuten-delivery-company CODE"),
        ({}, {"name": "ヤマト運輸", "rakuten_delivery_company": "9999"}, "does not know"),
        ({"tracking_number": ""}, YAMATO, "配送番号 (tracking_number) is blank"),
        ({"tracking_number": "  "}, YAMATO, "お荷物伝票番号"),
        ({"tracking_number": "1" * 121}, YAMATO, "121 characters long; RMS takes at most 120"),
        ({"tracking_number": "12\t34"}, YAMATO, "contains a tab"),
        ({"tracking_number": "12\u200b34"}, YAMATO, "U+200B"),
    ],
)
def test_each_problem_is_an_error_that_says_what_to_fix(changes, carrier, expected):
    errors = [str(e) for e in check_order(order(**changes), carrier, {})]
    assert len(errors) == 1
    assert expected in errors[0]
    assert "`crossship " in errors[0]


def test_missing_code_names_the_command_with_the_carrier():
    (error,) = map(str, check_order(order(), {"name": "ヤマト運輸"}, {}))
    assert "`crossship config carrier add ヤマト運輸 --rakuten-delivery-company CODE`" in error


def test_a_tracking_number_of_120_characters_passes():
    assert check_order(order(tracking_number="1" * 120), YAMATO, {}) == []


def test_a_basket_id_that_is_not_a_number_is_an_error():
    (error,) = map(str, check_order(order(), YAMATO, {"basket_id": "abc"}))
    assert "送付先ID (basket_id)" in error


# ---- encoding ---------------------------------------------------------------------------


def ship(order_no: str, number: str, basket: str = "10746402", **changes) -> Shipment:
    base = {
        "order_no": order_no,
        "order_id": number,
        "basket_id": basket,
        "delivery_company": "1001",
        "shipping_number": f"4000{order_no}",
        "shipping_date": "2026-11-27",
    }
    return Shipment(**{**base, **changes})


def test_one_request_with_its_row_map():
    (request,) = encode([ship("A", N1), ship("B", N2, "20000")])
    body = json.loads(request.body)
    assert body == {
        "OrderShippingModelList": [
            {
                "orderNumber": N1,
                "BasketidModelList": [
                    {
                        "basketId": 10746402,
                        "ShippingModelList": [
                            {
                                "deliveryCompany": "1001",
                                "shippingNumber": "4000A",
                                "shippingDate": "2026-11-27",
                            }
                        ],
                    }
                ],
            },
            {
                "orderNumber": N2,
                "BasketidModelList": [
                    {
                        "basketId": 20000,
                        "ShippingModelList": [
                            {
                                "deliveryCompany": "1001",
                                "shippingNumber": "4000B",
                                "shippingDate": "2026-11-27",
                            }
                        ],
                    }
                ],
            },
        ]
    }
    assert request.rows == [SentRow(1, "A", N1), SentRow(2, "B", N2)]
    assert request.content_type == "application/json; charset=utf-8"


def test_a_splits_packages_are_rows_of_the_same_basket():
    (request,) = encode([ship("P", N1), ship("Q", N2), ship("P-2", N1)])
    models = json.loads(request.body)["OrderShippingModelList"]
    assert [m["orderNumber"] for m in models] == [N1, N2]
    (basket,) = models[0]["BasketidModelList"]
    assert [r["shippingNumber"] for r in basket["ShippingModelList"]] == ["4000P", "4000P-2"]
    assert request.rows == [SentRow(1, "P", N1), SentRow(2, "P-2", N1), SentRow(3, "Q", N2)]


def test_a_known_shipping_detail_id_updates_its_row():
    (request,) = encode([ship("A", N1, shipping_detail_id="15420")])
    row = json.loads(request.body)["OrderShippingModelList"][0]["BasketidModelList"][0][
        "ShippingModelList"
    ][0]
    assert row["shippingDetailId"] == 15420
    assert sent_shipments(request.body)[0].shipping_detail_id == "15420"


def test_requests_hold_at_most_100_orders_and_keep_splits_together():
    shipments = [ship(f"O{i}", f"123456-20261120-{i:010d}") for i in range(250)]
    shipments.append(ship("O5-split", "123456-20261120-0000000005"))
    requests = encode(shipments)
    assert [r.order_count for r in requests] == [100, 100, 50]
    first = {r.order_no for r in requests[0].rows}
    assert {"O5", "O5-split"} <= first
    assert [r.record_no for r in requests[0].rows] == list(range(1, 102))


def test_shipment_of_a_checked_order():
    one = shipment(order(), YAMATO, {"basket_id": "10746402", "shipping_detail_id": "7"})
    assert one == Shipment("R1", N1, "10746402", "1001", "400000000001", "2026-11-27", "7")


def test_a_dry_run_without_a_basket_id_shows_null():
    (request,) = encode([ship("A", N1, basket="")])
    model = json.loads(request.body)["OrderShippingModelList"][0]
    assert model["BasketidModelList"][0]["basketId"] is None


# ---- results ----------------------------------------------------------------------------

ROWS = [SentRow(1, "A", N1), SentRow(2, "B", N2), SentRow(3, "C", N3)]


def test_no_result_yet():
    assert no_result_yet(load("result_no_result.json"))
    assert not no_result_yet(load("result_mixed.json"))


def test_info_warning_error_per_order():
    verdicts = read_result(load("result_mixed.json"), ROWS)
    a, b, c = verdicts["A"], verdicts["B"], verdicts["C"]
    assert (a.status, a.refs, a.warnings) == ("success", {"shipping_detail_id": "15420"}, [])
    assert b.status == "success" and b.refs == {"shipping_detail_id": "15421"}
    assert b.warnings == [
        "ORDER_EXT_API_UPDATE_ORDERSHIPPING_WARNING_101: 発送日が注文日より前です"
    ]
    assert c.status == "error"
    assert c.message == "ORDER_EXT_API_UPDATE_ORDERSHIPPING_ERROR_102: キャンセル済みの注文です"


def test_an_order_the_result_does_not_mention_is_never_success():
    rows = [*ROWS, SentRow(4, "D", "123456-20261120-0000001804")]
    verdicts = read_result(load("result_mixed.json"), rows)
    assert verdicts["D"].status == "result_failed"
    assert "does not mention" in str(verdicts["D"].message)


def test_a_split_row_without_its_own_message_is_not_success():
    answer = {
        "ResultShippingModelList": [
            {
                "orderNumber": N1,
                "MessageModelList": [
                    {
                        "messageType": "INFO",
                        "messageCode": "I",
                        "dataNumber": 1,
                        "shippingDetailId": 1,
                    }
                ],
            }
        ]
    }
    verdicts = read_result(answer, [SentRow(1, "P", N1), SentRow(2, "P-2", N1)])
    assert verdicts["P"].status == "success"
    assert verdicts["P-2"].status == "result_failed"


def test_data_numbers_counted_within_the_order_are_understood():
    answer = {
        "ResultShippingModelList": [
            {
                "orderNumber": N2,
                "MessageModelList": [
                    {
                        "messageType": "INFO",
                        "messageCode": "I",
                        "dataNumber": 1,
                        "shippingDetailId": 8,
                    },
                    {"messageType": "ERROR", "messageCode": "E", "message": "x", "dataNumber": 2},
                ],
            }
        ]
    }
    rows = [SentRow(1, "A", N1), SentRow(2, "B", N2), SentRow(3, "B-2", N2)]
    verdicts = read_result(answer, rows)
    assert verdicts["B"].status == "success" and verdicts["B-2"].status == "error"
    assert verdicts["A"].status == "result_failed"


def test_an_update_without_a_new_id_keeps_the_one_it_sent():
    answer = {
        "ResultShippingModelList": [
            {"orderNumber": N1, "MessageModelList": [{"messageType": "INFO", "dataNumber": 1}]}
        ]
    }
    sent = [ship("A", N1, shipping_detail_id="15420")]
    verdicts = read_result(answer, [SentRow(1, "A", N1)], sent)
    assert verdicts["A"].refs == {"shipping_detail_id": "15420"}


def test_an_unreadable_result_is_refused():
    with pytest.raises(ResultUnreadable):
        read_result({"ResultShippingModelList": [{"x": 1}]}, ROWS)


# ---- lost answers -----------------------------------------------------------------------


def test_reconcile_adopts_rows_rms_holds_and_releases_the_others():
    orders = load("get_order.json")["OrderModelList"]
    sent = [
        ship("A", N1, "10746402", shipping_number="400000000001"),
        ship("B", N2, "10746403", shipping_number="400000000002"),
        ship("C", N3, "1"),
    ]
    verdicts = reconcile(orders, ROWS, sent)
    assert verdicts["A"].status == "success"
    assert verdicts["A"].refs == {"shipping_detail_id": "15420"}
    assert verdicts["B"].status == "pending" and verdicts["C"].status == "pending"


def test_reconcile_needs_the_same_delivery_company():
    orders = load("get_order.json")["OrderModelList"]
    sent = [ship("A", N1, "10746402", delivery_company="1002", shipping_number="400000000001")]
    verdicts = reconcile(orders, ROWS[:1], sent)
    assert verdicts["A"].status == "pending"


def test_reconcile_past_the_deadline_leaves_result_failed():
    verdicts = reconcile([], ROWS[:1], [ship("A", N1)], otherwise="result_failed")
    assert verdicts["A"].status == "result_failed"
    assert "受注管理" in str(verdicts["A"].message)


def test_basket_ids_from_get_order():
    assert basket_ids(load("get_order.json")["OrderModelList"]) == {
        N1: "10746402",
        N2: "10746403",
    }


# ---- licenseKey -------------------------------------------------------------------------

TODAY = dt.date(2026, 12, 1)


def test_no_warning_more_than_14_days_before():
    assert license.warning("shop", "2026-12-16", TODAY) is None
    assert license.warning("shop", None, TODAY) is None


def test_warnings_from_14_days_before():
    text = str(license.warning("shop", "2026-12-15", TODAY))
    assert "expires in 14 days (2026-12-15)" in text
    assert "--license-expires" in str(license.warning("shop", "2026-12-01", TODAY))
    assert "expires today" in str(license.warning("shop", "2026-12-01", TODAY))
    assert license.expired("shop", "2026-12-01", TODAY) is None


def test_after_it_no_call_is_made():
    text = str(license.expired("shop", "2026-11-30", TODAY))
    assert "expired on 2026-11-30" in text and "no call was made" in text
    assert license.warning("shop", "2026-11-30", TODAY) is None


def test_health_for_check_from_the_mall_settings():
    now = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)  # already 2 December in Japan
    row = {"name": "shop", "mall_settings": {"license_expires": "2026-12-16"}}
    ((level, text),) = license.health(row, now)
    assert level == "warning" and "in 14 days" in text
    row = {"name": "shop", "mall_settings": '{"license_expires": "2026-12-01"}'}
    ((level, text),) = license.health(row, now)
    assert level == "critical" and "expired on 2026-12-01" in text
    assert license.health({"name": "shop", "mall_settings": {}}, now) == []
