"""What people read in a table comes in their language, values included (稼働中, 手動, 通常 ...);
csv, tsv, json and jsonl keep the stored values, the same in every language (SPEC §15)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys

import notify_helpers
import pytest
import requests
from notify_helpers import FEED_ID, Env, order

from crossship import i18n
from crossship.errors import NotFound, UsageError
from crossship.output import batch_states
from crossship.sandbox import SandboxOptions, SandboxServer
from crossship.statuses import Status
from crossship.store import BATCH_STATES, StatusChange

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

NOW = "2026-11-27T01:00:00.000000+00:00"


def _shop(run, store, tmp_path) -> None:  # noqa: ANN001
    """A started Amazon store with a finished notify run (ok) and a failed results fetch; an
    order with an automatic and a manual history row, and one on hold (保留)."""
    for args in (
        ["init"],
        ["config", "store", "add", "amazon-main", "--mall", "amazon"],
        ["config", "phase", "create", "出荷済み"],
        ["config", "phase", "create", "新規受付", "--ship-date", "optional"],
        ["config", "phase", "add", "amazon-main", "出荷済み"],
        ["auto", "start", "amazon-main"],
    ):
        result = run(args)
        assert result.exit_code == 0, (args, result.stderr)
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_no,store,phase,ship_date,category\n"
        "A1,amazon-main,出荷済み,2026-11-27,通常\n"
        "H1,amazon-main,出荷済み,2026-11-27,保留\n",
        encoding="utf-8",
    )
    assert run(["orders", "import", str(orders)]).exit_code == 0
    store.change_statuses([StatusChange("A1", Status.ERROR, "18028: Amazon's own words")], now=NOW)
    assert run(["status", "set", "A1", "--to", "pending", "--operator", "ops"]).exit_code == 0
    for job, outcome in (("notify", "ok"), ("results", "failed")):
        store.record_run(
            store="amazon-main",
            job=job,
            started_at=NOW,
            finished_at=NOW,
            outcome=outcome,
            summary={},
        )


def _rows(table: str) -> list[list[str]]:
    """A table's rows (heading first) as lists of cells; the ruler line left out."""
    lines = [line for line in table.splitlines() if line and not set(line) <= {"-", " "}]
    return [line.split() for line in lines]


def test_auto_status_shows_started_and_outcomes_in_the_readers_language(
    run, store, tmp_path
) -> None:  # noqa: ANN001
    _shop(run, store, tmp_path)
    ja = run(["--lang", "ja", "auto", "status"])
    assert ja.exit_code == 0, ja.stderr
    heading, row = _rows(ja.stdout)[:2]
    cells = dict(zip(heading, row[:4] + row[5:], strict=False))  # the time is two words
    assert cells["自動処理"] == "稼働中"
    assert "前回の通知の結果" in heading and "正常終了" in row and "失敗" in row
    assert "started" not in ja.stdout and "ok" not in row and "failed" not in row

    en = run(["--lang", "en", "auto", "status"]).stdout
    assert "started" in en and " ok " in en and "failed" in en

    assert run(["auto", "stop", "amazon-main"]).exit_code == 0
    assert "停止中" in run(["--lang", "ja", "auto", "status"]).stdout
    assert "stopped" in run(["--lang", "en", "auto", "status"]).stdout
    # the store's own record and list say the same
    assert "停止中" in run(["--lang", "ja", "config", "store", "show", "amazon-main"]).stdout
    assert "停止中" in run(["--lang", "ja", "config", "store", "list"]).stdout


def test_machine_output_of_auto_status_keeps_the_stored_values(run, store, tmp_path) -> None:  # noqa: ANN001
    _shop(run, store, tmp_path)
    for fmt in ("csv", "tsv", "json", "jsonl"):
        ja = run(["--lang", "ja", "auto", "status", "--format", fmt])
        en = run(["--lang", "en", "auto", "status", "--format", fmt])
        assert ja.exit_code == en.exit_code == 0, (fmt, ja.stderr)
        assert ja.stdout == en.stdout, fmt
        assert "稼働中" not in ja.stdout and "正常終了" not in ja.stdout, fmt
    [record] = json.loads(run(["--lang", "ja", "auto", "status", "--format", "json"]).stdout)
    assert record["automatic"] == "started"
    assert record["last_notify_outcome"] == "ok"
    assert record["last_results_outcome"] == "failed"
    [row] = csv.DictReader(
        io.StringIO(run(["--lang", "ja", "config", "store", "list", "--format", "csv"]).stdout)
    )  # noqa: E501
    assert row["automatic"] == "started"


