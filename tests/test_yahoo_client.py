"""The Yahoo!ショッピング client through `responses`: tokens, 公開鍵認証 headers, each answer."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs

import defusedxml.ElementTree as DET
import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from crossship.errors import ConfigError, YahooError
from crossship.i18n import render
from crossship.yahoo import keys, xmlmsg
from crossship.yahoo.client import Credentials, Pacer, PublicKey, YahooClient
from crossship.yahoo.xmlmsg import Shipment

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
ENDPOINT = "https://circus.example.jp/ShoppingWebService/V1/"
TOKEN_URL = "https://auth.example.jp/yconnect/v2/token"
SHIP_URL = ENDPOINT + "orderShipStatusChange"
COMPLETE_URL = ENDPOINT + "orderStatusChange"
CREDENTIALS = Credentials("yahoo-client-id", "yahoo-client-secret", "yahoo-refresh-token")
SHIPMENT = Shipment("teststore-10000001", "1001", "20261127", ("123456789012",))


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakePace:
    def __init__(self) -> None:
        self.waits = 0

    def wait(self) -> None:
        self.waits += 1


def client(**kwargs) -> YahooClient:
    options = {
        "credentials": CREDENTIALS,
        "seller_id": "teststore",
        "endpoint": ENDPOINT,
        "token_url": TOKEN_URL,
        "pace": FakePace(),
        "unix_time": lambda: 1_800_000_000.7,
    }
    options.update(kwargs)
    return YahooClient(**options)


def token(rsps: responses.RequestsMock, value: str = "access-1", status: int = 200) -> None:
    body = {"access_token": value, "token_type": "Bearer", "expires_in": 3600}
    rsps.post(TOKEN_URL, json=body, status=status)


def xml_of(call) -> dict[str, str]:
    root = DET.fromstring(call.request.body)
    return {e.tag: (e.text or "") for e in root.iter() if len(e) == 0}


@responses.activate
def test_ship_ok_sends_the_documented_request_with_token_and_pacing() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("ok.xml"), content_type="text/xml")
    pace = FakePace()
    answer = client(pace=pace).ship(SHIPMENT)
    assert answer.ok and answer.warnings == ()
    token_call, ship_call = responses.calls
    assert (
        token_call.request.headers["Authorization"]
        == "Basic " + base64.b64encode(b"yahoo-client-id:yahoo-client-secret").decode()
    )
    assert parse_qs(token_call.request.body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["yahoo-refresh-token"],
    }
    assert ship_call.request.headers["Authorization"] == "Bearer access-1"
    assert "X-sws-signature" not in ship_call.request.headers
    fields = xml_of(ship_call)
    assert fields == {
        "OrderId": "teststore-10000001",
        "IsPointFix": "true",
        "OperationUser": "crossship",
        "ShipStatus": "3",
        "ShipCompanyCode": "1001",
        "ShipInvoiceNumber1": "123456789012",
        "ShipDate": "20261127",
        "SellerId": "teststore",
    }
    assert pace.waits == 1


@responses.activate
def test_two_numbers_and_no_tracking_reason() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("ok.xml"))
    responses.post(SHIP_URL, body=fixture("ok.xml"))
    yahoo = client()
    yahoo.ship(Shipment("teststore-1", "1002", "20261127", ("A1", "B2")))
    yahoo.ship(Shipment("teststore-2", "1000", "20261127", (), "102"))
    two, reason = (xml_of(c) for c in responses.calls[1:])
    assert (two["ShipInvoiceNumber1"], two["ShipInvoiceNumber2"]) == ("A1", "B2")
    assert "ShipInvoiceNumberEmptyReason" not in two
    assert reason["ShipInvoiceNumberEmptyReason"] == "102"
    assert "ShipInvoiceNumber1" not in reason
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1  # one per run


@responses.activate
def test_values_reach_yahoo_literally() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("ok.xml"))
    hostile = "<a>&amp;]]>\"'ヤマト&<!--"
    client().ship(Shipment("teststore-1", "1001", "20261127", (hostile,)))
    body = responses.calls[1].request.body
    assert b"<a>" not in body and b"]]>" not in body
    assert xml_of(responses.calls[1])["ShipInvoiceNumber1"] == hostile


@responses.activate
def test_complete_sends_order_status_5() -> None:
    token(responses)
    responses.post(COMPLETE_URL, body=fixture("ok.xml"))
    assert client().complete("teststore-10000001").ok
    fields = xml_of(responses.calls[1])
    assert fields["OrderStatus"] == "5" and fields["OrderId"] == "teststore-10000001"


@responses.activate
def test_warnings_are_kept_as_yahoo_wrote_them() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("ok_warning.xml"))
    answer = client().ship(SHIPMENT)
    assert answer.ok
    assert answer.warnings == ("od83000031: お荷物伝票番号の形式が配送会社の形式と異なります。",)


@responses.activate
def test_od_error_is_an_answer_about_the_order() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("od_error.xml"), status=400)
    answer = client().ship(SHIPMENT)
    assert not answer.ok
    assert (answer.code, answer.message) == ("od83000003", "注文IDが存在しません。")


@responses.activate
def test_px_04102_halts_with_the_explanation() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("px_04102.xml"), status=400)
    with pytest.raises(YahooError) as caught:
        client().ship(SHIPMENT)
    error = caught.value
    assert error.halt and error.outcome == "not_sent" and error.code == "px-04102"
    assert "12 hours" in error.message and "暗号鍵管理" in error.message
    # in Japanese: our explanation from the catalog, Yahoo's code and words as Yahoo wrote them
    japanese = render(error.kept, "ja")
    assert "Yahoo がこの店舗の認可を終了しました (px-04102)" in japanese
    assert "ストアクリエイターPro (設定 > 暗号鍵管理、公開鍵発行、有効にする)" in japanese
    assert "px-04102: " in japanese and "12 hours" not in japanese


@responses.activate
def test_other_px_error_halts() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("px_04001.xml"), status=400)
    with pytest.raises(YahooError) as caught:
        client().ship(SHIPMENT)
    assert caught.value.halt and "px-04001: SellerId is missing." in caught.value.message


@responses.activate
def test_expired_access_token_is_renewed_once() -> None:
    token(responses, "old")
    responses.post(
        SHIP_URL,
        status=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'},
    )
    token(responses, "new")
    responses.post(SHIP_URL, body=fixture("ok.xml"))
    assert client().ship(SHIPMENT).ok
    bearer = [c.request.headers.get("Authorization") for c in responses.calls]
    assert bearer[1] == "Bearer old" and bearer[3] == "Bearer new"


@responses.activate
def test_a_renewed_token_refused_again_halts() -> None:
    header = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    token(responses, "a")
    responses.post(SHIP_URL, status=401, headers=header)
    token(responses, "b")
    responses.post(SHIP_URL, status=401, headers=header)
    with pytest.raises(YahooError) as caught:
        client().ship(SHIPMENT)
    assert caught.value.halt
    assert "invalid_token" in caught.value.message and "authorize" in caught.value.message
    assert len(responses.calls) == 4


@responses.activate
def test_expired_refresh_token_halts_and_names_the_fix() -> None:
    responses.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "refresh_token is expired"},
    )
    with pytest.raises(YahooError) as caught:
        client().ship(SHIPMENT)
    message = caught.value.message
    assert caught.value.halt and caught.value.outcome == "not_sent"
    assert "invalid_grant: refresh_token is expired" in message and "28 days" in message
    assert "yahoo-refresh-token" not in message and "yahoo-client-secret" not in message
    assert len(responses.calls) == 1
    japanese = render(caught.value.kept, "ja")
    assert "(400 invalid_grant: refresh_token is expired)" in japanese
    assert "リフレッシュトークンの期限 (28日) が切れたか" in japanese and "28 days" not in japanese


@responses.activate
def test_html_error_page_is_named() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("gateway.html"), status=502)
    with pytest.raises(YahooError) as caught:
        client().ship(SHIPMENT)
    error = caught.value
    assert error.outcome == "unknown" and not error.halt
    assert "an HTML page, not XML ('502 Bad Gateway')" in error.message


@responses.activate
@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("truncated.xml", "XML that cannot be read"),
        ("entities.xml", "forbidden construct"),
        ("gateway.html", "an HTML page"),
    ],
)
def test_unreadable_2xx_answer_is_unknown(name: str, said: str) -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture(name), status=200)
    with pytest.raises(YahooError) as caught:
        client().ship(SHIPMENT)
    assert caught.value.outcome == "unknown" and said in caught.value.message
    assert "whether it took effect is unknown" in caught.value.message
    assert "反映されたかどうかは不明です" in render(caught.value.kept, "ja")


@responses.activate
def test_throttled_halts_for_the_next_run() -> None:
    token(responses)
    responses.post(SHIP_URL, status=429, body=b"")
    with pytest.raises(YahooError) as caught:
        client().ship(SHIPMENT)
    assert caught.value.halt and caught.value.outcome == "not_sent"


@responses.activate
def test_network_failures() -> None:
    token(responses)
    responses.post(SHIP_URL, body=requests.ConnectionError(ConnectionRefusedError()))
    responses.post(SHIP_URL, body=requests.ReadTimeout())
    yahoo = client()
    with pytest.raises(YahooError) as refused:
        yahoo.ship(SHIPMENT)
    assert refused.value.outcome == "not_sent" and not refused.value.halt
    with pytest.raises(YahooError) as timed_out:
        yahoo.ship(SHIPMENT)
    assert timed_out.value.outcome == "unknown" and "read timeout" in timed_out.value.message


@responses.activate
def test_every_call_has_a_timeout() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("ok.xml"))
    seen = []
    session = requests.Session()
    original = session.post

    def post(url, **kwargs):
        seen.append(kwargs.get("timeout"))
        return original(url, **kwargs)

    session.post = post  # type: ignore[method-assign]
    client(session=session, timeout=(3.0, 7.0)).ship(SHIPMENT)
    assert seen == [(3.0, 7.0), (3.0, 7.0)]


@responses.activate
def test_signature_decrypts_with_the_matching_private_key() -> None:
    token(responses)
    responses.post(SHIP_URL, body=fixture("ok.xml"))
    key = keys.load_public_key(FIXTURES / "test_public.pem")
    client(public_key=PublicKey(key, "3")).ship(SHIPMENT)
    headers = responses.calls[1].request.headers
    assert headers["X-sws-signature-version"] == "3"
    private = load_pem_private_key(fixture("test_private.pem"), password=None)
    plain = private.decrypt(base64.b64decode(headers["X-sws-signature"]), padding.PKCS1v15())
    assert plain == b"teststore:1800000000"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("not_pem.txt", "is not PEM"),
        ("test_private.pem", "holds a private key"),
        ("ec_public.pem", "not an RSA key"),
        ("missing.pem", "cannot read the public key file"),
    ],
)
def test_bad_key_files_are_named(name: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        keys.load_public_key(FIXTURES / name)
    assert said in caught.value.message


def test_garbled_pem_is_named(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        keys.load_public_key(path)
    assert "is not a PEM public key" in caught.value.message


@responses.activate
def test_order_info_reads_the_fields() -> None:
    token(responses)
    responses.post(ENDPOINT + "orderInfo", body=fixture("order_info.xml"))
    info = client().order_info("teststore-10000001")
    assert info["OrderStatus"] == "2" and info["ShipInvoiceNumber1"] == "123456789012"


def test_pacer_waits_out_the_interval_on_a_monotonic_clock() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(1.0, monotonic=lambda: now[0], sleep=sleep)
    pacer.wait()
    now[0] += 0.25
    pacer.wait()
    now[0] += 5
    pacer.wait()
    assert slept == [0.75]


def test_pacer_never_waits_longer_than_one_interval_when_the_clock_misbehaves() -> None:
    readings = iter([100.0, 50.0, 50.0])  # a clock that went backwards (faked or broken)
    slept: list[float] = []
    pacer = Pacer(1.0, monotonic=lambda: next(readings), sleep=slept.append)
    pacer.wait()
    pacer.wait()
    assert slept == [1.0]


def test_credentials_never_show() -> None:
    assert "yahoo" not in repr(CREDENTIALS) and "yahoo" not in str(client())


def test_date_warnings_from_five_days_before() -> None:
    import datetime as dt

    today = dt.date(2026, 12, 1)
    quiet = keys.date_warnings(
        authorized_on="2026-11-09", key_expires="2026-12-07", has_key=True, today=today
    )
    assert quiet == []  # ends 12-07 and 12-07: six days left
    near = keys.date_warnings(
        authorized_on="2026-11-08", key_expires="2026-12-06", has_key=True, today=today
    )
    assert "2026-12-06 (days left: 5)" in near[0] and "public key expires" in near[1]
    gone = keys.date_warnings(
        authorized_on="2026-10-01", key_expires="2026-11-30", has_key=True, today=today
    )
    assert "ended on 2026-10-29" in gone[0] and "expired on 2026-11-30" in gone[1]
    assert keys.date_warnings(authorized_on=None, key_expires=None, has_key=False, today=today) == [
        keys.NO_KEY_WARNING
    ]


def test_date_problems_have_levels() -> None:
    import datetime as dt

    today = dt.date(2026, 12, 1)
    near = keys.date_problems(
        authorized_on="2026-11-08", key_expires="2026-11-30", has_key=True, today=today
    )
    assert [level for level, _ in near] == ["warning", "critical"]
    assert (
        keys.date_problems(authorized_on="2026-11-30", key_expires=None, has_key=True, today=today)
        == []
    )


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (b"<Error><Code>od83000003</Code><Message>x</Message></Error>", "od83000003: x"),
        (b"<Error><Message>\xe6\xb3\xa8\xe6\x96\x87</Message></Error>", "注文"),  # no code
        (b"<Error><Code>od83000003</Code></Error>", "od83000003"),  # no words
    ],
)
def test_yahoos_code_and_words_without_a_dangling_colon(document: bytes, said: str) -> None:
    assert xmlmsg.read_answer(document).said == said


def test_a_result_not_ok_without_yahoos_words_is_said_in_ours() -> None:
    document = b"<ResultSet><Result><Status>NG</Status></Result></ResultSet>"
    said = xmlmsg.read_answer(document).said
    assert render(said, "en") == "NG: Yahoo's answer is not OK and gives no reason"
    assert render(said, "ja") == "NG: Yahooの応答はOKではありませんが、理由が示されていません"
