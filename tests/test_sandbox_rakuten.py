"""The RMS part of `crossship sandbox serve`, through real sockets and crossship's RMS client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from crossship.rakuten.client import Credentials, RakutenError, RmsClient
from crossship.rakuten.result import read_result
from crossship.rakuten.shipping import Shipment, encode
from crossship.sandbox import SandboxServer
from crossship.sandbox.rakuten import RmsSandbox

N1, N2 = "123456-20261120-0000001801", "123456-20261120-0000001802"


class FakeTime:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def clock(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


class NoPace:
    def wait(self) -> None:
        pass


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def server(fake: FakeTime):
    with SandboxServer(clock=fake.clock, now=fake.now) as running:
        running.sandbox.rakuten.set_options({"enforce_rate_limit": False})
        yield running


@pytest.fixture
def rms(server: SandboxServer) -> RmsSandbox:
    return server.sandbox.rakuten


def client(server: SandboxServer, secret: str = "sandbox-service-secret", **kwargs) -> RmsClient:
    return RmsClient(
        credentials=Credentials(secret, "sandbox-license-key"),
        store="rakuten-shop",
        endpoint=server.url + "/es/2.0/order/",
        pace=NoPace(),
        sleep=lambda s: None,
        timeout=(2.0, 5.0),
        **kwargs,
    )


def basket(rms: RmsSandbox, number: str) -> int:
    return int(rms.orders()[number]["PackageModelList"][0]["basketId"])


def shipments(rms: RmsSandbox, **changes) -> list[Shipment]:
    for number in (N1, N2):
        rms.add_order(number)
    base = [
        Shipment("A", N1, str(basket(rms, N1)), "1001", "400000000001", "2026-11-30"),
        Shipment("B", N2, str(basket(rms, N2)), "1002", "500000000002", "2026-11-30"),
    ]
    return base


def test_the_whole_exchange(server, rms, fake):
    rms.set_options({"processing_seconds": 30})
    api = client(server)
    (order,) = api.get_order([N1])
    assert order["PackageModelList"][0]["ShippingModelList"] == []
    (request,) = encode(shipments(rms))
    request_id = api.update_order_shipping_async(request.body)
    waiting = api.get_result(request_id)
    assert waiting["MessageModelList"][0]["message"] == "処理結果は存在しませんでした"
    assert waiting["MessageModelList"][0]["messageCode"].endswith("_INFO_101")
    fake.advance(30)
    verdicts = read_result(api.get_result(request_id), request.rows)
    assert {v.status for v in verdicts.values()} == {"success"}
    detail = verdicts["A"].refs["shipping_detail_id"]
    (order,) = api.get_order([N1])
    (row,) = order["PackageModelList"][0]["ShippingModelList"]
    assert str(row["shippingDetailId"]) == detail and row["shippingNumber"] == "400000000001"

    # a re-notification with the row's id updates it in place
    again = Shipment("A", N1, str(basket(rms, N1)), "1003", "600000000003", "2026-12-01", detail)
    (request,) = encode([again])
    request_id = api.update_order_shipping_async(request.body)
    fake.advance(30)
    verdicts = read_result(api.get_result(request_id), request.rows)
    assert verdicts["A"].status == "success" and verdicts["A"].refs["shipping_detail_id"] == detail
    (order,) = api.get_order([N1])
    (row,) = order["PackageModelList"][0]["ShippingModelList"]
    assert (row["deliveryCompany"], row["shippingNumber"]) == ("1003", "600000000003")


def test_an_unknown_request_id_has_no_result(server):
    answer = client(server).get_result("no-such-id")
    assert answer["MessageModelList"][0]["message"] == "処理結果は存在しませんでした"


def test_a_wrong_key_is_es01_01(server):
    with pytest.raises(RakutenError) as caught:
        client(server, secret="wrong").get_order([N1])
    assert caught.value.halt and caught.value.code == "ES01-01"


def test_a_function_not_enabled_is_es04_01(server, rms):
    rms.set_options({"enabled_functions": {"rpay.order.getOrder"}})
    api = client(server)
    api.get_order([N1])
    (request,) = encode(shipments(rms))
    with pytest.raises(RakutenError) as caught:
        api.update_order_shipping_async(request.body)
    assert caught.value.code == "ES04-01" and caught.value.outcome == "rejected"
    assert "rpay.order.updateOrderShippingAsync" in caught.value.message


def test_more_than_100_orders_is_refused_as_a_whole(server, rms):
    many = [
        Shipment(f"O{i}", f"123456-20261120-{i:010d}", "10000001", "1001", "1", "2026-11-30")
        for i in range(101)
    ]
    (request,) = encode(many, per_request=101)
    with pytest.raises(RakutenError) as caught:
        client(server).update_order_shipping_async(request.body)
    assert caught.value.outcome == "rejected" and "100件以下" in caught.value.message


def test_a_delivery_company_name_is_a_format_error(server, rms):
    (one, _) = shipments(rms)
    bad = Shipment(one.order_no, one.order_id, one.basket_id, "ヤマト運輸", "1", "2026-11-30")
    (request,) = encode([bad])
    with pytest.raises(RakutenError) as caught:
        client(server).update_order_shipping_async(request.body)
    assert "ERROR_011" in caught.value.message


def test_cancelled_orders_and_full_baskets_are_errors_in_the_result(server, rms):
    sent = shipments(rms)
    rms.set_options({"cancelled_orders": {N2}})
    full = [
        Shipment(f"A{i}", N1, sent[0].basket_id, "1001", f"9{i}", "2026-11-30") for i in range(21)
    ]
    requests_ = encode([*full, sent[1]])
    api = client(server)
    # 21 rows in one basket is malformed at once; 20 then one more is an error in the result
    with pytest.raises(RakutenError, match="ShippingModelList"):
        api.update_order_shipping_async(requests_[0].body)
    (first,) = encode(full[:20])
    read_result(api.get_result(api.update_order_shipping_async(first.body)), first.rows)
    (second,) = encode([full[20], sent[1]])
    verdicts = read_result(
        api.get_result(api.update_order_shipping_async(second.body)), second.rows
    )
    assert verdicts["A20"].status == "error" and "20件まで" in verdicts["A20"].message
    assert verdicts["B"].status == "error" and "ERROR_102" in verdicts["B"].message


def test_fault_fail_502_on_update_is_unknown(server, rms):
    rms.add_fault("updateOrderShippingAsync", "fail", status=502)
    (request,) = encode(shipments(rms))
    with pytest.raises(RakutenError) as caught:
        client(server).update_order_shipping_async(request.body)
    assert caught.value.outcome == "unknown" and "502 Bad Gateway" in caught.value.message


def test_fault_throttle_is_retried(server, rms):
    rms.add_fault("updateOrderShippingAsync", "throttle")
    (request,) = encode(shipments(rms))
    api = client(server)
    assert api.update_order_shipping_async(request.body)
    assert api.calls["updateOrderShippingAsync"] == 2


def test_fault_lose_answer_leaves_the_rows_registered(server, rms):
    rms.add_fault("updateOrderShippingAsync", "lose_answer")
    (request,) = encode(shipments(rms))
    api = client(server)
    with pytest.raises(RakutenError) as caught:
        api.update_order_shipping_async(request.body)
    assert caught.value.outcome == "unknown"
    orders = api.get_order([N1, N2])
    assert all(o["PackageModelList"][0]["ShippingModelList"] for o in orders)


def test_fault_bad_json_on_get_result_is_one_clear_error(server, rms):
    rms.add_fault("getResultUpdateOrderShippingAsync", "bad_json")
    with pytest.raises(RakutenError) as caught:
        client(server, max_attempts=1).get_result("x")
    assert caught.value.outcome == "not_sent" and "not JSON" in caught.value.message


def test_fault_hang_ends_in_the_read_timeout(server, rms):
    rms.add_fault("updateOrderShippingAsync", "hang", seconds=30)
    (request,) = encode(shipments(rms))
    api = client(server)
    api.timeout = (2.0, 0.3)
    try:
        with pytest.raises(RakutenError) as caught:
            api.update_order_shipping_async(request.body)
    finally:
        server.release_hangs()
    assert caught.value.outcome == "unknown"
    assert "no answer within the read timeout" in caught.value.message


def test_rate_limit_answers_429(fake):
    rms = RmsSandbox(clock=fake.clock, now=fake.now)
    body = json.dumps({"orderNumberList": [N1], "version": 7}).encode()
    headers = {
        "Authorization": "ESA c2FuZGJveC1zZXJ2aWNlLXNlY3JldDpzYW5kYm94LWxpY2Vuc2Uta2V5",
        "Content-Type": "application/json",
    }

    def post() -> int:
        return rms.handle("POST", "/es/2.0/order/getOrder/", headers, body)[1].status

    assert [post(), post(), post()] == [200, 200, 429]
    fake.advance(1)
    assert post() == 200


def test_faults_and_options_over_http(server):
    control = server.url + "/_sandbox/rakuten/"
    answer = requests.post(control + "faults", json={"operation": "getOrder", "mode": "fail"})
    assert answer.status_code == 200
    refused = requests.post(control + "faults", json={"operation": "nope", "mode": "fail"})
    assert refused.status_code == 400 and "unknown operation" in refused.json()["error"]
    with pytest.raises(RakutenError):
        client(server, max_attempts=1).get_order([N1])
    assert requests.post(control + "options", json={"cancelled_orders": [N1]}).ok
    assert requests.get(control + "calls").json() == {"getOrder": 1}


def test_banner_prints_the_rms_credentials(server):
    banner = server.banner()
    assert server.url + "/es/2.0/order/" in banner
    assert "sandbox-service-secret" in banner and "sandbox-license-key" in banner


def test_orders_with_chosen_basket_ids_over_http(server, rms):
    control = server.url + "/_sandbox/rakuten/orders"
    assert requests.post(control, json={"orders": [{"orderNumber": N1, "basketIds": [77]}]}).ok
    assert basket(rms, N1) == 77
    bad = requests.post(control, json={"orders": [{"orderNumber": "1-2", "basketIds": [1]}]})
    assert bad.status_code == 400 and "NNNNNN-YYYYMMDD" in bad.json()["error"]
