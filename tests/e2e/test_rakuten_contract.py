"""The run's promises for a 楽天市場 store, with the real ``crossship`` in subprocesses against
the RMS sandbox: kill -9 at each RMS call, five concurrent runs, a lost answer (SPEC §11, §13).

Each order ends 正常 with exactly one shipment row at RMS, nothing stays 連携中 and
updateOrderShippingAsync is never sent again blindly.
"""

from __future__ import annotations

import csv
import signal
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crossship.sandbox import SandboxServer
from crossship.secrets import env_name

from .conftest import CSV_COLUMNS, Cx, wait_for

pytestmark = pytest.mark.e2e

STORE = "rakuten-shop"
HOLD = 300.0
COUNT = 6


def rakuten_orders() -> list[dict[str, str]]:
    rows = []
    for i in range(1, COUNT + 1):
        rows.append({"order_no": f"R{i:03d}", "store": STORE,
                     "mall_order_id": f"338271-20261124-{i:010d}", "phase": "出荷済み",
                     "ship_date": "2026-11-30", "carrier": "ヤマト運輸",
                     "tracking_number": f"4{i:011d}"})  # fmt: skip
    # a split: a second package of the first order, its own row in the same basket
    rows.append({**rows[0], "order_no": "R001-2", "split_from": "R001",
                 "tracking_number": "499999999999"})  # fmt: skip
    return rows


def write_orders(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*CSV_COLUMNS, "split_from"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


class Shop:
    def __init__(self, db: Path, cx: Cx, sandbox: SandboxServer, orders: list[dict[str, str]]):
        self.db, self.cx, self.sandbox, self.orders = db, cx, sandbox, orders
        self.rms = sandbox.sandbox.rakuten

    def statuses(self) -> dict[str, str]:
        with sqlite3.connect(self.db, timeout=30) as conn:
            rows = conn.execute("SELECT order_no, status FROM orders WHERE store = ?", (STORE,))
            found = dict(rows.fetchall())
        conn.close()
        return found

    def batch_states(self) -> list[str]:
        with sqlite3.connect(self.db, timeout=30) as conn:
            found = [s for (s,) in conn.execute("SELECT state FROM batches ORDER BY id")]
        conn.close()
        return found

    def age_submission(self, minutes: int) -> None:
        """Stand-in for waiting 10 minutes: the submitting batch's send time moved back."""
        past = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="microseconds")
        with sqlite3.connect(self.db, timeout=30) as conn:
            changed = conn.execute(
                "UPDATE batches SET submit_started_at = ? WHERE state = 'submitting'", (past,)
            ).rowcount
        conn.close()
        assert changed == 1

    def rows_at_rms(self) -> dict[str, list[str]]:
        """Tracking numbers of the shipment rows RMS holds, per order number."""
        return {
            number: [r["shippingNumber"] for p in order["PackageModelList"]
                     for r in p["ShippingModelList"]]
            for number, order in self.rms.orders().items()
        }  # fmt: skip

    def assert_resolved(self) -> None:
        assert set(self.statuses().values()) == {"success"}, self.statuses()
        expected: dict[str, list[str]] = {}
        for row in self.orders:
            expected.setdefault(row["mall_order_id"], []).append(row["tracking_number"])
        held = {n: rows for n, rows in self.rows_at_rms().items() if rows}
        assert {n: sorted(r) for n, r in held.items()} == {
            n: sorted(r) for n, r in expected.items()
        }
        assert not {"prepared", "submitting", "submitted", "sending"} & set(self.batch_states())

    def recover(self) -> None:
        notify = self.cx("notify", "run", "--force")
        assert notify.returncode == 0, notify.stderr
        results = self.cx("results", "fetch", "--force")
        assert results.returncode == 0, results.stderr

    def kill_during(self, operation: str, *args: str) -> None:
        seen = self.rms.calls[operation]
        self.rms.add_fault(operation, "hang", seconds=HOLD)
        process = self.cx.popen(*args)
        wait_for(
            lambda: self.rms.calls[operation] > seen or process.poll() is not None,
            what=f"{operation} to reach the sandbox",
        )
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL


