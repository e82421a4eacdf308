"""Runs started while a large import holds the database (issue 10, minor): each run waits its
turn (its writes begin IMMEDIATE, so SQLite's busy timeout applies) instead of failing with
"database is locked"."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
import time

import notify_helpers
from notify_helpers import OTHER_PHASE, STORE, Env, order

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock


def import_is_writing(db) -> bool:
    conn = sqlite3.connect(db, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    else:
        conn.rollback()
        return False
    finally:
        conn.close()


def test_runs_during_a_large_import_wait_instead_of_failing(env: Env, tmp_path) -> None:
    big = tmp_path / "big.csv"
    with open(big, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["管理番号", "店舗", "注文番号", "処理フェーズ"])
        for n in range(150_000):
            writer.writerow([f"B{n:07d}", STORE, f"250-{n:07d}-{n:07d}", OTHER_PHASE])
    env.add(*(order(n) for n in range(1, 6)))
    importing = subprocess.Popen(
        [sys.executable, "-m", "crossship", "--db", str(env.db_path), "orders", "import", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not import_is_writing(env.db_path):
            assert importing.poll() is None, importing.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # commands of other processes, started while the import writes: each waits its turn
        others = [
            subprocess.Popen(
                [sys.executable, "-m", "crossship", "--db", str(env.db_path), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in (
                ["config", "store", "set", STORE, "--interval", "20"],
                ["orders", "update", "A00001", "--tracking-number", "400000009999"],
                ["config", "phase", "create", "検品済み"],
            )
        ]
        results = []
        for n in range(1, 4):  # runs one after another, the first while the import writes
            env.amazon.mock.reset()
            env.amazon.send_ok(feed_id=f"700{n}")
            for m in range(1, n + 1):
                env.amazon.get_feed(f"700{m}", "IN_PROGRESS", result_document_id=None)
            results.append(env.cli("notify", "run", "--force"))
            results.append(env.cli("results", "fetch", "--force"))
            env.add(order(10 + n))  # an order added by hand, also while the import writes
    finally:
        out, err = importing.communicate(timeout=120)
    assert importing.returncode == 0, err
    for other in others:
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
    for result in results:
        assert result.exit_code == 0, result.stderr
    # every order went out, in the runs made during the import
    assert env.store.status_counts(STORE) == {"in_progress": 7, "pending": 150_001}