def test_history_table_shows_the_source_in_the_readers_language(run, store, tmp_path) -> None:  # noqa: ANN001
    _shop(run, store, tmp_path)
    ja = run(["--lang", "ja", "history"])
    assert ja.exit_code == 0, ja.stderr
    rows = _rows(ja.stdout)
    assert "実行元" in rows[0]
    manual, auto = rows[1], rows[2]  # newest first
    assert "手動" in manual and "ops" in manual and "自動" in auto
    assert "manual" not in ja.stdout.replace("manual:", "") and " auto " not in ja.stdout
    en = run(["--lang", "en", "history"]).stdout
    assert " manual " in en and en.rstrip().endswith(" auto")
    # the order's own history, in `orders show`, too
    shown = run(["--lang", "ja", "orders", "show", "A1"]).stdout
    assert "手動" in shown and "自動" in shown


def test_machine_output_of_history_keeps_the_stored_source(run, store, tmp_path) -> None:  # noqa: ANN001
    _shop(run, store, tmp_path)
    for fmt in ("csv", "tsv"):
        out = run(["--lang", "ja", "history", "--format", fmt]).stdout
        delimiter = "," if fmt == "csv" else "\t"
        rows = list(csv.DictReader(io.StringIO(out), delimiter=delimiter))
        assert [r["source"] for r in rows] == ["manual", "auto"], fmt
    for fmt in ("json", "jsonl"):
        out = run(["--lang", "ja", "history", "--format", fmt]).stdout
        rows = json.loads(out) if fmt == "json" else [json.loads(x) for x in out.splitlines()]
        assert [r["source"] for r in rows] == ["manual", "auto"], fmt
    order = json.loads(run(["--lang", "ja", "orders", "show", "A1", "--format", "json"]).stdout)
    assert [h["source"] for h in order["history"]] == ["manual", "auto"]


def test_order_category_and_phase_setting_in_the_readers_language(run, store, tmp_path) -> None:  # noqa: ANN001
    _shop(run, store, tmp_path)
    table = run(["--lang", "ja", "orders", "list"]).stdout
    assert "通常" in table and "保留" in table
    assert "normal" not in table and "hold" not in table
    shown = _rows(run(["--lang", "ja", "orders", "show", "H1"]).stdout)
    record = {r[0]: r[1:] for r in shown}
    assert record["管理区分"] == ["保留"]
    en = run(["--lang", "en", "orders", "list"]).stdout
    assert "normal" in en and "hold" in en
    listed = list(
        csv.DictReader(
            io.StringIO(run(["--lang", "ja", "orders", "list", "--format", "csv"]).stdout)
        )
    )  # noqa: E501
    assert [r["category"] for r in listed] == ["normal", "hold"]
    # the target phases' ship-date setting has no label beside it: shown in the reader's words
    targets = run(["--lang", "ja", "config", "phase", "list", "--targets"]).stdout
    assert _rows(targets)[1][-1] == "必須"
    assert _rows(run(["--lang", "en", "config", "phase", "list", "--targets"]).stdout)[1][-1] == (
        "required"
    )
    machine = run(["--lang", "ja", "config", "phase", "list", "--targets", "--format", "json"])
    assert json.loads(machine.stdout)[0]["ship_date"] == "required"
    # the phase list shows the key (what `--ship-date` takes) beside CROSS MALL's label
    phases = {r[0]: r[1:3] for r in _rows(run(["--lang", "ja", "config", "phase", "list"]).stdout)}
    assert phases["新規受付"] == ["optional", "任意"]


# ------------------------------------------------------------------------------- the sandbox


def test_sandbox_serve_refuses_a_bad_option_in_the_readers_language(run) -> None:  # noqa: ANN001
    ja = run(["--lang", "ja", "sandbox", "serve", "--port", "0", "--processing-seconds", "-1"])
    en = run(["--lang", "en", "sandbox", "serve", "--port", "0", "--processing-seconds", "-1"])
    assert ja.exit_code == en.exit_code == 2
    assert ja.stderr == "エラー: 処理時間 (秒) に負の値は指定できません\n"
    assert en.stderr == "Error: processing seconds cannot be negative\n"


