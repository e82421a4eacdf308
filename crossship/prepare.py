"""Orders → requests: each order checked by its mall, the good ones encoded into requests.

Shared by `notify run` (and its dry run) and `export feed`, so a manual file is byte for byte what
the automatic run would send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from crossship import malls
from crossship.i18n import Part, Text
from crossship.malls import OfflineSession, Request
from crossship.store import Store

CHUNK = 1000  # orders read, checked and encoded at a time: memory stays flat


@dataclass
class Checked:
    ready: list[Any] = field(default_factory=list)  # orders that passed (as kept), in given order
    requests: list[Request] = field(default_factory=list)  # what the mall is sent for them
    # (order, what to fix): the check's messages, parts of one message kept with their keys
    errors: list[tuple[dict, Text]] = field(default_factory=list)
    warnings: list[tuple[str, Part]] = field(default_factory=list)  # (order_no, warning)

    @property
    def rows(self) -> int:
        return sum(len(r.rows) for r in self.requests)


def prepare(
    store: Store,
    session: OfflineSession,
    orders: Iterable[dict],
    *,
    keep: Callable[[dict], Any] | None = None,
    refs: Callable[[list[dict]], dict[str, dict]] | None = None,
) -> Checked:
    """Check ``orders`` (they may be streamed) and encode those that pass, a chunk at a time.

    ``keep`` picks what ``ready`` holds of each order that passed (default: the whole row), so a
    run of 100,000 orders need not hold 100,000 rows. ``refs`` gives a chunk's mall references
    (default: those the store keeps); a run resolves the missing ones through it first.
    """
    checked = Checked()
    checked.requests = session.encode(_passing(store, session, orders, keep, refs, checked))
    return checked


def _passing(
    store: Store,
    session: OfflineSession,
    orders: Iterable[dict],
    keep: Callable[[dict], Any] | None,
    refs: Callable[[list[dict]], dict[str, dict]] | None,
    checked: Checked,
) -> Iterator[malls.Prepared]:
    carriers: dict[str, dict] | None = None
    stream = iter(orders)
    while chunk := list(islice(stream, CHUNK)):
        if carriers is None:
            carriers = {c["name"]: c for c in store.list_carriers()}
        order_nos = [o["order_no"] for o in chunk]
        items = store.items_for(order_nos)
        parents = store.split_parents(order_nos)
        known = refs(chunk) if refs is not None else store.refs_for(order_nos)
        for order in chunk:
            order_no = order["order_no"]
            order_items = items.get(order_no, [])
            carrier = carriers.get(order["carrier"]) if order["carrier"] else None
            order_refs = known.get(order_no, {})
            check = session.check(
                order,
                order_items,
                carrier,
                is_split_parent=order_no in parents,
                refs=order_refs,
            )
            if check.errors:
                checked.errors.append((order, list(check.errors)))
                continue
            checked.warnings.extend((order_no, w) for w in check.warnings)
            checked.ready.append(order if keep is None else keep(order))
            yield malls.Prepared(order, order_items, carrier, order_refs, list(check.warnings))
