"""Yahoo!ショッピング end to end: the real `crossship` in subprocesses against the sandbox over
127.0.0.1 — kill -9 in the middle of a 200-order run, the time budget ending a long run, and the
calls a run makes. Pacing is shortened through CROSSSHIP_YAHOO_PACE_MS (loopback only)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossship.sandbox import SandboxServer

pytestmark = pytest.mark.e2e

SELLER = "sandbox-store"
STORE = "yahoo-shop"
HOLD = 300.0


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as running:
        running.sandbox.yahoo.set_options({"enforce_rate_limits": False})
        yield running


class Yahoo:
    def __init__(self, server: SandboxServer, tmp_path: Path, orders: int, pace_ms: float):
        self.server = server
        self.db = tmp_path / "crossship.db"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CROSSSHIP_")},
            "CROSSSHIP_DB": str(self.db),
            "CROSSSHIP_CREDENTIALS": str(tmp_path / "credentials.toml"),
            "CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_ID": "sandbox-yahoo-client",
            "CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_SECRET": "sandbox-yahoo-secret",
            "CROSSSHIP_YAHOO_SHOP_YAHOO_REFRESH_TOKEN": "sandbox-yahoo-refresh",
            "CROSSSHIP_YAHOO_PACE_MS": str(pace_ms),
        }
        key = server.sandbox.yahoo.write_public_key(tmp_path / "key.pem")
        csv = tmp_path / "orders.csv"
        lines = ["管理番号,店舗,注文番号,処理フェーズ,管理区分,発送日,配送便,配送番号"]
        lines += [
            f"Y{n:04d},{STORE},{SELLER}-{10_000 + n},出荷済み,通常,2026-11-27,ヤマト運輸,{n:012d}"
            for n in range(orders)
        ]
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for step in (
            ["init"],
            ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
            ["config", "phase", "create", "完了"],
            ["config", "carrier", "add", "ヤマト運輸", "--yahoo-ship-company", "1001"],
            ["config", "store", "add", STORE, "--mall", "yahoo", "--seller-id", SELLER,
             "--endpoint", f"{server.url}/ShoppingWebService/V1/",
             "--token-url", f"{server.url}/yconnect/v2/token",
             "--public-key", str(key), "--public-key-version", "1"],
            ["config", "phase", "add", STORE, "出荷済み", "--move-to", "完了"],
            ["auto", "start", STORE],
            ["orders", "import", str(csv)],
        ):  # fmt: skip
            done = self.cx(*step)
            assert done.returncode == 0, (step, done.stderr)

    def cx(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "crossship", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "crossship", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def statuses(self) -> Counter:
        with sqlite3.connect(self.db) as conn:
            return Counter(
                dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY status"))
            )

    def ships_per_order(self) -> Counter:
        orders = self.server.sandbox.yahoo.orders()
        return Counter(o["history"].count("orderShipStatusChange") for o in orders.values())


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_kill_9_in_the_middle_of_a_200_order_run(server, tmp_path) -> None:
    y = Yahoo(server, tmp_path, orders=200, pace_ms=1)
    sandbox = server.sandbox.yahoo
    sandbox.add_fault("orderShipStatusChange", "hang", seconds=HOLD, after=100)
    process = y.popen("notify", "run", "--force")
    wait_for(
        lambda: sandbox.calls["orderShipStatusChange"] > 100 or process.poll() is not None,
        "the 101st shipment to reach the sandbox",
    )
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    server.release_hangs()  # the held call now takes effect for a dead process
    wait_for(lambda: sandbox.orders().get(f"{SELLER}-10100", {}).get("history"), "the held call")
    assert y.statuses() == Counter({"success": 100, "in_progress": 1, "pending": 99})

    again = y.cx("-v", "notify", "run", "--force")
    assert again.returncode == 0, again.stderr
    assert y.statuses() == Counter({"success": 200})
    # the one order in flight was sent twice (harmless: it sets the same values), none other
    assert y.ships_per_order() == Counter({1: 199, 2: 1})
    assert all(o["order_status"] == "5" for o in sandbox.orders().values())


def test_calls_of_a_run(server, tmp_path) -> None:
    y = Yahoo(server, tmp_path, orders=30, pace_ms=1)
    done = y.cx("notify", "run", "--force")
    assert done.returncode == 0, done.stderr
    calls = server.sandbox.yahoo.calls
    assert calls["token"] == 1
    assert calls["orderShipStatusChange"] == 30 and calls["orderStatusChange"] == 30
    assert calls["signed"] == 60 and calls["unsigned"] == 0
    listed = y.cx("orders", "list", "--store", STORE, "--format", "jsonl")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {(r["status"], r["completion"], r["phase"]) for r in rows} == {
        ("success", "done", "完了")
    }
