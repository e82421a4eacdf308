"""`history prune` on a year of history: 1,000,000 history rows (SPEC §15: bounded time and memory).

    python bench/prune.py                   # 1,000,000 history rows, 20,000 batches, 140,160 runs
    python bench/prune.py --history 100000 --batches 2000   # a quick look

A database made with `crossship init` is filled, with SQL, with a year of one agency's work,
evenly spread up to now: history rows (time growing with id, as runs write them), batches (each
with a 4 KB feed, a 1 KB report and 10 rows in its row map; one in 50 left `submitted` as if
stuck, which prune must keep), run records (2 stores x 2 jobs every 15 minutes) and the orders
they speak of. Then, each step its own `crossship` process timed by the launcher of bench/run.py
(wall time and the child's peak RSS):

1. `history prune --before 180d`: about half of everything goes;
2. the same again: nothing left to delete, the cost `results fetch` pays for `--keep-days` in the
   steady state;
3. `history prune --before 30d --vacuum`: most of the rest goes, then VACUUM.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import measure, tool  # noqa: E402

YEAR = timedelta(days=365)
SECOND = timedelta(seconds=1)
STORES = ("amazon-main", "amazon-sub")
ROWS_PER_BATCH = 10
STUCK_EVERY = 50
FEED = ("sku\torder-id\torder-item-id\tquantity\tship-date\tcarrier-code\n" * 70)[:4096].encode()
REPORT = ("Feed Processing Summary:\n\tNumber of records processed\t\t10\n" * 20)[:1024].encode()


def db_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def fill(db: Path, *, history: int, batches: int, now: datetime) -> dict[str, int]:
    start = now - YEAR
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO phases (name, ship_date) "
            "VALUES ('出荷済み', 'required'), ('完了', 'optional')"
        )
        for store in STORES:
            conn.execute(
                "INSERT INTO stores (name, mall, created_at, started) VALUES (?, 'amazon', ?, 1)",
                [store, db_time(start)],
            )
        orders = max(history // 2, 1)
        conn.executemany(
            "INSERT INTO orders (order_no, store, mall_order_id, phase, status, updated_at) "
            "VALUES (?, ?, ?, '完了', 'success', ?)",
            (
                (f"{n:08d}", STORES[n % 2], f"250-{n:07d}-{n:07d}", db_time(start))
                for n in range(orders)
            ),
        )
        step = YEAR / batches
        for b in range(batches):
            created = start + b * step
            state = "submitted" if b % STUCK_EVERY == 0 else "done"
            conn.execute(
                "INSERT INTO batches (id, store, state, created_at, updated_at, encoding, "
                "content_type, feed, row_count, order_count, feed_id, submitted_at, report, "
                "finished_at) VALUES (?, ?, ?, ?, ?, 'utf-8', 'text/tab-separated-values', ?, "
                "?, ?, ?, ?, ?, ?)",
                [
                    b + 1,
                    STORES[b % 2],
                    state,
                    db_time(created),
                    db_time(created),
                    FEED,
                    ROWS_PER_BATCH,
                    ROWS_PER_BATCH,
                    str(50_000_000_000 + b),
                    db_time(created),
                    REPORT if state == "done" else None,
                    db_time(created + timedelta(minutes=15)) if state == "done" else None,
                ],
            )
            conn.executemany(
                "INSERT INTO batch_rows (batch_id, record_no, order_no, order_id) "
                "VALUES (?, ?, ?, ?)",
                (
                    (b + 1, r + 1, f"{(b * ROWS_PER_BATCH + r) % orders:08d}", "250-0-0")
                    for r in range(ROWS_PER_BATCH)
                ),
            )
        step = YEAR / history
        conn.executemany(
            "INSERT INTO history (time, store, order_no, mall_order_id, batch_id, feed_id, "
            "status, warning, message, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'auto')",
            (
                (
                    db_time(start + h * step),
                    STORES[h % 2],
                    f"{h % orders:08d}",
                    f"250-{h % orders:07d}-{h % orders:07d}",
                    h * batches // history + 1,
                    str(50_000_000_000 + h * batches // history),
                    ("in_progress", "success", "error")[h % 3],
                    int(h % 50 == 0),
                    "18028: Your order cannot be found" if h % 3 == 2 else None,
                )
                for h in range(history)
            ),
        )
        every = timedelta(minutes=15)
        runs = [
            (
                store,
                job,
                db_time(start + i * every),
                db_time(start + i * every + timedelta(seconds=3)),
            )
            for i in range(int(YEAR / every))
            for store in STORES
            for job in ("notify", "results")
        ]
        conn.executemany(
            "INSERT INTO runs (store, job, started_at, finished_at, outcome, summary) "
            "VALUES (?, ?, ?, ?, 'ok', '{\"sent\": 10}')",
            runs,
        )
    return counts(db)


def counts(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as conn:
        found = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("history", "batches", "batch_rows", "runs", "orders")
        }
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    found["file MB"] = round(db.stat().st_size / 1_000_000, 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crossship-prune-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "crossship.db"
    for suffix in ("", "-wal", "-shm", ".lock"):
        (work / ("crossship.db" + suffix)).unlink(missing_ok=True)
    env = {**os.environ, "CROSSSHIP_CREDENTIALS": str(work / "none.toml")}
    crossship = [tool("crossship"), "--db", str(db)]
    subprocess.run([*crossship, "init"], env=env, check=True, capture_output=True)

    started = time.perf_counter()
    before = fill(db, history=args.history, batches=args.batches, now=datetime.now(UTC))
    print(f"filled in {time.perf_counter() - started:.1f}s: {before}", file=sys.stderr)

    rows = []
    for label, words in (
        ("prune --before 180d", ["history", "prune", "--before", "180d"]),
        ("again: nothing to delete", ["history", "prune", "--before", "180d"]),
        ("prune --before 30d --vacuum", ["history", "prune", "--before", "30d", "--vacuum"]),
    ):
        print(f"{label} ...", file=sys.stderr, flush=True)
        result = measure([*crossship, *words], env=env)
        after = counts(db)
        rows.append(
            {
                "step": label,
                "seconds": round(result.seconds, 2),
                "peak MB": round(result.peak_mb),
                **{k: after[k] for k in ("history", "batches", "runs", "file MB")},
            }
        )
    table = [{"step": "before", "seconds": "", "peak MB": "", **before}, *rows]
    for row in table:
        row.pop("batch_rows", None)
        row.pop("orders", None)
    print(tabulate(table, headers="keys", tablefmt="github"))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
