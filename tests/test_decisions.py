"""The three decisions of issue 10: a change to one order drops only that order from the feed;
an unchanged re-import is no change; -q says which orders need the operator and exits 1; a batch
dropped before createFeed keeps no copy of its feed."""

from __future__ import annotations

import shlex

import notify_helpers
from notify_helpers import NO_CODE, Env, order

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


# ------------------------------------------------------------- -q names what needs the operator


def test_quiet_run_leaving_orders_for_the_operator_says_so_per_store_and_exits_1(
    env: Env,
) -> None:
    env.add_store("x;echo pwned")  # a hostile store name: the command must stay one command
    env.add(
        order(1, carrier=NO_CODE),
        order(2, ship_date=None),
        order(3),
        order(4, store="x;echo pwned", carrier=NO_CODE),
    )
    env.amazon.send_ok()

    result = env.cli("-q", "notify", "run")

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # one per store, nothing else
    main, hostile = sorted(lines, key=lambda line: not line.startswith("amazon-main"))
    assert main.startswith("amazon-main: 2 orders need you (エラー 2): ")
    command = main.split(": ", 2)[2]
    listed = env.cli(*shlex.split(command)[1:], "--format", "jsonl")
    assert listed.exit_code == 0, listed.stderr
    assert sorted(line.split('"order_no": "')[1][:6] for line in listed.stdout.splitlines()) == [
        "A00001",
        "A00002",
    ]
    words = shlex.split(hostile.split(": ", 2)[2])
    assert words[:5] == ["crossship", "orders", "list", "--store", "x;echo pwned"]


def test_quiet_run_with_nothing_for_the_operator_stays_silent(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    result = env.cli("-q", "notify", "run")
    assert result.exit_code == 0 and result.stderr == ""


def test_suggested_commands_quote_a_hostile_store_name(env: Env) -> None:
    env.add_store("x;echo pwned", started=False)
    result = env.cli("notify", "run", "--store", "x;echo pwned")
    assert "crossship auto start 'x;echo pwned'" in result.stderr


# ------------------------------------------------------------------ a change drops only that order


def test_re_importing_an_unchanged_order_is_no_change(env: Env) -> None:
    from notify_helpers import item

    env.add(order(1), order(2), items=[item("A00001", 1, "11111111111111", 2)])
    before = {o: env.get(o)["updated_at"] for o in ("A00001", "A00002")}
    env.clock.advance(minutes=5)

    env.add(order(1), order(2), items=[item("A00001", 1, "11111111111111", 2)])
    assert {o: env.get(o)["updated_at"] for o in before} == before

    env.clock.advance(minutes=5)
    env.add(order(1), items=[item("A00001", 1, "11111111111111", 3)])  # a quantity changed
    env.add(order(2, tracking_number="999900000000"))  # a field changed
    assert all(env.get(o)["updated_at"] > before[o] for o in before)


def test_an_import_cron_re_reading_the_same_file_starves_no_store(env: Env) -> None:
    from datetime import timedelta

    from crossship.malls import open_session
    from crossship.notify import NotifyOptions, notify_run
    from crossship.store import Store
    from crossship.timeutil import to_db

    env.add(order(1), order(2))

    def racing_session(context):
        session = open_session(context)
        render = session.render

        def render_then_race(lines):
            rendered = render(lines)
            later = to_db(context.clock() + timedelta(seconds=1))
            with Store(context.db_path) as other:  # the import cron: the same file again
                other.import_orders([order(1), order(2)], [], later)
            return rendered

        session.render = render_then_race
        return session

    env.amazon.send_ok()
    notify_run(env.store, env.db_path, env.clock, NotifyOptions(), racing_session)

    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}
    assert len(env.amazon.uploaded()) == 1
