"""The Amazon shipping-confirmation flat file (出荷通知ファイル), SPEC §3 and §7.

Which feed rows an order gives (``feed_lines``), whether an order can be sent at all
(``check_order``), and the feed itself rendered from a Jinja2 template (``FeedRenderer``), split
into several feeds only when one would pass Amazon's 10 MiB limit. Plain dicts in, bytes out: no
database, no HTTP, no click.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

import jinja2

from crossship.errors import ConfigError, CrossshipError
from crossship.i18n import N_, Message, Part, _
from crossship.shell import word as q

# feed encoding setting -> (Python codec, contentType for createFeedDocument and the upload PUT)
ENCODINGS: dict[str, tuple[str, str]] = {
    "utf-8": ("utf-8", "text/tab-separated-values; charset=UTF-8"),
    "cp932": ("cp932", "text/tab-separated-values; charset=Shift_JIS"),
}

# Line ending per encoding, copied from Amazon's own template downloads: the UTF-8 sample uses LF,
# the Shift_JIS (CP932) one CRLF; header and data rows share it so each feed is consistent.
NEWLINES: dict[str, Literal["\n", "\r\n"]] = {"utf-8": "\n", "cp932": "\r\n"}

MAX_FEED_BYTES = 10 * 1024 * 1024
_PIECES = 65536  # template output pieces encoded at a time

TEMPLATE_NAME = "amazon_shipping_confirmation.tsv.j2"

# Amazon order ids are NNN-NNNNNNN-NNNNNNN; [0-9] because \d would accept full-width digits
_MALL_ORDER_ID = re.compile(r"[0-9]{3}-[0-9]{7}-[0-9]{7}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# tab, CR, LF and every other control or line-separator character would break the TSV rows
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def content_type(encoding: str) -> str:
    """The contentType for createFeedDocument, byte-for-byte the Content-Type of the upload."""
    return ENCODINGS[_encoding_key(encoding)][1]


def _encoding_key(encoding: str) -> str:
    key = encoding.strip().lower()
    if key not in ENCODINGS:
        choices = ", ".join(ENCODINGS)
        raise ConfigError(
            _(
                "unknown feed encoding {encoding}: choose one of {choices} "
                "(`crossship config store set STORE --encoding utf-8`)"
            ).format(encoding=repr(encoding), choices=choices)
        )
    return key


@dataclass(frozen=True, slots=True)
class FeedLine:
    """One feed row; every value is already the text that goes into the file."""

    order_no: str  # local 管理番号: maps the row back to its order, not a feed column
    order_id: str
    order_item_id: str
    quantity: str
    ship_date: str
    carrier_code: str
    carrier_name: str
    tracking_number: str
    ship_method: str
    cod_collection_method: str = ""


FEED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(FeedLine) if f.name != "order_no")
_feed_values = attrgetter(*FEED_FIELDS)


@dataclass
class Check:
    """The verdict on one order before sending."""

    # kept as Messages: they go on the order and in the history, shown in the reader's language
    errors: list[Part] = field(default_factory=list)  # why it cannot be sent; each says what to fix
    warnings: list[Part] = field(default_factory=list)  # sent anyway, but the user should know

    @property
    def ok(self) -> bool:
        return not self.errors


# ---------------------------------------------------------------------------------------------
# Which rows an order gives


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _item_lines(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # an item line counts only with an Amazon order-item-id; the others cannot be confirmed alone
    return [item for item in items if _text(item.get("item_id")).strip()]


def feed_lines(
    order: dict[str, Any],
    items: Iterable[dict[str, Any]],
    carrier: dict[str, Any] | None,
) -> list[FeedLine]:
    """One row per item line with an order-item-id, else one row for the whole order."""
    carrier = carrier or {}
    order_no = _text(order.get("order_no"))
    order_id = _text(order.get("mall_order_id"))
    # positional, in FeedLine's field order: a run builds one per feed row, 150,000 of them
    shipment = (
        _text(order.get("ship_date")),
        _text(carrier.get("amazon_carrier_code")),
        _text(carrier.get("amazon_carrier_name")),
        _text(order.get("tracking_number")),
        _text(carrier.get("amazon_ship_method")),
    )
    with_ids = _item_lines(items)
    if not with_ids:
        return [FeedLine(order_no, order_id, "", "", *shipment)]
    return [
        FeedLine(
            order_no,
            order_id,
            _text(item["item_id"]),
            _text(1 if item.get("quantity") is None else item["quantity"]),
            *shipment,
        )
        for item in with_ids
    ]


# ---------------------------------------------------------------------------------------------
# Checking an order before sending


def check_order(
    order: dict[str, Any],
    items: Iterable[dict[str, Any]],
    carrier: dict[str, Any] | None,
    encoding: str,
    *,
    is_split_parent: bool = False,
) -> Check:
    """Every reason the order cannot go into a feed, and the warnings it is sent with."""
    codec = ENCODINGS[_encoding_key(encoding)][0]
    items = list(items)
    order_no = _text(order.get("order_no")) or "ORDER"
    errors = [
        *_check_ship_date(order, order_no),
        *_check_mall_order_id(order),
        *_check_carrier(order, carrier, order_no),
        *_check_items(items),
    ]
    if _writable(order, items, carrier, codec):
        return Check(errors=errors, warnings=_warnings(order, items, order_no, is_split_parent))
    for name, value, fix in _free_text_values(order, items, carrier, order_no):
        problem = _value_problem(value, codec)
        if problem is None:
            continue
        if problem.key == _CANNOT_HOLD:
            store = _text(order.get("store")) or "STORE"
            fix = Message(
                "{fix}, or set the store's encoding with "
                "`crossship config store set {store} --encoding utf-8`",
                {"fix": fix, "store": q(store)},
            )
        errors.append(
            Message("{field} {problem}: {fix}", {"field": name, "problem": problem, "fix": fix})
        )
    return Check(errors=errors, warnings=_warnings(order, items, order_no, is_split_parent))


def _check_ship_date(order: dict[str, Any], order_no: str) -> list[Part]:
    value = order.get("ship_date")
    if value is not None and _is_real_date(str(value)):
        return []
    if value is None or not str(value).strip():
        return [
            Message(
                "発送日 (ship_date) is missing: set it with "
                "`crossship orders update {order_no} --ship-date YYYY-MM-DD`",
                {"order_no": q(order_no)},
            )
        ]
    return [
        Message(
            "発送日 (ship_date) {value} is not a date YYYY-MM-DD: set it with "
            "`crossship orders update {order_no} --ship-date YYYY-MM-DD`",
            {"value": repr(str(value)), "order_no": q(order_no)},
        )
    ]


def _is_real_date(value: str) -> bool:
    # fromisoformat alone also accepts 20240101 and week dates, which Amazon does not
    if not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_mall_order_id(order: dict[str, Any]) -> list[Part]:
    value = _text(order.get("mall_order_id"))
    if not value.strip():
        return [
            Message(
                "注文番号 (mall_order_id) is missing: correct it in the order file and re-import "
                "it with `crossship orders import FILE`"
            )
        ]
    if not _MALL_ORDER_ID.fullmatch(value):
        return [
            Message(
                "注文番号 (mall_order_id) {value} is not NNN-NNNNNNN-NNNNNNN: correct it in the "
                "order file and re-import it with `crossship orders import FILE`",
                {"value": repr(value)},
            )
        ]
    return []


def _check_carrier(
    order: dict[str, Any], carrier: dict[str, Any] | None, order_no: str
) -> list[Part]:
    name = _text(order.get("carrier")).strip()
    code = _text(carrier.get("amazon_carrier_code")).strip() if carrier else ""
    if name and carrier is not None and code and code != "Other":
        return []  # the usual case, before any message is built
    choose = f"`crossship orders update {q(order_no)} --carrier NAME`"
    register = f"`crossship config carrier add {q(name)} --amazon-carrier-code CODE`"
    if not name:
        problem = Message("配送便 (carrier) is missing: set it with {choose}", {"choose": choose})
    elif carrier is None:
        problem = Message(
            "配送便 (carrier) {name} is not a registered carrier: register it with {register} "
            "or choose another with {choose}",
            {"name": repr(name), "register": register, "choose": choose},
        )
    elif not code:
        problem = Message(
            "配送便 (carrier) {name} has no Amazon carrier-code (配送業者コード), required by "
            "Amazon Japan: set it with {register}",
            {"name": repr(name), "register": register},
        )
    elif code == "Other" and not _text(carrier.get("amazon_carrier_name")).strip():
        problem = Message(
            "配送便 (carrier) {name} has carrier-code Other but no Amazon carrier-name "
            "(配送業者名), which Amazon then requires: set it with `crossship config carrier add "
            "{carrier} --amazon-carrier-code Other --amazon-carrier-name TEXT`",
            {"name": repr(name), "carrier": name},
        )
    else:
        return []
    return [problem]


def _check_items(items: list[dict[str, Any]]) -> list[Part]:
    errors: list[Part] = []
    for item in items:
        quantity = item.get("quantity")
        # bool is an int subclass, but True is no quantity
        if quantity is not None and (
            isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1
        ):
            errors.append(
                Message(
                    "数量 (quantity) {quantity} of item line {line} is not a positive whole "
                    "number: correct the order file and re-import it with "
                    "`crossship orders import FILE`",
                    {"quantity": repr(quantity), "line": item.get("line")},
                )
            )
    with_ids = _item_lines(items)
    if with_ids and len(with_ids) < len(items):
        # sending only the lines with ids would leave the other items unshipped at Amazon
        missing = ", ".join(
            str(i.get("line")) for i in items if not _text(i.get("item_id")).strip()
        )
        errors.append(
            Message(
                "注文商品番号 (item_id) is missing on item line(s) {lines} while other lines have "
                "one: give every line its order-item-id, or none, and correct the order file and "
                "re-import it with `crossship orders import FILE`",
                {"lines": missing},
            )
        )
    return errors


CARRIER_TEXT_FIELDS = {
    "amazon_carrier_code": "配送業者コード",
    "amazon_carrier_name": "配送業者名",
    "amazon_ship_method": "Amazon配送方法",
}


def _free_text_values(
    order: dict[str, Any],
    items: list[dict[str, Any]],
    carrier: dict[str, Any] | None,
    order_no: str,
) -> Iterable[tuple[Message, str, Message]]:
    """(field named for the user, value, how to fix it) for each free-text value of the feed."""
    yield (
        Message("配送番号 (tracking_number)"),
        _text(order.get("tracking_number")),
        Message(
            "change it with `crossship orders update {order_no} --tracking-number NUMBER`",
            {"order_no": q(order_no)},
        ),
    )
    if carrier is not None:
        name = _text(carrier.get("name") or order.get("carrier"))
        fix = Message(
            "change the carrier with `crossship config carrier add {carrier} ...`",
            {"carrier": q(name)},
        )
        for key, label in CARRIER_TEXT_FIELDS.items():
            field_name = Message(
                "{label} ({key}) of carrier {carrier}",
                {"label": label, "key": key, "carrier": repr(name)},
            )
            yield field_name, _text(carrier.get(key)), fix
    for item in _item_lines(items):
        yield (
            Message("注文商品番号 (item_id) of item line {line}", {"line": item.get("line")}),
            _text(item.get("item_id")),
            Message("correct the order file and re-import it with `crossship orders import FILE`"),
        )


def _writable(
    order: dict[str, Any], items: list[dict[str, Any]], carrier: dict[str, Any] | None, codec: str
) -> bool:
    """True when no free-text value could break the feed: one scan over all of them (a superset
    of ``_free_text_values``'), so the messages are built only for an order that has a problem."""
    values = [_text(order.get("tracking_number"))]
    if carrier is not None:
        values += (_text(carrier.get(key)) for key in CARRIER_TEXT_FIELDS)
    values += (_text(item.get("item_id")) for item in items)
    return _value_problem("".join(values), codec) is None


_BREAKS_ROWS = N_("contains {char}, which would break the feed's rows")
_CANNOT_HOLD = N_("contains {char}, which the feed encoding {codec} cannot hold")


def _value_problem(value: str, codec: str) -> Message | None:
    """Why ``value`` cannot be written into the feed (``_CANNOT_HOLD``: the encoding is why), or
    None."""
    bad = _FORBIDDEN.search(value)
    if bad:
        return Message(_BREAKS_ROWS, {"char": _describe(bad.group())})
    try:
        value.encode(codec)
    except UnicodeEncodeError as exc:
        char = exc.object[exc.start]
        return Message(_CANNOT_HOLD, {"char": _describe(char), "codec": codec})
    return None


_CHAR_NAMES = {
    "\t": Message("a tab"),
    "\r": Message("a carriage return (CR)"),
    "\n": Message("a line feed (LF)"),
}


def _describe(char: str) -> Message | str:
    if char in _CHAR_NAMES:
        return _CHAR_NAMES[char]
    name = unicodedata.name(char, "control character")
    shown = repr(char) if unicodedata.category(char).startswith("C") else f"'{char}'"
    return f"{shown} (U+{ord(char):04X} {name})"


def _warnings(
    order: dict[str, Any],
    items: list[dict[str, Any]],
    order_no: str,
    is_split_parent: bool,
) -> list[Part]:
    warnings: list[Part] = []
    if not _text(order.get("tracking_number")).strip():
        warnings.append(
            Message(
                "配送番号 (tracking_number) is blank: it is sent without one, which lowers the "
                "Valid Tracking Rate (追跡可能率); set it with "
                "`crossship orders update {order_no} --tracking-number NUMBER`",
                {"order_no": q(order_no)},
            )
        )
    is_split = bool(_text(order.get("split_from")).strip()) or is_split_parent
    if is_split and not _item_lines(items):
        warnings.append(
            Message(
                "split order (注文分割) without item lines (注文商品番号, item_id): Amazon keeps "
                "one tracking number per order, so the later notification of the split orders "
                "overwrites this one; import the item lines with their item_id to send each "
                "package separately"
            )
        )
    return warnings


# ---------------------------------------------------------------------------------------------
# Rendering


class FeedRenderer:
    """Renders FeedLines into the encoded flat file, from the package's or a store's template."""

    def __init__(self, encoding: str = "utf-8", template_path: str | Path | None = None):
        self.encoding = _encoding_key(encoding)
        self.codec, self.content_type = ENCODINGS[self.encoding]
        self.newline = NEWLINES[self.encoding]
        self.template = _load_template(self.newline, template_path)
        self.template_source = str(template_path) if template_path else TEMPLATE_NAME

    def render(self, lines: Iterable[FeedLine]) -> bytes:
        """The whole feed, encoded; raises CrossshipError naming the order of a bad value."""
        lines = lines if isinstance(lines, Sequence) else list(lines)
        self._refuse_control_characters(lines)
        encoded: list[bytes] = []
        output = self.template.generate(lines=lines)
        try:
            # encoded as it goes, so the whole feed is never held as text as well
            while pieces := list(islice(output, _PIECES)):
                encoded.append(self._encode(pieces, lines))
        except jinja2.TemplateError as exc:
            raise ConfigError(
                _("feed template {template} failed: {error}").format(
                    template=self.template_source, error=exc
                )
            ) from exc
        return b"".join(encoded)

    def _encode(self, pieces: list[str], lines: Sequence[FeedLine]) -> bytes:
        try:
            return "".join(pieces).encode(self.codec)
        except UnicodeEncodeError as exc:
            raise self._encoding_error(lines, exc.object[exc.start]) from exc

    def split(
        self, lines: Sequence[FeedLine], max_bytes: int = MAX_FEED_BYTES
    ) -> list[tuple[bytes, list[FeedLine]]]:
        """One feed, or several only when one would pass max_bytes; an order is never divided."""
        whole = self.render(lines)
        if len(whole) <= max_bytes:
            return [(whole, list(lines))]
        header = len(self.render([]))
        sizes = self._line_sizes(whole, header, len(lines))
        groups = _group_by_order(lines)
        feeds: list[tuple[bytes, list[FeedLine]]] = []
        start = 0
        while start < len(groups):
            count = _groups_that_fit(groups, sizes, start, max_bytes - header)
            data, count = self._fit(lines, groups, start, count, max_bytes)
            feeds.append((data, [lines[i] for g in groups[start : start + count] for i in g]))
            start += count
        return feeds

    def _fit(
        self,
        lines: Sequence[FeedLine],
        groups: list[list[int]],
        start: int,
        count: int,
        max_bytes: int,
    ) -> tuple[bytes, int]:
        # the sizes are measured, but a store template may add text per feed: verify, then shrink
        while True:
            chunk = [lines[i] for g in groups[start : start + count] for i in g]
            data = self.render(chunk)
            if len(data) <= max_bytes:
                return data, count
            if count == 1:
                raise CrossshipError(
                    _(
                        "order {order_no}: its {rows} feed row(s) alone make a feed of {size} "
                        "bytes, over the limit of {limit}"
                    ).format(
                        order_no=chunk[0].order_no, rows=len(chunk), size=len(data), limit=max_bytes
                    )
                )
            count = max(1, min(count - 1, count * max_bytes // len(data)))

    def _line_sizes(self, whole: bytes, header: int, count: int) -> list[float]:
        """Bytes per line: exact when the template writes one row per line, else the average."""
        rows = whole[header:].split(self.newline.encode(self.codec))
        if len(rows) == count + 1 and rows[-1] == b"":
            extra = len(self.newline)
            return [len(row) + extra for row in rows[:-1]]
        return [(len(whole) - header) / max(count, 1)] * count

    def _refuse_control_characters(self, lines: Sequence[FeedLine]) -> None:
        # one scan over all values: check_order should have refused these already
        if not _FORBIDDEN.search("".join(map("".join, map(_feed_values, lines)))):
            return
        for line in lines:
            for name, value in zip(FEED_FIELDS, _feed_values(line), strict=True):
                bad = _FORBIDDEN.search(value)
                if bad:
                    raise CrossshipError(
                        _(
                            "order {order_no}: {field} contains {char}, which would break the "
                            "feed's rows; correct the order and send it again"
                        ).format(order_no=line.order_no, field=name, char=_describe(bad.group()))
                    )

    def _encoding_error(self, lines: Sequence[FeedLine], char: str) -> CrossshipError:
        for line in lines:
            for name, value in zip(FEED_FIELDS, _feed_values(line), strict=True):
                if char in value:
                    return CrossshipError(
                        _(
                            "order {order_no}: {field} contains {char}, which the feed encoding "
                            "{codec} cannot hold; correct the order or set the store's encoding "
                            "to utf-8"
                        ).format(
                            order_no=line.order_no,
                            field=name,
                            char=_describe(char),
                            codec=self.codec,
                        )
                    )
        return ConfigError(
            _(
                "feed template {template} contains {char}, which the feed encoding {codec} "
                "cannot hold: edit the template"
            ).format(template=self.template_source, char=_describe(char), codec=self.codec)
        )


def _load_template(
    newline: Literal["\n", "\r\n"], template_path: str | Path | None
) -> jinja2.Template:
    """The compiled template, compiled once per file version: a run opens a session per store,
    and compiling the same template for each of hundreds of stores is time they all wait for."""
    if template_path is None:
        return _compiled(newline, None, None)
    path = Path(template_path).expanduser()
    try:
        info = path.stat()
    except OSError:
        return _compiled(newline, str(path), None)  # the loader says it is not found
    return _compiled(newline, str(path), (info.st_ino, info.st_size, info.st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _compiled(
    newline: Literal["\n", "\r\n"], template_path: str | None, version: tuple | None
) -> jinja2.Template:
    if template_path is None:
        loader: jinja2.BaseLoader = jinja2.PackageLoader("crossship", "templates")
        name = TEMPLATE_NAME
    else:
        path = Path(template_path)
        loader = jinja2.FileSystemLoader(str(path.parent))
        name = path.name
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # a TSV, not HTML: "&" in a carrier name stays "&"
        keep_trailing_newline=True,
        newline_sequence=newline,  # every newline of the template becomes the feed's
    )
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(
            _("feed template {template} not found").format(template=template_path or name)
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            _("feed template {template}, line {line}: {error}").format(
                template=template_path or name, line=exc.lineno, error=exc.message
            )
        ) from exc


def _group_by_order(lines: Sequence[FeedLine]) -> list[list[int]]:
    """Line indexes per order, orders in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, line in enumerate(lines):
        groups.setdefault(line.order_no, []).append(index)
    return list(groups.values())


def _groups_that_fit(
    groups: list[list[int]], sizes: Sequence[float], start: int, budget: int
) -> int:
    """How many groups from ``start`` fit in ``budget`` bytes (at least one)."""
    used = 0.0
    count = 0
    for group in groups[start:]:
        used += sum(sizes[i] for i in group)
        if used > budget and count:
            break
        count += 1
    return count
