"""Many stores at once (SPEC §16): a bounded pool of worker threads, one Store each.

A job's stores wait mostly on their malls' answers, so threads overlap those waits; SQLite
serialises the short writes (every write transaction is BEGIN IMMEDIATE, so each one waits its
turn under the busy timeout instead of failing). One store's failure, expected or not, is that
store's alone. Results come back in the order the stores were given (by store name), each as soon
as it and every store before it are done, so the caller can report and mail in a stable order
while later stores still work.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TypeVar

from crossship.errors import CrossshipError
from crossship.i18n import Message
from crossship.store import Store

DEFAULT_JOBS = 8  # stores worked on at once; `--jobs` / CROSSSHIP_JOBS
MAX_JOBS = 64  # each worker holds a SQLite connection and an HTTP session

R = TypeVar("R")
T = TypeVar("T")

log = logging.getLogger("crossship.pool")


def map_stores(
    rows: Sequence[R],
    work: Callable[[Store, R], T],
    failed: Callable[[R, Exception], T],
    *,
    open_store: Callable[[], Store],
    jobs: int = DEFAULT_JOBS,
) -> Iterator[T]:
    """``work(store, row)`` for every row, at most ``jobs`` at once; yields the results in the
    order of ``rows``.

    Each worker thread opens its own Store with ``open_store()`` (one SQLite connection, used only
    by that thread) and closes it when the rows run out. An exception from ``work`` (or from
    opening the worker's Store) becomes ``failed(row, exc)`` for that row alone; the other rows go
    on. Closing the iterator early lets the rows already started finish and starts no more.
    """
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    futures: list[Future[T]] = [Future() for _ in rows]
    lock = threading.Lock()
    next_index = 0
    stopping = threading.Event()

    def take() -> int | None:
        nonlocal next_index
        with lock:
            if stopping.is_set() or next_index >= len(rows):
                return None
            index, next_index = next_index, next_index + 1
        # running: a cancel() from a failing worker leaves this row to finish
        return index if futures[index].set_running_or_notify_cancel() else None

    def worker() -> None:
        store: Store | None = None
        opening: Exception | None = None
        try:
            store = open_store()
        except Exception as exc:  # every row this worker takes fails with it
            opening = exc
        try:
            while (index := take()) is not None:
                row = rows[index]
                try:
                    if store is None:
                        raise opening or RuntimeError("no store")
                    result = work(store, row)
                except Exception as exc:
                    log.debug("store %s failed", index, exc_info=True)
                    try:
                        result = failed(row, exc)
                    except Exception as again:  # handed to the caller, like any other result
                        futures[index].set_exception(again)
                        continue
                except BaseException as exc:  # an interrupt ends the whole job, in the caller
                    futures[index].set_exception(exc)
                    stopping.set()
                    for future in futures:
                        future.cancel()  # rows never started: result() raises, nothing waits
                    return
                futures[index].set_result(result)
        finally:
            if store is not None:
                store.close()

    threads = [
        threading.Thread(target=worker, name=f"crossship-store-{n}", daemon=True)
        for n in range(min(jobs, len(rows)))
    ]
    for thread in threads:
        thread.start()
    try:
        for future in futures:
            yield future.result()
    finally:
        stopping.set()
        for thread in threads:
            thread.join()


def describe(exc: Exception) -> str | Message:
    """One line for a store's run that ended on an exception its job did not expect (kept as a
    Message: the run's mail shows it in its own language)."""
    if isinstance(exc, CrossshipError):
        return exc.kept
    if isinstance(exc, sqlite3.Error):
        return Message(
            "database: {error}; nothing of this store's current step was written",
            {"error": str(exc)},
        )
    return Message(
        "unexpected {kind}: {error} (run with -vv to see where)",
        {"kind": type(exc).__name__, "error": str(exc)},
    )
