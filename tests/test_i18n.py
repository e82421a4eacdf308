"""Two languages: the command line follows --lang, CROSSSHIP_LANG, then the locale; mails follow
the mail setting (Japanese by default); click's own texts are translated too."""

from __future__ import annotations

import os
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
