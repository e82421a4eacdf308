"""The benchmark's order file: N orders (1 or 2 item lines each, 1.5 on average) with the
Japanese headings of examples/orders.csv, of which exactly E are eligible for amazon-main.

Everything is a function of the order's index, so bench/run.py knows without reading the file
which orders are eligible and which order ids the sandbox must not know:

- eligible: every ``step``-th order (step = N // E), up to E of them; amazon-main, phase 出荷済み
  (a target phase), 通常, not FBA, not bundled, with ship date, carrier and tracking number;
- unknown to the sandbox: every tenth eligible order (its report rows are Errors, code 18028);
- the others: amazon-main in 新規受付 / 出荷待ち / 完了, or in 出荷済み but 保留, キャンセル,
  FBA or a bundled child; and orders of rakuten-shop, yahoo-shop and a stopped Amazon store.

    python bench/generate.py orders.csv --orders 1000000 --eligible 100000
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from pathlib import Path

HEADER = (
    "管理番号",
    "店舗",
    "注文番号",
    "処理フェーズ",
    "管理区分",
    "FBA",
    "同梱親",
    "分割元",
    "発送日",
    "配送便",
    "配送番号",
    "注文商品番号",
    "SKU",
    "数量",
)
STORE = "amazon-main"
PHASES = {
    "新規受付": "optional",
    "出荷待ち": "optional",
    "出荷済み": "required",
    "完了": "optional",
}
TARGET, MOVE_TO = "出荷済み", "完了"
CARRIERS = {  # name -> (Amazon carrier-code, ship-method)
    "ヤマト運輸": ("Yamato Transport", "宅急便"),
    "佐川急便": ("Sagawa Express", "飛脚宅配便"),
    "日本郵便": ("Japan Post", "ゆうパック"),
}
OTHER_STORES = {"amazon-sub": "amazon", "rakuten-shop": "rakuten", "yahoo-shop": "yahoo"}
SKUS = ("MUG-WHT-350", "SPOON-SET-4", "TOWEL-GRY-L", "CANDLE-LAV", "TEA-SENCHA-100", "NOTE-A5")
FIRST_ORDER_NO = 1_000_001
UNKNOWN_EVERY = 10  # one eligible order in ten has an order id the sandbox does not know


def order_no(index: int) -> str:
    return str(FIRST_ORDER_NO + index)


def mall_order_id(index: int) -> str:
    """Amazon's NNN-NNNNNNN-NNNNNNN, unique per index (below ten million)."""
    return f"{(250, 249, 503)[index % 3]}-{index:07d}-{(index * 7_919_333) % 10_000_000:07d}"


def _item_lines(index: int) -> int:
    """1 or 2, half and half over any regular subset of the orders (the eligible ones too)."""
    return 1 + (index * 2_654_435_761 >> 16) % 2


def step(orders: int, eligible: int) -> int:
    if not 0 < eligible <= orders:
        raise ValueError("need 0 < eligible <= orders")
    return orders // eligible


def is_eligible(index: int, orders: int, eligible: int) -> bool:
    every = step(orders, eligible)
    return index % every == 0 and index // every < eligible


def is_unknown(index: int, orders: int, eligible: int) -> bool:
    """An eligible order whose order id the sandbox is told it does not know."""
    return (index // step(orders, eligible)) % UNKNOWN_EVERY == UNKNOWN_EVERY - 1


def known_order_ids(orders: int, eligible: int) -> list[str]:
    every = step(orders, eligible)
    return [
        mall_order_id(i)
        for i in range(0, every * eligible, every)
        if not is_unknown(i, orders, eligible)
    ]


def rows(orders: int, eligible: int) -> Iterator[tuple[str, ...]]:
    """The file's data rows, order by order."""
    carriers = tuple(CARRIERS)
    for i in range(orders):
        no = order_no(i)
        carrier = carriers[i % 3]
        ship_date = f"2026-11-{20 + i % 8:02d}"
        tracking = f"{401_234_000_000 + i:012d}"
        fba, bundle, category = "0", "", "通常"
        if is_eligible(i, orders, eligible):
            store, phase = STORE, TARGET
        else:
            kind = (i * 7) % 20
            store, phase = STORE, TARGET
            if kind < 4:
                phase = MOVE_TO  # notified earlier
            elif kind < 6:
                phase, ship_date, tracking = "出荷待ち", "", ""
            elif kind < 8:
                phase, ship_date, carrier, tracking = "新規受付", "", "", ""
            elif kind == 8:
                category = "保留"
            elif kind == 9:
                category = "キャンセル"
            elif kind == 10:
                fba, carrier, tracking = "1", "", ""
            elif kind == 11:
                bundle = order_no(i - 1)  # bundled into the order before it
            elif kind < 14:
                store = "amazon-sub"  # a stopped store: nothing of it is sent
            elif kind < 18:
                store = "rakuten-shop"
            else:
                store = "yahoo-shop"
        amazon = store.startswith("amazon")
        mall_id = mall_order_id(i) if amazon else f"338271-20261124-{i:010d}"
        dated = (ship_date, carrier, tracking)
        common = (no, store, mall_id, phase, category, fba, bundle, "", *dated)
        for line in range(_item_lines(i)):
            item_id = f"{38_204_417_000_000 + 2 * i + line:014d}" if amazon else ""
            yield (*common, item_id, SKUS[(i + line) % len(SKUS)], str(1 + (i + line) % 3))


def write(path: Path, orders: int, eligible: int) -> int:
    """Write the file (UTF-8, LF); returns the number of data rows."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        for row in rows(orders, eligible):
            writer.writerow(row)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--eligible", type=int, default=100_000)
    args = parser.parse_args()
    count = write(args.path, args.orders, args.eligible)
    print(f"{args.path}: {args.orders} orders, {count} rows, {args.eligible} eligible")


if __name__ == "__main__":
    main()
