"""Plain-sqlite3 baselines that bench/run.py times beside crossship: the least a script must do
for the same result, with none of crossship's checks, crash safety or reporting.

    python bench/baseline.py notify DB FEED.tsv      # select, write the feed, in_progress + history
    python bench/baseline.py results DB BATCH_ID=REPORT.txt ...   # parse, statuses + history
    python bench/baseline.py history DB              # JSON lines to stdout (if no sqlite3 CLI)
    python bench/baseline.py history-csv DB          # CSV to stdout (if no sqlite3 CLI)
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from datetime import UTC, datetime

# the three header rows of Amazon's Japan shipping-confirmation template (Version=2011.1102)
FEED_HEADER = (
    "TemplateType=OrderFulfillment\tVersion=2011.1102\tこの行はAmazonが使用しますので変更や削除"
    "しないでください。\n"
    "注文番号\t注文商品番号\t出荷数\t出荷日\t配送業者コード\t配送業者名\tお問い合わせ伝票番号\t"
    "配送方法\t代金引換\n"
    "order-id\torder-item-id\tquantity\tship-date\tcarrier-code\tcarrier-name\ttracking-number\t"
    "ship-method\tcod-collection-method\n"
)
TARGETED = "FROM orders o JOIN targets t ON t.store = o.store AND t.phase = o.phase "
WHERE = (
    "WHERE o.store = ? AND o.status = 'pending' AND o.category = 'normal' AND o.fba = 0 "
    "AND (o.bundle_parent IS NULL OR o.bundle_parent = '')"
)
ELIGIBLE = TARGETED + WHERE
# a carrier's Amazon codes as one row (they live in carrier_codes, a row per field)
CARRIER_CODES = (
    "SELECT carrier AS name, "
    "max(CASE field WHEN 'amazon_carrier_code' THEN value END) AS amazon_carrier_code, "
    "max(CASE field WHEN 'amazon_carrier_name' THEN value END) AS amazon_carrier_name, "
    "max(CASE field WHEN 'amazon_ship_method' THEN value END) AS amazon_ship_method "
    "FROM carrier_codes GROUP BY carrier"
)
HISTORY_COLUMNS = (
    "time, store, order_no, mall_order_id, batch_id, feed_id, status, warning, message, source, "
    "operator"
)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def notify(db_path: str, feed_path: str, store: str = "amazon-main") -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    rows = conn.execute(
        "SELECT o.mall_order_id, coalesce(i.item_id, ''), coalesce(i.quantity, ''), o.ship_date, "
        "c.amazon_carrier_code, coalesce(c.amazon_carrier_name, ''), "
        "coalesce(o.tracking_number, ''), coalesce(c.amazon_ship_method, ''), '' "
        f"{TARGETED} LEFT JOIN order_items i ON i.order_no = o.order_no "
        f"LEFT JOIN ({CARRIER_CODES}) c ON c.name = o.carrier {WHERE} "
        "ORDER BY o.order_no, i.line",
        [store],
    )
    with open(feed_path, "wb") as out:
        out.write(FEED_HEADER.encode())
        for row in rows:
            out.write(("\t".join(map(str, row)) + "\n").encode())
    stamp = now()
    conn.execute(
        f"INSERT INTO history ({HISTORY_COLUMNS}) "
        "SELECT ?, o.store, o.order_no, o.mall_order_id, 1, NULL, 'in_progress', 0, NULL, 'auto', "
        f"NULL {ELIGIBLE} ORDER BY o.order_no",
        [stamp, store],
    )
    conn.execute(
        "UPDATE orders SET status = 'in_progress', batch_id = 1, updated_at = ? "
        f"WHERE order_no IN (SELECT o.order_no {ELIGIBLE})",
        [stamp, store],
    )
    conn.execute("COMMIT")
    conn.close()


def results(db_path: str, reports: list[str], move_to: str = "完了") -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    stamp = now()
    for spec in reports:
        batch_id, path = spec.split("=", 1)
        record_order = dict(
            conn.execute(
                "SELECT record_no, order_no FROM batch_rows WHERE batch_id = ?", [int(batch_id)]
            )
        )
        errors: dict[str, list[str]] = {}
        with open(path, encoding="utf-8") as report:
            in_table = False
            for line in report:
                cells = line.rstrip("\n").split("\t")
                if not in_table:
                    in_table = cells[0] == "original-record-number"
                    continue
                record, _order_id, _item_id, code, kind, message = cells
                if kind == "Error":
                    errors.setdefault(record_order[int(record)], []).append(f"{code}: {message}")
        conn.executemany(
            "UPDATE orders SET status = 'error', message = ?, updated_at = ? WHERE order_no = ?",
            (("; ".join(dict.fromkeys(m)), stamp, no) for no, m in errors.items()),
        )
        conn.execute(
            "UPDATE orders SET status = 'success', message = NULL, phase = ?, updated_at = ? "
            "WHERE batch_id = ? AND status = 'in_progress'",
            [move_to, stamp, int(batch_id)],
        )
        conn.execute(
            f"INSERT INTO history ({HISTORY_COLUMNS}) "
            "SELECT ?, store, order_no, mall_order_id, batch_id, NULL, status, 0, message, 'auto', "
            "NULL FROM orders WHERE batch_id = ? AND updated_at = ? ORDER BY order_no",
            [stamp, int(batch_id), stamp],
        )
    conn.execute("COMMIT")
    conn.close()


def history(db_path: str) -> None:
    conn = sqlite3.connect(db_path)
    cursor = conn.execute(f"SELECT {HISTORY_COLUMNS} FROM history ORDER BY id DESC")
    names = [d[0] for d in cursor.description]
    out = sys.stdout
    while rows := cursor.fetchmany(1000):
        for row in rows:
            out.write(json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False) + "\n")


def history_csv(db_path: str) -> None:
    conn = sqlite3.connect(db_path)
    cursor = conn.execute(f"SELECT {HISTORY_COLUMNS} FROM history ORDER BY id DESC")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([d[0] for d in cursor.description])
    while rows := cursor.fetchmany(1000):
        writer.writerows(rows)


if __name__ == "__main__":
    command, db, *rest = sys.argv[1:]
    if command == "notify":
        notify(db, rest[0])
    elif command == "results":
        results(db, rest)
    elif command == "history":
        history(db)
    elif command == "history-csv":
        history_csv(db)
    else:
        raise SystemExit(__doc__)
