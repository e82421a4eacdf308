"""Reading what RMS says: per-order results of a request, and getOrder's shipment rows.

A status is a promise to a shop: an order is ``success`` only where RMS's own answer names it with
INFO or WARNING (or, for a lost answer, where getOrder shows the very row that was sent). An order
the result does not mention is never assumed successful.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crossship.i18n import Message, Part
from crossship.rakuten.codes import NO_RESULT_SUFFIX, NO_RESULT_TEXT
from crossship.rakuten.shipping import SentRow, Shipment


@dataclass(frozen=True)
class Verdict:
    """What RMS said about one local order."""

    order_no: str
    status: str  # success, error, result_failed, pending
    message: Part = ""  # RMS's own words (code: message) as written, or ours (a Message)
    warnings: list[str] = field(default_factory=list)
    refs: dict[str, Any] = field(default_factory=dict)


class ResultUnreadable(ValueError):
    """The result answer does not have the shape of getResultUpdateOrderShippingAsync's;
    ``kept`` says how, in the reader's language."""

    def __init__(self, message: Message):
        super().__init__(message.render("en"))
        self.kept = message


def no_result_yet(answer: Mapping[str, Any]) -> bool:
    """RMS's "処理結果は存在しませんでした" (INFO_101): still processing, or an unknown id."""
    if answer.get("ResultShippingModelList"):
        return False
    messages = answer.get("MessageModelList")
    if not isinstance(messages, list):
        return False
    return any(
        isinstance(m, dict)
        and (
            str(m.get("messageCode", "")).endswith(NO_RESULT_SUFFIX)
            or NO_RESULT_TEXT in str(m.get("message", ""))
        )
        for m in messages
    )


def read_result(
    answer: Mapping[str, Any], rows: Sequence[SentRow], sent: Sequence[Shipment] = ()
) -> dict[str, Verdict]:
    """A verdict for every row's order: INFO → success (shippingDetailId kept), WARNING →
    success flagged, ERROR → error with RMS's code and message, not mentioned → result_failed.

    ``sent`` (the request's rows, in dataNumber order) gives the shippingDetailId a row carried.
    """
    results = answer.get("ResultShippingModelList")
    if not isinstance(results, list):
        raise ResultUnreadable(Message("the answer has no ResultShippingModelList"))
    by_order: dict[str, list[dict[str, Any]]] = {}
    for entry in results:
        if not isinstance(entry, dict) or not isinstance(entry.get("orderNumber"), str):
            raise ResultUnreadable(Message("a result without orderNumber"))
        messages = entry.get("MessageModelList") or []
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ResultUnreadable(
                Message(
                    "order {order}: MessageModelList is not a list",
                    {"order": entry["orderNumber"]},
                )
            )
        by_order.setdefault(entry["orderNumber"], []).extend(messages)
    rows_of: dict[str, list[SentRow]] = {}
    for row in rows:
        rows_of.setdefault(row.order_id, []).append(row)
    verdicts: dict[str, Verdict] = {}
    for order_id, order_rows in rows_of.items():
        messages = by_order.get(order_id)
        for row, mine in _assign(order_rows, messages or []).items():
            known = len(sent) >= row.record_no
            before = sent[row.record_no - 1].shipping_detail_id if known else ""
            verdicts[row.order_no] = _verdict(
                row, mine, mentioned=messages is not None, before=before
            )
    return verdicts


def _assign(
    order_rows: list[SentRow], messages: list[dict[str, Any]]
) -> dict[SentRow, list[dict[str, Any]]]:
    """Each row's messages: by dataNumber (numbered in the request, or within the order when
    RMS numbers that way); a message without dataNumber concerns every row of the order."""
    assigned: dict[SentRow, list[dict[str, Any]]] = {row: [] for row in order_rows}
    numbered = [m for m in messages if _number(m.get("dataNumber")) is not None]
    everyone = [m for m in messages if _number(m.get("dataNumber")) is None]
    global_numbers = {row.record_no: row for row in order_rows}
    local_numbers = {i: row for i, row in enumerate(order_rows, 1)}
    numbers = {_number(m.get("dataNumber")) for m in numbered}
    index = global_numbers if numbers <= set(global_numbers) else local_numbers
    for message in numbered:
        row = index.get(_number(message.get("dataNumber")) or 0)
        if row is not None:
            assigned[row].append(message)
    for row in order_rows:
        assigned[row].extend(everyone)
    return assigned


