"""`results fetch` for Amazon (SPEC §5, §8): waiting, deadlines, reports in English and Japanese,
gzip, FATAL / CANCELLED, failing fetches, unreadable reports, destination phases, and the
`batches list` / `batches show` views of what happened.
"""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import notify_helpers
import pytest
from notify_helpers import (
    DESTINATION,
    FEED_ID,
    REPORTS,
    SAMPLES,
    STORE,
    TARGET,
    Env,
    order,
    report_en,
    shipconfirm_orders,
)

from crossship.statuses import label_of

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

SHIPCONFIRM_EN = (REPORTS / "shipconfirm-error-warning.en.txt").read_bytes()
SHIPCONFIRM_JA = (REPORTS / "shipconfirm-error-warning.ja-cp932.txt").read_bytes()
FETCH = ["token", "getFeed", "getFeedDocument", "download"]
ORDER_NOT_FOUND = (
    "18028: Your order cannot be found using order-id 250-1234567-1234567. Enter the correct "
    "order ID and then resubmit your feed."
)
SHIP_METHOD_WARNING_EN = "99001: The ship-method field is missing or invalid."
# seed Q2, word for word
SHIP_METHOD_WARNING_JA = (
    "ship-methodの項目が記入されていないか入力内容が無効です。"
    "有効なship-methodの項目が入力されていることを確認してください。"
)


def sent(env: Env, *orders: dict, items: list[dict] = ()) -> dict:
    """Orders sent in one batch (feed FEED_ID); the clock then moves to the next cron run."""
    env.add(*orders, items=items)
    env.amazon.send_ok()
    env.notify()
    (batch,) = env.batches("submitted")
    env.amazon.reset_calls()
    env.amazon.mock.reset()
    env.clock.advance(minutes=15)
    return batch


def statuses_after(env: Env, order_nos: list[str]) -> list[str]:
    return [env.status(o) for o in order_nos]


# ---------------------------------------------------------------------------------- waiting


@pytest.mark.parametrize("processing", ["IN_QUEUE", "IN_PROGRESS"])
def test_a_feed_amazon_has_not_finished_is_waited_for(env: Env, processing: str) -> None:
    batch = sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed(processing_status=processing, result_document_id=None)

    result = env.cli("results", "fetch")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == ["token", "getFeed"]
    assert env.status("A00001") == "in_progress"
    assert [h["status"] for h in env.history("A00001")] == ["in_progress"]
    current = env.store.get_batch(batch["id"])
    assert (current["state"], current["processing_status"]) == ("submitted", processing)
    assert "0 feeds with results" in result.stderr


@pytest.mark.parametrize(
    ("deadline_hours", "waited", "expected"),
    [
        pytest.param(None, {"hours": 23, "minutes": 59}, "in_progress", id="24h-not-yet"),
        pytest.param(None, {"hours": 24, "minutes": 1}, "result_failed", id="24h-passed"),
        pytest.param(2, {"hours": 1, "minutes": 59}, "in_progress", id="2h-not-yet"),
        pytest.param(2, {"hours": 2, "minutes": 1}, "result_failed", id="2h-passed"),
    ],
)
def test_a_feed_still_queued_after_the_result_deadline_is_result_failed(
    env: Env, deadline_hours: int | None, waited: dict, expected: str
) -> None:
    if deadline_hours:
        configured = env.cli(
            "config", "store", "set", STORE, "--result-deadline", str(deadline_hours)
        )
        assert configured.exit_code == 0, configured.stderr
    batch = sent(env, order(1), order(2))
    env.clock.now = notify_helpers.T0 + timedelta(**waited)
    env.amazon.token()
    env.amazon.get_feed(processing_status="IN_QUEUE", result_document_id=None)

    result = env.cli("results", "fetch")

    assert env.amazon.ops() == ["token", "getFeed"]
    assert statuses_after(env, ["A00001", "A00002"]) == [expected, expected]
    state = env.store.get_batch(batch["id"])["state"]
    if expected == "result_failed":
        assert state == "result_failed"
        message = env.get("A00001")["message"]
        assert "Seller Central" in message and FEED_ID in message
        assert env.get("A00001")["phase"] == TARGET  # stays where it is
    else:
        assert state == "submitted"
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------------------------- DONE


