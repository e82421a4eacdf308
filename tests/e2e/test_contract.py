"""The mall contract: the same cycle, crash, concurrency and lost-answer suite for every mall in
the registry, each against its own part of the sandbox (hook: tests/e2e/kits/__init__.py).

Whatever the mall, a cron-driven crossship must end with every order 正常, its shipment registered
at the mall exactly once, no batch left open and a sound database — after a kill -9 at any call,
five runs started at once, or an answer lost on the way back.
"""

from __future__ import annotations

import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crossship import malls

from .conftest import ADMIN, Cx, SmtpSink, wait_for, write_orders_csv
from .kits import MallKit, kit_for

pytestmark = pytest.mark.e2e

ORDERS = 4
RUNS = 5
LOCKED = 75
OPEN_STATES = ("prepared", "document_created", "uploaded", "sending", "submitting", "submitted")


@pytest.fixture(params=sorted(malls.registry()))
def kit(request: pytest.FixtureRequest) -> MallKit:
    found = kit_for(request.param)
    if found is None:
        pytest.fail(
            f"mall {request.param!r} is registered but has no contract kit: add "
            f"tests/e2e/kits/{request.param}.py (see tests/e2e/kits/__init__.py)"
        )
    return found


@dataclass
class Contract:
    kit: MallKit
    cx: Cx
    sandbox: Any
    db: Path
    orders: list[dict[str, str]]

    @property
    def mall_order_ids(self) -> set[str]:
        return {row["mall_order_id"] for row in self.orders}

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def statuses(self) -> dict[str, str]:
        return dict(self.query("SELECT order_no, status FROM orders"))

    def open_batches(self) -> list[str]:
        marks = ",".join("?" * len(OPEN_STATES))
        return [s for (s,) in self.query(f"SELECT state FROM batches WHERE state IN ({marks})",
                                         OPEN_STATES)]  # fmt: skip

    def calls(self, name: str) -> int:
        return self.kit.calls(self.sandbox)[name]


@pytest.fixture
def contract(
    kit: MallKit, tmp_path: Path, cx_env: dict[str, str], sandbox: Any, smtp: SmtpSink
) -> Iterator[Contract]:
    cx = Cx(cx_env | kit.environment(sandbox))
    for args in (
        ["init"],
        ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
        ["config", "phase", "create", "完了", "--ship-date", "optional"],
        ["config", "mail", "set", "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port),
         "--no-starttls", "--from", ADMIN, "--admin", ADMIN],
        *kit.commands(sandbox),
    ):  # fmt: skip
        cx.ok(*args)
    orders = kit.orders(ORDERS)
    cx.ok("orders", "import", write_orders_csv(tmp_path / "orders.csv", orders))
    yield Contract(kit, cx, sandbox, Path(cx_env["CROSSSHIP_DB"]), orders)
    cx.reap()


def kill_during(c: Contract, call: str, *args: str) -> None:
    """Run ``crossship ARGS`` until the sandbox holds its ``call``, then kill -9 it and let the
    held call go on (the mall acts on it; nobody hears the answer)."""
    seen = c.calls(call)
    c.kit.hold(c.sandbox, call)
    process = c.cx.popen(*args)
    wait_for(
        lambda: c.calls(call) > seen or process.poll() is not None, what=f"{call} at the sandbox"
    )
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    c.kit.release(c.sandbox)


def age_submissions(c: Contract, minutes: int = 11) -> None:
    """Stand-in for the minutes between cron runs: a lost submission's stored time moves back."""
    past = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="microseconds")
    conn = sqlite3.connect(c.db, timeout=30)
    with conn:
        conn.execute("UPDATE batches SET submit_started_at = ? WHERE state = 'submitting'", (past,))
    conn.close()


def recover(c: Contract, cycles: int = 4) -> None:
    """What the next cron cycles do, until nothing is open: notify run, then results fetch."""
    for _ in range(cycles):
        if not c.open_batches() and "pending" not in c.statuses().values():
            return
        age_submissions(c)
        c.cx("notify", "run", "--force")
        c.cx("results", "fetch", "--force")


