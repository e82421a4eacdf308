"""A lost createFeed answer reconciled on Amazon's clock, against the sandbox over HTTP (issue 10,
items 1 and 3): only a feed created at or after the batch entered ``submitting`` (Amazon's time,
learned from the Date header of its answers) can be adopted; a report that does not account for
every row sent never makes an order 正常; our clock ahead of Amazon's neither hides our feed from
getFeeds nor gets the window refused.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossship.amazon.client import AmazonClient, Credentials
from crossship.sandbox import SandboxOptions, SandboxServer
from crossship.store import Store

STORE = "amazon-main"
HEADER = ["管理番号", "店舗", "注文番号", "処理フェーズ", "発送日", "配送便", "配送番号"]
AMAZON_T0 = datetime(2026, 11, 27, 4, 45, tzinfo=UTC)
FLAT_HEADER = (
    "TemplateType=OrderFulfillment\tVersion=2011.1102\n"
    "order-id\torder-item-id\tquantity\tship-date\tcarrier-code\tcarrier-name\t"
    "tracking-number\tship-method\tcod-collection-method\n"
    "order-id\torder-item-id\tquantity\tship-date\tcarrier-code\tcarrier-name\t"
    "tracking-number\tship-method\tcod-collection-method\n"
)


class Clocks:
    """Amazon's wall clock (the sandbox's) and ours, moved by hand; ``ahead`` is ours − Amazon's."""

    def __init__(self, ahead: timedelta = timedelta(0)) -> None:
        self.amazon = AMAZON_T0
        self.ahead = ahead
        self.mono = 1000.0

    def ours(self) -> datetime:
        return self.amazon + self.ahead

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.amazon += step
        self.mono += step.total_seconds()


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def sandbox(clocks: Clocks) -> Iterator[SandboxServer]:
    options = SandboxOptions(enforce_rate_limits=False)
    with SandboxServer(
        "127.0.0.1", 0, options, clock=lambda: clocks.mono, now=lambda: clocks.amazon
    ) as server:
        yield server


@pytest.fixture
def cycle(run, sandbox: SandboxServer, clocks: Clocks, tmp_path: Path, monkeypatch):
    """A configured store on the sandbox; returns ``cx(args)`` running the CLI on our clock."""
    options = sandbox.options
    for name, value in (
        ("LWA_CLIENT_ID", options.client_id),
        ("LWA_CLIENT_SECRET", options.client_secret),
        ("REFRESH_TOKEN", options.refresh_token),
    ):
        monkeypatch.setenv(f"CROSSSHIP_AMAZON_MAIN_{name}", value)

    def cx(*args: str):
        return run(list(args), catch=False, obj={"clock": clocks.ours})

    for args in (
        ["init"],
        ["config", "phase", "create", "出荷済み"],
        ["config", "phase", "create", "完了", "--ship-date", "optional"],
        ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "宅急便"],
        ["config", "store", "add", STORE, "--mall", "amazon", "--endpoint", sandbox.url,
         "--token-url", sandbox.token_url],
        ["config", "phase", "add", STORE, "出荷済み", "--move-to", "完了"],
        ["auto", "start", STORE],
    ):  # fmt: skip
        result = cx(*args)
        assert result.exit_code == 0, (args, result.stderr)
    path = tmp_path / "orders.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in (1, 2):
            writer.writerow(
                [f"A{n:05d}", STORE, order_id(n), "出荷済み", "2026-11-26", "ヤマト運輸",
                 f"40120000000{n}"]
            )  # fmt: skip
    result = cx("orders", "import", str(path))
    assert result.exit_code == 0, result.stderr
    return cx


def order_id(n: int) -> str:
    return f"503-{n:07d}-{n:07d}"


def foreign_feed(sandbox: SandboxServer, order: str) -> str:
    """Another system (or an upload by hand) sends a one-row shipping feed for the same seller."""
    options = sandbox.options
    client = AmazonClient(
        credentials=Credentials(options.client_id, options.client_secret, options.refresh_token),
        endpoint=sandbox.url,
        token_url=sandbox.token_url,
    )
    content_type = "text/tab-separated-values; charset=UTF-8"
    document = client.create_feed_document(content_type)
    row = f"{order}\t\t\t2026-11-26\tYamato Transport\t\t401299999999\t宅急便\t\n"
    client.upload(document["url"], (FLAT_HEADER + row).encode(), content_type)
    return client.create_feed(document["feedDocumentId"])


