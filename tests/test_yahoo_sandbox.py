"""The Yahoo part of `crossship sandbox serve`, through real sockets and the real client."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from crossship.errors import YahooError
from crossship.sandbox import SandboxServer
from crossship.sandbox.yahoo import API_PATH, TOKEN_PATH
from crossship.yahoo import keys
from crossship.yahoo.client import Credentials, PublicKey, YahooClient
from crossship.yahoo.xmlmsg import Shipment

SELLER = "sandbox-store"
ORDER = f"{SELLER}-10000001"
CREDENTIALS = Credentials("sandbox-yahoo-client", "sandbox-yahoo-secret", "sandbox-yahoo-refresh")


class NoPace:
    def wait(self) -> None:
        pass


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as running:
        running.sandbox.yahoo.set_options({"enforce_rate_limits": False})
        yield running


def client(server: SandboxServer, *, signed: bool = True, **kwargs) -> YahooClient:
    key = None
    if signed:
        pem = server.sandbox.yahoo.public_key_pem()
        key = PublicKey(keys.parse_public_key(pem, "sandbox"), "1")
    options = {
        "credentials": CREDENTIALS,
        "seller_id": SELLER,
        "endpoint": server.url + API_PATH,
        "token_url": server.url + TOKEN_PATH,
        "public_key": key,
        "pace": NoPace(),
        "timeout": (2.0, 5.0),
    }
    options.update(kwargs)
    return YahooClient(**options)


def control(server: SandboxServer, name: str, payload: dict) -> dict:
    request = urllib.request.Request(
        f"{server.url}/_sandbox/yahoo/{name}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def shipment(order_id: str = ORDER, numbers: tuple[str, ...] = ("123456789012",)) -> Shipment:
    return Shipment(order_id, "1001", "20261127", numbers)


def test_a_signed_shipment_then_completion(server: SandboxServer) -> None:
    yahoo = client(server)
    assert yahoo.ship(shipment(numbers=("1234-5678", "99"))).ok
    assert yahoo.complete(ORDER).ok
    again = yahoo.complete(ORDER)
    assert (again.ok, again.code, again.message) == (
        False,
        "od83000026",
        "既に完了済みの注文です。",
    )
    info = yahoo.order_info(ORDER)
    assert info["OrderStatus"] == "5" and info["ShipStatus"] == "3"
    assert (info["ShipInvoiceNumber1"], info["ShipInvoiceNumber2"]) == ("1234-5678", "99")
    calls = server.sandbox.yahoo.calls
    assert calls["token"] == 1 and calls["signed"] == 4 and calls["unsigned"] == 0


def test_values_arrive_literally(server: SandboxServer) -> None:
    hostile = "<x>&amp;]]>\"'佐川"
    answer = client(server).ship(Shipment(ORDER, "1002", "20261127", (hostile,)))
    assert answer.ok
    stored = server.sandbox.yahoo.orders()[ORDER]["ship"]
    assert stored["ShipInvoiceNumber1"] == hostile


def test_warning_for_a_yamato_number_of_the_wrong_shape(server: SandboxServer) -> None:
    answer = client(server).ship(shipment(numbers=("ABC",)))
    assert answer.ok and answer.warnings[0].startswith("od83000031: ")


def test_unsigned_calls_end_after_12_simulated_hours(server: SandboxServer) -> None:
    unsigned = client(server, signed=False)
    assert unsigned.ship(shipment()).ok
    control(server, "advance", {"hours": 12})
    with pytest.raises(YahooError) as caught:
        client(server, signed=False).ship(shipment())
    assert caught.value.code == "px-04102" and caught.value.halt
    assert "12 hours" in caught.value.message
    assert client(server).ship(shipment()).ok  # a valid signature: 28 days


def test_a_wrong_key_counts_as_unsigned(server: SandboxServer) -> None:
    other = keys.load_public_key(Path(__file__).parent / "fixtures" / "yahoo" / "test_public.pem")
    assert client(server, public_key=PublicKey(other, "1")).ship(shipment()).ok
    assert server.sandbox.yahoo.calls["unsigned"] == 1
    server.sandbox.yahoo.advance(12)
    with pytest.raises(YahooError, match="px-04102"):
        client(server, public_key=PublicKey(other, "1")).ship(shipment())


def test_refresh_token_expires_after_28_days(server: SandboxServer) -> None:
    server.sandbox.yahoo.advance(28 * 24)
    with pytest.raises(YahooError) as caught:
        client(server).ship(shipment())
    assert "invalid_grant: refresh_token is expired" in caught.value.message


def test_wrong_credentials(server: SandboxServer) -> None:
    bad = Credentials("sandbox-yahoo-client", "nope", "sandbox-yahoo-refresh")
    with pytest.raises(YahooError) as caught:
        client(server, credentials=bad).ship(shipment())
    assert "invalid_client" in caught.value.message and "nope" not in caught.value.message


def test_access_token_expiry_is_renewed_once(server: SandboxServer) -> None:
    yahoo = client(server)
    assert yahoo.ship(shipment()).ok
    server.sandbox.yahoo.advance(1.5)  # the hour-long access token has expired
    assert yahoo.ship(shipment()).ok
    assert server.sandbox.yahoo.calls["token"] == 2


@pytest.mark.parametrize(
    ("order_id", "code"),
    [(f"{SELLER}-12x", "od83000003"), (f"other-{1}", "od83000003")],
)
def test_unknown_orders(server: SandboxServer, order_id: str, code: str) -> None:
    answer = client(server).ship(shipment(order_id))
    assert not answer.ok and answer.code == code


def test_known_orders_and_transitions(server: SandboxServer) -> None:
    control(server, "options", {"known_order_ids": [ORDER, f"{SELLER}-2"]})
    control(server, "orders", {f"{SELLER}-2": "4"})
    yahoo = client(server)
    assert yahoo.ship(shipment(f"{SELLER}-3")).code == "od83000003"
    cancelled = yahoo.complete(f"{SELLER}-2")
    assert cancelled.code == "od83000025" and "キャンセル" in cancelled.message
    assert yahoo.ship(shipment(f"{SELLER}-2")).code == "od83000021"


def test_strict_request_checks(server: SandboxServer) -> None:
    yahoo = client(server)
    token = yahoo._token()

    def raw(body: bytes) -> requests.Response:
        return requests.post(
            server.url + API_PATH + "orderShipStatusChange",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"},
            timeout=5,
        )

    three = (
        f"<Req><Target><OrderId>{ORDER}</OrderId></Target><Order><Ship><ShipStatus>3</ShipStatus>"
        "<ShipCompanyCode>1001</ShipCompanyCode><ShipInvoiceNumber1>1</ShipInvoiceNumber1>"
        "<ShipInvoiceNumber2>2</ShipInvoiceNumber2><ShipInvoiceNumber3>3</ShipInvoiceNumber3>"
        f"<ShipDate>20261127</ShipDate></Ship></Order><SellerId>{SELLER}</SellerId></Req>"
    ).encode()
    assert b"ShipInvoiceNumber3" in raw(three).content
    no_seller = three.replace(f"<SellerId>{SELLER}</SellerId>".encode(), b"")
    assert b"px-04001" in raw(no_seller).content
    other_seller = three.replace(SELLER.encode() + b"</SellerId>", b"x</SellerId>")
    assert b"px-04004" in raw(other_seller).content
    both = three.replace(
        b"<ShipInvoiceNumber3>3</ShipInvoiceNumber3>",
        b"",
    ).replace(
        b"<ShipDate>", b"<ShipInvoiceNumberEmptyReason>101</ShipInvoiceNumberEmptyReason><ShipDate>"
    )
    assert b"od83000015" in raw(both).content
    bad_date = three.replace(b"<ShipInvoiceNumber3>3</ShipInvoiceNumber3>", b"").replace(
        b"20261127", b"20261132"
    )
    assert b"od83000018" in raw(bad_date).content
    assert raw(b"<Req>").status_code == 400
    no_bearer = requests.post(server.url + API_PATH + "orderInfo", data=three, timeout=5)
    assert no_bearer.status_code == 401 and "invalid_token" in no_bearer.headers["WWW-Authenticate"]


def test_faults(server: SandboxServer) -> None:
    yahoo = client(server)
    control(server, "faults", {"operation": "orderShipStatusChange", "mode": "fail", "status": 503})
    with pytest.raises(YahooError) as failed:
        yahoo.ship(shipment())
    assert failed.value.outcome == "unknown" and failed.value.status == 503
    control(server, "faults", {"operation": "orderShipStatusChange", "mode": "throttle"})
    with pytest.raises(YahooError) as throttled:
        yahoo.ship(shipment())
    assert throttled.value.halt
    control(server, "faults", {"operation": "orderShipStatusChange", "mode": "bad_xml"})
    with pytest.raises(YahooError) as bad:
        yahoo.ship(shipment())
    assert bad.value.outcome == "unknown" and "cannot be read" in bad.value.message
    control(server, "faults", {"operation": "orderStatusChange", "mode": "lose_answer"})
    with pytest.raises(YahooError) as lost:
        yahoo.complete(ORDER)
    assert lost.value.outcome == "unknown"
    assert server.sandbox.yahoo.orders()[ORDER]["order_status"] == "5"  # it did happen
    control(server, "faults", {"operation": "token", "mode": "fail", "status": 500})
    with pytest.raises(YahooError) as token_failed:
        client(server).ship(shipment())
    assert token_failed.value.halt and "next run" in token_failed.value.message


def test_hang_ends_with_the_timeout_and_release(server: SandboxServer) -> None:
    server.sandbox.yahoo.add_fault("orderInfo", "hang", seconds=30)
    yahoo = client(server, timeout=(2.0, 0.3))
    with pytest.raises(YahooError) as caught:
        yahoo.order_info(ORDER)
    assert "read timeout" in caught.value.message
    threading.Thread(target=server.release_hangs).start()


def test_rate_limit_is_enforced_when_asked(server: SandboxServer) -> None:
    server.sandbox.yahoo.set_options({"enforce_rate_limits": True})
    yahoo = client(server)
    results = []
    for _ in range(6):
        try:
            results.append(yahoo.ship(shipment()).ok)
        except YahooError as exc:
            results.append(exc.status)
    assert 429 in results and results[0] is True


def test_bad_controls(server: SandboxServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        control(server, "faults", {"operation": "createFeed", "mode": "fail"})
    assert caught.value.code == 400


def test_banner_and_public_key_file(server: SandboxServer, tmp_path: Path) -> None:
    banner = server.banner()
    assert "sandbox-yahoo-client" in banner and "BEGIN PUBLIC KEY" in banner
    assert f"{server.url}/ShoppingWebService/V1/" in banner
    written = server.sandbox.yahoo.write_public_key(tmp_path / "yahoo.pem")
    server.yahoo_key_file = written
    assert str(written) in server.banner() and "BEGIN" not in server.banner()
    keys.load_public_key(written)


def test_a_fault_after_some_calls(server: SandboxServer) -> None:
    server.sandbox.yahoo.add_fault("orderShipStatusChange", "fail", status=500, after=2)
    yahoo = client(server)
    assert yahoo.ship(shipment()).ok and yahoo.ship(shipment()).ok
    with pytest.raises(YahooError):
        yahoo.ship(shipment())
    assert yahoo.ship(shipment()).ok
