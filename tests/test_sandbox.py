"""The local Amazon stand-in: LWA, Feeds API 2021-06-30, presigned S3, feed processing, faults."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from crossship.errors import NotFound, UsageError
from crossship.sandbox import SandboxOptions, SandboxServer
from crossship.sandbox import processing as p

SAMPLES = Path(__file__).parent / "fixtures" / "amazon"
FEEDS = "/feeds/2021-06-30"
FEED_TYPE = "POST_FLAT_FILE_FULFILLMENT_DATA"
JP = "A1VC38T7YXB528"
UTF8_TSV = "text/tab-separated-values; charset=UTF-8"
SJIS_TSV = "text/tab-separated-values; charset=Shift_JIS"
HEADER = (
    "TemplateType=OrderFulfillment\tVersion=2011.1102\t"
    "この行はAmazonが使用しますので変更や削除しないでください。\n"
    "注文番号\t注文商品番号\t出荷数\t出荷日\t配送業者コード\t配送業者名\t"
    "お問い合わせ伝票番号\t配送方法\t代金引換\n"
    "order-id\torder-item-id\tquantity\tship-date\tcarrier-code\tcarrier-name\t"
    "tracking-number\tship-method\tcod-collection-method\n"
)
GOOD = "249-1234567-1234567\t\t\t2026-11-20\tYamato Transport\t\t123456789012\t宅急便\t\n"
NO_METHOD = "249-1234567-7654321\t\t\t2026-11-20\tSagawa Express\t\t400012345678\t\t\n"
BAD_ORDER = "249-1234567-12345\t\t\t2026-11-20\tJapan Post\t\t123456789012\tゆうパック\t\n"


class FakeTime:
    """One hand-moved time for the rate limits (monotonic) and the feeds' clock (wall)."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def clock(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_server(fake_time: FakeTime) -> Iterator:
    servers: list[SandboxServer] = []

    def make(**options: object) -> SandboxServer:
        server = SandboxServer(
            options=SandboxOptions(**options), clock=fake_time.clock, now=fake_time.now
        )
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server) -> SandboxServer:
    return make_server()