def batches(db: Path) -> list[dict]:
    with Store(db) as store:
        return store.batches()


def statuses(db: Path) -> dict[str, tuple[str, str]]:
    with Store(db) as store:
        return {o["order_no"]: (o["status"], o["phase"]) for o in store.iter_orders()}


def created_feeds(sandbox: SandboxServer) -> int:
    return sandbox.calls["createFeed"]


def test_a_feed_created_before_the_batch_entered_submitting_is_never_adopted(
    cycle, sandbox: SandboxServer, clocks: Clocks, db_path: Path
) -> None:
    # a minute before our run, someone else sent a shipping feed for this seller
    other = foreign_feed(sandbox, order_id(9))
    clocks.advance(minutes=1)
    sandbox.add_fault("createFeed", "fail", status=503)  # Amazon created nothing
    assert cycle("notify", "run", "--force").exit_code == 1
    (batch,) = batches(db_path)
    assert batch["state"] == "submitting"

    clocks.advance(minutes=5)
    result = cycle("notify", "run", "--force")

    (batch,) = batches(db_path)
    assert batch["state"] == "submitting", result.stderr  # waits: no feed of ours yet
    assert batch["feed_id"] is None and other not in result.stderr
    assert statuses(db_path) == {
        "A00001": ("in_progress", "出荷済み"),
        "A00002": ("in_progress", "出荷済み"),
    }
    clocks.advance(minutes=10)
    result = cycle("notify", "run", "--force")
    assert result.exit_code == 0, result.stderr
    released, sent = batches(db_path)
    assert released["state"] == "released" and released["feed_id"] is None
    assert sent["state"] == "submitted" and sent["feed_id"] != other


def test_an_adopted_feed_whose_report_does_not_account_for_our_rows_is_result_failed(
    cycle, sandbox: SandboxServer, clocks: Clocks, db_path: Path
) -> None:
    # createFeed fails with a 5xx (nothing created); seconds later another system's feed appears
    sandbox.add_fault("createFeed", "fail", status=503)
    assert cycle("notify", "run", "--force").exit_code == 1
    clocks.advance(seconds=30)
    other = foreign_feed(sandbox, order_id(9))
    clocks.advance(minutes=5)
    assert cycle("notify", "run", "--force").exit_code == 0
    (batch,) = batches(db_path)
    assert (batch["state"], batch["feed_id"]) == ("submitted", other)  # the only candidate

    clocks.advance(minutes=15)
    result = cycle("results", "fetch", "--force")

    assert "通知結果取得失敗 2" in result.stderr
    for order_no in ("A00001", "A00002"):
        with Store(db_path) as store:
            order = store.get_order(order_no)
        assert (order["status"], order["phase"]) == ("result_failed", "出荷済み")
        assert "Seller Central" in order["message"]
        assert "1 record processed, 2 were sent" in order["message"]


@pytest.mark.parametrize("ahead", [timedelta(minutes=5), timedelta(hours=1)])
def test_our_clock_ahead_of_amazon_still_finds_our_lost_feed(
    cycle, sandbox: SandboxServer, clocks: Clocks, db_path: Path, ahead: timedelta
) -> None:
    clocks.ahead = ahead
    sandbox.add_fault("createFeed", "lose_answer")  # created, answer lost
    assert cycle("notify", "run", "--force").exit_code == 1
    (ours,) = [f["feedId"] for f in sandbox.feeds()]

    for _ in range(3):  # past the 10 minutes after which a batch with no feed is released
        clocks.advance(minutes=6)
        result = cycle("notify", "run", "--force")
        # the window is never refused (a 400 would say Error: ... getFeeds)
        assert result.exit_code == 0, result.stderr
        assert "getFeeds" not in result.stderr

    assert created_feeds(sandbox) == 1  # never sent twice
    (batch,) = batches(db_path)
    assert (batch["state"], batch["feed_id"]) == ("submitted", ours)
    assert {s for s, _ in statuses(db_path).values()} == {"in_progress"}


def test_the_sandbox_dates_its_answers_on_its_own_clock(sandbox: SandboxServer) -> None:
    import requests

    answer = requests.get(sandbox.url + "/_sandbox/calls", timeout=5)
    assert answer.headers["Date"] == "Fri, 27 Nov 2026 04:45:00 GMT"
