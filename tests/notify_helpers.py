"""Shared set-up for the `notify run` / `results fetch` tests: a temp database with an Amazon store,
a hand-moved clock, and a mocked Amazon (LWA, Feeds API, presigned S3) through ``responses``.

A plain module, imported by the test modules (fixtures included), so it does not depend on what
conftest.py holds. Every HTTP call goes through ``responses``: an unregistered URL raises
ConnectionError inside the client, and the tests assert on the exact list of calls made.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses
from click.testing import CliRunner, Result
from responses.registries import FirstMatchRegistry, OrderedRegistry

from crossship.amazon import mall as amazon_mall
from crossship.cli import cli
from crossship.notify import NotifyOptions, NotifyResult, notify_run
from crossship.results import results_fetch
from crossship.store import Store
from crossship.timeutil import to_db

STORE = "amazon-main"
TARGET = "出荷待ち"
DESTINATION = "出荷済み"
OTHER_PHASE = "梱包中"
YAMATO = "ヤマト運輸"  # carrier with code and ship-method
SAGAWA = "佐川急便"  # carrier with code, without ship-method (seed Q2 warning)
NO_CODE = "自社便"  # carrier without an Amazon carrier-code

ENDPOINT = "https://sellingpartnerapi-fe.amazon.com"
TOKEN_URL = "https://api.amazon.com/auth/o2/token"
FEEDS_URL = ENDPOINT + "/feeds/2021-06-30/feeds"
DOCUMENTS_URL = ENDPOINT + "/feeds/2021-06-30/documents"
S3_HOST = "tortuga-prod-fe.s3-us-west-2.amazonaws.com"
UPLOAD_URL = (
    f"https://{S3_HOST}/%2FNinetyDays/amzn1.tortuga.4.upload.T1"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=abc"
)
REPORT_URL = f"https://{S3_HOST}/%2FNinetyDays/amzn1.tortuga.4.report.T1?X-Amz-Signature=def"
DOCUMENT_ID = "amzn1.tortuga.4.fe.doc-upload-1"
RESULT_DOCUMENT_ID = "amzn1.tortuga.4.fe.doc-result-1"
FEED_ID = "50012019876"
FEED_TYPE = "POST_FLAT_FILE_FULFILLMENT_DATA"
JP = "A1VC38T7YXB528"
UTF8_TSV = "text/tab-separated-values; charset=UTF-8"
SJIS_TSV = "text/tab-separated-values; charset=Shift_JIS"
ACCESS_TOKEN = "Atza|IQEBLjAsAhRmHjNgHpi0U-Dme37rR6CuUpSREXAMPLE"
SECRETS = {
    "LWA_CLIENT_ID": "amzn1.application-oa2-client.test",
    "LWA_CLIENT_SECRET": "client-secret-value-0123456789",
    "REFRESH_TOKEN": "Atzr|refresh-token-value-0123456789",
}

SAMPLES = Path(__file__).parent / "fixtures" / "amazon"
REPORTS = Path(__file__).parent / "fixtures" / "reports"
# 13:45 in Tokyo: the first cron run of the tests
T0 = datetime(2026, 11, 27, 4, 45, tzinfo=UTC)


class FakeClock:
    """The one clock of a run, moved by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def mall_order_id(n: int) -> str:
    return f"250-{n:07d}-{n:07d}"


def order(n: int | str, **values: Any) -> dict[str, Any]:
    """An order row for Store.import_orders: eligible for STORE unless ``values`` say otherwise."""
    number = int(re.sub(r"\D", "", str(n)) or 0)
    row = {
        "order_no": str(n) if isinstance(n, str) else f"A{n:05d}",
        "store": STORE,
        "mall_order_id": mall_order_id(number),
        "phase": TARGET,
        "category": "normal",
        "fba": 0,
        "bundle_parent": None,
        "split_from": None,
        "ship_date": "2026-11-27",
        "carrier": YAMATO,
        "tracking_number": f"4000{number:08d}",
    }
    row.update(values)
    return row


