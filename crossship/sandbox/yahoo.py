"""The Yahoo!ショッピング part of the sandbox: Yahoo! ID連携 v2's token endpoint and the order APIs
orderShipStatusChange, orderStatusChange and orderInfo, on the one `crossship sandbox serve` port.

Strict where crossship could go wrong: the Bearer token, the SellerId and the order id's prefix,
ship company codes, at most two tracking numbers (or a no-tracking reason, not both), the ship
date, order-status transitions (1→5, 2→5; 5 again → "already completed"), and 公開鍵認証: the
sandbox holds its own key pair, gives out the public key (printed or written to a file) and
decrypts every X-sws-signature with its private key. Without a valid signature the authorization
ends 12 simulated hours after it was given (px-04102); with one it lasts 28 days, like the
refresh token. Faults (fail, throttle, hang, lose_answer, bad_xml) are injected per operation.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import defusedxml.ElementTree as DET
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from defusedxml import DefusedXmlException

from crossship import i18n
from crossship.errors import UsageError
from crossship.i18n import _
from crossship.sandbox.control import error_text
from crossship.yahoo.codes import NO_TRACKING_REASONS, SHIP_COMPANIES

TOKEN_PATH = "/yconnect/v2/token"
API_PATH = "/ShoppingWebService/V1/"
CONTROL_PATH = "/_sandbox/yahoo/"
OPERATIONS = ("token", "orderShipStatusChange", "orderStatusChange", "orderInfo")
FAULT_MODES = ("fail", "throttle", "hang", "lose_answer", "bad_xml")
TOKEN_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=28)
UNSIGNED_LIFETIME = timedelta(hours=12)
SIGNATURE_SKEW = 600  # seconds a signature's unix time may differ from the sandbox's
ORDER_STATUSES = {"1": "予約中", "2": "処理中", "3": "保留", "4": "キャンセル", "5": "完了"}


@dataclass
class YahooOptions:
    seller_id: str = "sandbox-store"
    client_id: str = "sandbox-yahoo-client"
    client_secret: str = "sandbox-yahoo-secret"
    refresh_token: str = "sandbox-yahoo-refresh"
    key_version: str = "1"
    enforce_rate_limits: bool = True  # about one call a second (a burst of 3 tolerated)
    known_order_ids: set[str] | None = None  # None: every <seller id>-<digits> exists


@dataclass
class Fault:
    mode: str
    remaining: int
    status: int
    seconds: float
    after: int = 0  # calls of the operation that pass untouched before the fault applies


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


@dataclass
class YahooOrder:
    order_id: str
    order_status: str = "2"  # 処理中
    ship: dict[str, str] = field(default_factory=lambda: {"ShipStatus": "1"})  # 出荷可
    history: list[str] = field(default_factory=list)  # operations applied, in order

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "order_status": self.order_status,
            "ship": dict(self.ship),
            "history": list(self.history),
        }


def _xml(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def error_reply(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    root = ET.Element("Error")
    ET.SubElement(root, "Message").text = message
    if code:
        ET.SubElement(root, "Code").text = code
    return Reply(status, _xml(root), {"Content-Type": "text/xml;charset=UTF-8", **(headers or {})})


def ok_reply(warnings: Sequence[tuple[str, str]] = (), info: ET.Element | None = None) -> Reply:
    root = ET.Element(
        "ResultSet",
        {"totalResultsAvailable": "1", "totalResultsReturned": "1", "firstResultPosition": "1"},
    )
    result = ET.SubElement(root, "Result")
    ET.SubElement(result, "Status").text = "OK"
    for code, message in warnings:
        warning = ET.SubElement(result, "Warning")
        ET.SubElement(warning, "Code").text = code
        ET.SubElement(warning, "Message").text = message
    if info is not None:
        result.append(info)
    return Reply(200, _xml(root), {"Content-Type": "text/xml;charset=UTF-8"})


def json_reply(status: int, payload: dict[str, Any]) -> Reply:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Reply(status, body, {"Content-Type": "application/json;charset=UTF-8"})


class YahooSandbox:
    """State and operations, without HTTP: (method, path, headers, body) in, a Reply out."""

    def __init__(
        self,
        options: YahooOptions | None = None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] | None = None,
    ):
        self.options = options or YahooOptions()
        self.calls: Counter[str] = Counter()
        self._now = now
        self._monotonic = monotonic or time.monotonic
        self._lock = threading.RLock()
        self._key: rsa.RSAPrivateKey | None = None  # made on first use: most runs never ask
        self._tokens: dict[str, datetime] = {}
        self._orders: dict[str, YahooOrder] = {}
        self._faults: defaultdict[str, list[Fault]] = defaultdict(list)
        self._release = threading.Event()
        self._offset = timedelta(0)  # simulated time added to the clock (control: advance)
        self._authorized_at = self._now()
        self._bucket = (3.0, self._monotonic())  # (tokens, when)

    # ---- the key the store uses -----------------------------------------------------------

    @property
    def _private(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    def public_key_pem(self) -> bytes:
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def write_public_key(self, path: Path) -> Path:
        path = Path(path)
        path.write_bytes(self.public_key_pem())
        return path

    # ---- control --------------------------------------------------------------------------

    def claims(self, path: str) -> bool:
        return path == TOKEN_PATH or path.startswith((API_PATH, CONTROL_PATH))

    def add_fault(
        self,
        operation: str,
        mode: str,
        *,
        count: int = 1,
        status: int = 500,
        seconds: float = 30.0,
        after: int = 0,
    ) -> None:
        if operation not in OPERATIONS:
            raise UsageError(
                i18n.Message(
                    "unknown Yahoo operation {operation!r}: use one of {operations}",
                    {"operation": operation, "operations": ", ".join(OPERATIONS)},
                )
            )
        if mode not in FAULT_MODES:
            raise UsageError(
                i18n.Message(
                    "unknown fault mode {mode!r}: use one of {modes}",
                    {"mode": mode, "modes": ", ".join(FAULT_MODES)},
                )
            )
        if count < 1 or not 400 <= status <= 599 or seconds < 0 or after < 0:
            raise UsageError(
                i18n.Message(
                    "a fault needs count >= 1, a status 400-599, seconds >= 0 and after >= 0"
                )
            )
        with self._lock:
            self._faults[operation].append(Fault(mode, count, status, seconds, after))

    def release_hangs(self) -> None:
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()

    def advance(self, hours: float) -> None:
        """Move the simulated clock on (the 12-hour and 28-day limits, token lifetimes)."""
        with self._lock:
            self._offset += timedelta(hours=hours)

    def authorize(self) -> None:
        """The seller authorized crossship again: the 12-hour / 28-day clocks start now."""
        with self._lock:
            self._authorized_at = self._clock()

    def set_order(self, order_id: str, order_status: str) -> None:
        if order_status not in ORDER_STATUSES:
            raise UsageError(
                i18n.Message(
                    "order status must be one of {statuses}",
                    {"statuses": ", ".join(ORDER_STATUSES)},
                )
            )
        with self._lock:
            self._order(order_id).order_status = order_status

    def orders(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: v.as_dict() for k, v in self._orders.items()}

    def set_options(self, changes: dict[str, Any]) -> None:
        with self._lock:
            for name, value in changes.items():
                if not hasattr(self.options, name):
                    raise UsageError(
                        i18n.Message("unknown Yahoo sandbox option {name!r}", {"name": name})
                    )
                if name == "known_order_ids" and value is not None:
                    value = set(value)
                setattr(self.options, name, value)

    def _clock(self) -> datetime:
        return self._now() + self._offset

    def _order(self, order_id: str) -> YahooOrder:
        if order_id not in self._orders:
            self._orders[order_id] = YahooOrder(order_id)
        return self._orders[order_id]

    # ---- dispatch -------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Message, body: bytes) -> tuple[str, Reply]:
        if path.startswith(CONTROL_PATH):
            return "_yahoo_control", self._control(method, path[len(CONTROL_PATH) :], body)
        if method != "POST":
            return "-", error_reply(405, "", "Method Not Allowed")
        operation = "token" if path == TOKEN_PATH else path[len(API_PATH) :]
        if operation not in OPERATIONS:
            return "-", error_reply(404, "", "Not Found")
        with self._lock:
            self.calls[operation] += 1
            fault = self._take_fault(operation)
        if fault and fault.mode == "fail":
            return operation, self._failure(operation, fault.status)
        if fault and fault.mode == "throttle":
            return operation, error_reply(429, "", "Too Many Requests")
        if fault and fault.mode == "hang":
            with self._lock:
                released = self._release
            released.wait(fault.seconds)
        with self._lock:
            if operation == "token":
                reply = self._token(headers, body)
            else:
                reply = self._throttle() or self._api(operation, headers, body)
        if fault and fault.mode == "lose_answer":
            reply.drop = True
        elif fault and fault.mode == "bad_xml":
            reply.body = reply.body[: len(reply.body) // 2] or b"<"
        return operation, reply

    def _take_fault(self, operation: str) -> Fault | None:
        queue = self._faults[operation]
        if not queue:
            return None
        fault = queue[0]
        if fault.after:
            fault.after -= 1
            return None
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.pop(0)
        return fault

    def _failure(self, operation: str, status: int) -> Reply:
        if operation == "token":
            return json_reply(status, {"error": "server_error", "error_description": "error"})
        return error_reply(status, "", "Internal Server Error")

    def _throttle(self) -> Reply | None:
        if not self.options.enforce_rate_limits:
            return None
        tokens, when = self._bucket
        now = self._monotonic()
        tokens = min(3.0, tokens + (now - when))
        if tokens < 1.0:
            self._bucket = (tokens, now)
            return error_reply(429, "", "Too Many Requests: about one request a second")
        self._bucket = (tokens - 1.0, now)
        return None

    # ---- Yahoo! ID連携 v2 -----------------------------------------------------------------

    def _token(self, headers: Message, body: bytes) -> Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            try:
                pair = base64.b64decode(basic[6:], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                pair = ""
            client_id, _, client_secret = pair.partition(":")
        options = self.options
        if not (
            _same(client_id, options.client_id) and _same(client_secret, options.client_secret)
        ):
            return json_reply(
                401, {"error": "invalid_client", "error_description": "client authentication"}
            )
        if form.get("grant_type") != "refresh_token":
            return json_reply(
                400, {"error": "unsupported_grant_type", "error_description": "grant_type"}
            )
        if not _same(form.get("refresh_token", ""), options.refresh_token):
            return json_reply(
                400, {"error": "invalid_grant", "error_description": "invalid refresh_token"}
            )
        if self._clock() >= self._authorized_at + REFRESH_LIFETIME:
            return json_reply(
                400, {"error": "invalid_grant", "error_description": "refresh_token is expired"}
            )
        token = secrets.token_urlsafe(40)
        self._tokens[token] = self._clock() + TOKEN_LIFETIME
        return json_reply(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(TOKEN_LIFETIME.total_seconds()),
            },
        )

    # ---- the order APIs -------------------------------------------------------------------

    def _api(self, operation: str, headers: Message, body: bytes) -> Reply:
        bearer = headers.get("Authorization", "")
        token = bearer[7:] if bearer.startswith("Bearer ") else ""
        expires = self._tokens.get(token)
        if expires is None or self._clock() >= expires:
            return error_reply(
                401,
                "",
                "Invalid access token.",
                {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'},
            )
        signed = self._signed(headers)
        self.calls["signed" if signed else "unsigned"] += 1
        lifetime = REFRESH_LIFETIME if signed else UNSIGNED_LIFETIME
        if self._clock() >= self._authorized_at + lifetime:
            return error_reply(400, "px-04102", "Session expired.")
        if headers.get_content_type() not in ("application/xml", "text/xml"):
            return error_reply(400, "px-04005", "Content-Type must be application/xml.")
        try:
            root = DET.fromstring(body, forbid_dtd=True)
        except (ET.ParseError, DefusedXmlException):
            return error_reply(400, "px-04003", "The request is not well-formed XML.")
        seller = _find(root, "SellerId")
        if not seller:
            return error_reply(400, "px-04001", "SellerId is missing.")
        if seller != self.options.seller_id:
            return error_reply(403, "px-04004", "The SellerId does not match the authorization.")
        order_id = _find(root, "Target/OrderId")
        problem = self._order_problem(order_id)
        if problem:
            return problem
        if operation == "orderInfo":
            return self._order_info(order_id)
        if operation == "orderShipStatusChange":
            return self._ship(order_id, root)
        return self._status(order_id, root)

    def _signed(self, headers: Message) -> bool:
        signature = headers.get("X-sws-signature")
        if not signature or headers.get("X-sws-signature-version") != self.options.key_version:
            return False
        try:
            plain = self._private.decrypt(base64.b64decode(signature), padding.PKCS1v15())
            seller, _, stamp = plain.decode().partition(":")
            moment = int(stamp)
        except (ValueError, UnicodeDecodeError):
            return False
        return seller == self.options.seller_id and abs(moment - self._now().timestamp()) <= (
            SIGNATURE_SKEW
        )

    def _order_problem(self, order_id: str) -> Reply | None:
        known = self.options.known_order_ids
        shaped = re.fullmatch(re.escape(self.options.seller_id) + r"-[0-9]+", order_id or "")
        if not shaped or (known is not None and order_id not in known):
            return error_reply(400, "od83000003", "注文IDが存在しません。")
        return None

    def _ship(self, order_id: str, root: ET.Element) -> Reply:
        order = self._order(order_id)
        ship = root.find("Order/Ship")
        if ship is None:
            return error_reply(400, "od83000010", "Ship要素がありません。")
        values = {e.tag: (e.text or "") for e in ship}
        allowed = {
            "ShipStatus",
            "ShipCompanyCode",
            "ShipInvoiceNumber1",
            "ShipInvoiceNumber2",
            "ShipInvoiceNumberEmptyReason",
            "ShipDate",
            "ShipMethod",
            "ShipNotes",
        }
        unknown = sorted(set(values) - allowed)
        if unknown:
            return error_reply(400, "od83000011", f"不正な要素です: {', '.join(unknown)}")
        if order.order_status == "4":
            return error_reply(
                400, "od83000021", "キャンセルされた注文の出荷ステータスは変更できません。"
            )
        if values.get("ShipStatus") not in ("0", "1", "2", "3", "4"):
            return error_reply(400, "od83000012", "出荷ステータスが不正です。")
        company = values.get("ShipCompanyCode", "")
        if company and company not in SHIP_COMPANIES:
            return error_reply(400, "od83000013", "配送会社コードが不正です。")
        numbers = [values[n] for n in ("ShipInvoiceNumber1", "ShipInvoiceNumber2") if values.get(n)]
        reason = values.get("ShipInvoiceNumberEmptyReason", "")
        if reason and reason not in NO_TRACKING_REASONS:
            return error_reply(400, "od83000014", "伝票番号なし理由が不正です。")
        if reason and numbers:
            return error_reply(
                400, "od83000015", "伝票番号と伝票番号なし理由は同時に指定できません。"
            )
        if any(len(n.encode()) > 60 for n in numbers):
            return error_reply(400, "od83000016", "お荷物伝票番号が長すぎます。")
        if values.get("ShipStatus") == "3":
            if not company:
                return error_reply(400, "od83000017", "出荷済みには配送会社が必要です。")
            if not _is_date(values.get("ShipDate", "")):
                return error_reply(400, "od83000018", "出荷日が不正です(YYYYMMDD)。")
        order.ship = {k: v for k, v in values.items() if v}
        order.history.append("orderShipStatusChange")
        warnings = []
        if company == "1001" and any(not re.fullmatch(r"[0-9-]{1,14}", n) for n in numbers):
            warnings.append(("od83000031", "お荷物伝票番号の形式が配送会社の形式と異なります。"))
        return ok_reply(warnings)

    def _status(self, order_id: str, root: ET.Element) -> Reply:
        order = self._order(order_id)
        wanted = _find(root, "Order/OrderStatus")
        if wanted != "5":
            return error_reply(400, "od83000020", "変更後の注文ステータスが不正です。")
        if order.order_status == "5":
            return error_reply(400, "od83000026", "既に完了済みの注文です。")
        if order.order_status not in ("1", "2"):
            label = ORDER_STATUSES[order.order_status]
            return error_reply(
                400, "od83000025", f"注文ステータス{label}からは完了に変更できません。"
            )
        order.order_status = "5"
        order.history.append("orderStatusChange")
        return ok_reply()

    def _order_info(self, order_id: str) -> Reply:
        order = self._order(order_id)
        info = ET.Element("OrderInfo")
        ET.SubElement(info, "OrderId").text = order_id
        ET.SubElement(info, "OrderStatus").text = order.order_status
        ship = ET.SubElement(info, "Ship")
        for name, value in order.ship.items():
            ET.SubElement(ship, name).text = value
        return ok_reply(info=info)

    # ---- control over HTTP (JSON) ---------------------------------------------------------

    def _control(self, method: str, name: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = None
        if method == "GET" and name == "orders":
            return json_reply(200, self.orders())
        if method == "GET" and name == "calls":
            with self._lock:
                return json_reply(200, dict(self.calls))
        if method == "GET" and name == "public-key":
            return Reply(200, self.public_key_pem(), {"Content-Type": "application/x-pem-file"})
        if method != "POST" or not isinstance(payload, dict):
            return json_reply(400, {"error": "POST a JSON object"})
        try:
            if name == "faults":
                self.add_fault(
                    str(payload.get("operation", "")),
                    str(payload.get("mode", "")),
                    count=int(payload.get("count", 1)),
                    status=int(payload.get("status", 500)),
                    seconds=float(payload.get("seconds", 30.0)),
                    after=int(payload.get("after", 0)),
                )
            elif name == "release":
                self.release_hangs()
            elif name == "advance":
                self.advance(float(payload.get("hours", 0)))
            elif name == "authorize":
                self.authorize()
            elif name == "orders":
                for order_id, status in dict(payload).items():
                    self.set_order(str(order_id), str(status))
            elif name == "options":
                self.set_options(payload)
            else:
                return json_reply(404, {"error": f"no control {name!r}"})
        except (UsageError, TypeError, ValueError) as exc:
            return json_reply(400, {"error": error_text(exc)})
        return json_reply(200, {"ok": True})

    def banner_lines(self, url: str, key_file: Path | None) -> list[str]:
        options = self.options
        lines = [
            _("Yahoo!ショッピング (Yahoo! ID連携 v2 + order APIs):"),
            "  " + _("endpoint:  {url}").format(url=url + API_PATH),
            "  " + _("token URL: {url}").format(url=url + TOKEN_PATH),
            "  "
            + _(
                "seller id: {seller_id}; client id {client_id}, client secret {client_secret}, "
                "refresh token {refresh_token}"
            ).format(
                seller_id=options.seller_id,
                client_id=options.client_id,
                client_secret=options.client_secret,
                refresh_token=options.refresh_token,
            ),
        ]
        if key_file is not None:
            lines.append(
                "  "
                + _(
                    "public key: {path} (version {version}; without it px-04102 after 12 "
                    "simulated hours)"
                ).format(path=key_file, version=options.key_version)
            )
        else:
            lines.append(
                "  "
                + _("public key (version {version}; also GET {path}):").format(
                    version=options.key_version, path=CONTROL_PATH + "public-key"
                )
            )
            lines.extend("    " + line for line in self.public_key_pem().decode().splitlines())
        return lines


def _find(root: ET.Element, path: str) -> str:
    found = root.find(path)
    return (found.text or "").strip() if found is not None else ""


def _is_date(text: str) -> bool:
    if not re.fullmatch(r"[0-9]{8}", text):
        return False
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
