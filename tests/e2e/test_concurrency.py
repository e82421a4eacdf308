"""Runs started together (cron overlapping a manual run, a slow Amazon): one works, the others
exit 75 with one line and touch nothing (SPEC §5 "Two runs never work at once")."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from .conftest import E2E, Cx, configure, feeds_per_order, make_orders, wait_for

pytestmark = pytest.mark.e2e

RUNS = 5
LOCKED = 75


def finish(processes: list[subprocess.Popen], timeout: float = 60) -> list[tuple[int, str, str]]:
    done = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        assert "Traceback" not in stderr, stderr
        done.append((process.returncode, stdout, stderr))
    return done


def assert_locked_out(stdout: str, stderr: str) -> None:
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: another crossship run holds the lock"), stderr
    assert "nothing was done" in lines[0]


def test_runs_while_one_holds_the_lock_exit_75(configured_db: E2E) -> None:
    e = configured_db
    # whichever run takes the lock first is held at its first Amazon call
    e.sandbox.add_fault("token", "hang", seconds=300)
    runs = [e.cx.popen("-q", "notify", "run", "--force") for _ in range(RUNS)]  # as cron does
    wait_for(lambda: e.sandbox.calls["token"] == 1, what="the lock holder's token call")
    wait_for(
        lambda: sum(p.poll() is not None for p in runs) == RUNS - 1,
        what="every other run to give up",
    )
    fetch = e.cx("results", "fetch", "--force")  # the other job shares the lock
    assert fetch.returncode == LOCKED
    assert_locked_out(fetch.stdout, fetch.stderr)
    assert e.batch_states() == ["prepared"]  # only the holder has touched anything

    e.sandbox.release_hangs()
    outcomes = finish(runs)
    codes = Counter(code for code, _, _ in outcomes)
    assert codes == {LOCKED: RUNS - 1, 0: 1}
    for code, stdout, stderr in outcomes:
        if code == LOCKED:
            assert_locked_out(stdout, stderr)
        else:
            assert (stdout, stderr) == ("", "")  # -q: the run that worked says nothing
    assert e.sandbox.calls["token"] == 1 and e.sandbox.calls["createFeed"] == 1
    assert set(e.statuses().values()) == {"in_progress"}

    assert e.cx("results", "fetch", "--force").returncode == 0
    assert set(e.statuses().values()) == {"success"}
    assert feeds_per_order(e.sandbox.feeds()) == {m: 1 for m in e.mall_order_ids.values()}
    assert e.integrity() == "ok"


def second_setup(tmp_path: Path, templates, cx: Cx, sandbox, smtp) -> E2E:
    """Another database (another seller's pair of cron jobs) on the same sandbox."""
    where = tmp_path / "second"
    where.mkdir()
    cx2 = cx.derive(
        {
            "CROSSSHIP_DB": str(where / "crossship.db"),
            "CROSSSHIP_CREDENTIALS": str(where / "credentials.toml"),
        }
    )
    return configure(where, templates, cx2, sandbox, smtp, orders=make_orders(start=101))


def test_simultaneous_runs_on_two_databases_send_each_order_once(
    configured_db: E2E, tmp_path: Path, templates, sandbox, smtp
) -> None:
    first = configured_db
    second = second_setup(tmp_path, templates, first.cx, sandbox, smtp)
    runs = {id(e): [] for e in (first, second)}
    for _ in range(RUNS):  # interleaved, all at once
        for e in (first, second):
            runs[id(e)].append(e.cx.popen("notify", "run", "--force"))

    for e in (first, second):
        outcomes = finish(runs[id(e)])
        codes = Counter(code for code, _, _ in outcomes)
        assert set(codes) <= {0, LOCKED} and codes[0] >= 1, outcomes
        for code, stdout, stderr in outcomes:
            if code == LOCKED:
                assert_locked_out(stdout, stderr)
        # the runs that came after the worker found the orders 連携中 and sent nothing
        sent = [stderr for code, _, stderr in outcomes if f"sent {len(e.order_nos)} " in stderr]
        assert len(sent) == 1, outcomes
        assert e.cx("results", "fetch", "--force").returncode == 0
        assert set(e.statuses().values()) == {"success"}
        assert e.integrity() == "ok"

    every = {**first.mall_order_ids, **second.mall_order_ids}
    assert len(every) == 2 * len(first.order_nos)
    assert feeds_per_order(sandbox.feeds()) == {m: 1 for m in every.values()}
    assert len(sandbox.feeds()) == 2