def item(order_no: str, line: int, item_id: str | None, quantity: int | None = 1) -> dict:
    return {
        "order_no": order_no,
        "line": line,
        "item_id": item_id,
        "sku": f"SKU-{order_no}-{line}",
        "quantity": quantity,
    }


# ---------------------------------------------------------------------------------- Amazon


def op_of(method: str, url: str) -> str:
    """Name the Amazon operation a recorded request was."""
    parts = urlsplit(url)
    if url.startswith(TOKEN_URL):
        return "token"
    if parts.hostname == S3_HOST:
        return "upload" if method == "PUT" else "download"
    path = parts.path
    if path == "/feeds/2021-06-30/documents" and method == "POST":
        return "createFeedDocument"
    if path.startswith("/feeds/2021-06-30/documents/"):
        return "getFeedDocument"
    if path == "/feeds/2021-06-30/feeds":
        return "createFeed" if method == "POST" else "getFeeds"
    if path.startswith("/feeds/2021-06-30/feeds/"):
        return "getFeed"
    return f"{method} {url}"


def error_body(code: str, message: str, details: str = "") -> dict:
    return {"errors": [{"code": code, "message": message, "details": details}]}


QUOTA = error_body("QuotaExceeded", "You exceeded your quota for the requested resource.")
INTERNAL = error_body("InternalFailure", "We encountered an internal error. Please try again.")