@pytest.fixture
def shop(tmp_path: Path, cx: Cx, sandbox: SandboxServer) -> Shop:
    rms = sandbox.sandbox.rakuten
    rms.set_options({"enforce_rate_limit": False})
    runner = cx.derive({
        env_name(STORE, "RMS_SERVICE_SECRET"): rms.options.service_secret,
        env_name(STORE, "RMS_LICENSE_KEY"): rms.options.license_key,
    })  # fmt: skip
    for args in (
        ["init"],
        ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
        ["config", "phase", "create", "完了", "--ship-date", "optional"],
        ["config", "carrier", "add", "ヤマト運輸", "--rakuten-delivery-company", "1001"],
        ["config", "store", "add", STORE, "--mall", "rakuten",
         "--endpoint", sandbox.url + "/es/2.0/order/"],
        ["config", "phase", "add", STORE, "出荷済み", "--move-to", "完了"],
        ["auto", "start", STORE],
    ):  # fmt: skip
        runner.ok(*args)
    orders = rakuten_orders()
    runner.ok("orders", "import", write_orders(tmp_path / "orders.csv", orders))
    return Shop(Path(runner.env["CROSSSHIP_DB"]), runner, sandbox, orders)


def test_kill_during_get_order_sends_nothing_twice(shop: Shop) -> None:
    shop.kill_during("getOrder", "notify", "run")
    shop.sandbox.release_hangs()
    assert set(shop.statuses().values()) == {"pending"}  # looked up before anything was recorded
    shop.recover()
    shop.assert_resolved()
    assert shop.rms.calls["updateOrderShippingAsync"] == 1


def test_kill_during_update_is_reconciled_never_resent(shop: Shop) -> None:
    shop.kill_during("updateOrderShippingAsync", "notify", "run")
    shop.sandbox.release_hangs()  # RMS takes the request; nobody hears the answer
    wait_for(lambda: any(shop.rows_at_rms().values()), what="the held request to be processed")
    assert set(shop.statuses().values()) == {"in_progress"}
    waiting = shop.cx("notify", "run", "--force")  # within 10 minutes: wait, never resend
    assert waiting.returncode == 0, waiting.stderr
    assert set(shop.statuses().values()) == {"in_progress"}
    shop.age_submission(minutes=11)
    shop.recover()
    shop.assert_resolved()
    assert shop.rms.calls["updateOrderShippingAsync"] == 1


def test_kill_during_get_result_reads_it_next_time(shop: Shop) -> None:
    assert shop.cx("notify", "run").returncode == 0
    shop.kill_during("getResultUpdateOrderShippingAsync", "results", "fetch", "--force")
    shop.sandbox.release_hangs()
    assert set(shop.statuses().values()) == {"in_progress"}
    shop.recover()
    shop.assert_resolved()
    assert shop.rms.calls["updateOrderShippingAsync"] == 1


def test_a_lost_answer_is_reconciled_through_get_order(shop: Shop) -> None:
    shop.rms.add_fault("updateOrderShippingAsync", "lose_answer")
    lost = shop.cx("notify", "run")
    assert lost.returncode == 1
    assert set(shop.statuses().values()) == {"in_progress"}
    shop.age_submission(minutes=11)
    shop.recover()
    shop.assert_resolved()
    assert shop.rms.calls["updateOrderShippingAsync"] == 1


def test_a_502_that_rms_never_acted_on_is_sent_again_after_ten_minutes(shop: Shop) -> None:
    shop.rms.add_fault("updateOrderShippingAsync", "fail", status=502)
    failed = shop.cx("notify", "run")
    assert failed.returncode == 1
    assert set(shop.statuses().values()) == {"in_progress"}
    shop.age_submission(minutes=11)
    released = shop.cx("notify", "run", "--force")  # getOrder: no row → 未連携 → sent again
    assert released.returncode == 0, released.stderr
    assert shop.cx("results", "fetch", "--force").returncode == 0
    shop.assert_resolved()
    assert shop.rms.calls["updateOrderShippingAsync"] == 2


def test_five_concurrent_runs_send_once(shop: Shop) -> None:
    processes: list[subprocess.Popen] = [
        shop.cx.popen("notify", "run", "--force") for _ in range(5)
    ]
    codes = sorted(p.wait(timeout=120) for p in processes)
    for process in processes:
        process.communicate()
    assert codes.count(0) >= 1 and set(codes) <= {0, 75}, codes
    assert shop.rms.calls["updateOrderShippingAsync"] == 1
    assert shop.cx("results", "fetch", "--force").returncode == 0
    shop.assert_resolved()
