"""The batch lifecycle and the per-store loop: an unexpected failure in one store, the time
budget, and a synchronous mall (each request finished at once, committed before and after)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import notify_helpers
import pytest
from notify_helpers import DESTINATION, TARGET, Env, order

from crossship import lifecycle, malls
from crossship.errors import MallError
from crossship.malls import (
    Finished,
    Limits,
    Mall,
    OrderCheck,
    Outcome,
    Prepared,
    Reconciled,
    Request,
    Result,
    Row,
    StoreContext,
)
from crossship.statuses import Status

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock


# ----------------------------------------------------------------------------- each store


def test_an_unexpected_failure_is_that_stores_failed_run_and_the_next_store_runs(
    env: Env,
) -> None:
    env.add_store("amazon-a")
    env.add(order(1, store="amazon-a"), order(2))  # order 2 is amazon-main's
    real = lifecycle.Cycle.notify

    def broken(self: lifecycle.Cycle) -> None:
        if self.name == "amazon-a":
            raise KeyError("tracking_number")
        real(self)

    env.monkeypatch.setattr(lifecycle.Cycle, "notify", broken)
    mails: list = []
    env.mail()
    env.amazon.send_ok()

    result = notify_helpers.notify_run(
        env.store,
        env.db_path,
        env.clock,
        notify_helpers.NotifyOptions(mail_transport=lambda s, p, m: mails.append(m)),
    )

    runs = {r.store: r for r in result.runs}
    assert list(map(str, runs["amazon-a"].problems)) == [
        "unexpected KeyError: 'tracking_number' (run with -vv to see where)"
    ]
    assert runs["amazon-main"].sent == 1 and not runs["amazon-main"].problems
    recorded = {r["store"]: r["outcome"] for r in env.runs("notify")}
    assert recorded == {"amazon-a": "failed", "amazon-main": "ok"}
    assert len(mails) == 2  # the failed store's run is mailed too
    assert env.statuses() == {"A00001": "pending", "A00002": "in_progress"}


def test_an_unexpected_failure_says_one_line_and_exits_1(env: Env) -> None:
    env.add(order(1))
    env.monkeypatch.setattr(
        lifecycle.Cycle,
        "notify",
        lambda self: {}["no such key"],  # a KeyError
    )
    result = env.cli("notify", "run")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: amazon-main: unexpected KeyError: 'no such key' (run with -vv to see where)"
    ]
    assert "Traceback" not in result.stderr
    assert env.status("A00001") == "pending"


# ----------------------------------------------------------------------------- time budget


def test_the_time_budget_stops_sending_between_requests(env: Env) -> None:
    from crossship.amazon.mall import AmazonSession

    env.monkeypatch.setattr(
        AmazonSession, "render", lambda self, lines: self.renderer.split(lines, max_bytes=700)
    )
    minutes = iter(range(0, 1000, 6))  # every look at the clock: six minutes later
    env.monkeypatch.setattr(lifecycle, "monotonic", lambda: next(minutes) * 60.0)
    env.add(*(order(n) for n in range(1, 10)))
    env.amazon.send_ok("7001")
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(feed_id="7002")

    result = env.notify()

    (run,) = result.runs
    assert run.feed_ids == ["7001", "7002"]  # 0 → 6 min: second sent; 12 min: budget spent
    statuses = env.statuses()
    waiting = sorted(o for o, s in statuses.items() if s == "pending")
    sent = sum(b["order_count"] for b in env.batches())
    assert waiting and len(waiting) + sent == 9
    assert f"time budget of 10 minutes spent: {len(waiting)} orders wait 未連携" in " ".join(
        map(str, run.notes)
    )
    assert not run.problems  # the next cycle goes on: not a failure
    assert all(env.history(o) == [] for o in waiting)  # never touched


def test_the_first_request_is_sent_whatever_the_budget(env: Env) -> None:
    env.monkeypatch.setattr(lifecycle, "monotonic", iter(range(0, 10**6, 3600)).__next__)
    env.store.update_store("amazon-main", {"time_budget_minutes": 1})
    env.add(order(1))
    env.amazon.send_ok()
    (run,) = env.notify().runs
    assert run.sent == 1 and len(env.batches()) == 1


# ----------------------------------------------------------------------------- a synchronous mall


@dataclass
class SyncMall:
    """A mall that answers each order at once (as Yahoo's orderShipStatusChange does)."""

    fail: dict[str, MallError] = field(default_factory=dict)  # order_no → error raised
    answers: dict[str, Outcome] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    states_seen: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    env: Env | None = None

    def mall(self) -> Mall:
        return Mall(
            key="syncmall",
            label="同期モール",
            limits=Limits(1, None, 0, timedelta(minutes=10)),
            settings=(),
            secrets=(),
            carrier_fields=(),
            subjects={"notify": "(CROSSMALL)同期通知", "results": "(CROSSMALL)同期結果"},
            order_id=re.compile(r".+"),
            order_id_hint="any",
            synchronous=True,
            open_session=lambda context: Session(self, context),  # type: ignore[arg-type,return-value]
            offline_session=lambda row: Session(self, None),  # type: ignore[arg-type,return-value]
        )


class Session:
    def __init__(self, mall: SyncMall, context: StoreContext | None):
        self.mall = mall
        self.context = context
        self.calls: dict = {}

    def check(self, order, items, carrier, *, is_split_parent, refs) -> OrderCheck:
        return OrderCheck([], [])

    def encode(self, orders: Iterable[Prepared]) -> list[Request]:
        return [
            Request(
                json.dumps({"order": p.order["mall_order_id"]}).encode(),
                "application/json",
                [Row(1, p.order["order_no"], p.order["mall_order_id"])],
            )
            for p in orders
        ]

    def resolve(self, orders, refs) -> dict:
        return {}

    def submit(self, batch: dict, request: Request, commit: Callable) -> Finished:
        (row,) = request.rows
        assert self.mall.env is not None
        # committed before the call: the batch says `sending`, its order 連携中 (read through
        # a connection of its own, as another process would see it)
        with sqlite3.connect(self.mall.env.db_path) as conn:
            (state,) = conn.execute(
                "SELECT state FROM batches WHERE id = ?", [batch["id"]]
            ).fetchone()
            (status,) = conn.execute(
                "SELECT status FROM orders WHERE order_no = ?", [row.order_no]
            ).fetchone()
        conn.close()
        self.mall.states_seen.append(f"{state}/{status}")
        if row.order_no in self.mall.fail:
            raise self.mall.fail[row.order_no]
        self.mall.sent.append(row.order_no)
        answer = self.mall.answers.get(row.order_no) or Outcome(
            row.order_no,
            Status.SUCCESS,
            refs={"completion": "scheduled", "complete_due": "2026-11-28T00:00:00+00:00"},
        )
        return Finished([answer])

    def reconcile(self, batch, rows, claimed) -> Reconciled:
        raise AssertionError("a synchronous mall's batch is never left submitting")

    def poll(self, batch):
        raise AssertionError("a synchronous mall's batch is never polled")

    def read_result(self, batch, poll, rows) -> Result:
        raise AssertionError("never read")

    def failure_text(self, poll) -> str:
        return ""

    def follow_up(self, due: Sequence[dict]) -> list[Outcome]:
        self.mall.completed.extend(o["order_no"] for o in due)
        return [
            Outcome(o["order_no"], Status.SUCCESS, "完了", refs={"completion": "done"}) for o in due
        ]


@pytest.fixture
def sync(env: Env) -> SyncMall:
    mall = SyncMall(env=env)
    malls.register(mall.mall())
    env.add_store("sync-shop", mall="syncmall")
    env.store.set_started("amazon-main", False)
    return mall


def sync_orders(env: Env, *numbers: int) -> None:
    env.add(*(order(n, store="sync-shop") for n in numbers))


def test_a_synchronous_mall_finishes_each_order_in_the_run(env: Env, sync: SyncMall) -> None:
    sync_orders(env, 1, 2, 3)
    sync.answers["A00002"] = Outcome("A00002", Status.ERROR, "od00001: 注文が存在しません")

    (run,) = env.notify().runs

    assert sync.states_seen == ["sending/in_progress"] * 3
    assert env.statuses() == {"A00001": "success", "A00002": "error", "A00003": "success"}
    assert env.get("A00001")["phase"] == DESTINATION and env.get("A00002")["phase"] == TARGET
    assert "od00001" in env.get("A00002")["message"]
    assert [b["state"] for b in env.batches()] == ["done"] * 3
    assert run.sent == 3 and run.count("success") == 2 and run.count("error") == 1
    refs = env.store.refs_for(["A00001", "A00002"])
    assert refs == {"A00001": {"completion": "scheduled",
                               "complete_due": "2026-11-28T00:00:00+00:00"}}  # fmt: skip
    assert env.runs("notify")[0]["outcome"] == "ok"

    # the follow-up is results fetch's, when due
    env.clock.advance(minutes=20)
    env.fetch()
    assert sync.completed == []  # not due yet (the fake clock is in 2026-11-27)
    env.clock.advance(days=2)
    (fetched,) = env.fetch(force=True).runs
    assert sync.completed == ["A00001", "A00003"]
    assert env.store.refs_for(["A00001"])["A00001"]["completion"] == "done"
    assert fetched.count("success") == 2
    assert [h["message"] for h in env.history("A00001")][-1] == "完了"


def test_a_halt_stops_the_store_and_leaves_the_rest_pending(env: Env, sync: SyncMall) -> None:
    sync_orders(env, 1, 2, 3)
    sync.fail["A00002"] = MallError(
        "px-04102: 認可が失効しました", outcome="not_sent", halt=True, code="px-04102"
    )

    (run,) = env.notify().runs

    assert sync.sent == ["A00001"]
    assert env.statuses() == {"A00001": "success", "A00002": "pending", "A00003": "pending"}
    assert any("px-04102" in str(p) for p in run.problems)
    assert env.runs("notify")[0]["outcome"] == "failed"
    assert env.history("A00003") == []  # never touched


def test_a_network_failure_puts_that_order_back_and_the_run_goes_on(
    env: Env, sync: SyncMall
) -> None:
    sync_orders(env, 1, 2)
    sync.fail["A00001"] = MallError("timeout", outcome="unknown")
    env.notify()
    assert env.statuses() == {"A00001": "pending", "A00002": "success"}
    del sync.fail["A00001"]
    env.clock.advance(minutes=15)
    env.notify()
    assert env.status("A00001") == "success" and sync.sent == ["A00002", "A00001"]


def test_recovery_puts_a_crashed_runs_order_in_flight_back(env: Env, sync: SyncMall) -> None:
    sync_orders(env, 1)

    class Crash(BaseException):
        pass

    real = Session.submit

    def crash(self: Session, batch: dict, request: Request, commit: Callable) -> Finished:
        raise Crash  # the process dies with the call in flight

    env.monkeypatch.setattr(Session, "submit", crash)
    with pytest.raises(Crash):
        env.notify()
    assert [b["state"] for b in env.batches()] == ["sending"]
    assert env.status("A00001") == "in_progress"

    env.monkeypatch.setattr(Session, "submit", real)
    env.clock.advance(minutes=15)
    (run,) = env.notify().runs
    assert any("released" in str(n) for n in run.notes)
    assert [b["state"] for b in env.batches()] == ["released", "done"]
    assert env.status("A00001") == "success" and sync.sent == ["A00001"]
