"""Configuration rules (SPEC §4), free of click: what a store, phase, carrier or mail setting may
hold, the warnings they deserve, and the order edits that the phases' ship-date setting governs.

The CLI parses options and calls these; these check and call the Store, which owns the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from crossship import urls
from crossship.errors import CrossshipError, NotFound, UsageError
from crossship.statuses import Status, label_of
from crossship.store import Store
from crossship.timeutil import parse_date

MALLS = ("amazon", "rakuten", "yahoo")
ENCODINGS = ("utf-8", "cp932")
SHIP_DATE_SETTINGS = ("required", "optional")
SHIP_DATE_LABELS = {"required": "必須", "optional": "任意"}

AMAZON_JP_MARKETPLACE = "A1VC38T7YXB528"
AMAZON_FE_ENDPOINT = "https://sellingpartnerapi-fe.amazon.com"
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
# what `config store add --mall amazon` stores when an option is not given
AMAZON_DEFAULTS = {
    "marketplace_id": AMAZON_JP_MARKETPLACE,
    "endpoint": AMAZON_FE_ENDPOINT,
    "token_url": LWA_TOKEN_URL,
}

# mail settings: keys stored with Store.set_settings("mail", ...) and their defaults
MAIL_PREFIX = "mail"
MAIL_DEFAULTS: dict[str, Any] = {
    "smtp_host": None,
    "smtp_port": 25,
    "smtp_user": None,
    "starttls": False,
    "from": None,
    "admin": None,
    "notify": [],
    "language": "ja",
}

_ADDRESS = re.compile(r"[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+")


# ----------------------------------------------------------------------------- checks


def check_url(url: str, what: str) -> str:
    """``url`` if crossship may send secrets to it: https anywhere, plain http only to loopback."""
    return urls.check_url(url, what, UsageError)


def check_address(text: str, what: str) -> str:
    """A mail address (``a@example.com`` or ``Name <a@example.com>``), returned trimmed."""
    _name, address = parseaddr(text)
    if not _ADDRESS.fullmatch(address or ""):
        raise UsageError(f"{what} {text!r} is not a mail address: write it as name@example.com")
    return text.strip()


def check_name(text: str, what: str) -> str:
    """A store, phase or carrier name: not blank, one line."""
    name = text.strip()
    if not name or any(c in name for c in "\r\n\t"):
        raise UsageError(f"{what} name {text!r} must be one line of visible text")
    return name


def _positive(value: int | None, option: str) -> int | None:
    if value is not None and value <= 0:
        raise UsageError(f"{option} must be a positive whole number, not {value}")
    return value


# ----------------------------------------------------------------------------- stores


def store_values(
    *,
    seller_id: str | None = None,
    marketplace_id: str | None = None,
    endpoint: str | None = None,
    token_url: str | None = None,
    encoding: str | None = None,
    interval: int | None = None,
    result_deadline: int | None = None,
    template: str | None = None,
) -> dict[str, Any]:
    """Checked store columns from command-line values; None means "not given".

    ``template=""`` resets a store to the built-in feed template.
    """
    values: dict[str, Any] = {}
    if seller_id is not None:
        values["seller_id"] = seller_id.strip()
    if marketplace_id is not None:
        if not marketplace_id.strip():
            raise UsageError("--marketplace-id must not be empty")
        values["marketplace_id"] = marketplace_id.strip()
    if endpoint is not None:
        values["endpoint"] = check_url(endpoint, "--endpoint")
    if token_url is not None:
        values["token_url"] = check_url(token_url, "--token-url")
    if encoding is not None:
        if encoding not in ENCODINGS:
            raise UsageError(f"--encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
        values["encoding"] = encoding
    if _positive(interval, "--interval") is not None:
        values["interval_minutes"] = interval
    if _positive(result_deadline, "--result-deadline") is not None:
        values["result_deadline_hours"] = result_deadline
    if template is not None:
        values["template"] = _check_template(template)
    return values


def _check_template(template: str) -> str:
    if not template.strip():
        return ""  # back to the built-in template
    path = Path(template).expanduser()
    if not path.is_file():
        raise UsageError(f"--template {template!r}: no such file")
    try:
        path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--template {template!r} cannot be read as UTF-8 text: {exc}") from None
    return str(path.resolve())


def add_store(store: Store, name: str, mall: str, values: dict[str, Any], now: str) -> dict:
    """Add a store (stopped); an Amazon store gets Amazon Japan's marketplace and endpoints."""
    name = check_name(name, "store")
    if mall not in MALLS:
        raise UsageError(f"--mall {mall!r}: use one of {', '.join(MALLS)}")
    if mall == "amazon":
        values = {**AMAZON_DEFAULTS, **values}
    store.add_store(name, mall, values, now)
    return store.get_store(name)