def assert_shipconfirm_applied(env: Env, warning_text: str, error_text: str) -> None:
    error, warned, clean = env.get("A00001"), env.get("A00002"), env.get("A00003")
    assert (error["status"], error["phase"]) == ("error", TARGET)
    assert error_text in error["message"]
    assert (warned["status"], warned["phase"], warned["warning"]) == ("success", DESTINATION, 1)
    assert warning_text in warned["message"]
    assert (clean["status"], clean["phase"], clean["warning"]) == ("success", DESTINATION, 0)
    assert clean["message"] is None
    rows = {o: env.history(o)[-1] for o in ("A00001", "A00002", "A00003")}
    assert {o: (r["status"], r["warning"], r["feed_id"]) for o, r in rows.items()} == {
        "A00001": ("error", 0, FEED_ID),
        "A00002": ("success", 1, FEED_ID),
        "A00003": ("success", 0, FEED_ID),
    }
    assert "18028" in rows["A00001"]["message"]
    assert warning_text in rows["A00002"]["message"]


def test_done_english_report_errors_warnings_and_successes(env: Env) -> None:
    batch = sent(env, *shipconfirm_orders())
    env.amazon.token()
    env.amazon.result(SHIPCONFIRM_EN)

    result = env.cli("results", "fetch")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == FETCH
    assert_shipconfirm_applied(env, SHIP_METHOD_WARNING_EN, ORDER_NOT_FOUND)
    done = env.store.get_batch(batch["id"])
    assert (done["state"], done["processing_status"], done["processed"], done["successful"]) == (
        "done",
        "DONE",
        3,
        2,
    )
    assert env.store.get_batch(batch["id"])["report"] == SHIPCONFIRM_EN  # the raw report is kept
    assert "正常 2" in result.stderr and "エラー 1" in result.stderr and "moved 2" in result.stderr


def test_done_japanese_cp932_report_labelled_windows_31j(env: Env) -> None:
    batch = sent(env, *shipconfirm_orders())
    env.amazon.token()
    env.amazon.result(SHIPCONFIRM_JA, content_type="text/plain; charset=windows-31j")

    result = env.cli("results", "fetch")

    assert result.exit_code == 0, result.stderr
    assert_shipconfirm_applied(
        env, SHIP_METHOD_WARNING_JA, "注文番号250-1234567-1234567の注文が見つかりません"
    )
    kept = env.store.get_batch(batch["id"])
    assert kept["report"] == SHIPCONFIRM_JA
    assert kept["report_charset"] == "windows-31j"
    shown = env.cli("batches", "show", str(batch["id"]))
    assert SHIP_METHOD_WARNING_JA in shown.stdout  # decoded for people, not mojibake


def test_all_success_report_moves_every_order(env: Env) -> None:
    sent(env, order(1), order(2))
    env.amazon.token()
    env.amazon.result(report_en(2, 2))

    env.fetch()

    assert [(env.status(o), env.get(o)["phase"]) for o in ("A00001", "A00002")] == [
        ("success", DESTINATION),
        ("success", DESTINATION),
    ]


def test_target_without_destination_leaves_success_in_place(env: Env) -> None:
    env.store.add_target(STORE, TARGET, None)
    sent(env, order(1))
    env.amazon.token()
    env.amazon.result(report_en(1, 1))

    env.fetch()

    assert (env.status("A00001"), env.get("A00001")["phase"]) == ("success", TARGET)


def test_split_orders_get_their_own_rows_outcome(env: Env) -> None:
    shared = notify_helpers.mall_order_id(9)
    sent(
        env,
        order(1, mall_order_id=shared),
        order(2, mall_order_id=shared, split_from="A00001"),
        items=[
            notify_helpers.item("A00001", 1, "11111111111111"),
            notify_helpers.item("A00002", 1, "22222222222222"),
        ],
    )
    env.amazon.token()
    env.amazon.result(
        report_en(2, 1, [(2, shared, "22222222222222", "18025", "Error", "Quantity too large.")])
    )

    env.fetch()

    assert env.status("A00001") == "success"
    assert env.status("A00002") == "error"
    assert "18025: Quantity too large." in env.get("A00002")["message"]


def test_an_order_the_malls_result_does_not_name_is_result_failed_never_success(
    env: Env,
) -> None:
    from dataclasses import replace

    from crossship.amazon.mall import AmazonSession

    class Forgetful(AmazonSession):
        """A mall whose result reading leaves one order out."""

        def read_result(self, batch, poll, rows):
            result = super().read_result(batch, poll, rows)
            kept = {k: v for k, v in result.outcomes.items() if k != "A00002"}
            return replace(result, outcomes=kept)

    sent(env, order(1), order(2))
    env.amazon.token()
    env.amazon.result(report_en(2, 2, []))

    env.fetch(session_factory=Forgetful.open)

    assert (env.status("A00001"), env.get("A00001")["phase"]) == ("success", DESTINATION)
    missing = env.get("A00002")
    assert (missing["status"], missing["phase"]) == ("result_failed", TARGET)
    assert "Seller Central" in missing["message"]