def _verdict(
    row: SentRow, messages: list[dict[str, Any]], *, mentioned: bool, before: str
) -> Verdict:
    errors = [m for m in messages if _type(m) == "ERROR"]
    warnings = [m for m in messages if _type(m) == "WARNING"]
    infos = [m for m in messages if _type(m) == "INFO"]
    if errors:
        return Verdict(row.order_no, "error", "; ".join(_words(m) for m in errors))
    if warnings or infos:
        refs = {}
        detail = next(
            (_number(m.get("shippingDetailId")) for m in (*infos, *warnings)
             if _number(m.get("shippingDetailId")) is not None),
            None,
        )  # fmt: skip
        if detail is not None:
            refs["shipping_detail_id"] = str(detail)
        elif before:
            refs["shipping_detail_id"] = before
        message = "; ".join(_words(m) for m in infos)
        if "shipping_detail_id" in refs:  # the row RMS keeps: a re-notification updates it
            message = f"{message} (shippingDetailId {refs['shipping_detail_id']})".lstrip()
        return Verdict(row.order_no, "success", message, [_words(m) for m in warnings], refs)
    if not mentioned:
        why = Message(
            "RMS's result does not mention order {order}: check the order in RMS "
            "(受注管理 > 受注一覧)",
            {"order": row.order_id},
        )
    else:
        why = Message(
            "RMS's result for order {order} says nothing about this shipment row: check the "
            "order in RMS (受注管理 > 受注一覧)",
            {"order": row.order_id},
        )
    return Verdict(row.order_no, "result_failed", why)


def _type(message: Mapping[str, Any]) -> str:
    return str(message.get("messageType", "")).upper()


def _words(message: Mapping[str, Any]) -> str:
    text = " ".join(str(message.get("message") or "").split())
    code = str(message.get("messageCode") or "").strip()
    return f"{code}: {text}" if code else text


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# ---------------------------------------------------------------------------------------------
# getOrder: basketIds, and the rows a lost request left


def basket_ids(orders: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """order number → the basketId of its (first) 送付先, for orders RMS returned."""
    found = {}
    for order in orders:
        packages = order.get("PackageModelList") or []
        if packages:
            found[str(order["orderNumber"])] = str(packages[0]["basketId"])
    return found


def reconcile(
    orders: Sequence[Mapping[str, Any]],
    rows: Sequence[SentRow],
    sent: Sequence[Shipment],
    *,
    otherwise: str = "pending",
) -> dict[str, Verdict]:
    """A lost request's verdicts from getOrder: a row whose basket now holds a shipment with the
    same delivery company and tracking number took effect (its shippingDetailId kept); the
    others get ``otherwise`` (``pending``: send again; ``result_failed`` past the deadline)."""
    baskets: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for order in orders:
        for package in order.get("PackageModelList") or []:
            key = (str(order["orderNumber"]), str(package["basketId"]))
            baskets[key] = list(package.get("ShippingModelList") or [])
    verdicts = {}
    for row in rows:
        one = sent[row.record_no - 1]
        held = baskets.get((one.order_id, one.basket_id), [])
        match = next(
            (
                r
                for r in held
                if str(r.get("deliveryCompany")) == one.delivery_company
                and str(r.get("shippingNumber") or "").strip() == one.shipping_number
                and (
                    not one.shipping_detail_id
                    or str(r.get("shippingDetailId")) == one.shipping_detail_id
                )
            ),
            None,
        )
        if match is not None:
            verdicts[row.order_no] = Verdict(
                row.order_no,
                "success",
                Message(
                    "RMS holds the shipment row (checked with getOrder after the answer was lost)"
                ),
                refs={"shipping_detail_id": str(match["shippingDetailId"])},
            )
        elif otherwise == "pending":
            verdicts[row.order_no] = Verdict(
                row.order_no,
                "pending",
                Message("RMS does not hold the shipment row of the lost request: it is sent again"),
            )
        else:
            verdicts[row.order_no] = Verdict(
                row.order_no,
                otherwise,
                Message(
                    "RMS gave no result for order {order} in time and getOrder shows no row "
                    "with its 配送会社 and お荷物伝票番号: check the order in RMS "
                    "(受注管理 > 受注一覧)",
                    {"order": row.order_id},
                ),
            )
    return verdicts
