"""Identifiers from a hostile (or broken) Amazon answer are refused as bad answers (issue 10,
minor): a feedId with ``/`` must never be stored nor put into a later request's path, where it
blocked every later fetch."""

from __future__ import annotations

import notify_helpers
from notify_helpers import FEEDS_URL, STORE, Env, feeds_entry, order

from crossship.timeutil import from_db

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

BAD = "../../../feeds/2021-06-30/documents/x"


def test_a_create_feed_answer_with_an_unsafe_feed_id_is_no_answer(env: Env) -> None:
    env.add(order(1))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(body={"feedId": BAD})

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    (batch,) = env.batches()
    # a feed may exist: never resent blindly, reconciled through getFeeds
    assert (batch["state"], batch["feed_id"]) == ("submitting", None)
    assert "unusable feedId" in result.stderr

    env.amazon.mock.reset()
    env.clock.advance(minutes=15)
    env.amazon.token()
    submitted = from_db(batch["submit_started_at"])
    env.amazon.get_feeds([feeds_entry(BAD, submitted), feeds_entry("a/b", submitted)])
    result = env.cli("notify", "run")
    assert "Traceback" not in result.stderr
    assert env.store.get_batch(batch["id"])["feed_id"] is None  # neither is adopted


def test_a_result_document_id_with_a_slash_is_a_failed_fetch_not_a_crash(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()
    env.amazon.mock.reset()
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.get_feed(result_document_id=BAD)

    result = env.cli("results", "fetch")

    assert result.exit_code == 1
    assert "Traceback" not in result.stderr and "resultFeedDocumentId" in result.stderr
    assert env.amazon.ops() == ["token", "getFeed"]  # the bad id went into no request
    assert env.status("A00001") == "in_progress"


def test_a_stored_unsafe_feed_id_ends_result_failed_instead_of_blocking_every_fetch(
    env: Env,
) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()
    # as an older crossship stored it
    env.store.db.execute("UPDATE batches SET feed_id = ?", ["x/y"])
    env.store.db.conn.commit()
    for _ in range(3):
        env.amazon.mock.reset()
        env.clock.advance(minutes=15)
        env.amazon.token()
        result = env.cli("results", "fetch")
        assert result.exit_code == 1
        assert "Traceback" not in result.stderr
        assert not any(FEEDS_URL in c.request.url for c in env.amazon.mock.calls)
    assert env.status("A00001") == "result_failed"
    assert env.batches()[0]["store"] == STORE


def test_a_400_on_the_getfeeds_window_is_never_taken_for_no_feed(env: Env) -> None:
    # issue 10 item 3: a refused window says nothing about whether the feed exists
    env.add(order(1))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(status=500)
    env.notify()
    for _ in range(3):  # long past the 10 minutes after which a batch with no feed is released
        env.amazon.mock.reset()
        env.clock.advance(minutes=15)
        env.amazon.token()
        env.amazon.get_feeds(status=400)
        result = env.cli("notify", "run")
        assert result.exit_code == 1
        assert "Traceback" not in result.stderr
    (batch,) = env.batches()
    assert batch["state"] == "submitting"  # never released, so never sent twice
    assert env.status("A00001") == "in_progress"
    assert not any("createFeedDocument" in op for op in env.amazon.ops())
