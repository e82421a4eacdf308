"""Many stores in one database (SPEC §16): a job works on several stores at once, yet runs that
collide still exit 75, writers from other processes still get their turn, and a kill -9 in the
middle of a many-store run leaves nothing that the next cron cycle does not resolve.

The stores are added through the Store class (a subprocess per `config store add` would make the
set-up the slow part); every run is the real `crossship` in a subprocess, each store with its
own section in the credentials file.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from crossship.store import Store
from crossship.timeutil import to_db

from .conftest import (
    E2E,
    RESULTS_SUBJECT,
    SHIP_DATE,
    STORE,
    configure,
    feeds_per_order,
    make_orders,
    wait_for,
    write_orders_csv,
)
from .test_concurrency import LOCKED, assert_locked_out, finish

pytestmark = pytest.mark.e2e

STORES = [f"shop-{n:02d}" for n in range(12)]
PER_STORE = 3
HOLD = 300.0  # seconds a held call waits for release: far beyond any test


def add_stores(e: E2E, names: list[str] = STORES, per_store: int = PER_STORE) -> dict[str, str]:
    """Started Amazon stores on the test's sandbox, ``per_store`` orders each, each store its own
    seller at the sandbox with its own [stores.NAME] section of credentials; amazon-main is stopped.
    Returns order_no -> mall_order_id of the new orders."""
    options = e.sandbox.options
    sections = []
    orders = []
    now = to_db(datetime.now(UTC))
    with Store(e.db) as store:
        store.set_started(STORE, False)
        for s, name in enumerate(names):
            store.add_store(
                name, "amazon", {"endpoint": e.sandbox.url, "token_url": e.sandbox.token_url}, now
            )
            store.add_target(name, "出荷済み", "完了")
            store.set_started(name, True)
            sections.append(
                f'[stores."{name}"]\nlwa_client_id = "{options.client_id}"\n'
                f'lwa_client_secret = "{options.client_secret}"\n'
                f'refresh_token = "{options.refresh_token}-{name}"\n'  # its own seller
            )
            for k in range(per_store):
                n = 1000 + s * 100 + k
                orders.append(
                    {
                        "order_no": f"M{n:05d}",
                        "store": name,
                        "mall_order_id": f"503-{n:07d}-{(n * 7919) % 10**7:07d}",
                        "phase": "出荷済み",
                        "category": "normal",
                        "fba": 0,
                        "ship_date": SHIP_DATE,
                        "carrier": "ヤマト運輸",
                        "tracking_number": f"4013{n:08d}",
                    }
                )
        store.import_orders(orders, [], now)
    credentials = Path(e.cx.env["CROSSSHIP_CREDENTIALS"])
    credentials.write_text("\n".join(sections), encoding="utf-8")
    os.chmod(credentials, 0o600)
    # only the file gives the stores their credentials
    e.cx.env = {k: v for k, v in e.cx.env.items() if "LWA" not in k and "REFRESH" not in k}
    return {o["order_no"]: o["mall_order_id"] for o in orders}


@pytest.fixture
def shops(tmp_path: Path, templates, cx, sandbox, smtp) -> tuple[E2E, dict[str, str]]:
    e = configure(tmp_path, templates, cx, sandbox, smtp, orders=[])
    return e, add_stores(e)


def store_statuses(e: E2E) -> dict[str, Counter]:
    found: dict[str, Counter] = {}
    for store, status in e.query("SELECT store, status FROM orders WHERE store != ?", (STORE,)):
        found.setdefault(store, Counter())[status] += 1
    return found


def mailed_stores(e: E2E, subject: str) -> list[str]:
    """The store each mail of ``subject`` is about, in the order they arrived."""
    names = []
    for mail in e.smtp.with_subject(subject):
        found = re.findall(r"shop-\d\d", mail.body)
        names.append(found[0] if found else "?")
    return names


def test_five_runs_at_once_one_works_on_every_store_the_others_exit_75(
    shops: tuple[E2E, dict[str, str]],
) -> None:
    e, orders = shops
    e.sandbox.add_fault("createFeed", "hang", seconds=HOLD)  # the holder waits in one store
    runs = [e.cx.popen("-q", "notify", "run", "--jobs", "4") for _ in range(5)]
    wait_for(lambda: e.sandbox.calls["createFeed"] >= 1, what="the lock holder's createFeed")
    wait_for(lambda: sum(p.poll() is not None for p in runs) == 4, what="the others to give up")
    # meanwhile other writers and readers get their turn: the holder's writes are short
    more = write_orders_csv(e.db.parent / "more.csv", make_orders(start=500))
    imported = e.cx("orders", "import", more)
    listed = e.cx("history", "--format", "jsonl")
    fetch = e.cx("results", "fetch", "--force")
    assert imported.returncode == 0, imported.stderr
    assert listed.returncode == 0, listed.stderr
    assert fetch.returncode == LOCKED
    assert_locked_out(fetch.stdout, fetch.stderr)

    e.sandbox.release_hangs()
    outcomes = finish(runs)
    assert Counter(code for code, _, _ in outcomes) == {LOCKED: 4, 0: 1}
    for code, stdout, stderr in outcomes:
        if code == LOCKED:
            assert_locked_out(stdout, stderr)
        else:
            assert (stdout, stderr) == ("", "")  # -q: the run that worked says nothing
    assert store_statuses(e) == {name: Counter(in_progress=PER_STORE) for name in STORES}
    assert e.sandbox.calls["token"] == len(STORES)  # one token per store per run

    fetches = [e.cx.popen("results", "fetch", "--force") for _ in range(5)]
    outcomes = finish(fetches)
    assert {code for code, _, _ in outcomes} <= {0, LOCKED}
    worked = [stderr for code, _, stderr in outcomes if code == 0 and "正常" in stderr]
    assert len(worked) == 1, outcomes
    assert [line.split(":")[0] for line in worked[0].splitlines()] == STORES  # in name order
    assert store_statuses(e) == {name: Counter(success=PER_STORE) for name in STORES}
    assert feeds_per_order(e.sandbox.feeds()) == {m: 1 for m in orders.values()}
    # one mail per store and job, in store order, whatever finished first
    assert mailed_stores(e, RESULTS_SUBJECT) == STORES
    assert e.integrity() == "ok"


def test_kill_9_in_the_middle_of_a_many_store_run_then_the_next_cycle_resolves_all(
    shops: tuple[E2E, dict[str, str]],
) -> None:
    e, orders = shops
    e.sandbox.set_options(latency_ms=50)
    # the fifth createFeed is held: the run is killed with stores done, one in flight, some not
    e.sandbox.add_fault("createFeed", "hang", count=4, seconds=0)
    e.sandbox.add_fault("createFeed", "hang", seconds=HOLD)
    run = e.cx.popen("notify", "run", "--jobs", "3")
    wait_for(
        lambda: e.sandbox.calls["createFeed"] >= 7 or run.poll() is not None,
        what="stores on both sides of the held one",
    )
    assert run.poll() is None, run.communicate()
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    assert run.returncode == -signal.SIGKILL
    assert e.sandbox.calls["createFeed"] < len(STORES)  # in the middle: some stores not sent
    e.sandbox.release_hangs()  # the held createFeed takes effect; its answer goes nowhere
    wait_for(lambda: len(e.sandbox.feeds()) == e.sandbox.calls["createFeed"], what="the held feed")
    assert e.integrity() == "ok"

    # the next cron cycle: a feed Amazon holds is adopted, never sent again; a batch killed
    # before its createFeed left is released and sent now
    notify = e.cx("-v", "notify", "run", "--force")
    assert notify.returncode == 0, notify.stderr
    assert "its lost submission was found at Amazon" in notify.stderr
    if "submitting" in e.batch_states():  # killed with createFeed not yet at Amazon:
        age_submissions(e, minutes=11)  # it is released 10 minutes later (cron's next cycles)
        released = e.cx("-v", "notify", "run", "--force")
        assert released.returncode == 0, released.stderr
        assert "Amazon never created a feed for this batch" in released.stderr
    fetch = e.cx("results", "fetch", "--force")
    assert fetch.returncode == 0, fetch.stderr

    assert store_statuses(e) == {name: Counter(success=PER_STORE) for name in STORES}
    assert feeds_per_order(e.sandbox.feeds()) == {m: 1 for m in orders.values()}  # none twice
    assert e.sandbox.calls["createFeed"] == len(STORES)
    states = Counter(e.batch_states())
    assert states["done"] == len(STORES) and set(states) <= {"done", "released"}, states
    assert e.integrity() == "ok"


def age_submissions(e: E2E, minutes: int) -> None:
    """Stand-in for waiting: the submitting batches' submit time ``minutes`` into the past."""
    past = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="microseconds")
    with sqlite3.connect(e.db) as conn:
        conn.execute("UPDATE batches SET submit_started_at = ? WHERE state = 'submitting'", (past,))
    conn.close()


def test_serve_with_latency_delays_each_answer(serve_sandbox) -> None:
    remote = serve_sandbox("--latency-ms", "300")
    options = remote.options
    form = {
        "grant_type": "refresh_token",
        "refresh_token": options.refresh_token,
        "client_id": options.client_id,
        "client_secret": options.client_secret,
    }
    start = time.monotonic()
    answer = requests.post(remote.token_url, data=form, timeout=30)
    took = time.monotonic() - start
    assert answer.status_code == 200
    assert took >= 0.3  # a lower bound only: the delay is promised, no speed is tested
    assert remote.calls == {"token": 1}


def test_many_stores_with_jobs_1_send_the_same(shops: tuple[E2E, dict[str, str]]) -> None:
    e, orders = shops
    done = e.cx("notify", "run", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == STORES
    assert store_statuses(e) == {name: Counter(in_progress=PER_STORE) for name in STORES}
    assert feeds_per_order(e.sandbox.feeds()) == {m: 1 for m in orders.values()}
