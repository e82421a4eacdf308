"""`history prune --before DATE [--vacuum]` and `config history set --keep-days N` applied by
`results fetch` (SPEC §15): old history rows, finished batches with their feeds and reports and
old run records go; orders, open or waiting batches and each store's newest run stay."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import notify_helpers
import pytest
from notify_helpers import STORE, T0, Env, order, report_en

from crossship import prune

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock
SUB = "amazon-sub"


def two_eras(env: Env) -> dict[str, int]:
    """At T0 two batches: amazon-main's (done at T0+15m) and amazon-sub's (still waiting);
    at T0+100d a third, submitted. Returns the batch ids by name."""
    env.add_store(SUB)
    env.add(order(1), order(2, store=SUB))
    env.amazon.send_ok(feed_id="1001")
    env.notify(store=STORE)  # one store at a time: each gets its own feed id
    env.amazon.mock.reset()
    env.amazon.send_ok(feed_id="1002")
    env.notify(store=SUB)
    env.clock.advance(minutes=15)
    env.amazon.get_feed("1001")
    env.amazon.get_document()
    env.amazon.download(report_en(1, 1))
    env.amazon.get_feed("1002", processing_status="IN_PROGRESS", result_document_id=None)
    env.fetch()
    env.store.set_started(SUB, False)
    env.clock.now = T0 + timedelta(days=100)
    env.amazon.mock.reset()
    env.add(order(3))
    env.amazon.send_ok(feed_id="1003")
    env.notify(store=STORE)
    ids = {b["feed_id"]: b["id"] for b in env.batches()}
    assert [b["state"] for b in env.batches()] == ["done", "submitted", "submitted"]
    return {"done": ids["1001"], "waiting": ids["1002"], "new": ids["1003"]}


def table(env: Env, sql: str) -> list:
    return [tuple(r) for r in env.store.db.execute(sql).fetchall()]


@pytest.mark.parametrize("chunk", [1, 2, None], ids=["chunk-1", "chunk-2", "default-chunks"])
def test_prune_deletes_old_history_finished_batches_and_runs_only(
    env: Env, monkeypatch: pytest.MonkeyPatch, chunk: int | None
) -> None:
    if chunk:
        for name in ("HISTORY_CHUNK", "BATCH_CHUNK", "RUN_CHUNK"):
            monkeypatch.setattr(prune, name, chunk)
    ids = two_eras(env)
    orders_before = table(env, "SELECT * FROM orders ORDER BY order_no")
    runs_before = table(env, "SELECT id, store, job, started_at FROM runs ORDER BY id")

    result = env.cli("history", "prune", "--before", "30d")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("Deleted 3 history rows, 1 finished batches and 1 run records")
    # the orders are untouched, the waiting and the new batch kept with their rows
    assert table(env, "SELECT * FROM orders ORDER BY order_no") == orders_before
    assert [b["id"] for b in env.batches()] == [ids["waiting"], ids["new"]]
    assert table(env, "SELECT DISTINCT batch_id FROM batch_rows ORDER BY 1") == [
        (ids["waiting"],),
        (ids["new"],),
    ]
    assert [(h["order_no"], h["status"]) for h in env.history()] == [("A00003", "in_progress")]
    # run records: amazon-main's notify at T0 went; each store and job keeps its newest
    runs_after = table(env, "SELECT id, store, job, started_at FROM runs ORDER BY id")
    assert [r for r in runs_before if r not in runs_after] == [runs_before[0]]
    assert {(r[1], r[2]) for r in runs_after} == {
        (STORE, "notify"),
        (STORE, "results"),
        (SUB, "notify"),
        (SUB, "results"),
    }

    again = env.cli("history", "prune", "--before", "30d")
    assert again.stderr.startswith("Deleted 0 history rows, 0 finished batches and 0 run records")


def test_prune_with_vacuum_gives_the_space_back(env: Env) -> None:
    env.add(*(order(n, tracking_number=f"{n:050d}") for n in range(1, 3001)))
    env.amazon.send_ok()
    env.notify()
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.result(report_en(3000, 3000))
    env.fetch()
    env.clock.advance(days=10)
    before = env.db_path.stat().st_size

    result = env.cli("history", "prune", "--before", "1d", "--vacuum")

    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Deleted 6000 history rows, 1 finished batches and 0 run records")
    assert lines[1].startswith("VACUUM: ") and " MB → " in lines[1]
    assert env.db_path.stat().st_size < before / 2
    assert env.store.db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_without_vacuum_the_file_keeps_its_size(env: Env) -> None:
    env.add(*(order(n) for n in range(1, 501)))
    env.amazon.send_ok()
    env.notify()
    env.clock.advance(days=10)
    env.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = env.db_path.stat().st_size

    result = env.cli("history", "prune", "--before", "1d")

    assert "VACUUM" not in result.stderr
    env.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert env.db_path.stat().st_size == before


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ("2030-01-01", "is in the future"),
        ("yesterday", "is not a time"),
        ("", "is not a time"),
    ],
)
def test_a_bad_before_changes_nothing(env: Env, before: str, message: str) -> None:
    ids = two_eras(env)

    result = env.cli("history", "prune", "--before", before)

    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --before") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert len(env.batches()) == len(ids) and len(env.history()) == 4


def test_before_is_required(env: Env) -> None:
    result = env.cli("history", "prune")
    assert result.exit_code == 2 and "--before" in result.stderr


def test_a_budget_stops_early_and_says_more_remain(env: Env) -> None:
    env.add(*(order(n) for n in range(1, 11)))
    env.amazon.send_ok()
    env.notify()
    env.clock.advance(days=2)

    result = prune.prune(env.store, env.clock() - timedelta(days=1), budget=3)

    assert (result.history, result.complete) == (3, False)
    assert "more remain" in result.summary()
    assert len(env.history()) == 7
    assert prune.prune(env.store, env.clock() - timedelta(days=1)).history == 7


def test_history_listing_still_works_beside_prune(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()

    result = env.cli("history", "--format", "json")

    assert result.exit_code == 0
    assert [r["order_no"] for r in json.loads(result.stdout)] == ["A00001"]


# ---------------------------------------------------------------------------------- keep-days


def test_keep_days_is_applied_by_results_fetch(env: Env) -> None:
    ids = two_eras(env)
    configured = env.cli("config", "history", "set", "--keep-days", "30")
    assert configured.exit_code == 0, configured.stderr
    shown = env.cli("config", "history", "show", "--format", "json")
    assert json.loads(shown.stdout) == {"keep_days": 30}
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.get_feed("1003", processing_status="IN_QUEUE", result_document_id=None)

    result = env.cli("results", "fetch", "--store", STORE)

    assert result.exit_code == 0, result.stderr
    assert "history: deleted 3 history rows, 1 finished batches" in result.stderr
    assert [b["id"] for b in env.batches()] == [ids["waiting"], ids["new"]]

    quiet = env.cli("-q", "results", "fetch", "--force", "--store", STORE)
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_keep_days_0_keeps_everything(env: Env) -> None:
    two_eras(env)
    assert env.cli("config", "history", "set", "--keep-days", "30").exit_code == 0
    assert env.cli("config", "history", "set", "--keep-days", "0").exit_code == 0
    env.amazon.token()
    env.amazon.get_feed("1003", processing_status="IN_QUEUE", result_document_id=None)

    result = env.cli("results", "fetch", "--store", STORE, "--force")

    assert "history:" not in result.stderr
    assert len(env.batches()) == 3 and len(env.history()) == 4


def test_keep_days_refuses_a_negative_number(env: Env) -> None:
    result = env.cli("config", "history", "set", "--keep-days", "-1")
    assert result.exit_code == 2
    assert prune.keep_days(env.store) is None


def test_prune_speaks_the_readers_language(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()
    env.clock.advance(days=10)

    result = env.cli("--lang", "ja", "history", "prune", "--before", "1d", "--vacuum")

    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert re.search(
        r"より前の履歴 [1-9][0-9]* 行、完了したバッチ [0-9]+ 件、実行記録 [0-9]+ 件を削除しました$",
        lines[0],
    )
    assert lines[1].startswith("VACUUM (空き領域の解放): ") and " MB → " in lines[1]
    assert "Deleted" not in result.stderr
