"""`notify run` for Amazon (SPEC §3, §5, §7, §9): which orders are sent, what is sent, what the
failures of each call leave behind, reconciliation of a lost createFeed answer, crash recovery,
and the constant number of Amazon calls per run.

HTTP goes through ``responses`` (see notify_helpers); every test asserts the calls made.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import notify_helpers
import pytest
import requests
from notify_helpers import (
    DESTINATION,
    DOCUMENT_ID,
    FEED_ID,
    FEED_TYPE,
    JP,
    NO_CODE,
    OTHER_PHASE,
    SAGAWA,
    SAMPLES,
    SJIS_TSV,
    STORE,
    TARGET,
    UTF8_TSV,
    YAMATO,
    Env,
    error_body,
    feed_row,
    feeds_entry,
    item,
    mall_order_id,
    order,
)

from crossship.amazon.client import AmazonClient
from crossship.lock import RunLock
from crossship.notify import NotifyOptions, notify_run
from crossship.store import Store
from crossship.timeutil import from_db, to_db

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

HEADER_UTF8 = (SAMPLES / "jp-shipping-confirmation-template-header_UTF8.tsv").read_bytes()
HEADER_CP932 = (SAMPLES / "jp-shipping-confirmation-template-header_CP932.tsv").read_bytes()
SEND = ["token", "createFeedDocument", "upload", "createFeed"]


def sent_order_ids(env: Env) -> list[str]:
    """order-id of every row of every feed uploaded."""
    return [row[0] for body in env.amazon.uploaded() for row in feed_row(body)]


def history_statuses(env: Env, order_no: str) -> list[str]:
    return [h["status"] for h in env.history(order_no)]


# ---------------------------------------------------------------------------------- what is sent


def test_eligible_orders_go_in_one_feed_and_become_in_progress(env: Env) -> None:
    env.add(order(1), order(2), order(3))
    env.amazon.send_ok()

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"{STORE}: sent 3 orders, feed {FEED_ID}" in result.stderr
    assert env.amazon.ops() == SEND
    assert env.statuses() == dict.fromkeys(["A00001", "A00002", "A00003"], "in_progress")
    (batch,) = env.batches()
    assert batch["state"] == "submitted"
    assert batch["feed_id"] == FEED_ID
    assert batch["feed_document_id"] == DOCUMENT_ID
    for order_no in ("A00001", "A00002", "A00003"):
        (row,) = env.history(order_no)
        assert (row["status"], row["feed_id"], row["batch_id"]) == (
            "in_progress",
            FEED_ID,
            batch["id"],
        )
    (body,) = env.amazon.uploaded()
    assert env.store.get_batch(batch["id"])["feed"] == body  # the exact bytes are kept
    assert feed_row(body) == [
        [mall_order_id(n), "", "", "2026-11-27", "Yamato Transport", "", f"4000{n:08d}", "宅急便"]
        + [""]
        for n in (1, 2, 3)
    ]


def test_feed_header_and_content_type_utf8(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()

    env.notify()

    (body,) = env.amazon.uploaded()
    assert body.startswith(HEADER_UTF8)
    (document,) = env.amazon.requests_of("createFeedDocument")
    assert json.loads(document.body) == {"contentType": UTF8_TSV}
    (upload,) = env.amazon.requests_of("upload")
    assert upload.headers["Content-Type"] == UTF8_TSV
    (create,) = env.amazon.requests_of("createFeed")
    assert json.loads(create.body) == {
        "feedType": FEED_TYPE,
        "marketplaceIds": [JP],
        "inputFeedDocumentId": DOCUMENT_ID,
    }
    # LWA: the refresh-token grant; the token goes in x-amz-access-token, once per run
    (token,) = env.amazon.requests_of("token")
    assert parse_qs(token.body)["grant_type"] == ["refresh_token"]
    assert all("x-amz-access-token" in r.headers for r in (document, create))
    assert "x-amz-access-token" not in upload.headers


def test_cp932_store_sends_shift_jis_with_matching_content_type(env: Env) -> None:
    env.store.update_store(STORE, {"encoding": "cp932"})
    env.add(order(1, tracking_number="", carrier=YAMATO))
    env.amazon.send_ok()

    env.notify()

    assert env.amazon.ops() == SEND
    (document,) = env.amazon.requests_of("createFeedDocument")
    given = json.loads(document.body)["contentType"]
    (upload,) = env.amazon.requests_of("upload")
    assert given == SJIS_TSV
    assert upload.headers["Content-Type"].encode() == given.encode()  # byte for byte
    body = bytes(upload.body)
    assert body.startswith(HEADER_CP932)
    assert "宅急便".encode("cp932") in body
    assert feed_row(body, "cp932") == [
        [mall_order_id(1), "", "", "2026-11-27", "Yamato Transport", "", "", "宅急便", ""]
    ]


def test_template_code_in_a_tracking_number_is_sent_literally(env: Env) -> None:
    env.add(order(1, tracking_number="{{7*7}}"), order(2, tracking_number="{% raw %}x"))
    env.amazon.send_ok()

    env.notify()

    (body,) = env.amazon.uploaded()
    assert [row[6] for row in feed_row(body)] == ["{{7*7}}", "{% raw %}x"]
    assert b"\t49\t" not in body
    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}


def test_blank_tracking_number_is_sent_with_a_warning(env: Env) -> None:
    env.add(order(1, tracking_number=""))
    env.amazon.send_ok()

    result = env.notify()

    (body,) = env.amazon.uploaded()
    assert feed_row(body)[0][6] == ""
    assert env.status("A00001") == "in_progress"
    (warning,) = result.runs[0].warnings
    assert warning["order_no"] == "A00001"
    assert "Valid Tracking Rate" in str(warning["message"])
    (row,) = env.history("A00001")  # the warning is flagged on the 連携中 history row too
    assert row["warning"] == 1 and "Valid Tracking Rate" in row["message"]


def test_carrier_without_ship_method_is_sent(env: Env) -> None:
    env.add(order(1, carrier=SAGAWA))
    env.amazon.send_ok()

    env.notify()

    (body,) = env.amazon.uploaded()
    assert feed_row(body)[0][4:8] == ["Sagawa Express", "", "400000000001", ""]
    assert env.status("A00001") == "in_progress"


# ---------------------------------------------------------------------------------- which orders


def test_orders_of_other_stores_in_the_target_phase_are_ignored_silently(env: Env) -> None:
    env.add_store("makeshop-main", mall="makeshop")  # a mall crossship cannot notify
    env.add_store("amazon-stopped", started=False)
    env.add(
        order(1),
        order(2, store="makeshop-main"),
        order(3, store="amazon-stopped"),
    )
    env.amazon.send_ok()

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    assert sent_order_ids(env) == [mall_order_id(1)]
    assert env.amazon.ops() == SEND  # one store, one run: nobody else was called
    assert env.statuses() == {"A00001": "in_progress", "A00002": "pending", "A00003": "pending"}
    assert env.history("A00002") == [] and env.history("A00003") == []
    assert "makeshop" not in result.stderr and "A00002" not in result.stderr
    assert [r["store"] for r in env.runs("notify")] == [STORE]


def test_each_started_amazon_store_sends_only_its_own_orders(env: Env) -> None:
    env.add_store("amazon-second")
    env.add(order(1), order(2, store="amazon-second"), order(3))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(feed_id="7001")
    env.amazon.create_feed(feed_id="7002")

    env.notify(jobs=1)  # one store at a time, so the scripted answers go in order

    first, second = env.amazon.uploaded()
    # stores run in name order: amazon-main, then amazon-second
    assert [r[0] for r in feed_row(first)] == [mall_order_id(1), mall_order_id(3)]
    assert [r[0] for r in feed_row(second)] == [mall_order_id(2)]
    assert env.amazon.ops() == SEND + SEND  # one token per store's run
    assert {b["store"]: b["feed_id"] for b in env.batches()} == {
        STORE: "7001",
        "amazon-second": "7002",
    }


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"fba": 1}, id="fba"),
        pytest.param({"category": "hold"}, id="hold"),
        pytest.param({"category": "cancel"}, id="cancel"),
        pytest.param({"phase": OTHER_PHASE}, id="not-a-target-phase"),
        pytest.param({"phase": DESTINATION}, id="destination-phase"),
    ],
)
def test_excluded_orders_are_not_sent_and_not_touched(env: Env, values: dict) -> None:
    env.add(order(1), order(2, **values))
    env.amazon.send_ok()

    env.notify()

    assert sent_order_ids(env) == [mall_order_id(1)]
    assert env.status("A00002") == "pending"
    assert env.history("A00002") == []


@pytest.mark.parametrize("status", ["success", "error", "notify_failed", "result_failed"])
def test_orders_not_pending_are_not_sent(env: Env, status: str) -> None:
    env.add(order(1), order(2))
    env.store.db.execute("UPDATE orders SET status = ? WHERE order_no = 'A00002'", [status])
    env.store.db.conn.commit()
    env.amazon.send_ok()

    env.notify()

    assert sent_order_ids(env) == [mall_order_id(1)]
    assert env.status("A00002") == status


def test_bundled_child_is_not_sent_and_its_parent_is(env: Env) -> None:
    env.add(order(1), order(2, bundle_parent="A00001", tracking_number=""))
    env.amazon.send_ok()

    result = env.notify()

    assert sent_order_ids(env) == [mall_order_id(1)]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "pending"}
    assert env.history("A00002") == []
    assert result.runs[0].warnings == []  # the child's blank tracking number is not its business


def test_split_parent_and_child_are_both_sent_item_by_item(env: Env) -> None:
    shared = mall_order_id(7)
    env.add(
        order(1, mall_order_id=shared, tracking_number="111122223333"),
        order(2, mall_order_id=shared, split_from="A00001", tracking_number="444455556666"),
        items=[
            item("A00001", 1, "11111111111111", 2),
            item("A00002", 1, "22222222222222", 1),
            item("A00002", 2, "33333333333333", 3),
        ],
    )
    env.amazon.send_ok()

    result = env.notify()

    (body,) = env.amazon.uploaded()
    assert [(r[0], r[1], r[2], r[6]) for r in feed_row(body)] == [
        (shared, "11111111111111", "2", "111122223333"),
        (shared, "22222222222222", "1", "444455556666"),
        (shared, "33333333333333", "3", "444455556666"),
    ]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}
    assert result.runs[0].warnings == []
    # the row map ties each row to its own order, for the report
    (batch,) = env.batches()
    rows = env.store.batch_rows(batch["id"])
    assert [(r["record_no"], r["order_no"], r["item_id"]) for r in rows] == [
        (1, "A00001", "11111111111111"),
        (2, "A00002", "22222222222222"),
        (3, "A00002", "33333333333333"),
    ]


def test_split_orders_without_item_lines_are_sent_with_a_warning(env: Env) -> None:
    shared = mall_order_id(7)
    env.add(
        order(1, mall_order_id=shared),
        order(2, mall_order_id=shared, split_from="A00001"),
    )
    env.amazon.send_ok()

    result = env.cli("-v", "notify", "run")

    assert result.exit_code == 0, result.stderr
    (body,) = env.amazon.uploaded()
    assert [(r[0], r[1], r[2]) for r in feed_row(body)] == [(shared, "", ""), (shared, "", "")]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}
    assert "warnings 2" in result.stderr
    assert result.stderr.count("overwrites") == 2
    assert "warning: A00001:" in result.stderr and "warning: A00002:" in result.stderr


def test_stopped_store_is_never_sent(env: Env) -> None:
    env.store.set_started(STORE, False)
    env.add(order(1))

    quiet = env.cli("-q", "notify", "run")
    named = env.cli("notify", "run", "--store", STORE, "--force")

    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert named.exit_code == 1
    assert f"store {STORE!r} is stopped" in named.stderr
    assert env.amazon.ops() == []
    assert env.status("A00001") == "pending"
    assert env.runs() == []


def test_a_non_amazon_store_named_is_a_usage_error(env: Env) -> None:
    env.add_store("makeshop-main", mall="makeshop")  # a mall crossship cannot notify

    result = env.cli("notify", "run", "--store", "makeshop-main")

    assert result.exit_code == 2
    assert "makeshop" in result.stderr
    assert env.amazon.ops() == []


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("values", "encoding", "expected"),
    [
        pytest.param({"ship_date": None}, "utf-8", "発送日 (ship_date) is missing", id="no-date"),
        pytest.param({"ship_date": "2026/11/27"}, "utf-8", "is not a date", id="bad-ship-date"),
        pytest.param({"carrier": NO_CODE}, "utf-8", "has no Amazon carrier-code", id="no-code"),
        pytest.param({"carrier": None}, "utf-8", "配送便 (carrier) is missing", id="no-carrier"),
        pytest.param(
            {"mall_order_id": "250-123456-1234567"},
            "utf-8",
            "is not NNN-NNNNNNN-NNNNNNN",
            id="bad-order-id",
        ),
        pytest.param(
            {"tracking_number": "1234\t5678"}, "utf-8", "contains a tab", id="tab-in-tracking"
        ),
        pytest.param(
            {"tracking_number": "1234\n5678"}, "utf-8", "contains a line feed", id="newline"
        ),
        pytest.param({"tracking_number": "📦1234"}, "cp932", "cannot hold", id="emoji-under-cp932"),
    ],
)
def test_an_order_failing_a_check_becomes_error_and_is_not_sent(
    env: Env, values: dict, encoding: str, expected: str
) -> None:
    env.store.update_store(STORE, {"encoding": encoding})
    env.add(order(1), order(2, **values))
    env.amazon.send_ok()

    result = env.cli("-v", "notify", "run")

    assert result.exit_code == 0, result.stderr  # a bad order is the order's problem, not the run's
    (body,) = env.amazon.uploaded()
    assert [r[0] for r in feed_row(body, "cp932" if encoding == "cp932" else "utf-8")] == [
        mall_order_id(1)
    ]
    bad = env.get("A00002")
    assert bad["status"] == "error"
    assert expected in bad["message"]
    assert "crossship" in bad["message"]  # says what to run to fix it
    (row,) = env.history("A00002")
    assert (row["status"], row["message"], row["batch_id"]) == ("error", bad["message"], None)
    assert "エラー: A00002:" in result.stderr
    assert env.status("A00001") == "in_progress"


def test_emoji_is_fine_under_utf8(env: Env) -> None:
    env.add(order(1, tracking_number="📦1234"))
    env.amazon.send_ok()

    env.notify()

    assert feed_row(env.amazon.uploaded()[0])[0][6] == "📦1234"


def test_when_every_order_fails_its_checks_amazon_is_not_called(env: Env) -> None:
    env.add(order(1, ship_date=None), order(2, carrier=NO_CODE))

    result = env.cli("notify", "run")

    assert result.exit_code == 0
    assert env.amazon.ops() == []
    assert env.statuses() == {"A00001": "error", "A00002": "error"}
    assert env.batches() == []


# ---------------------------------------------------------------------------------- failures


def assert_released(env: Env, order_nos: list[str], why: str) -> None:
    """Nothing reached Amazon as a feed: the batch is dropped, its orders are 未連携 again."""
    (batch,) = env.batches()
    assert batch["state"] == "released"
    assert batch["feed_id"] is None
    for order_no in order_nos:
        assert env.status(order_no) == "pending"
        rows = env.history(order_no)
        assert [r["status"] for r in rows] == ["in_progress", "pending"]
        assert why in rows[-1]["message"]


def test_token_failure_releases_the_batch(env: Env) -> None:
    env.add(order(1), order(2))
    env.amazon.token(status=400)

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == ["token"]  # a refused grant is not retried
    assert "invalid_grant" in result.stderr
    assert_released(env, ["A00001", "A00002"], "invalid_grant")
    # the secrets are never repeated
    for secret in ("client-secret-value-0123456789", "Atzr|refresh-token-value-0123456789"):
        assert secret not in result.stderr
        assert all(secret not in (h["message"] or "") for h in env.history())
    (run,) = env.runs("notify")
    assert run["outcome"] == "failed"


def test_missing_credentials_fail_the_run_before_anything(env: Env) -> None:
    env.monkeypatch.delenv("CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN")
    env.add(order(1))

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert "CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN" in result.stderr
    assert env.amazon.ops() == []
    assert env.status("A00001") == "pending"
    assert env.batches() == []


def test_create_feed_document_500_after_retries_releases_the_batch(env: Env) -> None:
    env.add(order(1))
    env.amazon.token()
    env.amazon.create_document(status=500)

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == ["token"] + ["createFeedDocument"] * 5
    assert len(env.sleeps) == 4  # backoff between attempts, through the injected sleep
    assert_released(env, ["A00001"], "InternalFailure")


def test_upload_signature_mismatch_releases_the_batch(env: Env) -> None:
    env.add(order(1))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload(
        status=403,
        body=(
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
            "<Message>The request signature we calculated does not match the signature you "
            "provided. Check your key and signing method.</Message></Error>"
        ),
    )

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == ["token", "createFeedDocument", "upload"]
    assert_released(env, ["A00001"], "SignatureDoesNotMatch")
    assert "SignatureDoesNotMatch" in result.stderr


def test_create_feed_rejected_is_notify_failed_with_amazons_message(env: Env) -> None:
    env.add(order(1), order(2))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(
        status=400,
        body=error_body(
            "InvalidInput",
            "One or more required parameters missing",
            "marketplaceIds;feedType;inputFeedDocumentId;",
        ),
    )

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == SEND  # a 400 is not retried
    (batch,) = env.batches()
    assert batch["state"] == "notify_failed"
    for order_no in ("A00001", "A00002"):
        current = env.get(order_no)
        assert current["status"] == "notify_failed"
        assert "One or more required parameters missing" in current["message"]
        assert history_statuses(env, order_no) == ["in_progress", "notify_failed"]
    assert "One or more required parameters missing" in result.stderr


@pytest.mark.parametrize("amazon_mock", ["ordered"], indirect=True)
def test_create_feed_throttled_then_accepted_creates_exactly_one_feed(env: Env) -> None:
    env.add(order(1))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(status=429, body=error_body("QuotaExceeded", "You exceeded your quota"))
    env.amazon.create_feed(feed_id=FEED_ID)

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == SEND + ["createFeed"]
    assert len(env.sleeps) == 1
    (batch,) = env.batches()
    assert (batch["state"], batch["feed_id"]) == ("submitted", FEED_ID)
    assert env.status("A00001") == "in_progress"
    assert env.history("A00001")[0]["feed_id"] == FEED_ID


@pytest.mark.parametrize("amazon_mock", ["ordered"], indirect=True)
def test_an_expired_token_is_renewed_once_during_the_run(env: Env) -> None:
    env.add(order(1))
    unauthorized = error_body("Unauthorized", "Access to requested resource is denied.")
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(status=403, body=unauthorized)  # refused before acting: no feed
    env.amazon.token()
    env.amazon.create_feed(feed_id=FEED_ID)

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == SEND + ["token", "createFeed"]
    first, second = env.amazon.requests_of("createFeed")
    assert first.body == second.body
    assert env.batches()[0]["feed_id"] == FEED_ID


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 503}, id="503"),
        pytest.param({"body": requests.ReadTimeout("read timed out")}, id="read-timeout"),
        pytest.param({"body": requests.ConnectionError("reset")}, id="connection-reset"),
        pytest.param({"status": 202, "body": {"no": "feedId"}}, id="202-without-feed-id"),
    ],
)
def test_create_feed_outcome_unknown_leaves_the_batch_submitting(env: Env, failure: dict) -> None:
    env.add(order(1), order(2))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(**failure)

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == SEND  # never repeated blindly
    (batch,) = env.batches()
    assert batch["state"] == "submitting"
    assert batch["submit_started_at"] is not None
    assert batch["last_error"]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}
    assert "getFeeds" in result.stderr


# ---------------------------------------------------------------------------------- reconciliation


def lost_submission(env: Env, *order_nos: int) -> dict:
    """A run whose createFeed answer was lost (500): the batch stays submitting."""
    env.add(*(order(n) for n in order_nos))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(status=500)
    env.notify()
    (batch,) = env.batches("submitting")
    env.amazon.reset_calls()
    return batch


def test_lost_submission_is_adopted_when_amazon_shows_one_unclaimed_feed(env: Env) -> None:
    # an earlier batch already owns feed 4001: it is no candidate
    env.store.db.execute(
        "INSERT INTO batches (store, state, created_at, updated_at, encoding, content_type, feed, "
        "row_count, order_count, feed_id) VALUES (?, 'done', ?, ?, 'utf-8', ?, x'', 0, 0, '4001')",
        [STORE, "2026-11-27T04:40:00+00:00", "2026-11-27T04:40:00+00:00", UTF8_TSV],
    )
    env.store.db.conn.commit()
    batch = lost_submission(env, 1, 2)
    submitted = from_db(batch["submit_started_at"])
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.get_feeds(
        [feeds_entry("4001", submitted), feeds_entry("4002", submitted, "IN_PROGRESS")]
    )

    result = env.cli("-v", "notify", "run")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == ["token", "getFeeds"]  # found, never sent again
    (query,) = env.amazon.requests_of("getFeeds")
    params = parse_qs(urlsplit(query.url).query)
    assert params["feedTypes"] == [FEED_TYPE]
    assert params["marketplaceIds"] == [JP]
    since = params["createdSince"][0]
    assert since <= submitted.strftime("%Y-%m-%dT%H:%M:%SZ")
    adopted = env.store.get_batch(batch["id"])
    assert (adopted["state"], adopted["feed_id"]) == ("submitted", "4002")
    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}
    assert [h["feed_id"] for h in env.history("A00001")] == ["4002"]
    assert "4002" in result.stderr


def test_lost_submission_waits_and_blocks_new_sends_before_ten_minutes(env: Env) -> None:
    batch = lost_submission(env, 1)
    env.add(order(2))
    env.clock.advance(minutes=9, seconds=59)
    env.amazon.token()
    env.amazon.get_feeds([])

    result = env.notify(force=True)

    assert env.amazon.ops() == ["token", "getFeeds"]  # no createFeedDocument: nothing new sent
    assert env.store.get_batch(batch["id"])["state"] == "submitting"
    assert env.statuses() == {"A00001": "in_progress", "A00002": "pending"}
    assert any("wait for the next run" in str(n) for n in result.runs[0].notes)
    assert len(env.batches()) == 1


def test_lost_submission_with_no_feed_after_ten_minutes_is_sent_again_in_the_same_run(
    env: Env,
) -> None:
    batch = lost_submission(env, 1)
    env.add(order(2))
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.get_feeds([])
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(feed_id="5002")

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == ["token", "getFeeds", "createFeedDocument", "upload", "createFeed"]
    assert env.store.get_batch(batch["id"])["state"] == "released"
    assert sorted(r[0] for r in feed_row(env.amazon.uploaded()[0])) == [
        mall_order_id(1),
        mall_order_id(2),
    ]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}
    assert history_statuses(env, "A00001") == ["in_progress", "pending", "in_progress"]
    assert env.history("A00001")[-1]["feed_id"] == "5002"


def test_lost_submission_with_two_candidates_is_result_failed(env: Env) -> None:
    batch = lost_submission(env, 1, 2)
    submitted = from_db(batch["submit_started_at"])
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.get_feeds([feeds_entry("6001", submitted), feeds_entry("6002", submitted)])

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == ["token", "getFeeds"]
    assert env.store.get_batch(batch["id"])["state"] == "result_failed"
    for order_no in ("A00001", "A00002"):
        current = env.get(order_no)
        assert current["status"] == "result_failed"
        assert "Seller Central" in current["message"]
    assert "6001" in result.stderr and "6002" in result.stderr


def test_getfeeds_failing_keeps_waiting(env: Env) -> None:
    batch = lost_submission(env, 1)
    env.add(order(2))
    env.clock.advance(minutes=30)
    env.amazon.token()
    env.amazon.get_feeds(status=500)

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == ["token"] + ["getFeeds"] * 5
    assert env.store.get_batch(batch["id"])["state"] == "submitting"
    assert env.statuses() == {"A00001": "in_progress", "A00002": "pending"}


# ---------------------------------------------------------------------------------- crashes


class Crash(RuntimeError):
    pass


CRASH_POINTS = [
    "create_batch",
    "document_created",
    "uploaded",
    "submitting",
    "feed_created",
    "mark_submitted",
]


def inject_crash(mp: pytest.MonkeyPatch, point: str, exc: type[BaseException]) -> None:
    """Raise ``exc`` right after the commit named ``point`` (the step has taken effect)."""
    if point == "create_batch":
        original = Store.create_batch

        def create_batch(self, **kwargs):
            original(self, **kwargs)
            raise exc("crash after create_batch")

        mp.setattr(Store, "create_batch", create_batch)
    elif point == "mark_submitted":
        original_mark = Store.mark_submitted

        def mark_submitted(self, *args, **kwargs):
            original_mark(self, *args, **kwargs)
            raise exc("crash after mark_submitted")

        mp.setattr(Store, "mark_submitted", mark_submitted)
    elif point == "feed_created":
        # createFeed answered: Amazon holds the feed, its id never reached the database
        original_create = AmazonClient.create_feed

        def create_feed(self, *args, **kwargs):
            original_create(self, *args, **kwargs)
            raise exc("crash after createFeed answered")

        mp.setattr(AmazonClient, "create_feed", create_feed)
    else:
        original_update = Store.update_batch

        def update_batch(self, batch_id, changes, now):
            row = original_update(self, batch_id, changes, now)
            if changes.get("state") == point:
                raise exc(f"crash after {point}")
            return row

        mp.setattr(Store, "update_batch", update_batch)


def assert_resolved(env: Env) -> None:
    """No order left in 連携中 without a submitted batch, none in two feeds, history complete."""
    per_order: Counter = Counter()
    for batch in env.batches("submitted", "done"):
        assert batch["feed_id"]
        per_order.update({r["order_no"] for r in env.store.batch_rows(batch["id"])})
    assert all(n == 1 for n in per_order.values()), per_order
    for current in env.store.iter_orders():
        if current["status"] == "in_progress":
            batch = env.store.get_batch(current["batch_id"])
            assert batch["state"] == "submitted", (current["order_no"], batch["state"])
        rows = env.history(current["order_no"])
        assert rows, current["order_no"]
        assert rows[-1]["status"] == current["status"]
        # every release is followed by the next attempt, every attempt starts 連携中
        assert rows[0]["status"] == "in_progress"


@pytest.mark.parametrize("exc", [Crash, KeyboardInterrupt], ids=["error", "interrupt"])
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_after_any_commit_is_resolved_by_the_next_run(
    env: Env, point: str, exc: type[BaseException]
) -> None:
    env.add(order(1), order(2), order(3))
    env.amazon.send_ok(feed_id="8001")
    with pytest.MonkeyPatch.context() as mp:
        inject_crash(mp, point, exc)
        if exc is KeyboardInterrupt:  # ends the whole job, as a kill would
            with pytest.raises(exc):
                env.notify()
        else:  # an unexpected error is this store's failed run, recorded; the job goes on
            (run,) = env.notify().runs
            (problem,) = run.problems
            assert str(problem).startswith("unexpected Crash: crash after")
            assert env.store.latest_run(STORE, "notify")["outcome"] == "failed"
    # the next run is a new process: no crash injected
    first_feeds = len(env.amazon.requests_of("createFeed"))
    crashed = env.batches()[0]
    env.amazon.reset_calls()

    # the next cron run, 15 minutes later
    env.clock.advance(minutes=15)
    env.amazon.mock.reset()
    amazon_has = first_feeds == 1 and point in ("feed_created", "mark_submitted")
    env.amazon.token()
    submitted = from_db(crashed["submit_started_at"]) if crashed["submit_started_at"] else None
    env.amazon.get_feeds([feeds_entry("8001", submitted)] if amazon_has and submitted else [])
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(feed_id="8002")
    env.notify()

    assert_resolved(env)
    assert env.statuses() == dict.fromkeys(["A00001", "A00002", "A00003"], "in_progress")
    created = len(env.amazon.requests_of("createFeed"))
    # a feed Amazon already holds is found, never created again; otherwise it is sent once now
    assert first_feeds + created == 1
    (live,) = env.batches("submitted")
    assert live["feed_id"] == ("8001" if first_feeds else "8002")
    for order_no in ("A00001", "A00002", "A00003"):
        assert env.history(order_no)[-1]["feed_id"] == live["feed_id"]


@pytest.mark.parametrize("point", ["uploaded", "feed_created"])
def test_a_store_stopped_after_a_crash_still_has_its_batch_resolved(env: Env, point: str) -> None:
    env.add(order(1))
    env.amazon.send_ok(feed_id="8001")
    with pytest.MonkeyPatch.context() as mp:
        inject_crash(mp, point, Crash)
        assert env.notify().failed
    crashed = env.batches()[0]
    env.store.set_started(STORE, False)  # the seller stops the store before the next cron run
    env.amazon.reset_calls()
    env.clock.advance(minutes=15)
    env.amazon.mock.reset()
    env.amazon.token()
    submitted = crashed["submit_started_at"]
    env.amazon.get_feeds([feeds_entry("8001", from_db(submitted))] if submitted else [])

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    if point == "uploaded":  # createFeed never called: released, and not sent while stopped
        assert env.amazon.ops() == []
        assert env.status("A00001") == "pending"
    else:  # Amazon holds the feed: adopted, so results fetch can finish it
        assert env.amazon.ops() == ["token", "getFeeds"]
        assert env.store.get_batch(crashed["id"])["feed_id"] == "8001"
    assert "createFeed" not in env.amazon.ops()
    assert_resolved(env)


def test_an_interrupted_cli_run_exits_130_and_frees_the_lock(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    with pytest.MonkeyPatch.context() as mp:
        inject_crash(mp, "uploaded", KeyboardInterrupt)
        result = env.cli("notify", "run")

    assert result.exit_code == 130
    assert "interrupted" in result.stderr
    assert env.status("A00001") == "in_progress"
    with RunLock(env.db_path):  # released on the way out
        pass


# ---------------------------------------------------------------------------------- cost


@pytest.mark.parametrize("count", [10, 2000])
def test_a_run_costs_four_amazon_calls_whatever_the_number_of_orders(env: Env, count: int) -> None:
    env.add(*(order(n) for n in range(1, count + 1)))
    env.amazon.send_ok()

    result = env.notify()

    assert env.amazon.ops() == SEND
    assert result.runs[0].sent == count
    assert len(feed_row(env.amazon.uploaded()[0])) == count
    assert Counter(env.statuses().values()) == {"in_progress": count}


# ------------------------------------------------------------------------------ one store failing


def test_a_broken_store_template_fails_that_store_only(env: Env) -> None:
    template = env.db_path.parent / "broken.tsv.j2"
    template.write_text("{{ no_such_variable }}\n", encoding="utf-8")
    env.add_store("amazon-a", template=str(template))  # runs first: names in order
    env.add(order(1, store="amazon-a"), order(2))
    env.amazon.send_ok()

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert "amazon-a" in result.stderr and "no_such_variable" in result.stderr
    assert env.amazon.ops() == SEND  # amazon-main's; amazon-a failed before calling Amazon
    assert sent_order_ids(env) == [mall_order_id(2)]
    assert env.statuses() == {"A00001": "pending", "A00002": "in_progress"}
    assert {r["store"]: r["outcome"] for r in env.runs("notify")} == {
        "amazon-a": "failed",
        STORE: "ok",
    }
    env.amazon.reset_calls()
    dry = env.cli("notify", "run", "--dry-run")
    assert dry.exit_code == 1
    assert "no_such_variable" in dry.stderr
    assert env.amazon.ops() == []


def test_after_an_unknown_create_feed_no_further_feed_is_sent_in_that_run(env: Env) -> None:
    # three feeds in one run (as above 10 MiB): the first createFeed answer is lost
    from crossship.amazon.mall import AmazonSession

    env.monkeypatch.setattr(
        AmazonSession, "render", lambda self, lines: self.renderer.split(lines, max_bytes=700)
    )
    env.add(order(1), order(2), order(3), order(4), order(5), order(6))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(status=500)

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == SEND  # the other feeds wait: one lost answer to reconcile, not two
    (batch,) = env.batches()
    assert batch["state"] == "submitting"
    waiting = [o for o, s in env.statuses().items() if s == "pending"]
    assert waiting and len(waiting) + batch["order_count"] == 6
    assert all(env.history(o) == [] for o in waiting)

    # ten minutes on, Amazon shows no feed: everything goes in the next run
    env.clock.advance(minutes=15)
    env.amazon.mock.reset()
    env.amazon.reset_calls()
    env.amazon.token()
    env.amazon.get_feeds([])
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(feed_id="7001")
    env.amazon.create_feed(feed_id="7002")
    env.amazon.create_feed(feed_id="7003")
    env.amazon.create_feed(feed_id="7004")

    assert env.cli("notify", "run").exit_code == 0
    assert set(env.statuses().values()) == {"in_progress"}
    assert sorted(sent_order_ids(env)) == [mall_order_id(n) for n in range(1, 7)]


def test_a_feed_over_the_size_limit_is_split_without_dividing_an_order(env: Env) -> None:
    from crossship.amazon.mall import AmazonSession

    env.monkeypatch.setattr(
        AmazonSession, "render", lambda self, lines: self.renderer.split(lines, max_bytes=800)
    )
    env.add(
        *(order(n) for n in range(1, 7)),
        items=[item("A00002", line, f"2000000000000{line}") for line in (1, 2, 3)],
    )
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    for n in range(1, 7):
        env.amazon.create_feed(feed_id=f"710{n}")

    result = env.notify()

    feeds = env.amazon.uploaded()
    assert len(feeds) > 1
    assert all(len(body) <= 800 for body in feeds)
    assert env.amazon.ops() == ["token"] + SEND[1:] * len(feeds)  # one token for the run
    owners = [{row[0] for row in feed_row(body)} for body in feeds]
    assert sum(len(o) for o in owners) == 6  # each order in exactly one feed
    (with_two,) = [body for body in feeds if mall_order_id(2).encode() in body]
    assert [r[1] for r in feed_row(with_two) if r[0] == mall_order_id(2)] == [
        "20000000000001",
        "20000000000002",
        "20000000000003",
    ]
    assert result.runs[0].sent == 6
    assert len(result.runs[0].feed_ids) == len(feeds)
    assert set(env.statuses().values()) == {"in_progress"}
    assert {b["state"] for b in env.batches()} == {"submitted"}


def test_orders_imported_with_the_cli_in_cp932_are_sent(env: Env) -> None:
    csv_text = (
        "管理番号,店舗,注文番号,処理フェーズ,管理区分,FBA,発送日,配送便,配送番号,注文商品番号,数量\n"
        f"10001,{STORE},{mall_order_id(1)},{TARGET},通常,0,2026-11-24,{YAMATO},401234567890,"
        "38204417562913,1\n"
        f"10001,{STORE},{mall_order_id(1)},{TARGET},通常,0,2026-11-24,{YAMATO},401234567890,"
        "38204417562914,2\n"
        f"10002,{STORE},{mall_order_id(2)},{TARGET},保留,0,2026-11-24,{YAMATO},401234567891,,\n"
    )
    path = env.db_path.parent / "orders.csv"
    path.write_bytes(csv_text.encode("cp932"))
    imported = env.cli("orders", "import", str(path))
    assert imported.exit_code == 0, imported.stderr
    env.amazon.send_ok()

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    (body,) = env.amazon.uploaded()
    assert [(r[0], r[1], r[2], r[3]) for r in feed_row(body)] == [
        (mall_order_id(1), "38204417562913", "1", "2026-11-24"),
        (mall_order_id(1), "38204417562914", "2", "2026-11-24"),
    ]
    assert env.statuses() == {"10001": "in_progress", "10002": "pending"}


def test_an_order_changed_while_the_feed_is_prepared_is_sent_next_run_with_fresh_data(
    env: Env,
) -> None:
    """An import racing the run (between selection and the batch) never ships stale data, and
    costs only the changed order its place in this run's feed (issue 10, decision 1)."""
    from crossship.malls import open_session

    env.add(order(1), order(2))

    def racing_session(context):
        session = open_session(context)
        clock, db_path = context.clock, context.db_path
        render = session.render

        def render_then_race(lines):
            rendered = render(lines)
            later = to_db(clock() + timedelta(milliseconds=5))
            with Store(db_path) as other:  # another process re-imports order 2 meanwhile
                other.import_orders([order(2, tracking_number="NEW-TRACKING")], [], later)
            return rendered

        session.render = render_then_race
        return session

    env.amazon.send_ok()
    result = notify_run(env.store, env.db_path, env.clock, NotifyOptions(), racing_session)

    (body,) = env.amazon.uploaded()  # one feed, without the changed order
    assert [r[0] for r in feed_row(body)] == [mall_order_id(1)]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "pending"}
    assert any("changed while the feed was prepared" in str(n) for n in result.runs[0].notes)
    env.amazon.mock.reset()
    env.amazon.send_ok(feed_id="5003")
    env.clock.advance(minutes=15)
    env.notify()
    (body,) = env.amazon.uploaded()
    assert b"NEW-TRACKING" in body and mall_order_id(1).encode() not in body


@pytest.mark.parametrize("token_status", [200, 400])
def test_the_store_s_session_is_closed_after_its_run_whatever_happened(
    env: Env, token_status: int
) -> None:
    """Each store's connections are released when its run ends, failed or not: 500 stores a
    cycle must not leave 500 connection pools for the garbage collector."""
    from crossship.amazon.mall import AmazonSession

    opened: list[AmazonSession] = []
    closed: list[AmazonSession] = []

    class Watched(AmazonSession):
        def close(self) -> None:
            closed.append(self)
            super().close()

    def factory(context):
        opened.append(Watched.open(context))
        return opened[-1]

    env.add(order(1))
    env.amazon.token(status=token_status)
    env.amazon.send_ok()
    result = notify_run(env.store, env.db_path, env.clock, NotifyOptions(), factory)
    env.clock.advance(minutes=15)
    env.amazon.result(notify_helpers.report_en(1, 1))
    env.fetch(session_factory=factory)

    assert result.failed == (token_status != 200)
    assert opened and closed == opened
