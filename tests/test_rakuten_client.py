"""crossship.rakuten.client against mocked RMS answers (tests/fixtures/rakuten/).

Every request goes through ``responses`` with an ordered registry: a request that was not expected,
or one expected that never came, fails the test.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from crossship.i18n import Message
from crossship.rakuten.client import (
    DEFAULT_ENDPOINT,
    Credentials,
    Pacer,
    RakutenError,
    RmsClient,
)

FIXTURES = Path(__file__).parent / "fixtures" / "rakuten"
SECRET = "SP123456_secret-XYZ"
LICENSE = "SL123456_license-ABC"
BASE = DEFAULT_ENDPOINT
UPDATE = BASE + "updateOrderShippingAsync/"
GET_ORDER = BASE + "getOrder/"
GET_RESULT = BASE + "getResultUpdateOrderShippingAsync/"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeTime:
    """A monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(clock: FakeTime) -> RmsClient:
    pace = Pacer(monotonic=clock.monotonic, sleep=clock.sleep)
    return RmsClient(
        credentials=Credentials(SECRET, LICENSE),
        store="rakuten-shop",
        pace=pace,
        sleep=clock.sleep,
        rand=lambda: 0.5,
    )


@pytest.fixture
def mocked():
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=True) as r:
        yield r


def add(mocked, url: str, body: bytes, status: int = 200, ctype: str = "application/json"):
    mocked.add(responses.POST, url, body=body, status=status, content_type=ctype)


BODY = json.dumps({"OrderShippingModelList": []}).encode()


def test_update_sends_esa_header_json_and_timeout(client, mocked):
    add(mocked, UPDATE, fixture("update_accepted.json"))
    assert client.update_order_shipping_async(BODY) == "8a7d5c3e-42b6-4f0e-9a1d-0c4b6e2f7a11"
    call = mocked.calls[0]
    expected = base64.b64encode(f"{SECRET}:{LICENSE}".encode()).decode()
    assert call.request.headers["Authorization"] == f"ESA {expected}"
    assert call.request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert call.request.body == BODY
    assert call.request.req_kwargs["timeout"] == (10.0, 60.0)
    assert client.calls == {"updateOrderShippingAsync": 1}


def test_endpoint_without_trailing_slash_gets_one():
    rms = RmsClient(credentials=Credentials("a", "b"), endpoint="http://127.0.0.1:9/es/2.0/order")
    assert rms.url("getOrder") == "http://127.0.0.1:9/es/2.0/order/getOrder/"


def test_plain_http_to_a_remote_host_is_refused():
    with pytest.raises(Exception, match="plain http:// is allowed only to a loopback"):
        RmsClient(credentials=Credentials("a", "b"), endpoint="http://rms.example.com/es/")


def test_get_order_asks_version_7_and_returns_the_orders(client, mocked):
    add(mocked, GET_ORDER, fixture("get_order.json"))
    orders = client.get_order(["123456-20261120-0000001801", "123456-20261120-0000001802"])
    assert [o["orderNumber"] for o in orders] == [
        "123456-20261120-0000001801",
        "123456-20261120-0000001802",
    ]
    sent = json.loads(mocked.calls[0].request.body)
    assert sent == {
        "orderNumberList": ["123456-20261120-0000001801", "123456-20261120-0000001802"],
        "version": 7,
    }


def test_get_order_takes_at_most_100(client):
    with pytest.raises(ValueError):
        client.get_order([f"123456-20261120-{i:010d}" for i in range(101)])


def test_calls_are_paced_one_a_second_on_the_monotonic_clock(client, mocked, clock, monkeypatch):
    for _ in range(3):
        add(mocked, GET_ORDER, fixture("get_order.json"))
    # a faked wall clock that jumps back and forth must not matter
    jumps = iter([2e9, 1e3, 5e9, 0.0, 3e9, 1.0])
    monkeypatch.setattr(time, "time", lambda: next(jumps, 0.0))
    client.get_order(["123456-20261120-0000001801"])
    clock.now += 0.25
    client.get_order(["123456-20261120-0000001801"])
    client.get_order(["123456-20261120-0000001801"])
    assert clock.slept == [pytest.approx(0.75), pytest.approx(1.0)]


