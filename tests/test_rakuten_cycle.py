"""A Rakuten store through the command line: notify run → results fetch against the RMS sandbox.

The CLI runs in this process (CliRunner) with a hand-moved clock; RMS is the sandbox on a real
socket; pacing and backoff are switched off through the session's CLIENT_OPTIONS.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crossship.cli import cli
from crossship.mail import Mail
from crossship.rakuten import mall as rakuten_mall
from crossship.sandbox import SandboxServer
from crossship.store import Store

STORE = "rakuten-shop"
SECRET, LICENSE = "SP338271_d1st1nct1ve-secret", "SL338271_d1st1nct1ve-licence"
N = {i: f"338271-20261124-00123456{i:02d}" for i in range(1, 10)}
COLUMNS = ("管理番号", "店舗", "注文番号", "処理フェーズ", "管理区分", "FBA", "同梱親", "分割元",
           "発送日", "配送便", "配送番号", "注文商品番号", "SKU", "数量", "送付先ID")  # fmt: skip


class FakeTime:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)

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


class Shop:
    def __init__(self, tmp_path: Path, server: SandboxServer, fake: FakeTime) -> None:
        self.db = tmp_path / "crossship.db"
        self.tmp = tmp_path
        self.server = server
        self.rms = server.sandbox.rakuten
        self.fake = fake
        self.mails: list[Mail] = []

    def cli(self, *args: str) -> Result:
        def transport(settings, password, mail) -> None:
            self.mails.append(mail)

        obj = {"clock": self.fake.now, "mail_transport": transport}
        return CliRunner().invoke(
            cli, ["--db", str(self.db), *args], obj=obj, catch_exceptions=False
        )

    def ok(self, *args: str) -> Result:
        result = self.cli(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result

    def orders(self, *rows: dict[str, str]) -> None:
        path = self.tmp / "orders.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            out = csv.DictWriter(f, COLUMNS)
            out.writeheader()
            for row in rows:
                out.writerow({c: "" for c in COLUMNS} | row)
        self.ok("orders", "import", str(path))

    def order(self, order_no: str) -> dict:
        with Store(self.db) as store:
            return store.get_order(order_no)

    def status(self, order_no: str) -> str:
        return self.order(order_no)["status"]

    def rows_at_rms(self, number: str) -> list[dict]:
        packages = self.rms.orders()[number]["PackageModelList"]
        return [r for p in packages for r in p["ShippingModelList"]]


def row(order_no: str, number: str, tracking: str = "", **values: str) -> dict[str, str]:
    base = {"管理番号": order_no, "店舗": STORE, "注文番号": number, "処理フェーズ": "出荷済み",
            "管理区分": "通常", "FBA": "0", "発送日": "2026-11-30", "配送便": "ヤマト運輸",
            "配送番号": tracking}  # fmt: skip
    return base | values


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def shop(tmp_path, fake, monkeypatch) -> Shop:
    monkeypatch.setattr(rakuten_mall, "CLIENT_OPTIONS", {"pace": NoPace(), "sleep": lambda s: None})
    monkeypatch.setenv("CROSSSHIP_RAKUTEN_SHOP_RMS_SERVICE_SECRET", SECRET)
    monkeypatch.setenv("CROSSSHIP_RAKUTEN_SHOP_RMS_LICENSE_KEY", LICENSE)
    with SandboxServer(clock=fake.clock, now=fake.now) as server:
        server.sandbox.rakuten.set_options(
            {"service_secret": SECRET, "license_key": LICENSE, "enforce_rate_limit": False}
        )
        s = Shop(tmp_path, server, fake)
        s.ok("init")
        s.ok("config", "phase", "create", "出荷済み", "--ship-date", "required")
        s.ok("config", "phase", "create", "完了", "--ship-date", "optional")
        s.ok("config", "carrier", "add", "ヤマト運輸", "--rakuten-delivery-company", "1001")
        s.ok("config", "carrier", "add", "佐川急便", "--amazon-carrier-code", "Sagawa Express")
        endpoint = server.url + "/es/2.0/order/"
        s.ok("config", "store", "add", STORE, "--mall", "rakuten", "--endpoint", endpoint,
             "--license-expires", "2027-02-27")  # fmt: skip
        s.ok("config", "phase", "add", STORE, "出荷済み", "--move-to", "完了")
        s.ok("config", "mail", "set", "--smtp-host", "127.0.0.1", "--from", "cs@example.jp",
             "--admin", "admin@example.jp", "--notify", "ship@example.jp")  # fmt: skip
        s.ok("auto", "start", STORE)
        yield s


def test_notify_then_results_every_order_as_rms_says(shop):
    shop.rms.set_options({"processing_seconds": 30 * 60, "cancelled_orders": {N[3]}})
    shop.rms.add_order(N[2], basket_ids=[7002])
    shop.orders(
        row("R1", N[1], "401"),
        row("R2", N[2], "402", 送付先ID="7002"),
        row("R3", N[3], "403"),
        row("R4", N[4], ""),  # blank tracking number: an error for Rakuten, before sending
        row("R5", N[5], "405", 配送便="佐川急便"),  # a carrier without a Rakuten code
        row("R6", N[6], "406"),
        row("R6-2", N[6], "407", 分割元="R6"),  # a split: a second row in the same basket
    )
    notified = shop.ok("notify", "run")
    assert {shop.status(o) for o in ("R1", "R2", "R3", "R6", "R6-2")} == {"in_progress"}
    assert shop.status("R4") == "error" and "配送番号" in shop.order("R4")["message"]
    assert "--rakuten-delivery-company CODE" in shop.order("R5")["message"]
    # R2 came with its basket: only the others were looked up, in one call
    assert shop.rms.calls == {"getOrder": 1, "updateOrderShippingAsync": 1}
    assert notified.stdout or notified.stderr
    (mail,) = shop.mails
    assert mail.subject == "(CROSSMALL)楽天市場発送情報登録処理(自動)のお知らせ"
    assert "結果取得処理(自動)でお知らせします" in mail.body  # RMS answers later
    assert "正常:" not in mail.body

    shop.fake.advance(20 * 60)  # still processing at RMS: "no result yet"
    shop.ok("results", "fetch", "--force")
    assert shop.status("R1") == "in_progress"

    shop.fake.advance(10 * 60)
    shop.mails.clear()
    shop.ok("results", "fetch", "--force")
    for order_no in ("R1", "R2", "R6", "R6-2"):
        assert shop.status(order_no) == "success", order_no
        assert shop.order(order_no)["phase"] == "完了"
    assert shop.status("R3") == "error"
    assert "ERROR_102" in shop.order("R3")["message"]
    assert shop.order("R3")["phase"] == "出荷済み"
    assert [r["shippingNumber"] for r in shop.rows_at_rms(N[6])] == ["406", "407"]
    (mail,) = shop.mails
    assert mail.subject == "(CROSSMALL)楽天市場発送情報登録結果取得処理(自動)のお知らせ"
    assert "ERROR_102" in mail.body


def test_a_re_notification_updates_the_same_row(shop):
    shop.orders(row("R1", N[1], "401"))
    shop.ok("notify", "run")
    shop.ok("results", "fetch", "--force")
    assert shop.status("R1") == "success"
    (first,) = shop.rows_at_rms(N[1])
    shop.ok("orders", "update", "R1", "--tracking-number", "999")
    shop.ok("status", "set", "R1", "--to", "pending", "--move-to", "出荷済み")
    shop.ok("notify", "run", "--force")
    shop.ok("results", "fetch", "--force")
    assert shop.status("R1") == "success"
    (again,) = shop.rows_at_rms(N[1])
    assert again["shippingDetailId"] == first["shippingDetailId"]
    assert again["shippingNumber"] == "999"


def test_a_refused_key_puts_the_orders_back_and_says_so(shop):
    shop.rms.set_options({"license_key": "a-newer-key"})
    shop.orders(row("R1", N[1], "401"))
    result = shop.cli("notify", "run")
    assert result.exit_code == 1
    assert "licenseKey" in result.stderr and "90 days" in result.stderr
    assert shop.status("R1") == "pending"
    assert LICENSE not in result.stderr + result.stdout


def test_a_function_not_enabled_is_notify_failed(shop):
    shop.rms.set_options({"enabled_functions": {"rpay.order.getOrder"}})
    shop.orders(row("R1", N[1], "401"))
    shop.cli("notify", "run")
    assert shop.status("R1") == "notify_failed"
    assert "rpay.order.updateOrderShippingAsync" in shop.order("R1")["message"]


def test_an_expired_key_makes_no_call(shop):
    shop.ok("config", "store", "set", STORE, "--license-expires", "2026-11-30")
    shop.orders(row("R1", N[1], "401"))
    result = shop.cli("notify", "run")
    assert result.exit_code == 1
    assert "expired on 2026-11-30" in result.stderr
    assert shop.status("R1") == "pending"
    assert shop.rms.calls == {}


def test_auto_status_warns_14_days_before(shop):
    shop.ok("config", "store", "set", STORE, "--license-expires", "2026-12-11")
    result = shop.ok("auto", "status")
    assert "expires in 10 days (2026-12-11)" in result.stderr + result.stdout
    # named once, before the text, as for every mall's warning
    (line,) = [x for x in result.stderr.splitlines() if "licenseKey" in x]
    assert line.startswith(f"Warning: store {STORE}: the RMS licenseKey expires in 10 days")
    assert line.count(STORE) == 2  # the prefix and the command to run
    checked = shop.cli("check")
    (line,) = [x for x in checked.stdout.splitlines() if "licenseKey" in x]
    assert line.startswith(f"WARNING: {STORE}: the RMS licenseKey expires")
    assert line.count(STORE) == 2


def test_a_lost_answer_is_reconciled_through_get_order(shop):
    shop.orders(row("R1", N[1], "401"))
    shop.rms.add_fault("updateOrderShippingAsync", "lose_answer")
    assert shop.cli("notify", "run").exit_code == 1
    assert shop.status("R1") == "in_progress"
    shop.fake.advance(5 * 60)
    shop.cli("notify", "run", "--force")
    assert shop.status("R1") == "in_progress"
    shop.fake.advance(5 * 60)
    shop.cli("notify", "run", "--force")
    assert shop.status("R1") == "success"
    assert shop.rms.calls["updateOrderShippingAsync"] == 1
    assert len(shop.rows_at_rms(N[1])) == 1


def test_secrets_never_leave_the_environment(shop):
    shop.rms.set_options({"processing_seconds": 0})
    shop.orders(row("R1", N[1], "401"), row("R2", N[2], ""))
    outputs = []
    for args in (("-vv", "notify", "run"), ("-vv", "results", "fetch", "--force"),
                 ("history", "--format", "jsonl"), ("batches", "list", "--format", "json"),
                 ("config", "store", "show", STORE), ("auto", "status")):  # fmt: skip
        result = shop.cli(*args)
        outputs += [result.stdout, result.stderr]
    shop.rms.set_options({"license_key": "rotated"})
    outputs.append(shop.cli("notify", "run", "--force").stderr)
    import base64

    esa = base64.b64encode(f"{SECRET}:{LICENSE}".encode()).decode()
    texts = [*outputs, *(m.body + m.subject for m in shop.mails)]
    data = b"".join(p.read_bytes() for p in shop.tmp.glob("crossship.db*"))
    for secret in (SECRET, LICENSE, esa):
        assert not any(secret in t for t in texts), secret
        assert secret.encode() not in data
    assert json.dumps(texts)  # the outputs are text, read above


def test_check_warns_then_is_critical_about_the_license_key(shop):
    shop.ok("config", "store", "set", STORE, "--license-expires", "2026-12-11")
    near = shop.cli("check", "--store", STORE)
    assert near.exit_code == 1
    assert f"WARNING: {STORE}: the RMS licenseKey" in near.stdout + near.stderr
    shop.ok("config", "store", "set", STORE, "--license-expires", "2026-11-30")
    ended = shop.cli("check", "--store", STORE)
    assert ended.exit_code == 2
    assert "expired on 2026-11-30" in ended.stdout + ended.stderr


def test_missing_basket_ids_are_looked_up_100_a_call_over_the_whole_run(shop, monkeypatch):
    from crossship import prepare

    monkeypatch.setattr(prepare, "CHUNK", 100)  # the selection is read 100 orders at a time
    numbers = {i: f"338271-20261124-{i:010d}" for i in range(300)}
    # 60 of every 100 orders come without their 送付先ID: 180 in all, 60 a chunk
    shop.orders(
        *(
            row(f"M{i:03d}", numbers[i], f"4{i:05d}", **({} if i % 5 < 3 else {"送付先ID": "1"}))
            for i in range(300)
        )
    )
    shop.ok("notify", "run")
    # ⌈180/100⌉ lookups (not one per chunk: 3), ⌈300/100⌉ updates
    assert shop.rms.calls == {"getOrder": 2, "updateOrderShippingAsync": 3}
    assert {shop.status(f"M{i:03d}") for i in range(300)} == {"in_progress"}


# ---- in Japanese: our sentences from the catalog, RMS's own codes and words as RMS wrote them


def test_a_refused_key_is_explained_in_japanese(shop):
    shop.rms.set_options({"license_key": "a-newer-key"})
    shop.orders(row("R1", N[1], "401"))
    result = shop.cli("--lang", "ja", "notify", "run")
    assert result.exit_code == 1
    said = result.stderr
    assert "RMSがサービスシークレットとライセンスキーを受け付けませんでした" in said
    assert "ライセンスキー (licenseKey) の有効期間は90日です" in said
    assert "RMS > 店舗様向け情報・サービス > WEB APIサービス" in said
    assert "CROSSSHIP_RAKUTEN_SHOP_RMS_LICENSE_KEY" in said
    assert "(RMSの応答 401 ES01-01: Un-Authorised)" in said  # RMS's own code and words
    assert "refused the service secret" not in said and "90 days" not in said
    assert LICENSE not in said + result.stdout
    (mail,) = shop.mails  # the mail is Japanese by default, whatever the command line speaks
    assert "RMSがサービスシークレットとライセンスキーを受け付けませんでした" in mail.body
    assert "refused the service secret" not in mail.body and LICENSE not in mail.body


def test_an_answer_that_is_not_json_is_explained_in_japanese(shop):
    shop.orders(row("R1", N[1], "401"))
    shop.rms.add_fault("updateOrderShippingAsync", "bad_json")
    result = shop.cli("--lang", "ja", "notify", "run")
    assert shop.status("R1") == "in_progress"  # RMS may hold it: checked with getOrder later
    said = result.stderr
    assert "RMSの応答を読み取れません: JSON ではありません (200、application/json: " in said
    assert "再送信の前に getOrder で確認します" in said
    assert "cannot be read" not in said and "not JSON" not in said
    (mail,) = shop.mails
    assert "RMSの応答を読み取れません" in mail.body and "cannot be read" not in mail.body
    english = shop.cli("--lang", "en", "batches", "list")  # the database keeps English
    assert "RMS's answer cannot be read: it is not JSON (200 with application/json: " in (
        english.stdout
    )


def test_a_result_past_the_deadline_is_explained_in_japanese(shop):
    shop.rms.set_options({"processing_seconds": 10 * 24 * 3600})
    shop.orders(row("R1", N[1], "401"))
    shop.ok("notify", "run")
    shop.fake.advance(25 * 3600)
    shop.mails.clear()
    shop.cli("results", "fetch", "--force")
    assert shop.status("R1") == "result_failed"
    ja = shop.cli("--lang", "ja", "orders", "show", "R1").stdout
    en = shop.cli("--lang", "en", "orders", "show", "R1").stdout
    japanese = (
        f"注文 {N[1]} の処理結果が期限内にRMSから得られず、getOrder でもその配送会社と"
        "お荷物伝票番号の発送情報が見つかりません: "
        "RMS (受注管理 > 受注一覧) で注文を確認してください"
    )
    english = f"RMS gave no result for order {N[1]} in time and getOrder shows no row"
    assert japanese in ja and english not in ja
    assert english in en and japanese not in en
    (mail,) = shop.mails
    assert japanese in mail.body and english not in mail.body
    assert "期限を過ぎてもRMSの処理結果がないため" in mail.body
