"""Orders → feed lines: each order checked by its mall, the good ones turned into lines.

Shared by `notify run` (and its dry run) and `export feed`, so a manual file is byte for byte what
the automatic run would send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from crossship.malls import MallSession
from crossship.store import Store


@dataclass
class Prepared:
    ready: list[dict] = field(default_factory=list)  # orders that passed, in the given order
    lines: list = field(default_factory=list)  # their feed lines
    errors: list[tuple[dict, str]] = field(default_factory=list)  # (order, what to fix)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (order_no, warning)


def prepare(store: Store, session: MallSession, orders: Sequence[dict]) -> Prepared:
    prepared = Prepared()
    if not orders:
        return prepared
    order_nos = [o["order_no"] for o in orders]
    items = store.items_for(order_nos)
    carriers = {c["name"]: c for c in store.list_carriers()}
    parents = store.split_parents(order_nos)
    for order in orders:
        order_items = items.get(order["order_no"], [])
        carrier = carriers.get(order["carrier"]) if order["carrier"] else None
        check = session.check(
            order, order_items, carrier, is_split_parent=order["order_no"] in parents
        )
        if check.errors:
            prepared.errors.append((order, "; ".join(check.errors)))
            continue
        prepared.warnings.extend((order["order_no"], w) for w in check.warnings)
        prepared.ready.append(order)
        prepared.lines.extend(session.lines(order, order_items, carrier))
    return prepared