def test_file_level_fatal_row_in_a_done_report_makes_every_order_error(env: Env) -> None:
    sent(env, order(1), order(2))
    env.amazon.token()
    env.amazon.result((REPORTS / "90011-fatal.en.txt").read_bytes())

    env.fetch()

    for order_no in ("A00001", "A00002"):
        current = env.get(order_no)
        assert (current["status"], current["phase"]) == ("error", TARGET)
        assert "90011" in current["message"]


# ---------------------------------------------------------------------------------- gzip


def test_gzip_report_given_as_raw_gzip_bytes(env: Env) -> None:
    sent(env, *shipconfirm_orders())
    env.amazon.token()
    env.amazon.get_feed()
    env.amazon.get_document(compression="GZIP")
    env.amazon.download(gzip.compress(SHIPCONFIRM_EN), content_type="text/plain; charset=UTF-8")

    env.fetch()

    assert env.amazon.ops() == FETCH
    assert_shipconfirm_applied(env, SHIP_METHOD_WARNING_EN, ORDER_NOT_FOUND)


def test_gzip_report_already_decoded_by_the_transport_is_not_gunzipped_twice(env: Env) -> None:
    sent(env, *shipconfirm_orders())
    env.amazon.token()
    env.amazon.get_feed()
    env.amazon.get_document(compression="GZIP")
    env.amazon.download(
        gzip.compress(SHIPCONFIRM_JA),
        content_type="text/plain; charset=windows-31j",
        headers={"Content-Encoding": "gzip"},
    )

    env.fetch()

    assert env.amazon.ops() == FETCH
    assert_shipconfirm_applied(
        env, SHIP_METHOD_WARNING_JA, "注文番号250-1234567-1234567の注文が見つかりません"
    )


def test_truncated_gzip_report_counts_as_a_failed_fetch(env: Env) -> None:
    batch = sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed()
    env.amazon.get_document(compression="GZIP")
    env.amazon.download(gzip.compress(report_en(1, 1) * 50)[:40])

    result = env.cli("results", "fetch")

    assert result.exit_code == 1
    assert "truncated or corrupt" in result.stderr
    current = env.store.get_batch(batch["id"])
    assert (current["state"], current["fetch_failures"]) == ("submitted", 1)
    assert env.status("A00001") == "in_progress"


def test_truncated_gzip_behind_content_encoding_counts_as_a_failed_fetch(env: Env) -> None:
    # the transport gunzips what it can and hands over nothing: an empty report is no report
    batch = sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed()
    env.amazon.get_document(compression="GZIP")
    env.amazon.download(
        gzip.compress(report_en(1, 1) * 50)[:40], headers={"Content-Encoding": "gzip"}
    )

    result = env.cli("results", "fetch")

    assert result.exit_code == 1
    current = env.store.get_batch(batch["id"])
    assert (current["state"], current["fetch_failures"]) == ("submitted", 1)
    assert env.status("A00001") == "in_progress"
    assert "empty" in result.stderr


# ------------------------------------------------------------------------------ FATAL, CANCELLED


@pytest.mark.parametrize(
    ("report", "content_type", "expected"),
    [
        pytest.param(
            "90011-fatal.en.txt",
            "text/plain; charset=UTF-8",
            "90011: The file's column headings are missing or invalid.",
            id="english",
        ),
        pytest.param(
            "90011-fatal.ja-cp932.txt",
            "text/plain; charset=windows-31j",
            "90011: ファイルの項目名がないか、無効です。",
            id="japanese-cp932",
        ),
    ],
)
def test_fatal_feed_with_a_report_is_notify_failed_with_its_messages(
    env: Env, report: str, content_type: str, expected: str
) -> None:
    batch = sent(env, order(1), order(2))
    env.amazon.token()
    env.amazon.get_feed(processing_status="FATAL")
    env.amazon.get_document()
    env.amazon.download((REPORTS / report).read_bytes(), content_type=content_type)

    result = env.cli("results", "fetch")

    assert env.amazon.ops() == FETCH
    for order_no in ("A00001", "A00002"):
        current = env.get(order_no)
        assert (current["status"], current["phase"]) == ("notify_failed", TARGET)
        assert "FATAL" in current["message"]
        assert expected in current["message"]
    assert env.store.get_batch(batch["id"])["state"] == "notify_failed"
    assert "通知失敗 2" in result.stderr