def test_get_order_retries_429_and_5xx_with_backoff(client, mocked, clock):
    add(mocked, GET_ORDER, b'{"Results": {"errorCode": "ES03-01"}}', status=429)
    add(mocked, GET_ORDER, fixture("bad_gateway.html"), status=502, ctype="text/html")
    add(mocked, GET_ORDER, fixture("get_order.json"))
    assert len(client.get_order(["123456-20261120-0000001801"])) == 2
    assert client.calls["getOrder"] == 3
    # backoff with jitter (rand 0.5): 0.5 s, then 1 s; the pacer adds what the second lacks
    assert sum(clock.slept) >= 0.5 + 1.0


def test_get_result_gives_up_after_the_attempts_as_not_sent(client, mocked):
    for _ in range(5):
        add(mocked, GET_RESULT, b"", status=503)
    with pytest.raises(RakutenError) as caught:
        client.get_result("req-1")
    assert caught.value.outcome == "not_sent"
    assert caught.value.status == 503
    assert client.calls["getResultUpdateOrderShippingAsync"] == 5


def test_update_is_not_retried_on_5xx_and_its_outcome_is_unknown(client, mocked):
    add(mocked, UPDATE, fixture("bad_gateway.html"), status=502, ctype="text/html")
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    error = caught.value
    assert error.outcome == "unknown" and error.operation == "updateOrderShippingAsync"
    assert "502" in error.message and "502 Bad Gateway" in error.message
    assert "unknown" in error.message
    assert "\n" not in error.message
    assert client.calls["updateOrderShippingAsync"] == 1


def test_update_is_retried_on_429_only(client, mocked):
    add(mocked, UPDATE, b"", status=429)
    add(mocked, UPDATE, fixture("update_accepted.json"))
    assert client.update_order_shipping_async(BODY)
    assert client.calls["updateOrderShippingAsync"] == 2


def test_update_throttled_to_the_end_is_not_sent(client, mocked):
    for _ in range(5):
        add(mocked, UPDATE, b"", status=429)
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert caught.value.outcome == "not_sent"