def store_record(store: Store, row: dict) -> dict[str, Any]:
    """A store as `config store list/show` prints it (no secrets)."""
    targets = store.list_targets(row["name"])
    return {
        "name": row["name"],
        "mall": row["mall"],
        "automatic": "started" if row["started"] else "stopped",
        "seller_id": row["seller_id"],
        "marketplace_id": row["marketplace_id"],
        "endpoint": row["endpoint"],
        "token_url": row["token_url"],
        "encoding": row["encoding"],
        "interval_minutes": row["interval_minutes"],
        "result_deadline_hours": row["result_deadline_hours"],
        "template": row["template"] or "",
        "target_phases": ", ".join(target_text(t) for t in targets),
    }


def target_text(target: dict) -> str:
    move = f" → {target['move_to']}" if target.get("move_to") else ""
    return f"{target['phase']}{move}"


# ----------------------------------------------------------------------------- phases


def optional_phase_warning(phase: str) -> str:
    """An optional ship-date phase as a target works, but is not recommended.

    SPEC §4; CROSS MALL help: Amazon自動出荷通知, 3-1.
    """
    return (
        f"phase {phase!r} has ship-date setting optional (発送日設定=任意): Amazon needs a ship "
        "date, so orders without one will end in エラー; the recommended setting is required "
        f"(必須): `crossship config phase update {phase} --ship-date required`"
    )


@dataclass
class TargetAdded:
    """What `config phase add` has to tell: the warnings and whether anything runs yet."""

    store: str
    phase: str
    move_to: str | None
    started: bool
    warnings: list[str] = field(default_factory=list)


def add_target(store: Store, store_name: str, phase: str, move_to: str | None) -> TargetAdded:
    """Make ``phase`` a target phase of a store; nothing starts by this.

    CROSS MALL help: Amazon自動出荷通知, 3-2.
    """
    row = store.get_store(store_name)
    phase_row = store.get_phase(phase)
    store.add_target(store_name, phase, move_to)
    added = TargetAdded(store_name, phase, move_to, bool(row["started"]))
    if phase_row["ship_date"] == "optional":
        added.warnings.append(optional_phase_warning(phase))
    if row["mall"] != "amazon":
        added.warnings.append(
            f"store {store_name!r} is on {row['mall']}: crossship sends shipment notifications "
            "to Amazon only for now, so its orders stay where they are"
        )
    return added


def phases_with_targets(store: Store) -> list[dict[str, Any]]:
    """Each phase with its ship-date setting and the stores it is a target phase of."""
    by_phase: dict[str, list[str]] = {}
    for target in store.list_targets():
        move = f" → {target['move_to']}" if target["move_to"] else ""
        by_phase.setdefault(target["phase"], []).append(f"{target['store']}{move}")
    return [
        {
            "name": row["name"],
            "ship_date": row["ship_date"],
            "ship_date_label": SHIP_DATE_LABELS[row["ship_date"]],
            "target_of": ", ".join(by_phase.get(row["name"], [])),
        }
        for row in store.list_phases()
    ]