def test_sandbox_serve_says_where_it_listens_in_the_readers_language(tmp_path) -> None:  # noqa: ANN001
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "crossship", "--lang", "ja", "sandbox", "serve", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=environ | {"CROSSSHIP_DB": str(tmp_path / "serve.db")},
    )
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline()]
        while lines[-1] and not lines[-1].startswith("Ctrl-C"):
            lines.append(process.stderr.readline())
        found = re.fullmatch(
            r"crossship サンドボックス \(LWA \+ Feeds API 2021-06-30\) が (http://\S+) で"
            r"待ち受けています\n",
            lines[0],
        )
        assert found, lines
        url = found.group(1)
        assert requests.get(url + "/_sandbox/calls", timeout=10).json() == {}
        banner = "".join(lines)
        assert f"  エンドポイント:  {url}\n" in banner
        assert f"  トークンURL:     {url}/auth/o2/token\n" in banner
        assert f"  RMS (楽天市場) エンドポイント: {url}/es/2.0/order/\n" in banner
        assert "公開鍵 (バージョン 1。GET /_sandbox/yahoo/public-key でも取得できます):" in banner
        assert lines[-1] == "Ctrl-C で停止します。\n"
        for english in ("listening", "endpoint:", "token URL", "client id", "public key", "Press"):
            assert english not in banner
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_fault_controls_refuse_in_the_readers_language_and_in_english_over_http() -> None:
    with SandboxServer(options=SandboxOptions()) as server:
        i18n.set_language("ja")  # the serving process speaks Japanese
        with pytest.raises(UsageError) as refused:
            server.add_fault("nosuch", "fail")
        assert refused.value.message.startswith("操作 'nosuch' はありません: token, ")
        assert refused.value.message.endswith(" のいずれかを指定してください")
        with pytest.raises(UsageError) as refused:
            server.sandbox.yahoo.add_fault("orderShipStatusChange", "sideways")
        assert refused.value.message.startswith("障害モード 'sideways' はありません: ")
        with pytest.raises(UsageError) as refused:
            server.sandbox.rakuten.set_options({"bogus": 1})
        assert refused.value.message == "RMS サンドボックスに次のオプションはありません: bogus"
        with pytest.raises(NotFound) as missing:
            server.end_feed("123", "FATAL")
        assert missing.value.message == "サンドボックスにフィード 123 はありません"

        # over HTTP the control API answers its client (a test, a script) in English
        answer = requests.post(
            server.url + "/_sandbox/faults",
            json={"operation": "nosuch", "mode": "fail"},
            timeout=10,
        )
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["details"].startswith(
            "unknown operation 'nosuch': use one of token, "
        )
        answer = requests.post(
            server.url + "/_sandbox/feeds/123/end", json={"status": "FATAL"}, timeout=10
        )
        assert answer.status_code == 404
        assert answer.json()["errors"][0]["message"] == "no feed 123 in the sandbox"
        answer = requests.post(
            server.url + "/_sandbox/yahoo/faults",
            json={"operation": "orderShipStatusChange", "mode": "sideways"},
            timeout=10,
        )
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("unknown fault mode 'sideways': use one of ")
        answer = requests.post(
            server.url + "/_sandbox/rakuten/options", json={"bogus": 1}, timeout=10
        )
        assert answer.status_code == 400
        assert answer.json() == {"error": "unknown RMS sandbox options: bogus"}


# ------------------------------------------------------------------------------- batches


def test_every_batch_state_has_words_for_the_tables() -> None:
    assert list(batch_states()) == list(BATCH_STATES)


