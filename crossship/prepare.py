"""Orders → feed lines: each order checked by its mall, the good ones turned into lines.

Shared by `notify run` (and its dry run) and `export feed`, so a manual file is byte for byte what
the automatic run would send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from crossship.malls import MallSession
from crossship.store import Store

CHUNK = 1000  # orders read, checked and turned into lines at a time: memory stays flat


@dataclass
class Prepared:
    ready: list[Any] = field(default_factory=list)  # orders that passed (as kept), in given order
    lines: list = field(default_factory=list)  # their feed lines
    errors: list[tuple[dict, str]] = field(default_factory=list)  # (order, what to fix)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (order_no, warning)


def prepare(
    store: Store,
    session: MallSession,
    orders: Iterable[dict],
    *,
    keep: Callable[[dict], Any] | None = None,
) -> Prepared:
    """Check and turn ``orders`` into lines, a chunk at a time (they may be streamed).

    ``keep`` picks what ``ready`` holds of each order that passed (default: the whole row), so a
    run of 100,000 orders need not hold 100,000 rows.
    """
    prepared = Prepared()
    carriers: dict[str, dict] | None = None
    stream = iter(orders)
    while chunk := list(islice(stream, CHUNK)):
        if carriers is None:
            carriers = {c["name"]: c for c in store.list_carriers()}
        order_nos = [o["order_no"] for o in chunk]
        items = store.items_for(order_nos)
        parents = store.split_parents(order_nos)
        for order in chunk:
            order_items = items.get(order["order_no"], [])
            carrier = carriers.get(order["carrier"]) if order["carrier"] else None
            check = session.check(
                order, order_items, carrier, is_split_parent=order["order_no"] in parents
            )
            if check.errors:
                prepared.errors.append((order, "; ".join(check.errors)))
                continue
            prepared.warnings.extend((order["order_no"], w) for w in check.warnings)
            prepared.ready.append(order if keep is None else keep(order))
            prepared.lines.extend(session.lines(order, order_items, carrier))
    return prepared
