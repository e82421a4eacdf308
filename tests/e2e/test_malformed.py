"""Answers that are not what Amazon promises: an HTML 502 page, cut JSON, a cut gzip stream, a
report in another charset than its label. Each ends in one clear ``Error:`` line (or is read
correctly), never a traceback, never a lost order; the next normal run completes."""

from __future__ import annotations

import pytest

from .conftest import E2E, STORE, feeds_per_order

pytestmark = pytest.mark.e2e

MAX_ATTEMPTS = 5  # AmazonClient's default: a retried call fails after five answers


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]


def assert_clean_failure(done, *fragments: str) -> str:
    """Exit 1 with one ``Error:`` line holding ``fragments``, no traceback; returns the line."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = error_lines(done.stderr)
    for fragment in fragments:
        assert fragment in line, line
    return line


def finish_normally(e: E2E) -> None:
    """The next cycle, with Amazon behaving, resolves every order exactly once."""
    notify = e.cx("notify", "run", "--force")
    assert notify.returncode == 0, notify.stderr
    fetch = e.cx("results", "fetch", "--force")
    assert fetch.returncode == 0, fetch.stderr
    assert set(e.statuses().values()) == {"success"}
    assert feeds_per_order(e.sandbox.feeds()) == {m: 1 for m in e.mall_order_ids.values()}
    assert e.integrity() == "ok"


def test_html_502_on_create_feed_document(configured_db: E2E) -> None:
    e = configured_db
    e.sandbox.add_fault("createFeedDocument", "fail", status=502, count=MAX_ATTEMPTS)
    done = e.cx("notify", "run")
    line = assert_clean_failure(
        done, f"{STORE}: batch 1 not sent", "createFeedDocument", "502", "not JSON"
    )
    assert "<html>" in line  # a short, whitespace-folded snippet of what came back
    assert e.sandbox.calls["createFeedDocument"] == MAX_ATTEMPTS  # retried: it is idempotent
    assert e.sandbox.feeds() == []
    assert set(e.statuses().values()) == {"pending"}  # nothing reached Amazon: back to 未連携
    assert e.batch_states() == ["released"]
    finish_normally(e)


def test_bad_json_on_get_feed(configured_db: E2E) -> None:
    e = configured_db
    assert e.cx("notify", "run").returncode == 0
    e.sandbox.add_fault("getFeed", "bad_json")
    done = e.cx("results", "fetch")
    assert_clean_failure(done, "result not obtained (1/3)", "getFeed", "not JSON")
    assert set(e.statuses().values()) == {"in_progress"}  # waits for the next results run
    assert e.batch_states() == ["submitted"]
    finish_normally(e)


def test_bad_json_on_create_feed_is_reconciled(configured_db: E2E) -> None:
    e = configured_db
    e.sandbox.add_fault("createFeed", "bad_json")  # the feed is created; its answer is cut
    done = e.cx("notify", "run")
    assert_clean_failure(done, "the answer to createFeed was lost", "not JSON")
    assert set(e.statuses().values()) == {"in_progress"}
    assert e.batch_states() == ["submitting"]
    finish_normally(e)
    assert e.sandbox.calls["createFeed"] == 1  # found by getFeeds, never sent again


def test_truncated_gzip_report(configured_db: E2E) -> None:
    e = configured_db
    e.sandbox.set_options(gzip_reports=True)
    assert e.cx("notify", "run").returncode == 0
    e.sandbox.add_fault("download", "truncated_gzip")
    done = e.cx("results", "fetch")
    assert_clean_failure(done, "result not obtained (1/3)", "download", "cannot be decompressed")
    assert set(e.statuses().values()) == {"in_progress"}
    finish_normally(e)


def test_japanese_report_labelled_with_the_wrong_charset_is_still_read(
    configured_db: E2E,
) -> None:
    """cp932 bytes sent as charset=UTF-8: crossship falls back to cp932 instead of failing or
    storing mojibake (report.decode_report), so the run succeeds with Amazon's Japanese text."""
    e = configured_db
    e.sandbox.set_options(report_language="ja", report_encoding="cp932")
    assert e.cx("notify", "run").returncode == 0
    e.sandbox.add_fault("download", "wrong_charset")
    done = e.cx("results", "fetch")
    assert done.returncode == 0, done.stderr
    assert error_lines(done.stderr) == []
    assert set(e.statuses().values()) == {"success"}
    messages = dict(e.query("SELECT order_no, message FROM orders WHERE warning = 1"))
    assert messages and all(
        "ship-methodの項目が記入されていないか入力内容が無効です" in m for m in messages.values()
    )
    assert not any("\ufffd" in m for m in messages.values())
    assert e.integrity() == "ok"


def test_three_malformed_answers_in_a_row_become_result_failed(configured_db: E2E) -> None:
    """The third successive failed results run gives up: 通知結果取得失敗, never left 連携中."""
    e = configured_db
    assert e.cx("notify", "run").returncode == 0
    e.sandbox.add_fault("getFeed", "bad_json", count=3)
    for attempt in (1, 2):
        done = e.cx("results", "fetch", "--force")
        assert_clean_failure(done, f"result not obtained ({attempt}/3)")
    done = e.cx("results", "fetch", "--force")
    assert_clean_failure(done, "could not be obtained from Amazon in 3 successive runs")
    assert set(e.statuses().values()) == {"result_failed"}
    assert e.integrity() == "ok"
