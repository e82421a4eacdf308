"""A Rakuten store's cycle on many orders, with RMS calls counted (SPEC §13, issue 12).

    python bench/rakuten.py                 # 10,000 orders
    python bench/rakuten.py --orders 1000   # a check in a couple of minutes

Every step is one `crossship` process against `crossship sandbox serve` (its own process), the
way cron runs them: configuration, the import, one `notify run --force` and one
`results fetch --force`. RMS is paced at one call a second per store, for real, so the run takes
about as many seconds as it makes calls. The target (issue 12):

    updateOrderShippingAsync            ⌈n / 100⌉
    getOrder                            ⌈orders without a basket_id / 100⌉
    getResultUpdateOrderShippingAsync   one per batch

A third of the orders come without 送付先ID (basket_id), so notify run looks them up; one in twenty
is cancelled at RMS, so its result is ERROR_102 and the order エラー.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from tabulate import tabulate

BIN = Path(sys.executable).parent
STORE = "rakuten-bench"
SECRETS = {  # the sandbox's own RMS keys (crossship.sandbox.rakuten.RmsOptions' defaults)
    "CROSSSHIP_RAKUTEN_BENCH_RMS_SERVICE_SECRET": "sandbox-service-secret",
    "CROSSSHIP_RAKUTEN_BENCH_RMS_LICENSE_KEY": "sandbox-license-key",
}
HEADER = ("管理番号", "店舗", "注文番号", "処理フェーズ", "管理区分", "FBA", "同梱親", "分割元",
          "発送日", "配送便", "配送番号", "注文商品番号", "SKU", "数量", "送付先ID")  # fmt: skip


def order_number(i: int) -> str:
    return f"338271-20261124-{i:010d}"


def basket(i: int) -> int:
    return 20_000_000 + i


def without_basket(i: int) -> bool:
    return i % 3 == 0


def cancelled(i: int) -> bool:
    return i % 20 == 7


def write_orders(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(n):
            out.writerow([
                f"R{i:07d}", STORE, order_number(i), "出荷済み", "通常", "0", "", "",
                "2026-11-27", "ヤマト運輸", f"4{i:011d}", "", "", "",
                "" if without_basket(i) else str(basket(i)),
            ])  # fmt: skip


class Sandbox:
    """`crossship sandbox serve` on a free port, in its own process."""

    def __init__(self, crossship: list[str], env: dict[str, str]):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*crossship, "sandbox", "serve", "--port", str(self.port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                self.calls()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the sandbox did not start")

    def _call(self, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST" if data else "GET"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=600) as answer:
            return json.loads(answer.read())

    def calls(self) -> dict[str, int]:
        return dict(self._call("/_sandbox/rakuten/calls"))  # type: ignore[arg-type]

    def setup(self, n: int) -> None:
        orders = [{"orderNumber": order_number(i), "basketIds": [basket(i)]} for i in range(n)]
        self._call("/_sandbox/rakuten/orders", {"orders": orders})
        gone = [order_number(i) for i in range(n) if cancelled(i)]
        self._call("/_sandbox/rakuten/options", {"cancelled_orders": gone})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def crossship(env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "crossship"), *args], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"`crossship {' '.join(args)}` exited {done.returncode}:\n{done.stderr[-3000:]}")
    return seconds, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path)
    options = parser.parse_args()
    n = options.orders
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="crossship-rakuten-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **SECRETS, "CROSSSHIP_DB": str(workdir / "crossship.db")}
    env.pop("CROSSSHIP_CREDENTIALS", None)
    sandbox = Sandbox([str(BIN / "crossship")], env)
    try:
        sandbox.setup(n)
        for step in (
            ["init"],
            ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
            ["config", "phase", "create", "完了", "--ship-date", "optional"],
            ["config", "carrier", "add", "ヤマト運輸", "--rakuten-delivery-company", "1001"],
            ["config", "store", "add", STORE, "--mall", "rakuten",
             "--endpoint", sandbox.url + "/es/2.0/order/"],
            ["config", "phase", "add", STORE, "出荷済み", "--move-to", "完了"],
            ["auto", "start", STORE],
        ):  # fmt: skip
            crossship(env, *step)
        write_orders(workdir / "orders.csv", n)
        import_seconds, _ = crossship(env, "orders", "import", str(workdir / "orders.csv"))
        notify_seconds, notify_talk = crossship(env, "notify", "run", "--force")
        after_notify = sandbox.calls()
        results_seconds, results_talk = crossship(env, "results", "fetch", "--force")
        calls = sandbox.calls()
        listed = subprocess.run(
            [str(BIN / "crossship"), "orders", "list", "--store", STORE, "--format", "jsonl"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        statuses = Counter(json.loads(line)["status"] for line in listed.stdout.splitlines())
        phases = Counter(json.loads(line)["phase"] for line in listed.stdout.splitlines())
    finally:
        sandbox.stop()
        if not options.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    missing = sum(1 for i in range(n) if without_basket(i))
    batches = math.ceil(n / 100)
    targets = {
        "updateOrderShippingAsync": batches,
        "getOrder": math.ceil(missing / 100),
        "getResultUpdateOrderShippingAsync": batches,
    }
    rows = [
        [op, calls.get(op, 0), target, "ok" if calls.get(op, 0) <= target else "over"]
        for op, target in targets.items()
    ]
    print(f"{n:,} orders, {missing:,} without basket_id, {batches} batches")
    print(tabulate(rows, headers=["RMS call", "calls", "target", ""]))
    print()
    print(tabulate(
        [["orders import", f"{import_seconds:.1f}"],
         ["notify run", f"{notify_seconds:.1f}", sum(after_notify.values())],
         ["results fetch", f"{results_seconds:.1f}",
          sum(calls.values()) - sum(after_notify.values())]],
        headers=["step", "seconds", "RMS calls"],
    ))  # fmt: skip
    print()
    print("statuses:", dict(statuses), " phases:", dict(phases))
    expected_errors = sum(1 for i in range(n) if cancelled(i))
    if calls.get("getOrder", 0) > targets["getOrder"]:
        # notify run checks the orders a thousand at a time and looks up each thousand's
        # missing baskets before checking them: at most one call more per thousand
        print(
            f"getOrder: {calls['getOrder'] - targets['getOrder']} over the target "
            f"(bound: target + ⌈n / 1000⌉ = {targets['getOrder'] + math.ceil(n / 1000)})"
        )
    ok = (
        calls.get("updateOrderShippingAsync", 0) <= targets["updateOrderShippingAsync"]
        and calls.get("getResultUpdateOrderShippingAsync", 0) <= batches
        and calls.get("getOrder", 0) <= targets["getOrder"] + math.ceil(n / 1000)
        and statuses.get("error", 0) == expected_errors
        and statuses.get("success", 0) == n - expected_errors
        and phases.get("完了", 0) == n - expected_errors
    )
    if not ok:
        print(notify_talk[-2000:], results_talk[-2000:], sep="\n", file=sys.stderr)
        sys.exit("the run missed its targets")


if __name__ == "__main__":
    main()
