"""Two languages: the command line follows --lang, CROSSSHIP_LANG, then the locale; mails follow
the mail setting (Japanese by default); click's own texts are translated too."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from crossship import i18n
from crossship.i18n import Message, render_stored, resolve


@pytest.mark.parametrize(
    ("flag", "environ", "expected"),
    [
        ("ja", {"CROSSSHIP_LANG": "en", "LANG": "en_US.UTF-8"}, "ja"),
        (None, {"CROSSSHIP_LANG": "ja", "LANG": "C"}, "ja"),
        (None, {"CROSSSHIP_LANG": "en", "LANG": "ja_JP.UTF-8"}, "en"),
        (None, {"LC_ALL": "ja_JP.UTF-8", "LANG": "C"}, "ja"),
        (None, {"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),  # LC_ALL wins, as in libc
        (None, {"LC_MESSAGES": "ja_JP.eucJP", "LANG": "C"}, "ja"),
        (None, {"LANG": "ja_JP.UTF-8"}, "ja"),
        (None, {"LANG": "C.UTF-8"}, "en"),
        (None, {}, "en"),
    ],
)
def test_language_resolution_order(flag: str | None, environ: dict, expected: str) -> None:
    assert resolve(flag, environ) == expected


def test_kept_message_shows_in_the_readers_language() -> None:
    kept = Message("Warning: {message}", {"message": "x"})
    assert kept.render("en") == "Warning: x"
    assert kept.render("ja") == "警告: x"
    again = Message.from_json(Message("Warnings (sent)").to_json())
    assert again.render("ja") == "警告 (送信済み)"
    assert again.render("en") == "Warnings (sent)"
    # a mall's own words (no key) stay as written, in every language
    assert render_stored("18028: Your order cannot be found", None, "ja").startswith("18028")
    # a key this version does not know falls back to the text written at the time
    assert render_stored("as written", '{"key": "no such message"}', "ja") == "no such message"
    assert render_stored("as written", "not json", "ja") == "as written"


def _crossship(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CROSSSHIP_", "LC_"))}
    environ.pop("LANGUAGE", None)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "crossship", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_help_and_usage_errors_follow_the_locale() -> None:
    ja = _crossship("--help", LANG="ja_JP.UTF-8")
    assert ja.returncode == 0
    assert ja.stdout.startswith("使い方: crossship")
    assert "オプション:" in ja.stdout and "コマンド:" in ja.stdout
    assert "このヘルプを表示して終了します。" in ja.stdout

    en = _crossship("--help", LANG="C")
    assert en.stdout.startswith("Usage: crossship") and "Show this message and exit." in en.stdout

    wrong = _crossship("--lang", "ja", "notify", "run", "--bogus", LANG="C")
    assert wrong.returncode == 2
    assert "エラー: '--bogus' というオプションはありません。" in wrong.stderr

    wrong = _crossship("nosuch", CROSSSHIP_LANG="en", LANG="ja_JP.UTF-8")
    assert "Error: No such command 'nosuch'." in wrong.stderr


def test_our_error_lines_follow_the_language(run, tmp_path) -> None:  # noqa: ANN001
    missing = tmp_path / "nowhere" / "orders.csv"
    en = run(["--lang", "en", "orders", "import", str(missing)])
    ja = run(["--lang", "ja", "orders", "import", str(missing)])
    assert en.exit_code == ja.exit_code == 2
    assert en.stderr.startswith("Error: ") or en.stderr.startswith("Usage: ")
    assert ja.stderr.startswith("エラー: ") or ja.stderr.startswith("使い方: ")
    assert i18n.current() == "ja"


def test_kept_messages_show_in_the_readers_language_in_every_format(run, store, tmp_path) -> None:  # noqa: ANN001,E501
    from crossship.statuses import Status
    from crossship.store import StatusChange

    assert run(["init"]).exit_code == 0
    for args in (
        ["config", "store", "add", "amazon-main", "--mall", "amazon"],
        ["config", "phase", "create", "出荷済み"],
    ):
        assert run(args).exit_code == 0, run(args).stderr
    csv = tmp_path / "orders.csv"
    csv.write_text("order_no,store,phase,ship_date\nA1,amazon-main,出荷済み,2026-11-27\n")
    assert run(["orders", "import", str(csv)]).exit_code == 0
    ours = Message("Warning: {message}", {"message": "<x>"})
    store.change_statuses(
        [StatusChange("A1", Status.ERROR, [ours, "18028: Amazon's own words"])],
        now="2026-11-27T01:00:00.000000+00:00",
    )
    english = "Warning: <x>; 18028: Amazon's own words"
    japanese = "警告: <x>; 18028: Amazon's own words"
    for fmt in ("csv", "tsv", "json", "jsonl", "table"):
        en = run(["--lang", "en", "history", "--format", fmt])
        ja = run(["--lang", "ja", "history", "--format", fmt])
        assert en.exit_code == ja.exit_code == 0, (fmt, en.stderr, ja.stderr)
        assert english in en.stdout and japanese in ja.stdout, fmt
        if fmt != "table":  # machine output: the same field names, keys and labels
            assert en.stdout.replace(english, japanese) == ja.stdout, fmt
    for args in (
        ["orders", "show", "A1", "--format", "json"],
        ["orders", "list", "--format", "csv"],
    ):
        assert japanese in run(["--lang", "ja", *args]).stdout
        assert english in run(["--lang", "en", *args]).stdout


def _configured(run, tmp_path) -> None:  # noqa: ANN001
    """One Amazon store, one phase that requires a ship date, two orders (one FBA)."""
    for args in (
        ["init"],
        ["config", "store", "add", "amazon-main", "--mall", "amazon"],
        ["config", "phase", "create", "出荷済み"],
    ):
        assert run(args).exit_code == 0, run(args).stderr
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "order_no,store,phase,ship_date,fba\n"
        "A1,amazon-main,出荷済み,2026-11-27,0\n"
        "F1,amazon-main,出荷済み,2026-11-27,1\n",
        encoding="utf-8",
    )
    assert run(["orders", "import", str(csv)]).exit_code == 0


def test_an_unknown_store_is_refused_in_the_readers_language(run, tmp_path) -> None:  # noqa: ANN001
    _configured(run, tmp_path)
    en = run(["--lang", "en", "auto", "start", "nosuch"])
    ja = run(["--lang", "ja", "auto", "start", "nosuch"])
    assert en.exit_code == ja.exit_code == 2
    assert en.stderr == (
        "Error: no store named 'nosuch' (stores: amazon-main): add it with `config store add`\n"
    )
    assert ja.stderr == (
        "エラー: 店舗 'nosuch' はありません (店舗: amazon-main): "
        "`config store add` で追加してください\n"
    )
    # the values inside (names, commands) are the same in both
    bad = run(["--lang", "ja", "config", "store", "set", "amazon-main", "--interval", "x"])
    assert bad.exit_code == 2
    assert bad.stderr == "エラー: --interval は整数にしてください ('x' は使えません)\n"


def test_a_bad_import_row_is_named_by_its_line_in_the_readers_language(run, tmp_path) -> None:  # noqa: ANN001,E501
    _configured(run, tmp_path)
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "管理番号,店舗,処理フェーズ,発送日\n"
        "B1,amazon-main,出荷済み,2026-11-27\n"
        "B2,nosuch,出荷済み,2026-11-31\n",
        encoding="utf-8",
    )
    en = run(["--lang", "en", "orders", "import", str(csv)])
    ja = run(["--lang", "ja", "orders", "import", str(csv)])
    assert en.exit_code == ja.exit_code == 1
    assert en.stderr.splitlines() == [
        "Error: 2 problem(s) in the file: nothing imported; fix these and import the whole "
        "file again",
        "  line 3, column 店舗: unknown store 'nosuch': add it with "
        "`crossship config store add` or fix the name",
        "  line 3, column 発送日: '2026-11-31' is not a date: write it as YYYY-MM-DD (2026-11-27)",
    ]
    assert ja.stderr.splitlines() == [
        "エラー: ファイルに 2 件の問題があります: 何も取り込んでいません。"
        "これらを直して、ファイル全体を取り込み直してください",
        "  3 行目、店舗 列: 不明な店舗 'nosuch': `crossship config store add` で追加するか、"
        "名前を直してください",
        "  3 行目、発送日 列: '2026-11-31' は日付ではありません: "
        "YYYY-MM-DD (2026-11-27) の形で書いてください",
    ]
    listed = run(["orders", "list", "--format", "csv"]).stdout
    assert "B1" not in listed and "B2" not in listed  # nothing imported, in either language


def test_a_refused_status_set_speaks_the_readers_language(run, tmp_path) -> None:  # noqa: ANN001
    _configured(run, tmp_path)
    args = ["status", "set", "A1", "F1", "--to", "success", "--operator", "ops"]
    en = run(["--lang", "en", *args])
    assert en.exit_code == 1
    assert en.stderr.splitlines() == [
        "A1: 未連携 → 正常",
        "Refused F1: an FBA order (fulfilled by Amazon): crossship never notifies it",
        "Set 1 order(s) to 正常 (success); refused 1.",
    ]
    ja = run(["--lang", "ja", "status", "set", "A1", "F1", "--to", "pending", "--operator", "ops"])
    assert ja.exit_code == 1
    assert ja.stderr.splitlines() == [
        "A1: 正常 → 未連携",
        "警告: A1: 処理フェーズ '出荷済み' は 'amazon-main' の対象処理フェーズではありません: "
        "対象処理フェーズに移動するまで送信されません (--move-to PHASE)",
        "F1 は変更できません: FBA 注文 (Amazon による出荷) です: crossship は通知しません",
        "1 件の注文を 未連携 (pending) にしました。1 件は変更できませんでした。",
    ]
    # the history keeps the manual change's key: each reader sees it in their language
    en_history = run(["--lang", "en", "history", "--order", "A1", "--format", "jsonl"]).stdout
    ja_history = run(["--lang", "ja", "history", "--order", "A1", "--format", "jsonl"]).stdout
    assert "manual: 正常 → 未連携" in en_history and "manual: 未連携 → 正常" in en_history
    assert "手動: 正常 → 未連携" in ja_history and "手動: 未連携 → 正常" in ja_history
    assert "manual:" not in ja_history


def test_table_headings_follow_the_language_and_machine_output_keeps_its_fields(
    run, tmp_path
) -> None:  # noqa: ANN001,E501
    _configured(run, tmp_path)
    en = run(["--lang", "en", "orders", "list"]).stdout.splitlines()[0].split()
    ja = run(["--lang", "ja", "orders", "list"]).stdout.splitlines()[0].split()
    assert en[:4] == ["order_no", "store", "mall_order_id", "phase"]
    assert ja[:4] == ["管理番号", "店舗", "注文番号", "処理フェーズ"]
    assert "出荷通知APIステータス" in ja and "status" in en
    # a phase's ship_date is its setting (発送日設定), an order's is a date (発送日)
    phases = run(["--lang", "ja", "config", "phase", "list"]).stdout.splitlines()[0].split()
    assert phases[:2] == ["名前", "発送日設定"]
    for fmt in ("csv", "tsv"):
        en_csv = run(["--lang", "en", "orders", "list", "--format", fmt]).stdout
        assert run(["--lang", "ja", "orders", "list", "--format", fmt]).stdout == en_csv
    shown = run(["--lang", "ja", "orders", "show", "A1"]).stdout
    assert "管理番号" in shown and "商品行:" in shown and "履歴 (新しい順):" in shown


# ----------------------------------------------------------------------------- the demo

# Amazon's own words in the demo (its processing report): never translated
AMAZON_CODES = ("18028:", "99101:", "99102:")


def _demo(lang: str, tmp_path) -> str:  # noqa: ANN001
    done = subprocess.run(
        [sys.executable, "-m", "crossship", "demo"],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("CROSSSHIP_", "LC_"))},
            "LANG": lang,
            "LANGUAGE": "",
        },
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    # kept beside the test's files, to see what is still left in one language or the other
    (tmp_path / f"demo-{lang}.txt").write_text(out, encoding="utf-8")
    return out


def _english_of_ours(out: str) -> list[str]:
    """Lines with English words that are not a command, an option or Amazon's own message."""
    found = []
    for line in out.splitlines():
        if line.startswith("$ crossship") or any(code in line for code in AMAZON_CODES):
            continue
        words = re.sub(r"`[^`]*`", "", line)  # commands to type stay as they are
        words = re.sub(r"\(?crossship [^)]*\)?", "", words)
        if re.search(r"\b[A-Za-z]+ [a-z]+ [a-z]+\b", words):
            found.append(line)
    return found


