"""`crossship demo`: the README's first command, on a fresh database, through the sandbox."""

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crossship.cli.sandbox import demo_data
from crossship.sandbox import SandboxOptions, SandboxServer

ROOT = Path(__file__).resolve().parent.parent


def test_demo_data_is_the_example_file():
    # the package carries the example orders so that `pip install . && crossship demo` works
    assert demo_data().read_bytes() == (ROOT / "examples" / "orders.csv").read_bytes()


def test_demo_runs_the_cycle_to_success(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "crossship", "demo", "--keep"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    db = Path(shlex.split(done.stdout.rsplit("The demo database is ", 1)[1].split(":")[0])[0])
    assert db.exists()
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


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["CROSSSHIP_DB", "--db"])
def test_demo_never_touches_the_users_database_or_endpoints(imported, run, monkeypatch, how):
    # the user's real set-up: amazon-main started, pointed at its endpoint, pending orders
    with SandboxServer("127.0.0.1", 0, SandboxOptions(enforce_rate_limits=False)) as real:
        result = run(["config", "store", "set", "amazon-main", "--endpoint", real.url,
                      "--token-url", real.token_url])  # fmt: skip
        assert result.exit_code == 0, result.stderr
        for name, value in (("LWA_CLIENT_ID", "real-id"), ("LWA_CLIENT_SECRET", "real-secret"),
                            ("REFRESH_TOKEN", "Atzr|real")):  # fmt: skip
            monkeypatch.setenv(f"CROSSSHIP_AMAZON_MAIN_{name}", value)
        before = dump(imported)
        args = ["--db", str(imported), "demo"] if how == "--db" else ["demo"]
        if how == "--db":
            monkeypatch.delenv("CROSSSHIP_DB")

        result = run(args)

        assert result.exit_code == 0, result.stderr
        assert "===== mail:" in result.stdout  # the demo ran its cycle, on its own
        assert f"ignores {how} ({imported})" in result.stderr
        assert dump(imported) == before
        assert sum(real.calls.values()) == 0
        # the user's credentials are back as they were
        assert os.environ["CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN"] == "Atzr|real"
