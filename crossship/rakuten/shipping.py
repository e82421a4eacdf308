"""Checking orders for RMS and turning them into updateOrderShippingAsync requests.

One local order is one package: one shipment row (配送会社, お荷物伝票番号, 発送日) in its order's
basket (送付先). The orders of a split share the order number and basket, each with its own row.
A row registered before carries its shippingDetailId, so RMS updates it instead of adding a second.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crossship.i18n import N_, Message
from crossship.rakuten.codes import (
    DELIVERY_COMPANIES,
    MAX_ORDERS_PER_REQUEST,
    MAX_VALUE_CHARS,
    ORDER_NUMBER,
    ORDER_NUMBER_HINT,
)

CONTENT_TYPE = "application/json; charset=utf-8"
CARRIER_FIELD = "rakuten_delivery_company"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"\d{1,18}")


@dataclass(frozen=True)
class Shipment:
    """One shipment row as it is sent."""

    order_no: str
    order_id: str  # RMS orderNumber
    basket_id: str
    delivery_company: str
    shipping_number: str
    shipping_date: str
    shipping_detail_id: str = ""  # the row RMS gave before: update it instead of adding one


@dataclass(frozen=True)
class SentRow:
    """A request's row map entry: ``record_no`` is RMS's dataNumber (1-based in the request)."""

    record_no: int
    order_no: str
    order_id: str


@dataclass(frozen=True)
class EncodedRequest:
    body: bytes
    rows: list[SentRow]
    content_type: str = CONTENT_TYPE

    @property
    def order_count(self) -> int:
        return len({r.order_id for r in self.rows})


# ---------------------------------------------------------------------------------------------
# checks


def check_order(
    order: Mapping[str, Any], carrier: Mapping[str, Any] | None, refs: Mapping[str, Any]
) -> list[Message]:
    """Every reason RMS could not register this order's shipment, each saying what to fix (kept
    as catalog messages: shown in the reader's language)."""
    order_no = _text(order.get("order_no")) or "ORDER"
    return [
        *_check_ship_date(order, order_no),
        *_check_order_number(order),
        *_check_carrier(order, carrier, order_no),
        *_check_tracking_number(order, order_no),
        *_check_refs(refs, order_no),
    ]


def _check_ship_date(order: Mapping[str, Any], order_no: str) -> list[Message]:
    value = _text(order.get("ship_date")).strip()
    if not value:
        return [
            Message(
                "発送日 (ship_date) is missing, and RMS needs it: set it with "
                "`crossship orders update {order_no} --ship-date YYYY-MM-DD`",
                {"order_no": order_no},
            )
        ]
    if not _is_real_date(value):
        return [
            Message(
                "発送日 (ship_date) {value!r} is not a date YYYY-MM-DD: set it with "
                "`crossship orders update {order_no} --ship-date YYYY-MM-DD`",
                {"value": value, "order_no": order_no},
            )
        ]
    return []


def _is_real_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_order_number(order: Mapping[str, Any]) -> list[Message]:
    value = _text(order.get("mall_order_id")).strip()
    if not value:
        return [
            Message(
                "注文番号 (mall_order_id) is missing: correct it in the order file and re-import "
                "it with `crossship orders import FILE`"
            )
        ]
    if not ORDER_NUMBER.fullmatch(value):
        return [
            Message(
                "注文番号 (mall_order_id) {value!r} is not a 楽天市場 order number {shape}: "
                "correct it in the order file and re-import it with "
                "`crossship orders import FILE`",
                {"value": value, "shape": ORDER_NUMBER_HINT},
            )
        ]
    return []


def _check_carrier(
    order: Mapping[str, Any], carrier: Mapping[str, Any] | None, order_no: str
) -> list[Message]:
    name = _text(order.get("carrier")).strip()
    code = _text(carrier.get(CARRIER_FIELD)).strip() if carrier else ""
    if name and carrier is not None and code in DELIVERY_COMPANIES:
        return []
    args = {"order_no": order_no, "name": name or "NAME", "code": code}
    if not name:
        key = N_(
            "配送便 (carrier) is missing, and RMS needs its 配送会社: set it with "
            "`crossship orders update {order_no} --carrier NAME`"
        )
    elif carrier is None:
        key = N_(
            "配送便 (carrier) {name!r} is not a registered carrier: register it with "
            "`crossship config carrier add {name} --rakuten-delivery-company CODE` or choose "
            "another with `crossship orders update {order_no} --carrier NAME`"
        )
    elif not code:
        key = N_(
            "配送便 (carrier) {name!r} has no 楽天市場 配送会社 code (1000-1028), which RMS needs: "
            "set it with `crossship config carrier add {name} --rakuten-delivery-company CODE`"
        )
    else:
        key = N_(
            "配送便 (carrier) {name!r} has 楽天市場 配送会社 code {code!r}, which RMS does not "
            "know (1000-1028): set it with "
            "`crossship config carrier add {name} --rakuten-delivery-company CODE`"
        )
    return [Message(key, args)]