def test_the_demo_speaks_japanese_but_for_amazons_own_words(tmp_path) -> None:  # noqa: ANN001
    out = _demo("ja_JP.UTF-8", tmp_path)
    # the run lines of notify run and results fetch
    assert re.search(r"^amazon-main: 送信 8 件, フィード [0-9]+, 警告 1$", out, re.M)
    assert "amazon-main: 結果を取得したフィード 1 件, エラー 1, 正常 7, 移動 7, 警告 2" in out
    assert re.search(r"^rakuten-shop: 送信 1 件, リクエスト [0-9a-f-]{36}$", out, re.M)
    assert re.search(r"^yahoo-shop: 処理対象なし$", out, re.M)
    # the checks' warning on order 10004, in the mail and in the history (kept as its key)
    blank = "配送番号 (tracking_number) が空です: 配送番号なしで送信するため、追跡可能率"
    assert out.count(blank) == 2
    # a carrier without Amazon ship-method
    assert "警告: 配送便 '日本郵便' にAmazon配送方法 (ship-method) がありません" in out
    # Amazon's own messages stay as Amazon wrote them
    assert "18028: Your order cannot be found" in out
    assert "99102: The tracking-number field is blank." in out
    assert _english_of_ours(out) == []
    for english in ("sent 8 orders", "feeds with results", "is blank: it is sent", "ship-method:"):
        assert english not in out
    # the tables' values too: auto status, orders list, history
    assert re.search(r"^amazon-main +amazon +稼働中 .* 正常終了 ", out, re.M)
    assert re.search(r"^10006 +amazon-main .* 保留 ", out, re.M)
    assert re.search(r"未連携 +手動: 正常 → 未連携.* 手動 +\S+$", out, re.M)
    stored = re.compile(r"  (started|stopped|ok|failed|normal|hold|auto|manual|optional)( |$)")
    assert [line for line in out.splitlines() if stored.search(line)] == []