class FakeAmazon:
    """Registers SP-API answers on a RequestsMock and reads back what was called.

    With the default registry, several answers registered for one URL are given in order (the
    last one repeats), which is how retries are scripted.
    """

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock

    # ---- answers
    def token(self, status: int = 200, body: dict | None = None) -> None:
        if body is None:
            body = (
                {"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 3600}
                if status == 200
                else {
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid grant parameter",
                }
            )
        self.mock.add(responses.POST, TOKEN_URL, json=body, status=status)

    def create_document(
        self, status: int = 201, document_id: str = DOCUMENT_ID, url: str = UPLOAD_URL, body=None
    ) -> None:
        if body is None:
            body = {"feedDocumentId": document_id, "url": url} if status == 201 else INTERNAL
        self.mock.add(responses.POST, DOCUMENTS_URL, json=body, status=status)

    def upload(self, status: int = 200, body: str = "") -> None:
        self.mock.add(
            responses.PUT,
            re.compile(rf"https://{re.escape(S3_HOST)}/.*upload.*"),
            body=body,
            status=status,
        )

    def create_feed(self, status: int = 202, feed_id: str = FEED_ID, body: Any = None) -> None:
        if isinstance(body, Exception):
            self.mock.add(responses.POST, FEEDS_URL, body=body)
            return
        if body is None:
            body = {"feedId": feed_id} if status == 202 else INTERNAL
        self.mock.add(responses.POST, FEEDS_URL, json=body, status=status)

    def send_ok(self, feed_id: str = FEED_ID) -> None:
        """The four calls of a successful send."""
        self.token()
        self.create_document()
        self.upload()
        self.create_feed(feed_id=feed_id)

    def get_feeds(self, feeds: list[dict] | None = None, status: int = 200) -> None:
        body = {"feeds": feeds or []} if status == 200 else INTERNAL
        self.mock.add(
            responses.GET, re.compile(re.escape(FEEDS_URL) + r"\?.*"), json=body, status=status
        )

    def get_feed(
        self,
        feed_id: str = FEED_ID,
        processing_status: str = "DONE",
        result_document_id: str | None = RESULT_DOCUMENT_ID,
        status: int = 200,
    ) -> None:
        if status != 200:
            self.mock.add(responses.GET, f"{FEEDS_URL}/{feed_id}", json=INTERNAL, status=status)
            return
        body = {
            "feedId": feed_id,
            "feedType": FEED_TYPE,
            "marketplaceIds": [JP],
            "createdTime": "2026-11-27T04:45:03.120Z",
            "processingStatus": processing_status,
        }
        if result_document_id:
            body["resultFeedDocumentId"] = result_document_id
        self.mock.add(responses.GET, f"{FEEDS_URL}/{feed_id}", json=body)

    def get_document(
        self, document_id: str = RESULT_DOCUMENT_ID, compression: str | None = None
    ) -> None:
        body = {"feedDocumentId": document_id, "url": REPORT_URL}
        if compression:
            body["compressionAlgorithm"] = compression
        self.mock.add(responses.GET, f"{DOCUMENTS_URL}/{document_id}", json=body)

    def download(
        self,
        report: bytes,
        content_type: str = "text/plain; charset=UTF-8",
        headers: dict | None = None,
        status: int = 200,
    ) -> None:
        self.mock.add(
            responses.GET,
            re.compile(rf"https://{re.escape(S3_HOST)}/.*report.*"),
            body=report,
            status=status,
            headers={"Content-Type": content_type, **(headers or {})},
        )

    def result(
        self,
        report: bytes,
        feed_id: str = FEED_ID,
        content_type: str = "text/plain; charset=UTF-8",
        **download: Any,
    ) -> None:
        """A DONE feed with its report: getFeed, getFeedDocument, download."""
        self.get_feed(feed_id)
        self.get_document()
        self.download(report, content_type, **download)

    # ---- what was called
    def ops(self) -> list[str]:
        return [op_of(c.request.method, c.request.url) for c in self.mock.calls]

    def requests_of(self, op: str) -> list:
        return [c.request for c in self.mock.calls if op_of(c.request.method, c.request.url) == op]

    def uploaded(self) -> list[bytes]:
        return [bytes(r.body) for r in self.requests_of("upload")]

    def reset_calls(self) -> None:
        self.mock.calls.reset()


def feed_row(feed: bytes, encoding: str = "utf-8") -> list[list[str]]:
    """The data rows of a feed (after the three header rows), as cells."""
    text = feed.decode(encoding)
    lines = text.replace("\r\n", "\n").split("\n")
    assert lines[-1] == ""
    return [line.split("\t") for line in lines[3:-1]]


# ---------------------------------------------------------------------------------- the database


@dataclass
class Env:
    """One test's crossship: its database, clock, mocked Amazon and ways to run the jobs."""

    db_path: Path
    store: Store
    clock: FakeClock
    amazon: FakeAmazon
    monkeypatch: pytest.MonkeyPatch
    sleeps: list[float] = field(default_factory=list)

    # ---- data
    def add(self, *orders: dict, items: list[dict] = ()) -> None:
        self.store.import_orders(list(orders), list(items), to_db(self.clock()))

    def add_store(self, name: str, mall: str = "amazon", started: bool = True, **values) -> None:
        values.setdefault("endpoint", ENDPOINT)
        self.store.add_store(name, mall, values, to_db(self.clock()))
        if mall == "amazon":
            for suffix, value in SECRETS.items():
                self.monkeypatch.setenv(f"CROSSSHIP_{_env_store(name)}_{suffix}", value)
        self.store.add_target(name, TARGET, DESTINATION)
        self.store.set_started(name, started)

    def get(self, order_no: str) -> dict:
        return self.store.get_order(order_no)

    def status(self, order_no: str) -> str:
        return self.get(order_no)["status"]

    def statuses(self) -> dict[str, str]:
        return {o["order_no"]: o["status"] for o in self.store.iter_orders()}

    def history(self, order_no: str | None = None) -> list[dict]:
        """History rows, oldest first."""
        from crossship.store import HistoryFilter

        return list(reversed(list(self.store.iter_history(HistoryFilter(order_no=order_no)))))

    def batches(self, *states: str) -> list[dict]:
        return self.store.batches(states=states)

    def runs(self, job: str | None = None) -> list[dict]:
        return list(self.store.iter_runs(job=job))

    def mail(self, host: str = "127.0.0.1", port: int = 25, **values) -> None:
        settings = {
            "smtp_host": host,
            "smtp_port": port,
            "from": "crossship@example.jp",
            "admin": "admin@example.jp",
            "notify": ["ship@example.jp", "boss@example.jp"],
        }
        settings.update(values)
        self.store.set_settings("mail", settings)

    # ---- the jobs, through the core
    def notify(self, **options: Any) -> NotifyResult:
        return notify_run(self.store, self.db_path, self.clock, NotifyOptions(**options))

    def fetch(self, **options: Any) -> NotifyResult:
        return results_fetch(self.store, self.db_path, self.clock, **options)

    # ---- the jobs, through the CLI
    def cli(self, *args: str) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            ["--db", str(self.db_path), *args],
            obj={"clock": self.clock},
            catch_exceptions=False,
        )


