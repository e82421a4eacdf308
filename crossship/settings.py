"""Configuration rules (SPEC §4), free of click: what a store, phase, carrier or mail setting may
hold, the warnings they deserve, and the order edits that the phases' ship-date setting governs.

The CLI parses options and calls these; these check and call the Store, which owns the SQL.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

from crossship import malls, urls
from crossship.errors import CrossshipError, NotFound, UsageError
from crossship.i18n import N_, _
from crossship.malls import CarrierField, Mall, Setting
from crossship.secrets import env_prefix
from crossship.shell import word as q
from crossship.statuses import Status, label_of
from crossship.store import STORE_FIELDS, Store
from crossship.timeutil import parse_date

SHIP_DATE_SETTINGS = ("required", "optional")
SHIP_DATE_LABELS = {"required": "必須", "optional": "任意"}  # CROSS MALL's words, in every language


def _at_most(option: str, most: int, why: str) -> Callable[[int], int]:
    def check(value: int) -> int:
        if value > most:
            raise UsageError(
                _("{option} must be a whole number from 1 to {most} ({why}), not {value}").format(
                    option=option, most=most, why=_(why), value=value
                )
            )
        return value

    return check


# the settings every store has, whatever its mall (stores columns)
COMMON_SETTINGS = (
    Setting(
        "endpoint",
        "--endpoint",
        N_(
            "The mall API's base URL (each mall has its default); https, or http only to a "
            "loopback address (a local sandbox)."
        ),
        kind="url",
        metavar="URL",
    ),
    Setting(
        "interval_minutes",
        "--interval",
        N_("Minutes between two runs of each job for this store (default 15)."),
        kind="int",
        metavar="MINUTES",
        check=_at_most("--interval", 7 * 24 * 60, N_("a week")),
    ),
    Setting(
        "result_deadline_hours",
        "--result-deadline",
        N_("Hours to wait for the mall's result before 通知結果取得失敗 (default 24)."),
        kind="int",
        metavar="HOURS",
        check=_at_most("--result-deadline", 30 * 24, N_("30 days")),
    ),
    Setting(
        "time_budget_minutes",
        "--time-budget",
        N_(
            "Minutes a run may spend sending for this store; when spent, the rest waits 未連携 "
            "for the next run (default 10)."
        ),
        kind="int",
        metavar="MINUTES",
        check=_at_most("--time-budget", 24 * 60, N_("a day")),
    ),
)

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
    """A mail address (``a@example.com`` or ``Name <a@example.com>``), returned trimmed.

    Control characters (CR/LF would forge mail headers) and lists of addresses are refused.
    """
    if _has_control(text):
        raise UsageError(
            _(
                "{what} {text!r} contains a control character (a line break?): give one address"
            ).format(what=what, text=text)
        )
    addresses = getaddresses([text])
    _name, address = parseaddr(text)
    if len(addresses) != 1 or not _ADDRESS.fullmatch(address or ""):
        raise UsageError(
            _(
                "{what} {text!r} is not one mail address: write it as name@example.com "
                "(repeat --notify for several)"
            ).format(what=what, text=text)
        )
    return text.strip()


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def check_name(text: str, what: str) -> str:
    """A store, phase or carrier name (``what``: store, phase or carrier): not blank, one line."""
    name = text.strip()
    if not name or any(c in name for c in "\r\n\t"):
        message = {
            "store": N_("store name {text!r} must be one line of visible text"),
            "phase": N_("phase name {text!r} must be one line of visible text"),
            "carrier": N_("carrier name {text!r} must be one line of visible text"),
        }[what]
        raise UsageError(_(message).format(text=text))
    return name


# ----------------------------------------------------------------------------- stores


@dataclass(frozen=True)
class StoreOption:
    """One `config store add/set` flag: the common setting, or each mall's that declares it."""

    option: str
    param: str  # the click parameter name
    common: Setting | None
    by_mall: dict[str, Setting]

    @property
    def first(self) -> Setting:
        return self.common or next(iter(self.by_mall.values()))

    def help(self) -> str:
        """The flag's help in the reader's language (the flags are built at each use)."""
        if self.common is not None:
            return _(self.common.help)
        labels = ", ".join(malls.get(k).label for k in self.by_mall)
        return f"{_(self.first.help)} [{labels}]"