def test_the_demo_in_english_with_lang_c(tmp_path) -> None:  # noqa: ANN001
    out = _demo("C", tmp_path)
    assert re.search(r"^amazon-main: sent 8 orders, feed [0-9]+, warnings 1$", out, re.M)
    assert "amazon-main: 1 feed with results, エラー 1, 正常 7, moved 7, warnings 2" in out
    # each mall's word for what it was sent: RMS's requests, one a run here
    assert re.search(r"^rakuten-shop: sent 1 order, request [0-9a-f-]{36}$", out, re.M)
    assert re.search(r"^rakuten-shop: 1 request with results, 正常 1, moved 1$", out, re.M)
    # Yahoo answered at once: its results run had nothing to fetch (no "0 shipments")
    assert re.search(r"^yahoo-shop: nothing to do$", out, re.M)
    blank = "配送番号 (tracking_number) is blank: it is sent without one"
    assert out.count(blank) == 2  # the mail (set to English by the demo) and the history
    assert "Warning: carrier '日本郵便' has no Amazon ship-method" in out
    assert "18028: Your order cannot be found" in out
    # nothing of ours in Japanese but CROSS MALL's own names (statuses, 処理フェーズ, ...), the
    # example data and the mail subjects
    assert "送信 8 件" not in out and "が空です" not in out and "メール" not in out
    assert "was run." in out  # the mails follow the demo's language


