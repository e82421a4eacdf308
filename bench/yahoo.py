"""A Yahoo!ショッピング notify run of many orders against the sandbox: calls counted, wall time
against the pacing floor.

    python bench/yahoo.py                      # 1,000 orders, calls paced 5 ms apart
    python bench/yahoo.py --orders 200 --pace-ms 20 --complete-after 3
    python bench/yahoo.py --budget             # 1,000 orders, 1-minute budget, 250 ms pacing

Yahoo answers one order a call at about one call a second, so a real run's wall time is its
calls in seconds; the bench shortens the pacing only through CROSSSHIP_YAHOO_PACE_MS, which
crossship honours for a loopback endpoint alone. Each step is one `crossship` subprocess; the
sandbox (`crossship sandbox serve --no-rate-limits`) is its own process and counts the calls.
With `--budget` the store's time budget (1 minute) ends the run before every order is sent: the
bench checks that the run says how many orders wait and that none is left 連携中.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from pathlib import Path

from tabulate import tabulate

BIN = Path(sys.executable).parent
SELLER = "sandbox-store"
STORE = "yahoo-shop"
SECRETS = {  # the sandbox's own Yahoo credentials (YahooOptions' defaults)
    "CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_ID": "sandbox-yahoo-client",
    "CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_SECRET": "sandbox-yahoo-secret",
    "CROSSSHIP_YAHOO_SHOP_YAHOO_REFRESH_TOKEN": "sandbox-yahoo-refresh",
}


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def crossship(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BIN / "crossship"), "-q", *args], env=env, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise SystemExit(f"crossship {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def calls(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/_sandbox/yahoo/calls", timeout=10) as answer:
        return json.loads(answer.read())


def write_orders(path: Path, count: int) -> None:
    lines = ["管理番号,店舗,注文番号,処理フェーズ,管理区分,発送日,配送便,配送番号"]
    for n in range(count):
        lines.append(
            f"Y{n:07d},{STORE},{SELLER}-{10_000_000 + n},出荷済み,通常,2026-11-27,ヤマト運輸,"
            f"4{n:011d}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--pace-ms", type=float, default=5.0)
    parser.add_argument("--complete-after", default="0")
    parser.add_argument("--budget", action="store_true", help="1-minute budget, 250 ms pacing")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()
    pace_ms = 250.0 if options.budget else options.pace_ms
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="crossship-yahoo-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "crossship.db"
    key = workdir / "sandbox-yahoo.pem"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CROSSSHIP_")},
        **SECRETS,
        "CROSSSHIP_DB": str(db),
        "CROSSSHIP_CREDENTIALS": str(workdir / "credentials.toml"),
    }
    sandbox = subprocess.Popen(
        [str(BIN / "crossship"), "sandbox", "serve", "--port", str(port), "--no-rate-limits",
         "--yahoo-public-key", str(key)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                calls(url)
                break
            except OSError:
                time.sleep(0.1)
        orders = workdir / "orders.csv"
        write_orders(orders, options.orders)
        budget = ["--time-budget", "1"] if options.budget else []
        for step in (
            ["init"],
            ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
            ["config", "phase", "create", "完了"],
            ["config", "carrier", "add", "ヤマト運輸", "--yahoo-ship-company", "1001"],
            ["config", "store", "add", STORE, "--mall", "yahoo", "--seller-id", SELLER,
             "--endpoint", f"{url}/ShoppingWebService/V1/",
             "--token-url", f"{url}/yconnect/v2/token", "--public-key", str(key),
             "--public-key-version", "1", "--complete-after", options.complete_after, *budget],
            ["config", "phase", "add", STORE, "出荷済み", "--move-to", "完了"],
            ["auto", "start", STORE],
            ["orders", "import", str(orders)],
        ):  # fmt: skip
            crossship(env, *step)
        before = calls(url)
        started = time.monotonic()
        run_env = {**env, "CROSSSHIP_YAHOO_PACE_MS": str(pace_ms)}
        done = crossship(run_env, "notify", "run", "--force", check=False)
        seconds = time.monotonic() - started
        after = calls(url)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    made = {k: after.get(k, 0) - before.get(k, 0) for k in after if k not in ("signed", "unsigned")}
    order_calls = sum(v for k, v in made.items() if k != "token")
    floor = order_calls * pace_ms / 1000
    with closing(sqlite3.connect(db)) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY status"))
        completions = dict(
            conn.execute("SELECT completion, count(*) FROM order_refs GROUP BY completion")
        )
    print(
        tabulate(
            [
                ["orders", options.orders],
                ["pacing (ms between calls)", pace_ms],
                *[[f"calls: {k}", v] for k, v in sorted(made.items())],
                ["signed calls", after.get("signed", 0) - before.get("signed", 0)],
                ["wall time (s)", f"{seconds:.1f}"],
                ["pacing floor: order calls x pacing (s)", f"{floor:.1f}"],
                ["wall time per order call (ms)", f"{1000 * seconds / max(order_calls, 1):.1f}"],
                ["exit code", done.returncode],
                ["orders by status", json.dumps(statuses, ensure_ascii=False)],
                ["完了 (completion)", json.dumps(completions, ensure_ascii=False)],
                ["at 1 call/s (real Yahoo) this run would take (min)", f"{order_calls / 60:.1f}"],
            ],
            tablefmt="github",
        )
    )
    if done.stderr.strip():
        print("\nstderr:", done.stderr.strip())
    problems = []
    if made.get("token") != 1:
        problems.append(f"expected one token call, got {made.get('token')}")
    if statuses.get("in_progress"):
        problems.append(f"{statuses['in_progress']} orders left 連携中")
    if seconds < floor:
        problems.append(f"wall time {seconds:.1f} s is below the pacing floor {floor:.1f} s")
    if not options.budget:
        if made.get("orderShipStatusChange") != options.orders:
            problems.append("not one orderShipStatusChange per order")
        if statuses.get("success") != options.orders:
            problems.append("not every order 正常")
    elif "wait" not in done.stdout + done.stderr and statuses.get("pending", 0) == 0:
        problems.append("the budget did not leave orders for the next run")
    if not options.keep and not options.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    if problems:
        raise SystemExit("FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    main()
