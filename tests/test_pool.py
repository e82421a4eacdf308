"""Many stores at once (SPEC §16): the pool under both cron jobs.

The pool itself (``crossship.pool.map_stores``) with threads forced to finish out of order by
events, then `notify run` / `results fetch` with several stores against the in-process sandbox
(real HTTP on 127.0.0.1): stable output, one store's failure alone, -q silence, --jobs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import notify_helpers
import pytest
from notify_helpers import SECRETS, Env, order

from crossship.pool import map_stores
from crossship.sandbox import SandboxOptions, SandboxServer
from crossship.store import Store

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

WAIT = 10  # seconds an event may take before the test fails (never reached when it passes)


def rows(*names: str) -> list[dict]:
    return [{"name": n} for n in names]


class Opener:
    """Opens the pool's Stores on the test database and keeps them, to count and check them."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.stores: list[Store] = []
        self.lock = threading.Lock()

    def __call__(self) -> Store:
        store = Store(self.db_path)
        with self.lock:
            self.stores.append(store)
        return store


@pytest.fixture
def opener(db_path: Path) -> Opener:
    Store(db_path).close()  # migrated once, before threads open it together
    return Opener(db_path)


def no_failure(row: dict, exc: Exception) -> str:
    raise AssertionError(f"{row['name']} failed: {exc!r}")


def is_closed(store: Store) -> bool:
    try:
        store.db.conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


# ---------------------------------------------------------------------------------- the pool


def test_results_come_in_the_given_order_whatever_finishes_first(opener: Opener) -> None:
    names = ["a", "b", "c", "d"]
    done = {n: threading.Event() for n in names}
    finished: list[str] = []

    def work(store: Store, row: dict) -> str:
        name = row["name"]
        later = names[names.index(name) + 1] if name != names[-1] else None
        if later:  # each store waits for the next one: they finish d, c, b, a
            assert done[later].wait(WAIT), f"{later} never finished"
        finished.append(name)
        done[name].set()
        return name.upper()

    results = list(map_stores(rows(*names), work, no_failure, open_store=opener))

    assert finished == ["d", "c", "b", "a"]
    assert results == ["A", "B", "C", "D"]


def test_one_stores_exception_is_its_own_result_and_the_others_go_on(
    opener: Opener,
) -> None:
    def work(store: Store, row: dict) -> str:
        if row["name"] == "b":
            raise RuntimeError("boom in b")
        if row["name"] == "c":
            store.db.conn.execute("SELECT * FROM no_such_table")
        return f"{row['name']} ok"

    def failed(row: dict, exc: Exception) -> str:
        return f"{row['name']} failed: {type(exc).__name__}: {exc}"

    results = list(map_stores(rows("a", "b", "c", "d"), work, failed, open_store=opener))

    assert results == [
        "a ok",
        "b failed: RuntimeError: boom in b",
        "c failed: OperationalError: no such table: no_such_table",
        "d ok",
    ]


def test_at_most_jobs_at_once_each_worker_with_its_own_store(opener: Opener) -> None:
    jobs = 3
    together = threading.Barrier(jobs, timeout=WAIT)  # broken unless 3 really run at once
    lock = threading.Lock()
    running = peak = 0
    users: dict[int, set[int]] = {}

    def work(store: Store, row: dict) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            users.setdefault(id(store), set()).add(threading.get_ident())
        if int(row["name"]) < jobs:
            together.wait()
        store.db.conn.execute("SELECT count(*) FROM orders").fetchone()  # usable in its thread
        with lock:
            running -= 1
        return row["name"]

    names = [str(n) for n in range(12)]
    results = list(map_stores(rows(*names), work, no_failure, open_store=opener, jobs=jobs))

    assert results == names
    assert peak == jobs
    assert len(opener.stores) == jobs  # one Store per worker, not per store
    assert all(len(threads) == 1 for threads in users.values())  # never shared between threads
    assert all(is_closed(store) for store in opener.stores)


def test_one_job_works_one_store_at_a_time(opener: Opener) -> None:
    seen: list[int] = []
    results = list(
        map_stores(
            rows("x", "y", "z"),
            lambda store, row: seen.append(threading.get_ident()) or row["name"],
            no_failure,
            open_store=opener,
            jobs=1,
        )
    )
    assert results == ["x", "y", "z"]
    assert len(set(seen)) == 1 and len(opener.stores) == 1


def test_a_store_that_cannot_be_opened_fails_each_row_of_its_worker(db_path: Path) -> None:
    def open_store() -> Store:
        raise sqlite3.OperationalError("unable to open database file")

    results = list(
        map_stores(
            rows("a", "b"),
            lambda store, row: "worked",
            lambda row, exc: f"{row['name']}: {exc}",
            open_store=open_store,
            jobs=2,
        )
    )
    assert results == ["a: unable to open database file", "b: unable to open database file"]


def test_an_interrupt_ends_the_job_and_starts_no_other_store(opener: Opener) -> None:
    started: list[str] = []

    def work(store: Store, row: dict) -> str:
        started.append(row["name"])
        if row["name"] == "b":
            raise KeyboardInterrupt
        return row["name"]

    results: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        for result in map_stores(
            rows("a", "b", "c", "d"), work, no_failure, open_store=opener, jobs=1
        ):
            results.append(result)
    assert results == ["a"]
    assert started == ["a", "b"]
    assert all(is_closed(store) for store in opener.stores)


def test_a_failing_failure_handler_reaches_the_caller(opener: Opener) -> None:
    def work(store: Store, row: dict) -> str:
        raise RuntimeError("first")

    def failed(row: dict, exc: Exception) -> str:
        raise ValueError("while handling")

    with pytest.raises(ValueError, match="while handling"):
        list(map_stores(rows("a"), work, failed, open_store=opener))