def test_a_runs_lines_follow_the_readers_language(run, tmp_path) -> None:  # noqa: ANN001
    _configured(run, tmp_path)  # amazon-main is stopped
    en = run(["--lang", "en", "notify", "run", "--store", "amazon-main"])
    ja = run(["--lang", "ja", "notify", "run", "--store", "amazon-main"])
    assert en.exit_code == ja.exit_code == 1
    assert "amazon-main: skipped, automatic processing is stopped" in en.stderr
    assert "Error: amazon-main: store 'amazon-main' is stopped; nothing was sent" in en.stderr
    assert "amazon-main: スキップしました。自動処理は停止中です" in ja.stderr
    assert "エラー: amazon-main: 店舗 'amazon-main' は停止中です。何も送信していません" in ja.stderr
    # a rehearsal names the orders it would refuse, with the checks' messages in Japanese
    assert run(["config", "phase", "add", "amazon-main", "出荷済み"]).exit_code == 0
    assert run(["auto", "start", "amazon-main"]).exit_code == 0
    ja = run(["--lang", "ja", "notify", "run", "--dry-run"])
    assert "amazon-main: エラーになります: A1: 注文番号 (mall_order_id) がありません: " in ja.stderr
    carrier = "; 配送便 (carrier) がありません: `crossship orders update A1 --carrier NAME`"
    assert carrier in ja.stderr