# ----------------------------------------------------------------------------- carriers


def carrier_values(code: str, name: str | None, ship_method: str | None) -> dict[str, Any]:
    """Amazon fields of a carrier: a code, a name when the code is ``Other``.

    CROSS MALL help: Amazon自動出荷通知, Q2.
    """
    code = code.strip()
    if not code:
        raise UsageError("--amazon-carrier-code must not be empty (Amazon Japan requires it)")
    if code.lower() == "other" and not (name or "").strip():
        raise UsageError(
            "--amazon-carrier-code Other needs --amazon-carrier-name: the carrier's name as "
            "Amazon should show it"
        )
    for option, value in (
        ("--amazon-carrier-code", code),
        ("--amazon-carrier-name", name),
        ("--amazon-ship-method", ship_method),
    ):
        if value and any(c in value for c in "\t\r\n"):
            raise UsageError(f"{option} must be one line without tabs")
    return {
        "amazon_carrier_code": code,
        "amazon_carrier_name": (name or "").strip() or None,
        "amazon_ship_method": (ship_method or "").strip() or None,
    }


def ship_method_warning(carrier: str) -> str:
    return (
        f"carrier {carrier!r} has no Amazon ship-method: Amazon accepts its orders but warns "
        "「ship-methodの項目が記入されていないか入力内容が無効です」 (CROSS MALL help, Q2); "
        "set one with "
        f"`crossship config carrier add {carrier} --amazon-carrier-code ... "
        "--amazon-ship-method TEXT`"
    )


# ----------------------------------------------------------------------------- mail


def mail_settings(store: Store) -> dict[str, Any]:
    """The stored mail settings over their defaults."""
    return {**MAIL_DEFAULTS, **store.get_settings(MAIL_PREFIX)}


