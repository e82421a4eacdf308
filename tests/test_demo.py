"""`crossship demo`: the README's first command, on a fresh database, through the sandbox."""

import json
import subprocess
import sys
from pathlib import Path

from crossship.cli.sandbox import demo_data

ROOT = Path(__file__).resolve().parent.parent


def test_demo_data_is_the_example_file():
    # the package carries the example orders so that `pip install . && crossship demo` works
    assert demo_data().read_bytes() == (ROOT / "examples" / "orders.csv").read_bytes()


def test_demo_runs_the_cycle_to_success(tmp_path):
    db = tmp_path / "demo.db"
    done = subprocess.run(
        [sys.executable, "-m", "crossship", "--db", str(db), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "$ crossship notify run" in done.stdout
    assert "===== mail: (CROSSMALL)Amazon出荷通知処理(自動)のお知らせ" in done.stdout
    assert "===== mail: (CROSSMALL)Amazon出荷通知結果取得処理(自動)のお知らせ" in done.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "crossship", "--db", str(db), "orders", "list",
         "--store", "amazon-main", "--format", "jsonl"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    orders = {o["order_no"]: o for o in map(json.loads, listed.stdout.splitlines())}
    # sent and accepted: moved on to the destination phase 完了
    assert orders["10001"]["status"] == "success" and orders["10001"]["phase"] == "完了"
    # never sent: FBA, hold, cancel, bundled child, not in a target phase
    for order_no in ("10005", "10006", "10007", "10009", "10013"):
        assert orders[order_no]["status"] == "pending", order_no