def assert_resolved(c: Contract) -> None:
    statuses = c.statuses()
    assert set(statuses.values()) == {"success"}, statuses
    assert c.kit.registered(c.sandbox) == Counter({m: 1 for m in c.mall_order_ids})
    assert c.open_batches() == []
    moved = dict(c.query("SELECT order_no, phase FROM orders"))
    assert set(moved.values()) == {"完了"}, moved
    assert c.query("PRAGMA integrity_check")[0][0] == "ok"


# ------------------------------------------------------------------------------ the cycle


def test_one_cycle_notifies_each_order_once(contract: Contract) -> None:
    c = contract
    notify = c.cx("notify", "run")
    assert notify.returncode == 0, notify.stderr
    assert f"sent {ORDERS} orders" in notify.stderr
    for _ in range(3):  # an asynchronous mall may need a cycle or two to finish
        if not c.open_batches():
            break
        assert c.cx("results", "fetch", "--force").returncode == 0
    assert_resolved(c)
    again = c.cx("notify", "run", "--force")  # nothing is left to send
    assert again.returncode == 0 and "sent" not in again.stderr.replace("sent 0", "")
    assert c.kit.registered(c.sandbox) == Counter({m: 1 for m in c.mall_order_ids})


# ------------------------------------------------------------------------------ kill -9


@pytest.mark.parametrize("step", range(4))
def test_kill_at_each_notify_call_then_recover(contract: Contract, step: int) -> None:
    c = contract
    calls = c.kit.notify_calls
    if step >= len(calls):
        pytest.skip(f"{c.kit.key} makes {len(calls)} calls to notify")
    kill_during(c, calls[step], "notify", "run")
    recover(c)
    assert_resolved(c)


@pytest.mark.parametrize("step", range(3))
def test_kill_at_each_results_call_then_recover(contract: Contract, step: int) -> None:
    c = contract
    calls = c.kit.results_calls
    if step >= len(calls):
        pytest.skip(f"{c.kit.key} makes {len(calls)} calls to fetch results")
    assert c.cx("notify", "run").returncode == 0
    kill_during(c, calls[step], "results", "fetch")
    recover(c)
    assert_resolved(c)


# ------------------------------------------------------------------------------ lost answer


def test_a_lost_submission_answer_is_never_resent_blindly(contract: Contract) -> None:
    c = contract
    c.kit.lose_answer(c.sandbox, c.kit.submit_call)
    lost = c.cx("notify", "run")  # (cx fails the test on a traceback)
    assert lost.returncode in (0, 1), lost.stderr  # 1: reconciled later; 0: the mall said again
    recover(c)
    assert_resolved(c)


# ------------------------------------------------------------------------------ concurrency


def test_five_runs_at_once_one_works_the_others_exit_75(contract: Contract) -> None:
    c = contract
    first = c.kit.notify_calls[0]
    seen = c.calls(first)
    c.kit.hold(c.sandbox, first)
    runs = [c.cx.popen("notify", "run", "--force") for _ in range(RUNS)]
    wait_for(lambda: c.calls(first) > seen, what="the lock holder's first call")
    wait_for(
        lambda: sum(p.poll() is not None for p in runs) == RUNS - 1, what="the others to give up"
    )
    c.kit.release(c.sandbox)
    outcomes: list[tuple[int, str]] = []
    for process in runs:
        _stdout, stderr = process.communicate(timeout=60)
        assert "Traceback" not in stderr, stderr
        outcomes.append((process.returncode, stderr))
    assert Counter(code for code, _ in outcomes) == {LOCKED: RUNS - 1, 0: 1}, outcomes
    for code, stderr in outcomes:
        if code == LOCKED:
            assert stderr.startswith("Error: another crossship run holds the lock"), stderr
    recover(c)
    assert_resolved(c)