class Client:
    """Just enough of an SP-API client for the tests, on plain requests."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.http = requests.Session()
        self.token = ""

    def login(self) -> Client:
        options = self.server.options
        form = {
            "grant_type": "refresh_token",
            "refresh_token": options.refresh_token,
            "client_id": options.client_id,
            "client_secret": options.client_secret,
        }
        answer = self.http.post(self.server.token_url, data=form, timeout=5)
        assert answer.status_code == 200, answer.text
        self.token = answer.json()["access_token"]
        return self

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = {"x-amz-access-token": self.token} if self.token else {}
        return self.http.request(
            method, self.server.url + path, headers=headers, timeout=5, **kwargs
        )

    def upload(self, text: str, content_type: str = UTF8_TSV, codec: str = "utf-8") -> str:
        created = self.call("POST", FEEDS + "/documents", json={"contentType": content_type})
        assert created.status_code == 201, created.text
        put = self.http.put(
            created.json()["url"],
            data=text.encode(codec),
            headers={"Content-Type": content_type},
            timeout=5,
        )
        assert put.status_code == 200, put.text
        return created.json()["feedDocumentId"]

    def create_feed(self, document_id: str, feed_type: str = FEED_TYPE) -> requests.Response:
        body = {"feedType": feed_type, "marketplaceIds": [JP], "inputFeedDocumentId": document_id}
        return self.call("POST", FEEDS + "/feeds", json=body)

    def send(self, text: str, **kwargs: str) -> str:
        answer = self.create_feed(self.upload(text, **kwargs))
        assert answer.status_code == 202, answer.text
        return answer.json()["feedId"]

    def feed(self, feed_id: str) -> dict:
        answer = self.call("GET", f"{FEEDS}/feeds/{feed_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def report(self, feed_id: str) -> requests.Response:
        document_id = self.feed(feed_id)["resultFeedDocumentId"]
        document = self.call("GET", f"{FEEDS}/documents/{document_id}")
        assert document.status_code == 200, document.text
        return self.http.get(document.json()["url"], timeout=5)


@pytest.fixture
def client(server: SandboxServer) -> Client:
    return Client(server).login()


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


# --- the whole path ----------------------------------------------------------------------------


def test_full_path_token_upload_feed_report(server: SandboxServer, client: Client) -> None:
    feed_id = client.send(HEADER + GOOD + NO_METHOD + BAD_ORDER)
    assert feed_id.isdigit()

    feed = client.feed(feed_id)
    assert feed["processingStatus"] == "DONE"
    assert feed["feedType"] == FEED_TYPE and feed["marketplaceIds"] == [JP]
    assert {"createdTime", "processingStartTime", "processingEndTime"} <= set(feed)

    download = client.report(feed_id)
    assert download.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert download.text == (
        "Feed Processing Summary:\n"
        "\tNumber of records processed\t\t3\n"
        "\tNumber of records successful\t\t2\n"
        "\n"
        "original-record-number\torder-id\torder-item-id\terror-code\terror-type\terror-message\n"
        "2\t249-1234567-7654321\t\t99101\tWarning\tThe ship-method field is missing or invalid. "
        "Make sure a valid ship-method value is entered.\n"
        "3\t249-1234567-12345\t\t18028\tError\tYour order cannot be found using Merchant ID "
        "A1SANDBOXSELLER and Merchant Order 249-1234567-12345. "
        "Enter the correct order ID and then resubmit your feed.\n"
    )
    assert server.calls["createFeed"] == 1 and server.calls["download"] == 1


def test_all_successful_report_matches_amazons_sample(client: Client) -> None:
    feed_id = client.send(HEADER + GOOD)
    assert client.report(feed_id).text == sample("flatfile-report_all-success.txt")


def test_feeds_lists_uploaded_bytes_and_content_type(server: SandboxServer, client: Client) -> None:
    feed_id = client.send(HEADER + GOOD, content_type=SJIS_TSV, codec="cp932")
    (feed,) = server.feeds()
    assert feed["feedId"] == feed_id
    assert feed["contentType"] == SJIS_TSV
    assert feed["document"] == (HEADER + GOOD).encode("cp932")
    assert (
        feed["processingStatus"] == "DONE" and "Number of records successful\t\t1" in feed["report"]
    )


def test_token_answer_has_lwa_shape(server: SandboxServer) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|sandbox",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
    }
    answer = requests.post(server.token_url, data=form, timeout=5)
    body = answer.json()
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert body["access_token"].startswith("Atza|")
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "someone"}, "invalid_client"),
        ({"refresh_token": "Atzr|revoked"}, "invalid_grant"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"refresh_token": ""}, "invalid_request"),
    ],
)
def test_token_refusals(server: SandboxServer, change: dict, error: str) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|sandbox",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
    } | change
    answer = requests.post(server.token_url, data=form, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"] == error


# --- access, upload, createFeed ----------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "Atza|made-up"])
def test_spapi_without_valid_token_is_403(server: SandboxServer, token: str | None) -> None:
    headers = {"x-amz-access-token": token} if token else {}
    answer = requests.get(
        server.url + FEEDS + "/feeds", params={"feedTypes": FEED_TYPE}, headers=headers, timeout=5
    )
    assert answer.status_code == 403
    (error,) = answer.json()["errors"]
    assert error["code"] == "Unauthorized"
    assert error["message"] == "Access to requested resource is denied."


def test_expired_tokens_are_refused_until_renewed(server: SandboxServer, client: Client) -> None:
    requests.post(server.url + "/_sandbox/options", json={"expire_tokens": True}, timeout=5)
    assert client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE}).status_code == 403
    client.login()
    assert client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE}).status_code == 200


def test_token_expires_after_an_hour(client: Client, fake_time: FakeTime) -> None:
    fake_time.advance(3600)
    answer = client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE})
    assert answer.status_code == 403
    assert "expired" in answer.json()["errors"][0]["details"]


def test_upload_with_other_content_type_is_signature_mismatch(client: Client) -> None:
    created = client.call("POST", FEEDS + "/documents", json={"contentType": UTF8_TSV}).json()
    put = requests.put(
        created["url"],
        data=b"x",
        headers={"Content-Type": "text/tab-separated-values; charset=utf-8"},
        timeout=5,
    )
    assert put.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in put.text
    assert (
        "<Message>The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.</Message>" in put.text
    )


def test_upload_url_expires_after_five_minutes(client: Client, fake_time: FakeTime) -> None:
    created = client.call("POST", FEEDS + "/documents", json={"contentType": UTF8_TSV}).json()
    fake_time.advance(301)
    put = requests.put(created["url"], data=b"x", headers={"Content-Type": UTF8_TSV}, timeout=5)
    assert put.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in put.text


def test_create_feed_document_needs_content_type(client: Client) -> None:
    answer = client.call("POST", FEEDS + "/documents", json={})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "InvalidInput"


def test_create_feed_missing_params_body_matches_sample(client: Client) -> None:
    answer = client.call("POST", FEEDS + "/feeds", json={})
    assert answer.status_code == 400
    assert answer.json() == json.loads(sample("error-400-createFeed-missing-params.json"))


def test_create_feed_refuses_a_document_never_uploaded(client: Client) -> None:
    created = client.call("POST", FEEDS + "/documents", json={"contentType": UTF8_TSV}).json()
    for document_id in (created["feedDocumentId"], "amzn1.tortuga.4.fe.unknown"):
        answer = client.create_feed(document_id)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["code"] == "InvalidInput"


def test_get_feed_unknown_is_404_and_malformed_is_400(client: Client) -> None:
    assert client.call("GET", FEEDS + "/feeds/12345").status_code == 404
    assert client.call("GET", FEEDS + "/feeds/12345").json()["errors"][0]["code"] == "NotFound"
    assert client.call("GET", FEEDS + "/feeds/badFeedId1").status_code == 400
    assert client.call("GET", FEEDS + "/documents/amzn1.tortuga.4.fe.nope").status_code == 404


# --- rate limits -------------------------------------------------------------------------------


def test_rate_limit_answers_429_after_the_burst(client: Client, fake_time: FakeTime) -> None:
    params = {"feedTypes": FEED_TYPE}
    answers = [client.call("GET", FEEDS + "/feeds", params=params) for _ in range(10)]
    assert all(a.status_code == 200 for a in answers)
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "0.0222"

    throttled = client.call("GET", FEEDS + "/feeds", params=params)
    assert throttled.status_code == 429
    assert throttled.json() == json.loads(sample("error-429-QuotaExceeded.json"))
    assert "x-amzn-RateLimit-Limit" not in throttled.headers

    fake_time.advance(46)  # 0.0222/s: one call back after 45 s
    assert client.call("GET", FEEDS + "/feeds", params=params).status_code == 200
    assert client.call("GET", FEEDS + "/feeds", params=params).status_code == 429


def test_rate_limits_can_be_switched_off(make_server) -> None:
    client = Client(make_server(enforce_rate_limits=False)).login()
    for _ in range(12):
        assert client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE}).ok


# --- getFeeds ----------------------------------------------------------------------------------


def test_get_feeds_filters_newest_first(
    server: SandboxServer, client: Client, fake_time: FakeTime
) -> None:
    old = client.send(HEADER + GOOD)
    fake_time.advance(3000)
    since = fake_time.now().isoformat()
    done = client.send(HEADER + GOOD)
    inventory = client.create_feed(client.upload(HEADER + GOOD), "POST_INVENTORY_AVAILABILITY_DATA")
    cancelled = client.send(HEADER + GOOD)
    server.end_feed(cancelled, "CANCELLED")

    def ids(**params: str) -> list[str]:
        answer = client.call("GET", FEEDS + "/feeds", params=params)
        assert answer.status_code == 200, answer.text
        return [feed["feedId"] for feed in answer.json()["feeds"]]

    assert ids(feedTypes=FEED_TYPE) == [cancelled, done, old]
    assert ids(feedTypes="POST_INVENTORY_AVAILABILITY_DATA") == [inventory.json()["feedId"]]
    assert ids(feedTypes=FEED_TYPE, createdSince=since) == [cancelled, done]
    before = (fake_time.now() - timedelta(seconds=1)).isoformat()
    assert ids(feedTypes=FEED_TYPE, createdUntil=before) == [old]
    assert ids(feedTypes=FEED_TYPE, processingStatuses="CANCELLED") == [cancelled]
    assert ids(feedTypes=FEED_TYPE, processingStatuses="DONE,FATAL") == [done, old]
    assert ids(feedTypes=FEED_TYPE, marketplaceIds="ATVPDKIKX0DER") == []


def test_get_feeds_default_window_is_90_days(client: Client, fake_time: FakeTime) -> None:
    client.send(HEADER + GOOD)
    fake_time.advance(91 * 24 * 3600)
    answer = client.login().call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE})
    assert answer.json() == {"feeds": []}


def test_get_feeds_pages_with_next_token(client: Client) -> None:
    created = [client.send(HEADER + GOOD) for _ in range(5)]
    seen: list[str] = []
    answer = client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE, "pageSize": 2})
    while True:
        body = answer.json()
        seen += [feed["feedId"] for feed in body["feeds"]]
        if "nextToken" not in body:
            break
        client.send(HEADER + GOOD)  # a feed created meanwhile does not disturb the listing
        answer = client.call("GET", FEEDS + "/feeds", params={"nextToken": body["nextToken"]})
    assert seen == created[::-1]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"feedTypes": FEED_TYPE, "pageSize": "0"},
        {"feedTypes": FEED_TYPE, "pageSize": "101"},
        {"feedTypes": FEED_TYPE, "processingStatuses": "BAD_VALUE,DONE"},
        {"feedTypes": FEED_TYPE, "createdSince": "yesterday"},
        {"feedTypes": FEED_TYPE, "nextToken": "abc"},
        {"nextToken": "not-a-token"},
    ],
)
def test_get_feeds_refuses_bad_parameters(client: Client, params: dict) -> None:
    answer = client.call("GET", FEEDS + "/feeds", params=params)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "InvalidInput"


# --- processing over time, ending, cancelling --------------------------------------------------


def test_feed_goes_in_queue_in_progress_done(make_server, fake_time: FakeTime) -> None:
    client = Client(make_server(processing_seconds=60)).login()
    feed_id = client.send(HEADER + GOOD)
    queued = client.feed(feed_id)
    assert queued["processingStatus"] == "IN_QUEUE"
    assert "processingStartTime" not in queued and "resultFeedDocumentId" not in queued
    fake_time.advance(30)
    progress = client.feed(feed_id)
    assert progress["processingStatus"] == "IN_PROGRESS" and "processingStartTime" in progress
    fake_time.advance(30)
    done = client.feed(feed_id)
    assert done["processingStatus"] == "DONE" and done["resultFeedDocumentId"]
    assert done["processingEndTime"] == "2026-11-27T12:01:00.000Z"


def test_cancel_feed_only_in_queue(make_server, fake_time: FakeTime) -> None:
    client = Client(make_server(processing_seconds=60)).login()
    feed_id = client.send(HEADER + GOOD)
    assert client.call("DELETE", f"{FEEDS}/feeds/{feed_id}").status_code == 200
    assert client.feed(feed_id)["processingStatus"] == "CANCELLED"
    late = client.send(HEADER + GOOD)
    fake_time.advance(60)
    assert client.call("DELETE", f"{FEEDS}/feeds/{late}").status_code == 400


def test_end_feed_fatal_has_a_report_with_a_fatal_row(
    server: SandboxServer, client: Client
) -> None:
    feed_id = client.send(HEADER + GOOD)
    server.end_feed(feed_id, "FATAL")
    feed = client.feed(feed_id)
    assert feed["processingStatus"] == "FATAL"
    lines = client.report(feed_id).text.splitlines()
    assert lines[1:3] == [
        "\tNumber of records processed\t\t0",
        "\tNumber of records successful\t\t0",
    ]
    assert lines[5].startswith("0\t\t\t90001\tFatal\t")


def test_end_feed_cancelled_has_no_report_over_http(server: SandboxServer, client: Client) -> None:
    feed_id = client.send(HEADER + GOOD)
    answer = requests.post(
        f"{server.url}/_sandbox/feeds/{feed_id}/end", json={"status": "CANCELLED"}, timeout=5
    )
    assert answer.status_code == 200
    feed = client.feed(feed_id)
    assert feed["processingStatus"] == "CANCELLED" and "resultFeedDocumentId" not in feed


def test_end_feed_refusals(server: SandboxServer) -> None:
    with pytest.raises(NotFound):
        server.end_feed("1", "FATAL")
    with pytest.raises(UsageError):
        server.end_feed("1", "DONE")


# --- report language, encoding, compression ----------------------------------------------------


def test_japanese_cp932_report(make_server) -> None:
    client = Client(make_server(report_language="ja", report_encoding="cp932")).login()
    feed_id = client.send(HEADER + GOOD + NO_METHOD, content_type=SJIS_TSV, codec="cp932")
    download = client.report(feed_id)
    assert download.headers["Content-Type"] == "text/plain; charset=windows-31j"
    assert download.content.decode("cp932") == (
        "フィード処理概要:\n"
        "\t処理されたレコード数\t\t2\n"
        "\t成功したレコード数\t\t2\n"
        "\n"
        "元のレコード番号\t注文番号\t注文商品番号\tエラーコード\tエラータイプ\tエラーメッセージ\n"
        "2\t249-1234567-7654321\t\t99101\t警告\t"
        "ship-methodの項目が記入されていないか入力内容が無効です。"
        "有効なship-methodの項目が入力されていることを確認してください。\n"
    )


def test_gzip_report(make_server) -> None:
    client = Client(make_server(gzip_reports=True)).login()
    feed_id = client.send(HEADER + GOOD)
    document_id = client.feed(feed_id)["resultFeedDocumentId"]
    document = client.call("GET", f"{FEEDS}/documents/{document_id}").json()
    assert document["compressionAlgorithm"] == "GZIP"
    raw = requests.get(document["url"], timeout=5, stream=True).raw.read()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw).decode() == sample("flatfile-report_all-success.txt")


def test_gzip_report_with_content_encoding_header(make_server) -> None:
    client = Client(make_server(gzip_reports=True)).login()
    document_id = client.feed(client.send(HEADER + GOOD))["resultFeedDocumentId"]
    document = client.call(
        "GET", f"{FEEDS}/documents/{document_id}", params={"enableContentEncodingUrlHeader": "true"}
    ).json()
    download = requests.get(document["url"], timeout=5)
    assert download.headers["Content-Encoding"] == "gzip"
    assert download.text == sample("flatfile-report_all-success.txt")  # requests decoded it


def test_known_orders_over_http(server: SandboxServer, client: Client) -> None:
    requests.post(
        server.url + "/_sandbox/known-orders",
        json={"order_ids": ["249-1234567-7654321"]},
        timeout=5,
    )
    report = client.report(client.send(HEADER + GOOD + NO_METHOD)).text
    assert "1\t249-1234567-1234567\t\t18028\tError" in report
    assert "Number of records successful\t\t1" in report


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"), [(500, "InternalFailure"), (503, "ServiceUnavailable")]
)
def test_fault_fail_answers_error_list(
    server: SandboxServer, client: Client, status: int, code: str
) -> None:
    server.add_fault("getFeed", "fail", status=status, count=2)
    feed_id = client.send(HEADER + GOOD)
    for _ in range(2):
        answer = client.call("GET", f"{FEEDS}/feeds/{feed_id}")
        assert answer.status_code == status
        assert answer.json()["errors"][0]["code"] == code
    assert client.feed(feed_id)["processingStatus"] == "DONE"
    assert server.calls["getFeed"] == 3


def test_fault_fail_502_is_an_html_page(server: SandboxServer, client: Client) -> None:
    server.add_fault("createFeedDocument", "fail", status=502)
    answer = client.call("POST", FEEDS + "/documents", json={"contentType": UTF8_TSV})
    assert answer.status_code == 502
    assert (
        answer.headers["Content-Type"] == "text/html" and "<h1>502 Bad Gateway</h1>" in answer.text
    )


def test_fault_fail_on_upload_and_token(server: SandboxServer, client: Client) -> None:
    server.add_fault("upload", "fail", status=500)
    created = client.call("POST", FEEDS + "/documents", json={"contentType": UTF8_TSV}).json()
    put = requests.put(created["url"], data=b"x", headers={"Content-Type": UTF8_TSV}, timeout=5)
    assert put.status_code == 500 and "<Code>InternalError</Code>" in put.text
    server.add_fault("token", "fail", status=500)
    with pytest.raises(AssertionError):
        client.login()


def test_fault_throttle(server: SandboxServer, client: Client) -> None:
    server.add_fault("createFeed", "throttle")
    answer = client.create_feed(client.upload(HEADER + GOOD))
    assert answer.status_code == 429
    assert answer.json() == json.loads(sample("error-429-QuotaExceeded.json"))
    assert server.feeds() == []


def test_fault_hang_until_released(server: SandboxServer, client: Client) -> None:
    server.add_fault("getFeeds", "hang", seconds=30)
    answers: list[requests.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE})
        )
    )
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not answers
    requests.post(server.url + "/_sandbox/release", timeout=5)
    waiter.join(5)
    assert answers[0].status_code == 200


def test_fault_hang_outlasts_a_client_timeout_then_takes_effect(
    server: SandboxServer, client: Client
) -> None:
    document_id = client.upload(HEADER + GOOD)
    server.add_fault("createFeed", "hang", seconds=0.5)
    with pytest.raises(requests.Timeout):
        client.http.post(
            server.url + FEEDS + "/feeds",
            json={
                "feedType": FEED_TYPE,
                "marketplaceIds": [JP],
                "inputFeedDocumentId": document_id,
            },
            headers={"x-amz-access-token": client.token},
            timeout=0.1,
        )
    server.release_hangs()
    for _ in range(50):
        if server.feeds():
            break
        threading.Event().wait(0.02)
    assert len(server.feeds()) == 1


def test_fault_lose_answer_on_create_feed_still_creates(
    server: SandboxServer, client: Client
) -> None:
    document_id = client.upload(HEADER + GOOD)
    server.add_fault("createFeed", "lose_answer")
    with pytest.raises(requests.ConnectionError):
        client.create_feed(document_id)
    listed = client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE}).json()
    assert [feed["feedId"] for feed in listed["feeds"]] == [server.feeds()[0]["feedId"]]


def test_fault_bad_json(server: SandboxServer, client: Client) -> None:
    feed_id = client.send(HEADER + GOOD)
    server.add_fault("getFeed", "bad_json")
    answer = client.call("GET", f"{FEEDS}/feeds/{feed_id}")
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()


def test_fault_truncated_gzip(make_server) -> None:
    server = make_server(gzip_reports=True)
    client = Client(server).login()
    feed_id = client.send(HEADER + GOOD)
    server.add_fault("download", "truncated_gzip")
    with pytest.raises(EOFError):
        gzip.decompress(client.report(feed_id).content)


def test_fault_wrong_charset(make_server) -> None:
    server = make_server(report_language="ja")
    client = Client(server).login()
    feed_id = client.send(HEADER + GOOD)
    server.add_fault("download", "wrong_charset")
    download = client.report(feed_id)
    assert download.headers["Content-Type"] == "text/plain; charset=UTF-8"
    with pytest.raises(UnicodeDecodeError):
        download.content.decode("utf-8")
    assert download.content.decode("cp932").startswith("フィード処理概要:")


def test_faults_over_http_and_calls(server: SandboxServer, client: Client) -> None:
    answer = requests.post(
        server.url + "/_sandbox/faults",
        json={"operation": "getFeeds", "mode": "fail", "status": 503},
        timeout=5,
    )
    assert answer.status_code == 200
    assert client.call("GET", FEEDS + "/feeds", params={"feedTypes": FEED_TYPE}).status_code == 503
    calls = requests.get(server.url + "/_sandbox/calls", timeout=5).json()
    assert calls == {"token": 1, "getFeeds": 1}


@pytest.mark.parametrize(
    "fault",
    [
        {"operation": "nothing", "mode": "fail"},
        {"operation": "getFeed", "mode": "explode"},
        {"operation": "getFeed", "mode": "truncated_gzip"},
        {"operation": "getFeed", "mode": "fail", "status": 200},
    ],
)
def test_bad_faults_are_refused(server: SandboxServer, fault: dict) -> None:
    answer = requests.post(server.url + "/_sandbox/faults", json=fault, timeout=5)
    assert answer.status_code == 400


def test_control_feeds_and_options_over_http(server: SandboxServer, client: Client) -> None:
    requests.post(
        server.url + "/_sandbox/options",
        json={"report_language": "ja", "processing_seconds": 10},
        timeout=5,
    )
    client.send(HEADER + GOOD)
    (feed,) = requests.get(server.url + "/_sandbox/feeds", timeout=5).json()
    assert feed["processingStatus"] == "IN_QUEUE"
    assert feed["documentBase64"] and feed["contentType"] == UTF8_TSV
    bad = requests.post(server.url + "/_sandbox/options", json={"colour": "red"}, timeout=5)
    assert bad.status_code == 400


def test_serve_forever_stops_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    server = SandboxServer()
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    assert requests.post(server.token_url, data={}, timeout=5).status_code == 400
    server.stop()
    runner.join(5)
    assert not runner.is_alive()
    assert server.url in capsys.readouterr().err


def test_verbose_logs_one_line_per_request_without_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SandboxServer(verbose=True) as server:
        Client(server).login().upload(HEADER + GOOD)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "sandbox: POST /auth/o2/token token 200",
        "sandbox: POST /feeds/2021-06-30/documents createFeedDocument 201",
        f"sandbox: PUT /_s3/upload/{lines[2].split('/')[3].split()[0]} upload 200",
    ]
    assert not any("Signature" in line or "secret" in line or "Atz" in line for line in lines)


# --- processing.py -----------------------------------------------------------------------------


def process(rows: str, header: str = HEADER, **kwargs: object) -> p.ProcessingResult:
    return p.process_feed((header + rows).encode(), UTF8_TSV, **kwargs)


def only_row(rows: str, **kwargs: object) -> p.ReportRow:
    (row,) = process(rows, **kwargs).rows
    return row


def test_processing_counts_and_numbers_records() -> None:
    result = process("\n" + GOOD + "\n" + BAD_ORDER + "\t\t\n")
    assert (result.processed, result.successful) == (2, 1)
    assert [(r.record, r.code, r.kind) for r in result.rows] == [(2, "18028", "Error")]


@pytest.mark.parametrize(
    ("row", "code", "text"),
    [
        ("24-1234567-1234567\t\t\t2026-11-20\tJapan Post\t\t1\tx\t\n", "18028", "cannot be found"),
        ("\t\t\t2026-11-20\tJapan Post\t\t1\tx\t\n", "18028", "cannot be found"),
        (
            "249-1234567-1234567\t\t\t\tJapan Post\t\t1\tx\t\n",
            "99001",
            "ship-date field is missing",
        ),
        ("249-1234567-1234567\t\t\t2026/11/20\tJapan Post\t\t1\tx\t\n", "99002", "'2026/11/20'"),
        ("249-1234567-1234567\t\t\t2026-02-30\tJapan Post\t\t1\tx\t\n", "99002", "'2026-02-30'"),
        ("249-1234567-1234567\t\t\t2026-11-20\t\t\t1\tx\t\n", "99003", "carrier-code field is"),
        ("249-1234567-1234567\t\t\t2026-11-20\tKuroneko\t\t1\tx\t\n", "99004", "'Kuroneko'"),
        (
            "249-1234567-1234567\t\t\t2026-11-20\tOther\t\t1\tx\t\n",
            "99005",
            "carrier-code is Other",
        ),
        ("249-1234567-1234567\t12345678901234\t0\t2026-11-20\tOther\tA\t1\tx\t\n", "99006", "'0'"),
    ],
)
def test_processing_error_rules(row: str, code: str, text: str) -> None:
    found = only_row(row)
    assert (found.kind, found.code, found.record) == ("Error", code, 1)
    assert text in found.message


def test_processing_unknown_order_when_orders_are_listed() -> None:
    assert only_row(GOOD, known_order_ids={"249-1234567-7654321"}).code == "18028"
    assert process(GOOD, known_order_ids={"249-1234567-1234567"}).rows == ()


def test_processing_other_with_carrier_name_passes() -> None:
    assert process("249-1234567-1234567\t\t\t2026-11-20\tOther\t西濃\t1\tx\t\n").rows == ()


def test_processing_warnings_for_blank_tracking_and_ship_method() -> None:
    result = process("249-1234567-1234567\t1\t1\t2026-11-20\tJapan Post\t\t\t\t\n")
    assert (result.processed, result.successful) == (1, 1)
    assert [(r.kind, r.code) for r in result.rows] == [("Warning", "99102"), ("Warning", "99101")]
    assert result.rows[0].order_item_id == "1"


def test_processing_ship_method_warning_in_japanese_is_amazons_text() -> None:
    row = only_row(NO_METHOD, language="ja")
    assert row.message == (
        "ship-methodの項目が記入されていないか入力内容が無効です。"
        "有効なship-methodの項目が入力されていることを確認してください。"
    )


@pytest.mark.parametrize(
    "header",
    [
        "",
        "TemplateType=OrderFulfillment\tVersion=2011.1102\n",
        HEADER.replace("Version=2011.1102", "Version=2019.0101"),
        HEADER.replace("TemplateType=OrderFulfillment", "TemplateType=Offer"),
        "\n".join(HEADER.splitlines()[1:]) + "\n",  # the first row lost
        HEADER.replace("order-id\torder-item-id", "注文番号\t注文商品番号")
        .replace(
            "ship-date\tcarrier-code\tcarrier-name\ttracking-number\tship-method\tcod-collection-method",
            "a\tb\tc\td\te\tf",
        )
        .replace("quantity", "q"),
    ],
)
def test_processing_bad_headings_is_file_level_fatal(header: str) -> None:
    result = process(GOOD, header=header)
    assert (result.processed, result.successful) == (0, 0)
    assert [(r.record, r.code, r.kind) for r in result.rows] == [(0, "90011", "Fatal")]


def test_processing_missing_order_id_column_and_unknown_heading() -> None:
    header = HEADER.replace("order-id\t", "order-number\t")
    result = process(GOOD, header=header)
    assert [(r.record, r.code, r.kind) for r in result.rows] == [
        (0, "90012", "Fatal"),
        (0, "90061", "Warning"),
    ]
    assert "The order-number field heading is invalid" in result.rows[1].message


def test_processing_unknown_heading_is_ignored_with_a_warning() -> None:
    header = HEADER.replace("cod-collection-method", "gift-note")
    result = process(GOOD, header=header)
    assert (result.processed, result.successful) == (1, 1)
    assert [(r.record, r.code) for r in result.rows] == [(0, "90061")]


def test_processing_reads_cp932_and_crlf() -> None:
    data = (HEADER + GOOD).replace("\n", "\r\n").encode("cp932")
    assert p.process_feed(data, SJIS_TSV) == p.ProcessingResult(1, 1)
    template = (SAMPLES / "jp-shipping-confirmation-template-header_CP932.tsv").read_bytes()
    assert p.process_feed(template + GOOD.encode("cp932"), SJIS_TSV) == p.ProcessingResult(1, 1)


def test_processing_utf8_bom_and_sample_header() -> None:
    template = (SAMPLES / "jp-shipping-confirmation-template-header_UTF8.tsv").read_bytes()
    data = b"\xef\xbb\xbf" + template + GOOD.encode()
    assert p.process_feed(data, UTF8_TSV) == p.ProcessingResult(1, 1)


def test_processing_bytes_wrong_for_the_declared_charset_are_fatal() -> None:
    data = (HEADER + GOOD).encode("cp932")
    result = p.process_feed(data, UTF8_TSV)
    assert [(r.code, r.kind) for r in result.rows] == [("90002", "Fatal")]
    unknown = p.process_feed(data, "text/tab-separated-values; charset=EBCDIC")
    assert "EBCDIC" in unknown.rows[0].message


def test_render_report_fatal_shape() -> None:
    text = p.render_report(p.process_feed(b"nonsense", UTF8_TSV))
    assert text.splitlines() == [
        "Feed Processing Summary:",
        "\tNumber of records processed\t\t0",
        "\tNumber of records successful\t\t0",
        "",
        "original-record-number\torder-id\torder-item-id\terror-code\terror-type\terror-message",
        "0\t\t\t90011\tFatal\tThe file's column headings are missing or invalid. To correct this "
        "error, download the template again and use that new copy, or insert the correct column "
        "headings as row two of your existing file.",
    ]


def test_render_report_japanese_types() -> None:
    rows = (
        p.ReportRow(0, "90011", "Fatal", "m"),
        p.ReportRow(1, "18028", "Error", "m", "249-1234567-1234567"),
        p.ReportRow(2, "99101", "Warning", "m", "249-1234567-1234567", "1"),
    )
    lines = p.render_report(p.ProcessingResult(2, 1, rows), "ja").splitlines()
    assert lines[:3] == [
        "フィード処理概要:",
        "\t処理されたレコード数\t\t2",
        "\t成功したレコード数\t\t1",
    ]
    assert [line.split("\t")[4] for line in lines[5:]] == ["致命的", "エラー", "警告"]


def test_encode_report_cp932_and_gzip() -> None:
    assert p.encode_report("警告", "cp932") == "警告".encode("cp932")
    assert p.encode_report("😀", "cp932") == b"?"
    assert gzip.decompress(p.encode_report("x", compress=True)) == b"x"
    assert p.report_content_type("cp932") == "text/plain; charset=windows-31j"


def test_options_are_checked() -> None:
    with pytest.raises(UsageError):
        SandboxOptions(report_language="fr")
    with pytest.raises(UsageError):
        SandboxOptions(report_encoding="latin-1")
    assert SandboxOptions(report_encoding="windows-31j").report_encoding == "cp932"