@pytest.mark.parametrize("processing", ["FATAL", "CANCELLED"])
def test_fatal_or_cancelled_feed_without_a_report_is_notify_failed(
    env: Env, processing: str
) -> None:
    sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed(processing_status=processing, result_document_id=None)

    env.fetch()

    assert env.amazon.ops() == ["token", "getFeed"]
    current = env.get("A00001")
    assert current["status"] == "notify_failed"
    assert processing in current["message"]


# ---------------------------------------------------------------------------------- failing fetches


def test_get_feed_failing_in_three_successive_runs_is_result_failed(env: Env) -> None:
    batch = sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed(status=500)

    for run in (1, 2):
        result = env.cli("results", "fetch")
        assert result.exit_code == 1
        assert f"({run}/3)" in result.stderr
        assert env.status("A00001") == "in_progress"
        assert env.store.get_batch(batch["id"])["fetch_failures"] == run
        env.clock.advance(minutes=15)
    assert env.amazon.ops().count("getFeed") == 10  # 5 attempts a run, backoff not slept
    assert len(env.sleeps) == 8

    result = env.cli("results", "fetch")

    assert result.exit_code == 1
    current = env.get("A00001")
    assert current["status"] == "result_failed"
    assert "3 successive runs" in current["message"]
    assert env.store.get_batch(batch["id"])["state"] == "result_failed"
    assert [h["status"] for h in env.history("A00001")] == ["in_progress", "result_failed"]


def test_a_successful_fetch_resets_the_failure_count(env: Env) -> None:
    batch = sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed(status=500)
    env.fetch()
    env.fetch(force=True)
    assert env.store.get_batch(batch["id"])["fetch_failures"] == 2
    env.amazon.mock.reset()
    env.amazon.token()
    env.amazon.get_feed(processing_status="IN_PROGRESS", result_document_id=None)

    env.fetch(force=True)

    assert env.store.get_batch(batch["id"])["fetch_failures"] == 0
    env.amazon.mock.reset()
    env.amazon.token()
    env.amazon.get_feed(status=500)
    env.fetch(force=True)
    assert env.status("A00001") == "in_progress"  # one failure after the reset, not the third


def test_download_failing_counts_like_get_feed_failing(env: Env) -> None:
    batch = sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed()
    env.amazon.get_document()
    env.amazon.download(
        b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        status=403,
    )

    result = env.cli("results", "fetch")

    assert result.exit_code == 1
    assert "AccessDenied" in result.stderr
    assert env.store.get_batch(batch["id"])["fetch_failures"] == 1
    assert env.status("A00001") == "in_progress"


# ---------------------------------------------------------------------------------- unreadable


def test_unparseable_report_is_kept_and_its_orders_are_result_failed(env: Env) -> None:
    html = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>\n"
    batch = sent(env, order(1), order(2))
    env.amazon.token()
    env.amazon.result(html, content_type="text/html; charset=UTF-8")

    result = env.cli("results", "fetch")

    assert result.exit_code == 1
    assert "HTML" in result.stderr
    for order_no in ("A00001", "A00002"):
        current = env.get(order_no)
        assert (current["status"], current["phase"]) == ("result_failed", TARGET)
        assert f"batches show {batch['id']}" in current["message"]
    shown = env.cli("batches", "show", str(batch["id"]), "--part", "report")
    assert shown.exit_code == 0
    assert shown.stdout_bytes == html


# ---------------------------------------------------------------------------------- stores


def test_nothing_submitted_means_no_amazon_call(env: Env) -> None:
    env.add(order(1))

    result = env.cli("results", "fetch")

    assert result.exit_code == 0
    assert env.amazon.ops() == []
    assert env.status("A00001") == "pending"


def test_a_stopped_store_still_learns_the_results_of_what_it_sent(env: Env) -> None:
    sent(env, order(1))
    env.store.set_started(STORE, False)
    env.amazon.token()
    env.amazon.result(report_en(1, 1))

    result = env.cli("results", "fetch")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == FETCH
    assert env.status("A00001") == "success"


# ---------------------------------------------------------------------------------- batches views


