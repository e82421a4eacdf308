"""The 15-minute guard, --force, --dry-run and the run lock (SPEC §5).

Time comes from an injected clock (``obj={"clock": ...}``); the lock is held by a real second
process, as cron would have it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import notify_helpers
import pytest
from notify_helpers import FEED_ID, SAMPLES, STORE, T0, Env, feed_row, mall_order_id, order

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

SEND = ["token", "createFeedDocument", "upload", "createFeed"]


def first_run(env: Env) -> None:
    """A notify run at T0 (13:45 in Tokyo) that sends A00001."""
    env.add(order(1))
    env.amazon.send_ok()
    result = env.cli("notify", "run")
    assert result.exit_code == 0, result.stderr
    env.amazon.reset_calls()
    env.add(order(2))


def at(env: Env, **after_t0: float) -> None:
    env.clock.now = T0 + timedelta(**after_t0)


# ---------------------------------------------------------------------------------- the guard


def test_a_run_more_than_60_seconds_early_is_skipped(env: Env) -> None:
    first_run(env)
    at(env, minutes=13, seconds=59)  # 61 s before the 15 minutes are up

    result = env.cli("notify", "run")

    assert result.exit_code == 0
    assert env.amazon.ops() == []
    assert "skipped, not due until" in result.stderr
    assert env.status("A00002") == "pending"
    assert len(env.runs("notify")) == 1


def test_a_run_60_seconds_early_counts_as_due(env: Env) -> None:
    first_run(env)
    at(env, minutes=14)  # 13:45 → 13:59: cron fired up to 60 s early
    env.amazon.send_ok(feed_id="9002")

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == SEND
    assert env.status("A00002") == "in_progress"


def test_the_next_cron_run_is_due_when_the_last_one_started_late(env: Env) -> None:
    env.clock.now = T0 + timedelta(seconds=40)  # cron's 13:45 run started at 13:45:40
    first_run(env)
    at(env, minutes=15)  # 14:00:00 is 14 min 20 s later
    env.amazon.send_ok(feed_id="9002")

    result = env.cli("notify", "run")

    assert env.amazon.ops() == SEND
    assert result.exit_code == 0


def test_force_runs_before_the_interval(env: Env) -> None:
    first_run(env)
    at(env, minutes=1)
    env.amazon.send_ok(feed_id="9002")

    result = env.cli("notify", "run", "--force")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == SEND
    assert env.status("A00002") == "in_progress"


def test_a_run_that_was_not_due_does_not_move_the_guard(env: Env) -> None:
    first_run(env)
    at(env, minutes=10)
    assert env.cli("notify", "run").exit_code == 0  # skipped
    at(env, minutes=15)
    env.amazon.send_ok(feed_id="9002")

    result = env.cli("notify", "run")

    assert env.amazon.ops() == SEND  # due: 15 minutes after the last run that worked
    assert result.exit_code == 0
    assert [r["started_at"] for r in env.runs("notify")] == [
        (T0 + timedelta(minutes=15)).isoformat(timespec="microseconds"),
        T0.isoformat(timespec="microseconds"),
    ]


def test_a_store_interval_can_be_changed(env: Env) -> None:
    assert env.cli("config", "store", "set", STORE, "--interval", "30").exit_code == 0
    first_run(env)
    at(env, minutes=15)
    assert env.cli("notify", "run").exit_code == 0
    assert env.amazon.ops() == []
    at(env, minutes=29)
    env.amazon.send_ok(feed_id="9002")

    env.cli("notify", "run")

    assert env.amazon.ops() == SEND


def test_each_job_has_its_own_guard(env: Env) -> None:
    first_run(env)
    env.amazon.token()
    env.amazon.get_feed(processing_status="IN_QUEUE", result_document_id=None)

    result = env.cli("results", "fetch")  # right after notify run, same minute

    assert result.exit_code == 0
    assert env.amazon.ops() == ["token", "getFeed"]
    at(env, minutes=5)
    env.amazon.reset_calls()
    assert env.cli("results", "fetch").exit_code == 0
    assert env.amazon.ops() == []  # results fetch has its own 15 minutes


def test_results_fetch_force_overrides_its_guard(env: Env) -> None:
    first_run(env)
    env.amazon.token()
    env.amazon.get_feed(processing_status="IN_QUEUE", result_document_id=None)
    env.cli("results", "fetch")
    at(env, minutes=1)
    env.amazon.reset_calls()

    env.cli("results", "fetch", "--force")

    assert env.amazon.ops() == ["token", "getFeed"]


# ---------------------------------------------------------------------------------- dry run


def test_dry_run_prints_the_feed_and_changes_nothing(env: Env) -> None:
    first_run(env)
    env.add(order(3, ship_date=None))  # would fail its check: not marked error by a dry run
    history = env.history()
    at(env, minutes=1)  # not due: a dry run ignores the guard

    result = env.cli("notify", "run", "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == []
    assert result.stdout_bytes.startswith(
        (SAMPLES / "jp-shipping-confirmation-template-header_UTF8.tsv").read_bytes()
    )
    assert [r[0] for r in feed_row(result.stdout_bytes)] == [mall_order_id(2)]
    assert "would send 1 rows" in result.stderr
    assert "would be エラー: A00003: 発送日 (ship_date) is missing" in result.stderr
    assert env.history() == history
    assert env.statuses() == {"A00001": "in_progress", "A00002": "pending", "A00003": "pending"}
    assert len(env.runs("notify")) == 1
    assert len(env.batches()) == 1
    # the guard's clock is untouched: a normal run right now is still not due
    env.cli("notify", "run")
    assert env.amazon.ops() == []
    at(env, minutes=15)
    env.amazon.send_ok(feed_id="9002")
    env.cli("notify", "run")
    assert env.amazon.ops() == SEND


def test_dry_run_with_nothing_to_send(env: Env) -> None:
    result = env.cli("notify", "run", "--dry-run")

    assert result.exit_code == 0
    assert result.stdout == ""
    assert "nothing would be sent" in result.stderr
    assert env.amazon.ops() == []
    assert env.runs() == []


def test_dry_run_of_a_cp932_store_prints_shift_jis_bytes(env: Env) -> None:
    env.store.update_store(STORE, {"encoding": "cp932"})
    env.add(order(1))

    result = env.cli("notify", "run", "--dry-run")

    assert result.stdout_bytes.startswith(
        (SAMPLES / "jp-shipping-confirmation-template-header_CP932.tsv").read_bytes()
    )
    assert "宅急便".encode("cp932") in result.stdout_bytes


# ---------------------------------------------------------------------------------- the lock


@contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Another process holding an flock on ``path`` until the block ends."""
    code = textwrap.dedent(
        f"""
        import fcntl, os, sys
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("locked", flush=True)
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.mark.parametrize("job", [["notify", "run"], ["results", "fetch"]])
def test_a_held_lock_exits_75_with_one_line_and_does_nothing(env: Env, job: list[str]) -> None:
    env.add(order(1))
    env.amazon.send_ok()

    with held_lock(env.db_path.with_name(env.db_path.name + ".lock")):
        result = env.cli(*job, "--force")

    assert result.exit_code == 75
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "another crossship run holds the lock" in result.stderr
    assert env.amazon.ops() == []
    assert env.status("A00001") == "pending"
    assert env.runs() == [] and env.history() == []


def test_the_lock_is_beside_the_database_never_the_database_and_is_kept(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    lock = env.db_path.with_name(env.db_path.name + ".lock")

    with held_lock(env.db_path):  # a lock on the database file itself is not ours
        result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == SEND
    assert lock.exists()  # never deleted
    assert oct(lock.stat().st_mode & 0o777) == oct(0o600)
    env.amazon.reset_calls()
    with held_lock(lock):
        assert env.cli("notify", "run", "--force").exit_code == 75
    assert env.amazon.ops() == []
    assert env.batches()[0]["feed_id"] == FEED_ID


def test_store_option_limits_the_run_to_that_store(env: Env) -> None:
    env.add_store("amazon-second")
    env.add(order(1), order(2, store="amazon-second"))
    env.amazon.send_ok()

    result = env.cli("notify", "run", "--store", "amazon-second")

    assert result.exit_code == 0, result.stderr
    assert [r[0] for r in feed_row(env.amazon.uploaded()[0])] == [mall_order_id(2)]
    assert env.statuses() == {"A00001": "pending", "A00002": "in_progress"}
    assert [r["store"] for r in env.runs()] == ["amazon-second"]
    # amazon-main's guard was not touched: it is due now
    env.amazon.reset_calls()
    env.amazon.mock.reset()
    env.amazon.send_ok(feed_id="9002")
    env.cli("notify", "run")
    assert env.amazon.ops() == SEND
    assert env.status("A00001") == "in_progress"


def test_unknown_store_is_a_usage_error(env: Env) -> None:
    result = env.cli("notify", "run", "--store", "nosuch")

    assert result.exit_code == 2
    assert "no store named 'nosuch'" in result.stderr
    assert env.amazon.ops() == []


def test_a_run_with_no_started_store_says_so(tmp_path) -> None:
    from click.testing import CliRunner

    from crossship.cli import cli

    assert CliRunner().invoke(cli, ["--db", str(tmp_path / "c.db"), "init"]).exit_code == 0
    for job in (["notify", "run"], ["results", "fetch"]):
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "c.db"), *job])
        assert result.exit_code == 0
        assert "no Amazon store is started" in result.stderr
        quiet = CliRunner().invoke(cli, ["--db", str(tmp_path / "c.db"), "-q", *job])
        assert quiet.exit_code == 0 and quiet.stderr == ""