def _check_tracking_number(order: Mapping[str, Any], order_no: str) -> list[Message]:
    value = _text(order.get("tracking_number"))
    if not value.strip():
        return [
            Message(
                "配送番号 (tracking_number) is blank: RMS does not treat the order as shipped "
                "(and does not charge a card) without お荷物伝票番号: set it with "
                "`crossship orders update {order_no} --tracking-number NUMBER`",
                {"order_no": order_no},
            )
        ]
    problem = value_problem(value)
    if problem:
        return [
            Message(
                "配送番号 (tracking_number) {problem}: set it with "
                "`crossship orders update {order_no} --tracking-number NUMBER`",
                {"problem": problem, "order_no": order_no},
            )
        ]
    return []


def _check_refs(refs: Mapping[str, Any], order_no: str) -> list[Message]:
    basket = _text(refs.get("basket_id")).strip()
    if basket and not _DIGITS.fullmatch(basket):
        return [
            Message(
                "送付先ID (basket_id) {value!r} is not a number: correct 送付先ID (basket_id) in "
                "the order file and re-import it, or leave it empty",
                {"value": basket},
            )
        ]
    return []


def value_problem(value: str) -> Message | None:
    """Why RMS cannot take ``value``, or None."""
    if len(value) > MAX_VALUE_CHARS:
        return Message(
            "is {length} characters long; RMS takes at most {most}",
            {"length": len(value), "most": MAX_VALUE_CHARS},
        )
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return Message("contains {char}, which RMS cannot take", {"char": _describe(char)})
    return None


def _describe(char: str) -> str | Message:
    names = {
        "\t": Message("a tab"),
        "\r": Message("a carriage return (CR)"),
        "\n": Message("a line feed (LF)"),
    }
    if char in names:
        return names[char]
    return f"{char!r} (U+{ord(char):04X} {unicodedata.name(char, 'control character')})"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# encoding


def shipment(
    order: Mapping[str, Any], carrier: Mapping[str, Any], refs: Mapping[str, Any]
) -> Shipment:
    """The row a checked order sends (its basketId resolved before)."""
    return Shipment(
        order_no=_text(order["order_no"]),
        order_id=_text(order["mall_order_id"]).strip(),
        basket_id=_text(refs.get("basket_id")).strip(),
        delivery_company=_text(carrier[CARRIER_FIELD]).strip(),
        shipping_number=_text(order.get("tracking_number")).strip(),
        shipping_date=_text(order["ship_date"]).strip(),
        shipping_detail_id=_text(refs.get("shipping_detail_id")).strip(),
    )


def encode(
    shipments: Iterable[Shipment], per_request: int = MAX_ORDERS_PER_REQUEST
) -> list[EncodedRequest]:
    """Requests of at most ``per_request`` RMS orders, each with its row map.

    The orders of a split (one order number) always travel in the same request, their rows in
    their basket in the order given; a row with a shippingDetailId updates that row.
    """
    grouped: dict[str, dict[str, list[Shipment]]] = {}
    for one in shipments:
        # a dry run may not know a basket yet (a run looks it up first): it shows null
        grouped.setdefault(one.order_id, {}).setdefault(one.basket_id, []).append(one)
    numbers = list(grouped)
    requests = []
    for start in range(0, len(numbers), per_request):
        models: list[dict[str, Any]] = []
        rows: list[SentRow] = []
        for number in numbers[start : start + per_request]:
            baskets = []
            for basket_id, members in grouped[number].items():
                shipping = []
                for one in members:
                    rows.append(SentRow(len(rows) + 1, one.order_no, one.order_id))
                    shipping.append(_shipping_model(one))
                basket = int(basket_id) if basket_id else None
                baskets.append({"basketId": basket, "ShippingModelList": shipping})
            models.append({"orderNumber": number, "BasketidModelList": baskets})
        body = json.dumps(
            {"OrderShippingModelList": models}, ensure_ascii=False, separators=(",", ":")
        )
        requests.append(EncodedRequest(body.encode("utf-8"), rows))
    return requests


def _shipping_model(one: Shipment) -> dict[str, Any]:
    model: dict[str, Any] = {}
    if one.shipping_detail_id:
        model["shippingDetailId"] = int(one.shipping_detail_id)
    model["deliveryCompany"] = one.delivery_company
    model["shippingNumber"] = one.shipping_number
    model["shippingDate"] = one.shipping_date
    return model


def sent_shipments(body: bytes) -> list[Shipment]:
    """The rows of a recorded request body, in dataNumber order (order_no left blank)."""
    data = json.loads(body)
    found = []
    for model in data["OrderShippingModelList"]:
        for basket in model["BasketidModelList"]:
            for row in basket["ShippingModelList"]:
                found.append(
                    Shipment(
                        order_no="",
                        order_id=str(model["orderNumber"]),
                        basket_id=str(basket["basketId"]),
                        delivery_company=str(row["deliveryCompany"]),
                        shipping_number=str(row["shippingNumber"]),
                        shipping_date=str(row["shippingDate"]),
                        shipping_detail_id=str(row.get("shippingDetailId") or ""),
                    )
                )
    return found


def order_numbers(rows: Sequence[SentRow]) -> list[str]:
    """The distinct order numbers of a row map, in order."""
    return list(dict.fromkeys(r.order_id for r in rows))
