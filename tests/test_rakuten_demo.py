"""`crossship demo` runs a Rakuten store through the cycle too, and re-notifies one order."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_a_rakuten_store():
    done = subprocess.run(
        [sys.executable, "-m", "crossship", "demo", "--keep"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "===== mail: (CROSSMALL)楽天市場発送情報登録処理(自動)のお知らせ" in out
    assert "===== mail: (CROSSMALL)楽天市場発送情報登録結果取得処理(自動)のお知らせ" in out
    assert "expires in 10 days" in out + done.stderr
    db = Path(shlex.split(out.rsplit("The demo database is ", 1)[1].split(":")[0])[0])
    listed = subprocess.run(
        [sys.executable, "-m", "crossship", "--db", str(db), "orders", "list",
         "--store", "rakuten-shop", "--format", "jsonl"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    orders = {o["order_no"]: o for o in map(json.loads, listed.stdout.splitlines())}
    for order_no in ("20001", "20101", "20103", "20104"):
        assert orders[order_no]["status"] == "success", order_no
        assert orders[order_no]["phase"] == "完了", order_no
    assert orders["20102"]["status"] == "error" and "ERROR_102" in orders["20102"]["message"]
    assert orders["20105"]["status"] == "error"  # blank tracking number, never sent
    assert orders["20002"]["status"] == "pending"  # not in a target phase
    history = subprocess.run(
        [sys.executable, "-m", "crossship", "--db", str(db), "history", "--order", "20001",
         "--status", "success", "--format", "jsonl"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    updated, registered = (json.loads(line)["message"] for line in history.stdout.splitlines())
    assert "INFO_102" in updated and "INFO_101" in registered
    # the re-notification updated the row it registered: the same shippingDetailId
    assert updated.rsplit("shippingDetailId", 1)[1] == registered.rsplit("shippingDetailId", 1)[1]