def test_no_rows_no_threads(opener: Opener) -> None:
    assert list(map_stores([], lambda s, r: r, no_failure, open_store=opener)) == []
    assert opener.stores == []


def test_jobs_must_be_positive(opener: Opener) -> None:
    with pytest.raises(ValueError):
        list(map_stores(rows("a"), lambda s, r: r, no_failure, open_store=opener, jobs=0))


# ---------------------------------------------------------------------------------- the jobs

STORES = ["shop-a", "shop-b", "shop-c", "shop-d", "shop-e"]


@pytest.fixture
def sandbox(amazon_mock) -> Iterator[SandboxServer]:
    options = SandboxOptions(
        client_id=SECRETS["LWA_CLIENT_ID"],
        client_secret=SECRETS["LWA_CLIENT_SECRET"],
        refresh_token=SECRETS["REFRESH_TOKEN"],
        enforce_rate_limits=False,
    )
    with SandboxServer("127.0.0.1", 0, options) as server:
        amazon_mock.add_passthru(server.url)  # real HTTP to the sandbox, everything else mocked
        yield server


@pytest.fixture
def many(env: Env, sandbox: SandboxServer) -> Env:
    """Five started stores on the sandbox, three orders each (the default store stopped)."""
    env.store.set_started(notify_helpers.STORE, False)
    for n, name in enumerate(STORES):
        env.add_store(name, endpoint=sandbox.url, token_url=sandbox.token_url)
        env.add(*(order(10 * n + k, store=name) for k in range(1, 4)))
    return env


def statuses_by_store(env: Env) -> dict[str, Counter]:
    found: dict[str, Counter] = {}
    for o in env.store.iter_orders():
        found.setdefault(o["store"], Counter())[o["status"]] += 1
    return found


def test_notify_and_results_for_many_stores_report_in_store_order(
    many: Env, sandbox: SandboxServer
) -> None:
    sent = many.cli("notify", "run", "--jobs", "3")

    assert sent.exit_code == 0, sent.stderr
    lines = sent.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == STORES
    assert all(": sent 3 orders, feed " in line for line in lines)
    assert sandbox.calls["createFeed"] == len(STORES) and sandbox.calls["token"] == len(STORES)

    fetched = many.cli("results", "fetch", "--force")

    assert fetched.exit_code == 0, fetched.stderr
    assert [line.split(":")[0] for line in fetched.stderr.splitlines()] == STORES
    assert statuses_by_store(many) == {name: Counter(success=3) for name in STORES}
    # recorded in store order too (newest first)
    assert [r["store"] for r in many.runs("notify")] == STORES[::-1]
    assert [r["store"] for r in many.runs("results")] == STORES[::-1]


def test_one_store_failing_does_not_stop_the_others(
    many: Env, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CROSSSHIP_SHOP_C_REFRESH_TOKEN")

    result = many.cli("notify", "run")

    assert result.exit_code == 1
    assert "Error: shop-c: store 'shop-c' has no Amazon credentials" in result.stderr
    for name in STORES:
        if name != "shop-c":
            assert f"{name}: sent 3 orders" in result.stderr
    found = statuses_by_store(many)
    assert found["shop-c"] == Counter(pending=3)
    assert all(found[n] == Counter(in_progress=3) for n in STORES if n != "shop-c")
    outcomes = {r["store"]: r["outcome"] for r in many.runs("notify")}
    assert outcomes == {n: "failed" if n == "shop-c" else "ok" for n in STORES}


def test_an_unexpected_error_in_one_store_is_that_stores_failed_run(
    many: Env, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Store.eligible_orders

    def eligible_orders(self: Store, store: str):
        if store == "shop-b":
            raise ZeroDivisionError("a bug")
        return original(self, store)

    monkeypatch.setattr(Store, "eligible_orders", eligible_orders)

    result = many.cli("notify", "run")

    assert result.exit_code == 1
    assert "Error: shop-b: unexpected ZeroDivisionError: a bug" in result.stderr
    assert "Traceback" not in result.stderr
    assert statuses_by_store(many)["shop-b"] == Counter(pending=3)
    assert sandbox.calls["createFeed"] == len(STORES) - 1


def test_quiet_many_stores_say_nothing_on_success(many: Env) -> None:
    sent = many.cli("-q", "notify", "run")
    fetched = many.cli("-q", "results", "fetch", "--force")

    assert (sent.exit_code, sent.stdout, sent.stderr) == (0, "", "")
    assert (fetched.exit_code, fetched.stdout, fetched.stderr) == (0, "", "")
    assert statuses_by_store(many) == {name: Counter(success=3) for name in STORES}


def test_jobs_from_the_environment(many: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSSHIP_JOBS", "1")
    result = many.cli("notify", "run")
    assert result.exit_code == 0, result.stderr
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == STORES


@pytest.mark.parametrize(
    ("args", "env_jobs"),
    [(["--jobs", "0"], None), (["--jobs", "many"], None), (["--jobs", "65"], None), ([], "x")],
)
@pytest.mark.parametrize("job", [["notify", "run"], ["results", "fetch"]])
def test_bad_jobs_is_refused_and_nothing_changes(
    many: Env,
    sandbox: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    job: list[str],
    args: list[str],
    env_jobs: str | None,
) -> None:
    if env_jobs is not None:
        monkeypatch.setenv("CROSSSHIP_JOBS", env_jobs)
    result = many.cli(*job, *args)

    assert result.exit_code == 2
    assert "--jobs" in result.stderr and "Traceback" not in result.stderr
    assert sum(sandbox.calls.values()) == 0
    assert many.runs() == []
