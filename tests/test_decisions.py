"""The three decisions of issue 10: a change to one order drops only that order from the feed;
an unchanged re-import is no change; -q says which orders need the operator and exits 1; a batch
dropped before createFeed keeps no copy of its feed."""

from __future__ import annotations

import notify_helpers
from notify_helpers import Env, order

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock


def feed_sizes(env: Env) -> list[tuple[str, int]]:
    """(state, bytes of the kept feed) of every batch, oldest first."""
    rows = env.store.db.execute("SELECT state, length(feed) FROM batches ORDER BY id")
    return [(state, size) for state, size in rows]


# ------------------------------------------------------------------ dropped batches keep no feed


def test_a_batch_dropped_before_create_feed_deletes_its_feed_bytes(env: Env) -> None:
    env.add(order(1), order(2))
    for _ in range(3):  # an outage: every run makes a batch and drops it
        env.amazon.token()
        env.amazon.create_document(status=500)
        assert env.cli("notify", "run", "--force").exit_code == 1
        env.amazon.mock.reset()
        env.clock.advance(minutes=15)

    assert feed_sizes(env) == [("released", 0)] * 3
    assert env.statuses() == {"A00001": "pending", "A00002": "pending"}


def test_a_batch_an_interrupted_run_left_before_create_feed_deletes_its_feed(env: Env) -> None:
    env.add(order(1))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed()
    env.notify()
    # as a kill -9 between the upload and createFeed leaves it
    env.store.db.execute("UPDATE batches SET state = 'uploaded', feed_id = NULL")
    env.store.db.execute("UPDATE orders SET status = 'in_progress'")
    env.store.db.conn.commit()
    env.amazon.mock.reset()
    env.clock.advance(minutes=15)
    env.amazon.send_ok(feed_id="9001")

    env.cli("notify", "run")

    first, second = feed_sizes(env)
    assert first == ("released", 0)
    assert second[0] == "submitted" and second[1] > 0


def test_a_batch_that_reached_create_feed_keeps_its_feed(env: Env) -> None:
    env.add(order(1))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(status=500)  # may have reached Amazon
    env.cli("notify", "run")
    ((state, size),) = feed_sizes(env)
    assert state == "submitting" and size > 0