def test_update_with_a_cut_json_answer_is_unknown(client, mocked):
    whole = fixture("update_accepted.json")
    add(mocked, UPDATE, whole[: len(whole) // 2])
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert caught.value.outcome == "unknown"
    assert "cannot be read" in caught.value.message and "not JSON" in caught.value.message


def test_get_result_with_a_cut_json_answer_is_not_sent(client, mocked):
    whole = fixture("result_mixed.json")
    add(mocked, GET_RESULT, whole[: len(whole) // 2])
    with pytest.raises(RakutenError) as caught:
        client.get_result("req-1")
    assert caught.value.outcome == "not_sent"
    assert client.calls["getResultUpdateOrderShippingAsync"] == 1


def test_update_refused_as_a_whole_is_rejected_with_rms_words(client, mocked):
    add(mocked, UPDATE, fixture("update_format_error.json"))
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    error = caught.value
    assert error.outcome == "rejected"
    assert error.code == "ORDER_EXT_API_UPDATE_ORDERSHIPPING_ASYNC_ERROR_011"
    assert "リクエストの書式が不正です" in error.message


def test_update_refused_with_400_is_rejected(client, mocked):
    add(mocked, UPDATE, fixture("update_format_error.json"), status=400)
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert caught.value.outcome == "rejected"
    assert "ERROR_011" in caught.value.message


@pytest.mark.parametrize("status", [401, 200])
def test_authentication_failure_halts_with_the_license_key_message(client, mocked, status):
    add(mocked, GET_ORDER, fixture("es01_01.json"), status=status)
    with pytest.raises(RakutenError) as caught:
        client.get_order(["123456-20261120-0000001801"])
    error = caught.value
    assert error.halt and error.outcome == "not_sent" and error.code == "ES01-01"
    assert "licenseKey expires every 90 days" in error.message
    assert "CROSSSHIP_RAKUTEN_SHOP_RMS_LICENSE_KEY" in error.message
    assert "--license-expires" in error.message
    assert client.calls["getOrder"] == 1  # never retried


def test_api_function_not_enabled_names_it(client, mocked):
    add(mocked, UPDATE, fixture("es04_01.json"), status=403)
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    error = caught.value
    assert error.outcome == "rejected" and not error.halt and error.code == "ES04-01"
    assert "rpay.order.updateOrderShippingAsync" in error.message
    assert "WEB APIサービス" in error.message


def test_get_result_no_result_yet_is_an_answer(client, mocked):
    add(mocked, GET_RESULT, fixture("result_no_result.json"))
    answer = client.get_result("req-1")
    assert "ResultShippingModelList" not in answer
    assert json.loads(mocked.calls[0].request.body) == {"requestId": "req-1"}


def test_get_result_without_results_or_messages_is_malformed(client, mocked):
    add(mocked, GET_RESULT, b'{"something": 1}')
    with pytest.raises(RakutenError, match="lacks ResultShippingModelList"):
        client.get_result("req-1")


def test_get_order_with_a_package_without_basket_id_is_malformed(client, mocked):
    body = {"OrderModelList": [{"orderNumber": "1", "PackageModelList": [{"x": 1}]}]}
    add(mocked, GET_ORDER, json.dumps(body).encode())
    with pytest.raises(RakutenError, match="without a basketId") as caught:
        client.get_order(["123456-20261120-0000001801"])
    assert caught.value.outcome == "not_sent"


def test_update_connection_refused_is_not_sent_and_not_retried(client, mocked):
    mocked.add(
        responses.POST, UPDATE, body=requests.ConnectionError(ConnectionRefusedError(111, "no"))
    )
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert caught.value.outcome == "not_sent"
    assert "nothing was sent" in caught.value.message


def test_update_read_timeout_is_unknown(client, mocked):
    mocked.add(responses.POST, UPDATE, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert caught.value.outcome == "unknown"
    assert "no answer within the read timeout" in caught.value.message


def test_get_order_read_timeout_is_retried(client, mocked):
    mocked.add(responses.POST, GET_ORDER, body=requests.ReadTimeout("read timed out"))
    add(mocked, GET_ORDER, fixture("get_order.json"))
    assert client.get_order(["123456-20261120-0000001801"])


def test_secrets_echoed_by_rms_are_scrubbed(client, mocked):
    echo = json.dumps({"Results": {"errorCode": "ES99", "message": f"bad key {LICENSE}"}})
    add(mocked, UPDATE, echo.encode(), status=400)
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert LICENSE not in caught.value.message and "***" in caught.value.message
    assert SECRET not in repr(client.credentials) and LICENSE not in str(client.credentials)
    # what the history keeps (the message's key and arguments) and every language's text too
    kept = caught.value.kept
    assert isinstance(kept, Message)
    assert LICENSE not in kept.to_json() and "***" in kept.to_json()
    assert "RMSの応答 400 ES99: bad key ***" in kept.render("ja")


def test_secrets_in_an_unreadable_answer_are_scrubbed_from_every_argument(client, mocked):
    add(mocked, UPDATE, f"<html>{SECRET} {LICENSE}</html>".encode(), status=200)
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert caught.value.outcome == "unknown"
    for language in ("en", "ja"):
        assert SECRET not in caught.value.kept.render(language)
        assert LICENSE not in caught.value.kept.render(language)
    assert SECRET not in caught.value.kept.to_json() and LICENSE not in caught.value.kept.to_json()


def test_redirects_are_not_followed(client, mocked):
    mocked.add(
        responses.POST, UPDATE, status=302, headers={"Location": "https://elsewhere.example/"}
    )
    with pytest.raises(RakutenError) as caught:
        client.update_order_shipping_async(BODY)
    assert caught.value.outcome == "rejected"
    assert len(mocked.calls) == 1