def test_batches_show_their_state_in_the_readers_language(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()
    (batch,) = env.batches("submitted")

    ja = env.cli("--lang", "ja", "batches", "list")
    assert ja.exit_code == 0, ja.stderr
    heading, row = _rows(ja.stdout)
    assert heading[:4] == ["バッチ", "店舗", "feedId", "状態"]
    assert row[3] == "結果待ち" and "submitted" not in ja.stdout
    assert _rows(env.cli("--lang", "en", "batches", "list").stdout)[1][3] == "submitted"
    shown = dict(
        r[:2]
        for r in _rows(env.cli("--lang", "ja", "batches", "show", str(batch["id"])).stdout)
        if len(r) > 1
    )  # noqa: E501
    assert shown["状態"] == "結果待ち"

    # machine output keeps the key; --state takes the key or the word a table shows
    listed = json.loads(env.cli("--lang", "ja", "batches", "list", "--format", "json").stdout)
    assert [b["state"] for b in listed] == ["submitted"]
    for state in ("submitted", "結果待ち"):
        assert FEED_ID in env.cli("--lang", "ja", "batches", "list", "--state", state).stdout
    assert env.cli("batches", "list", "--state", "完了").stdout == ""

    bad = env.cli("--lang", "ja", "batches", "list", "--state", "waiting")
    assert bad.exit_code == 2
    assert bad.stderr.startswith(
        "エラー: バッチの状態 'waiting' はありません: prepared (準備済み), document_created "
    )
    bad = env.cli("--lang", "en", "batches", "list", "--state", "waiting")
    assert bad.stderr.startswith("Error: unknown batch state 'waiting': use one of prepared, ")


def test_where_a_secret_comes_from_is_said_in_the_readers_language(run, monkeypatch) -> None:  # noqa: ANN001
    assert run(["init"]).exit_code == 0
    assert run(["config", "store", "add", "amazon-main", "--mall", "amazon"]).exit_code == 0
    variable = "CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN"
    monkeypatch.setenv(variable, "Atzr|secret-value")
    monkeypatch.setenv("CROSSSHIP_SMTP_PASSWORD", "smtp-secret")

    shown = run(["--lang", "ja", "config", "store", "show", "amazon-main"]).stdout
    assert f"設定済み (環境変数 {variable})" in shown and "secret-value" not in shown
    mail = run(["--lang", "ja", "config", "mail", "show"]).stdout
    assert "設定済み (環境変数 CROSSSHIP_SMTP_PASSWORD)" in mail and "smtp-secret" not in mail
    # tools get the same words in every language
    record = json.loads(
        run(["--lang", "ja", "config", "store", "show", "amazon-main", "--format", "json"]).stdout
    )
    assert record["refresh_token"] == f"set (env {variable})"
    assert (
        run(["--lang", "en", "config", "store", "show", "amazon-main"]).stdout.count(
            f"set (env {variable})"
        )
        == 1
    )


def test_a_stores_record_is_headed_in_the_readers_language(run) -> None:  # noqa: ANN001
    assert run(["init"]).exit_code == 0
    for args in (
        ["config", "store", "add", "amazon-main", "--mall", "amazon"],
        ["config", "store", "add", "rakuten-shop", "--mall", "rakuten"],
        ["config", "store", "add", "yahoo-shop", "--mall", "yahoo", "--seller-id", "shop"],
    ):
        assert run(args).exit_code == 0, run(args).stderr
    for name in ("amazon-main", "rakuten-shop", "yahoo-shop"):
        ja = run(["--lang", "ja", "config", "store", "show", name]).stdout
        headings = [line.split()[0] for line in ja.splitlines()]
        assert not [h for h in headings if re.fullmatch(r"[a-z]+(_[a-z]+)+", h)], ja
        en = run(["--lang", "en", "config", "store", "show", name]).stdout
        assert en.startswith("name ") and "interval_minutes" in en
        record = json.loads(
            run(["--lang", "ja", "config", "store", "show", name, "--format", "json"]).stdout
        )
        assert {"name", "automatic", "interval_minutes", "target_phases"} <= set(record)
    mail = run(["--lang", "ja", "config", "mail", "show"]).stdout
    assert [line.split()[0] for line in mail.splitlines()][:2] == ["SMTPサーバー", "SMTPポート"]


def test_the_carrier_list_is_headed_in_the_readers_language(run) -> None:  # noqa: ANN001
    assert run(["init"]).exit_code == 0
    add = ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport"]
    assert run(add).exit_code == 0
    heading = run(["--lang", "ja", "config", "carrier", "list"]).stdout.splitlines()[0]
    assert (
        heading.startswith("名前")
        and "Amazon配送方法" in heading
        and "楽天 配送会社コード" in heading
    )
    assert "amazon_" not in heading and "yahoo_" not in heading
    machine = run(["--lang", "ja", "config", "carrier", "list", "--format", "csv"]).stdout
    assert machine.splitlines()[0].startswith("name,amazon_carrier_code,")


def test_a_changed_setting_is_named_as_its_record_heads_it(run) -> None:  # noqa: ANN001
    assert run(["init"]).exit_code == 0
    assert run(["config", "store", "add", "amazon-main", "--mall", "amazon"]).exit_code == 0
    ja = run(["--lang", "ja", "config", "store", "set", "amazon-main", "--interval", "30"])
    assert ja.stderr.startswith("店舗 amazon-main を変更しました: 実行間隔 (分)=30")
    en = run(["--lang", "en", "config", "store", "set", "amazon-main", "--interval", "15"])
    assert en.stderr.startswith("Store amazon-main changed: interval_minutes=15")
    ja = run(["--lang", "ja", "config", "mail", "set", "--smtp-host", "localhost"])
    assert ja.stderr.splitlines()[0] == "メール設定を変更しました: SMTPサーバー"
    en = run(["--lang", "en", "config", "mail", "set", "--smtp-port", "2525"])
    assert en.stderr.splitlines()[0] == "Mail settings changed: smtp_port"