def mail_changes(
    *,
    smtp_host: str | None = None,
    smtp_port: int | None = None,
    smtp_user: str | None = None,
    starttls: bool | None = None,
    sender: str | None = None,
    admin: str | None = None,
    notify: Sequence[str] | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Checked mail settings from command-line values; None means "not given", "" clears."""
    changes: dict[str, Any] = {}
    if language is not None:
        if language not in ("ja", "en"):
            raise UsageError(f"--language {language!r}: use ja or en")
        changes["language"] = language
    if smtp_host is not None:
        host = smtp_host.strip()
        if any(c.isspace() for c in host):
            raise UsageError(f"--smtp-host {smtp_host!r} must be a host name or address")
        changes["smtp_host"] = host or None
    if smtp_port is not None:
        if not 0 < smtp_port < 65536:
            raise UsageError(f"--smtp-port {smtp_port} must be between 1 and 65535")
        changes["smtp_port"] = smtp_port
    if smtp_user is not None:
        changes["smtp_user"] = smtp_user.strip() or None
    if starttls is not None:
        changes["starttls"] = starttls
    if sender is not None:
        changes["from"] = check_address(sender, "--from") if sender.strip() else None
    if admin is not None:
        changes["admin"] = check_address(admin, "--admin") if admin.strip() else None
    if notify is not None:
        changes["notify"] = list(
            dict.fromkeys(check_address(a, "--notify") for a in notify if a.strip())
        )
    return changes


# ----------------------------------------------------------------------------- order edits


@dataclass
class OrderEdit:
    """The result of a move or update: what changed and what the user should know."""

    order_nos: list[str]
    warnings: list[str] = field(default_factory=list)


def move_orders(
    store: Store, order_nos: Sequence[str], phase: str, ship_date: str | None, now: str
) -> OrderEdit:
    """Move orders into ``phase`` (SPEC §4); all or nothing.

    Refused when the phase's ship-date setting is required and an order has no ship date and
    none is given. Orders in a batch move too (the batch is already built), with a warning.
    """
    order_nos = list(dict.fromkeys(order_nos))
    phase_row = store.get_phase(phase)
    if ship_date is not None:
        ship_date = parse_date(ship_date, what="--ship-date")
    orders = _existing(store, order_nos)
    if phase_row["ship_date"] == "required" and not ship_date:
        undated = [o for o in order_nos if not orders[o]["ship_date"]]
        if undated:
            raise CrossshipError(
                f"phase {phase!r} requires a ship date (発送日設定=必須) and "
                f"{len(undated)} order(s) have none: nothing moved; give --ship-date YYYY-MM-DD "
                "or set each with `crossship orders update ORDER_NO --ship-date YYYY-MM-DD`",
                details=[f"order {o}: no ship date" for o in undated[:50]]
                + ([f"... and {len(undated) - 50} more"] if len(undated) > 50 else []),
            )
    targets = {(t["store"], t["phase"]) for t in store.list_targets()}
    edit = OrderEdit(order_nos)
    for order_no in order_nos:
        order = orders[order_no]
        if order["status"] == Status.IN_PROGRESS:
            edit.warnings.append(
                f"order {order_no} is 連携中 (in_progress) in batch {order['batch_id']}: it moves, "
                "but the batch already sent it as it was"
            )
        elif (order["store"], phase) in targets and order["status"] != Status.PENDING:
            edit.warnings.append(
                f"order {order_no} is {label_of(order['status'])} ({order['status']}): it will not "
                "be sent again unless you `crossship status set ORDER_NO --to pending`"
            )
    store.move_orders(order_nos, phase, ship_date, now)
    return edit


def update_order(
    store: Store,
    order_no: str,
    *,
    ship_date: str | None = None,
    carrier: str | None = None,
    tracking_number: str | None = None,
    now: str,
) -> OrderEdit:
    """Change an order's ship date, carrier or tracking number; "" clears a value."""
    order = store.get_order(order_no)
    changes: dict[str, Any] = {}
    if ship_date is not None:
        if ship_date.strip():
            changes["ship_date"] = parse_date(ship_date, what="--ship-date")
        else:
            if store.get_phase(order["phase"])["ship_date"] == "required":
                raise UsageError(
                    f"order {order_no} is in phase {order['phase']!r}, which requires a ship date "
                    "(発送日設定=必須): it cannot be cleared there; move the order first"
                )
            changes["ship_date"] = None
    if carrier is not None:
        if carrier.strip():
            if store.get_carrier(carrier.strip()) is None:
                known = ", ".join(c["name"] for c in store.list_carriers()) or "none yet"
                raise NotFound(
                    f"no carrier named {carrier!r} (carriers: {known}): add it with "
                    "`crossship config carrier add`"
                )
            changes["carrier"] = carrier.strip()
        else:
            changes["carrier"] = None
    if tracking_number is not None:
        if any(c in tracking_number for c in "\t\r\n"):
            raise UsageError("--tracking-number must be one line without tabs")
        changes["tracking_number"] = tracking_number.strip() or None
    if not changes:
        raise UsageError("nothing to change: give --ship-date, --carrier or --tracking-number")
    edit = OrderEdit([order_no])
    if order["status"] == Status.IN_PROGRESS:
        edit.warnings.append(
            f"order {order_no} is 連携中 (in_progress) in batch {order['batch_id']}: the batch "
            "already sent the old values; this change reaches Amazon only if it is sent again"
        )
    if "tracking_number" in changes and changes["tracking_number"] is None:
        edit.warnings.append(
            f"order {order_no} has no tracking number now: it is sent without one, which hurts "
            "the Valid Tracking Rate (追跡可能率, CROSS MALL help, Q4)"
        )
    store.update_order(order_no, changes, now)
    return edit


def _existing(store: Store, order_nos: Sequence[str]) -> dict[str, dict]:
    orders = store.find_orders(order_nos)
    missing = [o for o in order_nos if o not in orders]
    if missing:
        shown = ", ".join(missing[:20]) + (
            f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        )
        raise NotFound(f"no such order: {shown} (nothing changed)")
    return orders
