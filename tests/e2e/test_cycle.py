"""The whole cron cycle through the real executable: configure → import → notify run → results
fetch, against the sandbox over HTTP and a real SMTP server (SPEC §5, §10)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import requests

from .conftest import (
    ADMIN,
    E2E,
    NOTIFY,
    NOTIFY_SUBJECT,
    RESULTS_SUBJECT,
    SENDER,
    STORE,
    configure,
    feeds_per_order,
)

pytestmark = pytest.mark.e2e

UNKNOWN = "E0005"  # its Amazon order id is made unknown to the sandbox: Amazon answers 18028
NO_SHIP_METHOD = "日本郵便"
# the ship-method warning of seed Q2, as Amazon writes it in each report language
SHIP_METHOD_WARNING = {
    "en": "The ship-method field is missing or invalid",
    "ja": "ship-methodの項目が記入されていないか入力内容が無効です",
}
NOT_FOUND = {"en": "Your order cannot be found", "ja": "に一致する注文が見つかりません"}


def forget_order(sandbox_url: str, e2e: E2E, order_no: str) -> str:
    """Tell the sandbox (over its control endpoint) every order id but ``order_no``'s."""
    ids = e2e.mall_order_ids
    known = [mall_id for no, mall_id in ids.items() if no != order_no]
    answer = requests.post(
        sandbox_url + "/_sandbox/known-orders", json={"order_ids": known}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return ids[order_no]


@pytest.fixture(params=["en-utf8", "ja-cp932-gzip"])
def cycle(request, tmp_path, templates, cx, sandbox, smtp, serve_sandbox):
    """English UTF-8 reports from the sandbox in this process; Japanese cp932 gzipped reports
    from `crossship sandbox serve` in another process."""
    if request.param == "en-utf8":
        return "en", configure(tmp_path, templates, cx, sandbox, smtp)
    remote = serve_sandbox("--report-language", "ja", "--report-encoding", "cp932", "--gzip")
    return "ja", configure(tmp_path, templates, cx, remote, smtp)


def test_full_cycle(cycle) -> None:
    language, e = cycle
    unknown_id = forget_order(e.sandbox.url, e, UNKNOWN)
    pending = e.cx.jsonl("orders", "list", "--store", STORE, "--api-status", "未連携")
    assert sorted(o["order_no"] for o in pending) == e.order_nos

    sent = e.cx("notify", "run")
    assert sent.returncode == 0, sent.stderr
    assert f"{STORE}: sent {len(e.order_nos)} orders" in sent.stderr
    assert sent.stdout == ""
    assert set(e.statuses().values()) == {"in_progress"}
    (feed,) = e.sandbox.feeds()
    feed_id = feed["feedId"]

    fetched = e.cx("results", "fetch")
    assert fetched.returncode == 0, fetched.stderr
    assert "正常 11" in fetched.stderr and "エラー 1" in fetched.stderr

    orders = e.order_rows()
    for order_no, row in orders.items():
        if order_no == UNKNOWN:
            assert (row["status"], row["status_label"]) == ("error", "エラー")
            assert "18028" in row["message"] and unknown_id in row["message"]
            assert NOT_FOUND[language] in row["message"]
            assert row["phase"] == "出荷済み"  # errors stay where they are
            continue
        assert (row["status"], row["status_label"]) == ("success", "正常"), row
        assert row["phase"] == "完了"  # moved to the target's destination phase
        flagged = row["carrier"] == NO_SHIP_METHOD
        assert bool(row["warning"]) is flagged, row
        if flagged:
            assert SHIP_METHOD_WARNING[language] in row["message"]

    history = e.history()
    assert {h["feed_id"] for h in history} == {feed_id}
    for order_no in e.order_nos:
        rows = [h for h in reversed(history) if h["order_no"] == order_no]  # oldest first
        labels = [h["status_label"] for h in rows]
        final = "エラー" if order_no == UNKNOWN else "正常"
        assert labels == ["連携中", final], (order_no, labels)
        assert rows[-1]["warning"] is (orders[order_no]["carrier"] == NO_SHIP_METHOD)
        assert all(h["source"] == "auto" and h["batch_id"] for h in rows)

    assert e.smtp.subjects() == [NOTIFY_SUBJECT, RESULTS_SUBJECT]
    for mail in e.smtp.messages:
        assert mail.mail_from == SENDER
        assert sorted(mail.rcpt_tos) == sorted([ADMIN, *NOTIFY])
        assert feed_id in mail.body
    (results_mail,) = e.smtp.with_subject(RESULTS_SUBJECT)
    assert UNKNOWN in results_mail.body and "エラー: 1 件" in results_mail.body

    assert set(feeds_per_order(e.sandbox.feeds()).values()) == {1}
    assert e.integrity() == "ok"

    # the next cycle finds nothing to do: no feed, no mail
    again = e.cx("notify", "run", "--force")
    assert again.returncode == 0 and "sent 0 orders" in again.stderr
    assert len(e.sandbox.feeds()) == 1 and len(e.smtp.messages) == 2


def test_cron_runs_are_quiet_and_respect_the_interval(configured_db: E2E) -> None:
    e = configured_db
    first = e.cx("-q", "notify", "run")
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")
    second = e.cx("-q", "notify", "run")  # 15 minutes have not passed: not due
    assert (second.returncode, second.stderr) == (0, "")
    assert e.cx("notify", "run").stderr.strip().endswith("(use --force to run now)")
    assert e.cx("-q", "results", "fetch").returncode == 0
    assert set(e.statuses().values()) == {"success"}
    assert len(e.sandbox.feeds()) == 1


def demo_orders() -> Path:
    return Path(str(resources.files("crossship").joinpath("data", "demo_orders.csv")))


def test_demo_runs_the_whole_cycle(cx, tmp_path: Path) -> None:
    if not demo_orders().exists():
        pytest.skip(f"the demo's example orders are not in the package yet ({demo_orders()})")
    # the demo starts its own sandbox and sets its own credentials
    env: dict = {name: None for name in cx.env if name.startswith("CROSSSHIP_AMAZON_MAIN_")}
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env |= {"CROSSSHIP_DB": None, "TMPDIR": str(scratch)}  # its own temporary database
    done = cx("demo", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "$ crossship history" in done.stdout
    history = done.stdout.split("$ crossship history", 1)[1]
    assert "正常" in history
    assert f"===== mail: {NOTIFY_SUBJECT}" in done.stdout
    assert f"===== mail: {RESULTS_SUBJECT}" in done.stdout
    assert list(scratch.iterdir()) == []  # the temporary database is removed