def _env_store(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


@pytest.fixture
def amazon_mock(request: pytest.FixtureRequest) -> Iterator[responses.RequestsMock]:
    """Mocked HTTP; ``parametrize("amazon_mock", ["ordered"], indirect=True)`` makes every
    answer be consumed in the order registered (OrderedRegistry)."""
    ordered = getattr(request, "param", None) == "ordered"
    registry = OrderedRegistry if ordered else FirstMatchRegistry
    with responses.RequestsMock(assert_all_requests_are_fired=False, registry=registry) as mock:
        yield mock


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amazon_mock) -> Iterator[Env]:
    """A database with the Amazon store STORE (started), its target phase and carriers."""
    db_path = tmp_path / "crossship.db"
    monkeypatch.setenv("CROSSSHIP_DB", str(db_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CROSSSHIP_CREDENTIALS", str(tmp_path / "no-credentials.toml"))
    monkeypatch.delenv("CROSSSHIP_SMTP_PASSWORD", raising=False)
    sleeps: list[float] = []
    # backoff is recorded, never slept; timeouts small in case something real is reached
    monkeypatch.setattr(
        amazon_mall, "CLIENT_OPTIONS", {"sleep": sleeps.append, "timeout": (2.0, 2.0)}
    )
    clock = FakeClock()
    store = Store(db_path)
    store.create_phase(TARGET, "required")
    store.create_phase(DESTINATION, "required")
    store.create_phase(OTHER_PHASE, "optional")
    store.save_carrier(
        YAMATO, {"amazon_carrier_code": "Yamato Transport", "amazon_ship_method": "宅急便"}
    )
    store.save_carrier(SAGAWA, {"amazon_carrier_code": "Sagawa Express"})
    store.save_carrier(NO_CODE, {"amazon_carrier_name": "自社配送"})
    e = Env(db_path, store, clock, FakeAmazon(amazon_mock), monkeypatch, sleeps)
    e.add_store(STORE)
    yield e
    store.close()


# ---------------------------------------------------------------------------------- SMTP


class Mailbox:
    """An aiosmtpd handler keeping every envelope it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.received = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        self.envelopes.append(envelope)
        self.received.set()
        return "250 OK"

    def messages(self) -> list:
        import email
        from email import policy

        return [email.message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd), on a free port."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def feeds_entry(feed_id: str, created: datetime, status: str = "IN_QUEUE") -> dict:
    return {
        "feedId": feed_id,
        "feedType": FEED_TYPE,
        "marketplaceIds": [JP],
        "createdTime": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "processingStatus": status,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------------- reports


def shipconfirm_orders() -> list[dict]:
    """Three orders that tests/fixtures/reports/shipconfirm-error-warning.* speak of, as records
    1-3: A00001 fails (18028 order not found), A00002 (carrier without ship-method) gets the seed
    Q2 ship-method warning, A00003 is not mentioned (success)."""
    return [
        order(1, mall_order_id="250-1234567-1234567"),
        order(2, mall_order_id="503-2345678-2345678", carrier=SAGAWA),
        order(3),
    ]


def report_en(processed: int, successful: int, rows: list[tuple] = ()) -> bytes:
    """An English flat-file processing report of the shipment-confirmation shape.

    ``rows``: (record, order-id, order-item-id, code, type, message).
    """
    lines = [
        "Feed Processing Summary:",
        f"\tNumber of records processed\t\t{processed}",
        f"\tNumber of records successful\t\t{successful}",
        "",
    ]
    if rows:
        lines.append(
            "original-record-number\torder-id\torder-item-id\terror-code\terror-type\terror-message"
        )
        lines += ["\t".join(str(cell) for cell in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()
