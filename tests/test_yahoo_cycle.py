"""A Yahoo!ショッピング store through the command line against the sandbox: configuration, notify
run, 完了 now or later, results fetch, orders list/show and the history."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossship.sandbox import SandboxServer
from crossship.yahoo import mall as yahoo_mall

SELLER = "sandbox-store"
FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as running:
        running.sandbox.yahoo.set_options({"enforce_rate_limits": False})
        yield running


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(yahoo_mall.CLIENT_OPTIONS, "pace", _NoPace())
    monkeypatch.setenv("CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_ID", "sandbox-yahoo-client")
    monkeypatch.setenv("CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_SECRET", "sandbox-yahoo-secret")
    monkeypatch.setenv("CROSSSHIP_YAHOO_SHOP_YAHOO_REFRESH_TOKEN", "sandbox-yahoo-refresh")


class _NoPace:
    def wait(self) -> None:
        pass


ORDERS = """管理番号,店舗,注文番号,処理フェーズ,管理区分,発送日,配送便,配送番号
Y1,yahoo-shop,sandbox-store-10000001,出荷済み,通常,2026-11-27,ヤマト運輸,123456789012
Y2,yahoo-shop,sandbox-store-10000002,出荷済み,通常,2026-11-27,直送,
Y3,yahoo-shop,sandbox-store-10000003,出荷済み,通常,2026-11-27,ヤマト運輸,
Y4,yahoo-shop,other-10000004,出荷済み,通常,2026-11-27,ヤマト運輸,1
"""


def configure(run, server: SandboxServer, tmp_path: Path, *extra: str) -> None:
    key = server.sandbox.yahoo.write_public_key(tmp_path / "sandbox-key.pem")
    steps = [
        "init",
        "config phase create 出荷済み --ship-date required",
        "config phase create 完了",
        "config carrier add ヤマト運輸 --yahoo-ship-company 1001",
        "config carrier add 直送 --yahoo-ship-company 1000 --yahoo-no-tracking-reason 101",
        f"config store add yahoo-shop --mall yahoo --seller-id {SELLER} "
        f"--endpoint {server.url}/ShoppingWebService/V1/ "
        f"--token-url {server.url}/yconnect/v2/token "
        f"--public-key {key} --public-key-version 1 " + " ".join(extra),
        "config phase add yahoo-shop 出荷済み --move-to 完了",
        "auto start yahoo-shop",
    ]
    for step in steps:
        result = run(step)
        assert result.exit_code == 0, (step, result.stderr)
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS, encoding="utf-8")
    assert run(["orders", "import", str(orders)]).exit_code == 0


def order(run, order_no: str) -> dict:
    result = run(["orders", "show", order_no, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    return shown[0] if isinstance(shown, list) else shown


def test_from_pending_through_shipment_and_completion(run, server, tmp_path) -> None:
    configure(run, server, tmp_path)
    result = run("notify run")
    assert result.exit_code == 0, result.stderr
    y1 = order(run, "Y1")
    assert (y1["status"], y1["completion"]) == ("success", "done")
    assert y1["phase"] == "完了"
    y2 = order(run, "Y2")
    assert y2["status"] == "success"
    assert order(run, "Y3")["status"] == "error"  # blank number, no reason
    assert order(run, "Y4")["status"] == "error"  # another store's order id
    state = server.sandbox.yahoo.orders()
    assert state[f"{SELLER}-10000001"]["order_status"] == "5"
    assert state[f"{SELLER}-10000002"]["ship"]["ShipInvoiceNumberEmptyReason"] == "101"
    history = run(["history", "--order", "Y1", "--format", "jsonl"])
    statuses = [json.loads(line)["status"] for line in history.stdout.splitlines()]
    assert statuses[0] == "success" and "in_progress" in statuses


def test_completion_days_later_through_results_fetch(run, server, tmp_path) -> None:
    shipped = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # 19:00 on the ship date, Japan time
    configure(run, server, tmp_path, "--complete-after", "2")
    assert run("notify run", obj={"clock": lambda: shipped}).exit_code == 0
    y1 = order(run, "Y1")
    assert y1["completion"] == "scheduled"
    assert y1["complete_due"].startswith("2026-11-29T") or y1["complete_due"].startswith(
        "2026-11-28T"
    )  # 00:00 Japan time on the 29th, in this machine's zone
    history = run(["history", "--order", "Y1", "--format", "jsonl"]).stdout.splitlines()
    assert "完了 scheduled for 2026-11-29" in json.loads(history[0])["message"]
    before = datetime(2026, 11, 28, 14, 59, tzinfo=UTC)
    assert run("results fetch --force", obj={"clock": lambda: before}).exit_code == 0
    assert order(run, "Y1")["completion"] == "scheduled"  # not due yet
    assert server.sandbox.yahoo.calls["orderStatusChange"] == 0
    due = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    result = run("results fetch --force", obj={"clock": lambda: due})
    assert result.exit_code == 0, result.stderr
    assert order(run, "Y1")["completion"] == "done"
    assert server.sandbox.yahoo.orders()[f"{SELLER}-10000001"]["order_status"] == "5"
    history = run(["history", "--order", "Y1", "--format", "jsonl"]).stdout.splitlines()
    assert "完了 (order status 5) set" in json.loads(history[0])["message"]


def test_store_without_public_key_is_warned(run, server) -> None:
    assert run("init").exit_code == 0
    result = run(
        f"config store add y2 --mall yahoo --seller-id {SELLER} --endpoint {server.url}/x/"
    )
    assert result.exit_code == 0
    assert "no public key" in result.stderr and "px-04102" in result.stderr


def test_not_pem_is_refused(run, tmp_path) -> None:
    assert run("init").exit_code == 0
    result = run(
        f"config store add y2 --mall yahoo --seller-id s --public-key {FIXTURES / 'not_pem.txt'}"
    )
    assert result.exit_code == 2 and "is not PEM" in result.stderr
    assert "Traceback" not in result.stderr
    assert run("config store list --format json").stdout.strip() in ("[]", "")


def test_the_time_budget_ends_a_long_run_cleanly(run, server, tmp_path, monkeypatch) -> None:
    from crossship import lifecycle

    configure(run, server, tmp_path, "--time-budget", "1")
    more = tmp_path / "more.csv"
    more.write_text(
        "管理番号,店舗,注文番号,処理フェーズ,管理区分,発送日,配送便,配送番号\n"
        + "".join(
            f"M{n},yahoo-shop,{SELLER}-{20000 + n},出荷済み,通常,2026-11-27,ヤマト運輸,{n:012d}\n"
            for n in range(10)
        ),
        encoding="utf-8",
    )
    assert run(["orders", "import", str(more)]).exit_code == 0
    seconds = iter(range(0, 100_000, 25))  # each look at the clock is 25 s later
    monkeypatch.setattr(lifecycle, "monotonic", lambda: next(seconds))
    result = run("-v notify run --force")
    listed = run("orders list --store yahoo-shop --format json")
    statuses = Counter(o["status"] for o in json.loads(listed.stdout))
    assert statuses["in_progress"] == 0
    waiting = statuses["pending"]
    assert waiting > 0 and f"{waiting} orders wait" in result.stderr
    monkeypatch.setattr(lifecycle, "monotonic", lambda: 0.0)
    assert run("notify run --force").exit_code == 0  # the next cycle goes on
    listed = run("orders list --store yahoo-shop --format json")
    assert Counter(o["status"] for o in json.loads(listed.stdout))["pending"] == 0


def test_the_notify_mail_says_yahoo_answered_at_once(run, server, tmp_path) -> None:
    """Yahoo answers each order as it is sent: the notify mail counts 正常 and does not promise a
    later result (an Amazon or Rakuten notify mail does)."""
    configure(run, server, tmp_path)
    mails: list = []
    settings = "config mail set --smtp-host 127.0.0.1 --from cs@example.jp --admin a@example.jp"
    assert run(settings).exit_code == 0

    result = run("notify run", obj={"mail_transport": lambda s, p, mail: mails.append(mail)})

    assert result.exit_code == 0, result.stderr
    (mail,) = mails
    assert "正常: 2 件" in mail.body  # Y1 and Y2
    assert "エラー: 2 件" in mail.body
    assert "その場で応答しました" in mail.body
    assert "結果取得処理(自動)でお知らせします" not in mail.body


# ---- in Japanese: our sentences from the catalog, Yahoo's own codes and words as Yahoo wrote them


def test_a_connection_lost_after_sending_is_explained_in_japanese(run, server, tmp_path) -> None:
    configure(run, server, tmp_path)
    server.sandbox.yahoo.add_fault("orderShipStatusChange", "lose_answer")
    result = run("--lang ja notify run")
    japanese = "Yahoo が受け取ったかどうかは不明です"
    english = "whether Yahoo received it is unknown"
    assert "リクエストの送信後に 127.0.0.1 との接続が切れました" in result.stderr
    assert japanese in result.stderr and english not in result.stderr
    assert "after the request was sent" not in result.stderr
    # kept on the order as key and arguments: each reader sees it in their language
    ja = run("--lang ja orders show Y1").stdout
    en = run("--lang en orders show Y1").stdout
    assert japanese in ja and english not in ja
    assert english in en and japanese not in en
    assert order(run, "Y1")["status"] == "pending"  # Yahoo takes the same shipment again


def test_a_px_error_is_explained_in_japanese(run, server, tmp_path) -> None:
    configure(run, server, tmp_path)
    server.sandbox.yahoo.set_options({"seller_id": "another-store"})
    result = run("--lang ja notify run")
    assert result.exit_code == 1
    said = result.stderr
    # Yahoo's own code and words as Yahoo wrote them, inside our Japanese sentence
    assert (
        "Yahoo が呼び出しを受け付けませんでした (px-04004: The SellerId does not match the "
        "authorization.)。この店舗の残りの注文は次回の実行まで待機します"
    ) in said
    assert "Yahoo refused the call" not in said and "wait for the next run" not in said
    english = run("notify run --force").stderr
    assert "Yahoo refused the call (px-04004: The SellerId does not match" in english