def test_batches_list_and_show(env: Env) -> None:
    batch = sent(env, *shipconfirm_orders())
    env.amazon.token()
    env.amazon.result(SHIPCONFIRM_EN)
    env.fetch()

    listed = env.cli("batches", "list", "--format", "json")
    shown = env.cli("batches", "show", str(batch["id"]), "--format", "json")
    table = env.cli("batches", "show", str(batch["id"]))
    listed_table = env.cli("batches", "list")
    assert listed_table.exit_code == 0 and FEED_ID in listed_table.stdout
    feed = env.cli("batches", "show", str(batch["id"]), "--part", "feed")

    assert listed.exit_code == 0 and shown.exit_code == 0 and table.exit_code == 0
    (row,) = json.loads(listed.stdout)
    assert {k: row[k] for k in ("batch_id", "store", "feed_id", "state", "orders", "rows")} == {
        "batch_id": batch["id"],
        "store": STORE,
        "feed_id": FEED_ID,
        "state": "done",
        "orders": 3,
        "rows": 3,
    }
    assert (row["processing_status"], row["processed"], row["successful"]) == ("DONE", 3, 2)
    assert row["created"].endswith(("+00:00", "Z")) or row["created"][-6] in "+-"
    view = json.loads(shown.stdout)
    assert view["order_nos"] == ["A00001", "A00002", "A00003"]
    assert view["content_type"] == notify_helpers.UTF8_TSV
    assert view["report"] == SHIPCONFIRM_EN.decode()
    assert view["feed"].startswith("TemplateType=OrderFulfillment\tVersion=2011.1102")
    assert "--- feed sent ---" in table.stdout
    assert "--- Amazon's processing report ---" in table.stdout
    assert "18028" in table.stdout
    assert feed.stdout_bytes == env.store.get_batch(batch["id"])["feed"]
    assert feed.stdout_bytes.startswith(
        (SAMPLES / "jp-shipping-confirmation-template-header_UTF8.tsv").read_bytes()
    )


def test_batches_show_report_before_any_result(env: Env) -> None:
    batch = sent(env, order(1))

    result = env.cli("batches", "show", str(batch["id"]), "--part", "report")

    assert result.exit_code == 1
    assert "no report yet" in result.stderr
    assert result.stdout == ""


def test_batches_show_unknown_batch(env: Env) -> None:
    result = env.cli("batches", "show", "999")

    assert result.exit_code == 2
    assert "no batch 999" in result.stderr


# ---------------------------------------------------------------------------------- full cycle


def test_full_cycle_history_shows_in_progress_then_success_with_the_feed_id(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    assert env.cli("-q", "notify", "run").exit_code == 0
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.result(report_en(1, 1))

    result = env.cli("-q", "results", "fetch")

    assert result.exit_code == 0
    assert result.stderr == "" and result.stdout == ""
    rows = env.history("A00001")
    assert [(label_of(r["status"]), r["feed_id"], r["source"]) for r in rows] == [
        ("連携中", FEED_ID, "auto"),
        ("正常", FEED_ID, "auto"),
    ]
    assert env.get("A00001")["phase"] == DESTINATION
    assert [r["job"] for r in env.runs()] == ["results", "notify"]


def test_one_token_for_every_batch_of_a_run(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok(feed_id="3001")
    env.notify()
    env.clock.advance(minutes=15)
    env.add(order(2))
    env.amazon.mock.reset()
    env.amazon.send_ok(feed_id="3002")
    env.notify()
    env.amazon.mock.reset()
    env.amazon.reset_calls()
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.get_feed("3001", processing_status="IN_PROGRESS", result_document_id=None)
    env.amazon.get_feed("3002")
    env.amazon.get_document()
    env.amazon.download(report_en(1, 1))

    result = env.fetch()

    assert env.amazon.ops() == ["token", "getFeed", "getFeed", "getFeedDocument", "download"]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "success"}
    assert result.runs[0].feed_ids == ["3002"]


def test_full_cycle_through_the_history_command(env: Env) -> None:
    from crossship.cli import cli

    if "history" not in cli.commands:
        pytest.skip("no `crossship history` command yet")
    env.add(order(1))
    env.amazon.send_ok()
    env.cli("-q", "notify", "run")
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.result(report_en(1, 1))
    env.cli("-q", "results", "fetch")

    result = env.cli("history", "--order", "A00001", "--format", "json")

    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["status"], r["status_label"], r["feed_id"]) for r in rows] == [
        ("success", "正常", FEED_ID),
        ("in_progress", "連携中", FEED_ID),
    ]


def test_cancelled_feed_with_a_report_attaches_its_messages(env: Env) -> None:
    sent(env, order(1))
    env.amazon.token()
    env.amazon.get_feed(processing_status="CANCELLED")
    env.amazon.get_document()
    env.amazon.download((REPORTS / "90012-90061.en.txt").read_bytes())

    env.fetch()

    message = env.get("A00001")["message"]
    assert env.status("A00001") == "notify_failed"
    assert "CANCELLED" in message and "90012" in message and "90061" in message


def test_results_for_a_non_amazon_store_is_a_usage_error(env: Env) -> None:
    env.add_store("makeshop-main", mall="makeshop")  # a mall crossship cannot notify

    result = env.cli("results", "fetch", "--store", "makeshop-main")

    assert result.exit_code == 2
    assert env.amazon.ops() == []