def param_name(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def store_options() -> list[StoreOption]:
    """The store flags: the common ones, then each installed mall's, merged by option name."""
    options: dict[str, StoreOption] = {
        s.option: StoreOption(s.option, param_name(s.option), s, {}) for s in COMMON_SETTINGS
    }
    for mall in malls.registry().values():
        for setting in mall.settings:
            known = options.get(setting.option)
            if known is None:
                known = options[setting.option] = StoreOption(
                    setting.option, param_name(setting.option), None, {}
                )
            if known.common is None:
                known.by_mall[mall.key] = setting
    return list(options.values())


def store_malls() -> tuple[str, ...]:
    """The malls a store may be added on: the installed ones, and those still being built."""
    return tuple(dict.fromkeys([*malls.registry(), *malls.PLANNED]))


def _mall_label(key: str) -> str:
    mall = malls.find(key)
    return mall.label if mall else malls.PLANNED.get(key, key)


def store_changes(
    mall_key: str, given: dict[str, Any], store_name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked (stores columns, mall settings) from flag values by parameter name (None: not
    given). A flag of another mall than the store's is refused."""
    columns: dict[str, Any] = {}
    mall_settings: dict[str, Any] = {}
    for option in store_options():
        value = given.get(option.param)
        if value is None:
            continue
        setting = option.common or option.by_mall.get(mall_key)
        if setting is None:
            labels = ", ".join(malls.get(k).label for k in option.by_mall)
            raise UsageError(
                _(
                    "{option} is a setting of {labels} stores; store {store!r} is on {mall}: "
                    "see `{command}`"
                ).format(
                    option=option.option,
                    labels=labels,
                    store=store_name,
                    mall=_mall_label(mall_key),
                    command="crossship config store add --help",
                )
            )
        checked = check_setting(setting, value)
        if setting.name in STORE_FIELDS:
            if checked is not None:
                columns[setting.name] = checked
        else:
            mall_settings[setting.name] = checked
    return columns, mall_settings


def check_setting(setting: Setting, value: Any) -> Any:
    """A flag's value checked by its kind, then by its mall (``Setting.check``)."""
    option = setting.option
    if setting.kind == "int":
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise UsageError(
                _("{option} must be a whole number, not {value!r}").format(
                    option=option, value=value
                )
            ) from None
        if number <= 0:
            raise UsageError(
                _("{option} must be a positive whole number, not {number}").format(
                    option=option, number=number
                )
            )
        checked: Any = number
    elif setting.kind == "days_or_never":
        text = str(value).strip().lower()
        if text == "never":
            checked = "never"
        elif text.isdigit():
            checked = int(text)
        else:
            raise UsageError(
                _("{option} must be a number of days (0 or more) or never").format(option=option)
            )
    else:
        text = str(value).strip()
        if any(c in text for c in "\t\r\n"):
            raise UsageError(_("{option} must be one line without tabs").format(option=option))
        if setting.kind == "url":
            checked = check_url(text, option)
        elif setting.kind == "choice":
            if text not in setting.choices:
                raise UsageError(
                    _("{option} {text!r}: use one of {choices}").format(
                        option=option, text=text, choices=", ".join(setting.choices)
                    )
                )
            checked = text
        elif setting.kind == "date":
            checked = parse_date(text, what=option) if text else None
        elif setting.kind == "path":
            checked = _check_path(text, option)
        else:
            checked = text
    if setting.check is not None and checked is not None:
        checked = setting.check(checked)
    return checked


def _check_path(text: str, option: str) -> str:
    if not text:
        return ""  # back to the mall's built-in default
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(_("{option} {text!r}: no such file").format(option=option, text=text))
    return str(path.resolve())


def add_store(store: Store, name: str, mall_key: str, given: dict[str, Any], now: str) -> dict:
    """Add a store (stopped), with its mall's defaults for what is not given."""
    name = check_name(name, "store")
    if mall_key not in store_malls():
        raise UsageError(
            _("{option} {text!r}: use one of {choices}").format(
                option="--mall", text=mall_key, choices=", ".join(store_malls())
            )
        )
    check_env_collision(store, name)
    columns, mall_settings = store_changes(mall_key, given, name)
    mall = malls.find(mall_key)
    if mall is not None:
        for setting in mall.settings:
            chosen = columns if setting.name in STORE_FIELDS else mall_settings
            if setting.required and chosen.get(setting.name) is None:
                raise UsageError(
                    _("a {mall} store needs {option}: {help}").format(
                        mall=mall.label, option=setting.option, help=_(setting.help)
                    )
                )
            if setting.default is not None and setting.name not in chosen:
                chosen[setting.name] = setting.default
        for key, value in mall.defaults.items():
            columns.setdefault(key, value)
        if mall.store_saved is not None:
            mall.store_saved(name, store.path, mall_settings)
    store.add_store(name, mall_key, columns, now, mall_settings)
    return store.get_store(name)


def update_store(store: Store, name: str, given: dict[str, Any]) -> dict[str, Any]:
    """Change a store's settings (only those given); returns what changed."""
    row = store.get_store(name)
    columns, mall_settings = store_changes(row["mall"], given, name)
    if not columns and not mall_settings:
        raise UsageError(_("nothing to change: give at least one option (see --help)"))
    mall = malls.find(row["mall"])
    if mall is not None and mall.store_saved is not None:
        mall.store_saved(name, store.path, mall_settings)
    store.update_store(name, columns, mall_settings)
    return {**columns, **mall_settings}


def check_env_collision(store: Store, name: str) -> None:
    """Refuse a store name whose credential variables (CROSSSHIP_<STORE>_...) are another
    store's: ``amazon-main``, ``AMAZON-MAIN`` and ``amazon_main`` would share credentials."""
    prefix = env_prefix(name)
    for row in store.list_stores():
        if row["name"] != name and env_prefix(row["name"]) == prefix:
            raise UsageError(
                _(
                    "store name {name!r} maps to the same environment variables as store "
                    "{other!r} ({variables}), so the two would share credentials: "
                    "choose a name that differs in letters or digits"
                ).format(name=name, other=row["name"], variables=f"CROSSSHIP_{prefix}_...")
            )


def store_record(store: Store, row: dict) -> dict[str, Any]:
    """A store as `config store list/show` prints it (no secrets)."""
    targets = store.list_targets(row["name"])
    record = {
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
        "time_budget_minutes": row["time_budget_minutes"],
        "template": row["template"] or "",
        "target_phases": ", ".join(target_text(t) for t in targets),
    }
    mall = malls.find(row["mall"])
    for setting in mall.settings if mall else ():
        if setting.name not in STORE_FIELDS:
            record[setting.name] = row["mall_settings"].get(setting.name, "")
    return record


def target_text(target: dict) -> str:
    move = f" → {target['move_to']}" if target.get("move_to") else ""
    return f"{target['phase']}{move}"


# ----------------------------------------------------------------------------- phases


def optional_phase_warning(phase: str) -> str:
    """An optional ship-date phase as a target works, but is not recommended.

    SPEC §4; CROSS MALL help: Amazon自動出荷通知, 3-1.
    """
    return _(
        "phase {phase!r} has ship-date setting optional (発送日設定=任意): Amazon needs a ship "
        "date, so orders without one will end in エラー; the recommended setting is required "
        "(必須): `{command}`"
    ).format(phase=phase, command=f"crossship config phase update {q(phase)} --ship-date required")


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
    if malls.find(row["mall"]) is None:
        added.warnings.append(
            _(
                "store {store!r} is on {mall}, which this crossship cannot notify yet "
                "(installed: {installed}), so its orders stay where they are"
            ).format(store=store_name, mall=row["mall"], installed=", ".join(malls.registry()))
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


def carrier_options() -> list[tuple[Mall, CarrierField]]:
    """Every installed mall's carrier fields, in registry order (the `config carrier add` flags)."""
    return [(mall, f) for mall in malls.registry().values() for f in mall.carrier_fields]


def carrier_fields() -> list[str]:
    """The carrier-code columns of every installed mall (`config carrier list`)."""
    return [f.name for _mall, f in carrier_options()]


@dataclass
class CarrierChange:
    values: dict[str, str | None]  # field → value (None: removed)
    replace: list[str]  # the fields of each mall given: replaced together
    warnings: list[str] = field(default_factory=list)


def carrier_changes(name: str, given: dict[str, Any]) -> CarrierChange:
    """Checked carrier codes from flag values by parameter name (None: not given).

    A mall's fields are replaced together when any of them is given; another mall's stay.
    Codes are checked against the mall's list; the mall's own rules (``Mall.carrier_check``) last.
    """
    change = CarrierChange({}, [])
    for mall in malls.registry().values():
        if not any(given.get(param_name(f.option)) is not None for f in mall.carrier_fields):
            continue
        values: dict[str, str | None] = {}
        for carrier_field in mall.carrier_fields:
            values[carrier_field.name] = _carrier_value(
                carrier_field, mall, given.get(param_name(carrier_field.option))
            )
        if mall.carrier_check is not None:
            change.warnings.extend(mall.carrier_check(name, values))
        change.values.update(values)
        change.replace.extend(values)
    if not change.replace:
        flags = ", ".join(f.option for _mall, f in carrier_options() if f.needed)
        raise UsageError(
            _("give the carrier's code for at least one mall: {flags}").format(flags=flags)
        )
    return change


def _carrier_value(carrier_field: CarrierField, mall: Mall, value: Any) -> str | None:
    text = str(value or "").strip()
    if any(c in text for c in "\t\r\n"):
        raise UsageError(
            _("{option} must be one line without tabs").format(option=carrier_field.option)
        )
    if not text:
        return None
    codes = carrier_field.codes
    if codes is not None and text not in codes:
        shown = ", ".join(f"{code} ({label})" for code, label in list(codes.items())[:12])
        if len(codes) > 12:
            shown += _(" and {count} more").format(count=len(codes) - 12)
        raise UsageError(
            _("{option} {text!r} is not a {mall} code: use one of {codes}").format(
                option=carrier_field.option, text=text, mall=mall.label, codes=shown
            )
        )
    return text


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
            raise UsageError(
                _("{option} {text!r}: use one of {choices}").format(
                    option="--language", text=language, choices="ja, en"
                )
            )
        changes["language"] = language
    if smtp_host is not None:
        host = smtp_host.strip()
        if any(c.isspace() for c in host) or _has_control(host):
            raise UsageError(
                _("{option} {text!r} must be a host name or address").format(
                    option="--smtp-host", text=smtp_host
                )
            )
        changes["smtp_host"] = host or None
    if smtp_port is not None:
        if not 0 < smtp_port < 65536:
            raise UsageError(
                _("{option} {number} must be between 1 and 65535").format(
                    option="--smtp-port", number=smtp_port
                )
            )
        changes["smtp_port"] = smtp_port
    if smtp_user is not None:
        if _has_control(smtp_user):
            raise UsageError(
                _("{option} {text!r} contains a control character").format(
                    option="--smtp-user", text=smtp_user
                )
            )
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
                _(
                    "phase {phase!r} requires a ship date (発送日設定=必須) and "
                    "{count} order(s) have none: nothing moved; give --ship-date YYYY-MM-DD "
                    "or set each with `{command}`"
                ).format(
                    phase=phase,
                    count=len(undated),
                    command="crossship orders update ORDER_NO --ship-date YYYY-MM-DD",
                ),
                details=[
                    _("order {order_no}: no ship date").format(order_no=o) for o in undated[:50]
                ]
                + (
                    [_("... and {count} more").format(count=len(undated) - 50)]
                    if len(undated) > 50
                    else []
                ),
            )
    targets = {(t["store"], t["phase"]) for t in store.list_targets()}
    edit = OrderEdit(order_nos)
    for order_no in order_nos:
        order = orders[order_no]
        if order["status"] == Status.IN_PROGRESS:
            edit.warnings.append(
                _(
                    "order {order_no} is 連携中 (in_progress) in batch {batch_id}: it moves, "
                    "but the batch already sent it as it was"
                ).format(order_no=order_no, batch_id=order["batch_id"])
            )
        elif (order["store"], phase) in targets and order["status"] != Status.PENDING:
            edit.warnings.append(
                _(
                    "order {order_no} is {label} ({status}): it will not "
                    "be sent again unless you `{command}`"
                ).format(
                    order_no=order_no,
                    label=label_of(order["status"]),
                    status=order["status"],
                    command="crossship status set ORDER_NO --to pending",
                )
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
                    _(
                        "order {order_no} is in phase {phase!r}, which requires a ship date "
                        "(発送日設定=必須): it cannot be cleared there; move the order first"
                    ).format(order_no=order_no, phase=order["phase"])
                )
            changes["ship_date"] = None
    if carrier is not None:
        if carrier.strip():
            if store.get_carrier(carrier.strip()) is None:
                known = ", ".join(c["name"] for c in store.list_carriers()) or _("none yet")
                raise NotFound(
                    _(
                        "no carrier named {name!r} (carriers: {known}): add it with `{command}`"
                    ).format(name=carrier, known=known, command="crossship config carrier add")
                )
            changes["carrier"] = carrier.strip()
        else:
            changes["carrier"] = None
    if tracking_number is not None:
        if any(c in tracking_number for c in "\t\r\n"):
            raise UsageError(
                _("{option} must be one line without tabs").format(option="--tracking-number")
            )
        changes["tracking_number"] = tracking_number.strip() or None
    if not changes:
        raise UsageError(_("nothing to change: give --ship-date, --carrier or --tracking-number"))
    edit = OrderEdit([order_no])
    if order["status"] == Status.IN_PROGRESS:
        edit.warnings.append(
            _(
                "order {order_no} is 連携中 (in_progress) in batch {batch_id}: the batch "
                "already sent the old values; this change reaches Amazon only if it is sent again"
            ).format(order_no=order_no, batch_id=order["batch_id"])
        )
    if "tracking_number" in changes and changes["tracking_number"] is None:
        edit.warnings.append(
            _(
                "order {order_no} has no tracking number now: it is sent without one, which hurts "
                "the Valid Tracking Rate (追跡可能率, CROSS MALL help, Q4)"
            ).format(order_no=order_no)
        )
    store.update_order(order_no, changes, now)
    return edit


def _existing(store: Store, order_nos: Sequence[str]) -> dict[str, dict]:
    orders = store.find_orders(order_nos)
    missing = [o for o in order_nos if o not in orders]
    if missing:
        shown = ", ".join(missing[:20])
        if len(missing) > 20:
            shown += _(" and {count} more").format(count=len(missing) - 20)
        raise NotFound(_("no such order: {orders} (nothing changed)").format(orders=shown))
    return orders
