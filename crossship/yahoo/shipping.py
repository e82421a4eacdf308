"""Orders → Yahoo shipments: whether an order can be sent, and the orderShipStatusChange each
shipment becomes. Plain dicts in, values out: no database, no HTTP, no click.

A Yahoo order takes one shipment with at most two tracking numbers. The orders of a split (the
same mall_order_id) are sent together as one shipment, their numbers in order; a third number is
left out with a warning on its order.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crossship.i18n import Message, Part
from crossship.shell import word as q
from crossship.yahoo.codes import MAX_TRACKING_NUMBERS, NO_TRACKING_REASONS, SHIP_COMPANIES
from crossship.yahoo.xmlmsg import NOT_XML, Shipment

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def order_id_pattern(seller_id: str) -> re.Pattern[str]:
    """``<seller id>-<digits>``; [0-9] because \\d would accept full-width digits."""
    return re.compile(re.escape(seller_id) + r"-[0-9]+")


def check_order(
    order: dict[str, Any], carrier: dict[str, Any] | None, seller_id: str
) -> tuple[list[Part], list[Part]]:
    """(errors, warnings): every reason the order cannot be sent to Yahoo, and what it carries."""
    order_no = _text(order.get("order_no")) or "ORDER"
    errors = [
        *_check_ship_date(order, order_no),
        *_check_order_id(order, seller_id),
        *_check_carrier(order, carrier, order_no),
    ]
    for name, value in (
        ("注文番号 (mall_order_id)", order.get("mall_order_id")),
        ("配送番号 (tracking_number)", order.get("tracking_number")),
    ):
        if value and NOT_XML.search(str(value)):
            errors.append(
                Message(
                    "{field} holds a control character XML cannot carry: correct it in the order "
                    "file and re-import it with `crossship orders import FILE`",
                    {"field": name},
                )
            )
    return errors, []


def _check_ship_date(order: dict[str, Any], order_no: str) -> list[Part]:
    value = _text(order.get("ship_date")).strip()
    if not value:
        return [
            Message(
                "発送日 (ship_date) is missing: set it with "
                "`crossship orders update {order_no} --ship-date YYYY-MM-DD`",
                {"order_no": q(order_no)},
            )
        ]
    try:
        if _DATE.fullmatch(value):
            dt.date.fromisoformat(value)
            return []
    except ValueError:
        pass
    return [
        Message(
            "発送日 (ship_date) {value} is not a date YYYY-MM-DD: set it with "
            "`crossship orders update {order_no} --ship-date YYYY-MM-DD`",
            {"value": repr(value), "order_no": q(order_no)},
        )
    ]


def _check_order_id(order: dict[str, Any], seller_id: str) -> list[Part]:
    value = _text(order.get("mall_order_id")).strip()
    if not value:
        return [
            Message(
                "注文番号 (mall_order_id) is missing: correct it in the order file and re-import "
                "it with `crossship orders import FILE`"
            )
        ]
    if not order_id_pattern(seller_id).fullmatch(value):
        return [
            Message(
                "注文番号 (mall_order_id) {value} is not a Yahoo order id of this store "
                "({seller_id}-NNNNNNNN, the store account then digits): correct it in the order "
                "file and re-import it with `crossship orders import FILE`",
                {"value": repr(value), "seller_id": seller_id},
            )
        ]
    return []


def _check_carrier(
    order: dict[str, Any], carrier: dict[str, Any] | None, order_no: str
) -> list[Part]:
    name = _text(order.get("carrier")).strip()
    code = _text(carrier.get("yahoo_ship_company")).strip() if carrier else ""
    reason = _text(carrier.get("yahoo_no_tracking_reason")).strip() if carrier else ""
    tracking = _text(order.get("tracking_number")).strip()
    if name and carrier is not None and code in SHIP_COMPANIES and (tracking or reason):
        return []  # the usual case, before any message is built
    choose = f"`crossship orders update {q(order_no)} --carrier NAME`"
    register = f"`crossship config carrier add {q(name or 'NAME')} --yahoo-ship-company CODE`"
    codes = ", ".join(f"{c} {n}" for c, n in SHIP_COMPANIES.items())
    if not name:
        return [Message("配送便 (carrier) is missing: set it with {choose}", {"choose": choose})]
    if carrier is None:
        return [
            Message(
                "配送便 (carrier) {name} is not a registered carrier: register it with "
                "{register} or choose another with {choose}",
                {"name": repr(name), "register": register, "choose": choose},
            )
        ]
    problems: list[Part] = []
    if not code:
        problems.append(
            Message(
                "配送便 (carrier) {name} has no Yahoo ship company code (配送会社): set it with "
                "{register} ({codes})",
                {"name": repr(name), "register": register, "codes": codes},
            )
        )
    elif code not in SHIP_COMPANIES:
        problems.append(
            Message(
                "配送便 (carrier) {name} has Yahoo ship company code {code}, which Yahoo does "
                "not know: set one of {codes} with {register}",
                {"name": repr(name), "code": repr(code), "codes": codes, "register": register},
            )
        )
    if not tracking:
        if not reason:
            reasons = ", ".join(f"{c} {n}" for c, n in NO_TRACKING_REASONS.items())
            problems.append(
                Message(
                    "配送番号 (tracking_number) is blank and carrier {name} has no reason for "
                    "shipping without one: set it with `crossship orders update {order_no} "
                    "--tracking-number NUMBER`, or give the carrier a reason with `crossship "
                    "config carrier add {carrier} --yahoo-no-tracking-reason CODE` ({reasons})",
                    {
                        "name": repr(name),
                        "order_no": q(order_no),
                        "carrier": q(name),
                        "reasons": reasons,
                    },
                )
            )
        elif reason not in NO_TRACKING_REASONS:
            problems.append(
                Message(
                    "配送便 (carrier) {name} has no-tracking reason {reason}, which Yahoo does "
                    "not know: use 101 to 105",
                    {"name": repr(name), "reason": repr(reason)},
                )
            )
    return problems


@dataclass
class Planned:
    """One shipment to send and the orders it reports (one, or the orders of a split)."""

    shipment: Shipment
    order_nos: list[str]
    warnings: dict[str, list[Part]] = field(default_factory=dict)  # order_no → warnings


def plan(orders: Sequence[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[Planned]:
    """Shipments for checked (order, carrier) pairs: a split's orders (one mall_order_id) together.

    The shipments keep the orders' order; within a split the original order comes first, then
    the orders split off it, each group by order_no.
    """
    groups: dict[str, list[tuple[dict[str, Any], dict[str, Any] | None]]] = {}
    for order, carrier in orders:
        groups.setdefault(_text(order["mall_order_id"]).strip(), []).append((order, carrier))
    planned = []
    for order_id, members in groups.items():
        members.sort(key=lambda m: (m[0].get("split_from") is not None, _text(m[0]["order_no"])))
        first, carrier = members[0]
        warnings: dict[str, list[Part]] = {}
        numbers: list[str] = []
        for order, _carrier in members:
            tracking = _text(order.get("tracking_number")).strip()
            if not tracking or tracking in numbers:
                continue
            if len(numbers) < MAX_TRACKING_NUMBERS:
                numbers.append(tracking)
                continue
            warnings.setdefault(order["order_no"], []).append(
                Message(
                    "配送番号 (tracking_number) {tracking} is not sent: a Yahoo order takes at "
                    "most two tracking numbers (order {order_id} already has {numbers}); add it "
                    "by hand in ストアクリエイターPro if the buyer needs it",
                    {
                        "tracking": repr(tracking),
                        "order_id": order_id,
                        "numbers": ", ".join(numbers),
                    },
                )
            )
        code = _text(carrier.get("yahoo_ship_company") if carrier else "").strip()
        for order, other in members[1:]:
            other_code = _text(other.get("yahoo_ship_company") if other else "").strip()
            if other_code != code:
                warnings.setdefault(order["order_no"], []).append(
                    Message(
                        "Yahoo takes one ship company per order: {order_id} is sent with {code} "
                        "({company}), the carrier of order {first}, not {other}",
                        {
                            "order_id": order_id,
                            "code": code,
                            "company": SHIP_COMPANIES.get(code, "?"),
                            "first": first["order_no"],
                            "other": other_code,
                        },
                    )
                )
        reason = _text(carrier.get("yahoo_no_tracking_reason") if carrier else "")
        reason = "" if numbers else reason
        shipment = Shipment(
            order_id=order_id,
            ship_company=code,
            ship_date=max(_text(o.get("ship_date")) for o, _ in members).replace("-", ""),
            tracking_numbers=tuple(numbers),
            no_tracking_reason=reason.strip(),
        )
        planned.append(Planned(shipment, [o["order_no"] for o, _ in members], warnings))
    return planned
