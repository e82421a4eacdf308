"""A local stand-in for RMS's order API: getOrder, updateOrderShippingAsync and
getResultUpdateOrderShippingAsync under ``/es/2.0/order/``, on the ``crossship sandbox serve`` port.

It is strict where RMS is: the ESA header (ES01-01 otherwise), API functions enabled per key
(ES04-01), JSON shapes and codes (ERROR_011 書式不正), at most 100 orders a call and 20 shipment
rows a basket, cancelled orders (ERROR_102). updateOrderShippingAsync only accepts: the rows are
written when the request's processing time has passed, and until then the result call answers
INFO_101 "処理結果は存在しませんでした", exactly as for an unknown requestId. A row sent with its
shippingDetailId updates that row in place. Faults (fail, throttle, hang, lose_answer, bad_json)
are set from the same process or over HTTP under ``/_sandbox/rakuten/``.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crossship import i18n
from crossship.errors import UsageError
from crossship.i18n import _
from crossship.rakuten.codes import (
    DELIVERY_COMPANIES,
    GET_ORDER_VERSION,
    MAX_ORDERS_PER_REQUEST,
    MAX_ROWS_PER_BASKET,
    MAX_VALUE_CHARS,
    NO_RESULT_TEXT,
    ORDER_NUMBER,
)
from crossship.sandbox.control import error_text

BASE_PATH = "/es/2.0/order/"
CONTROL_PATH = "/_sandbox/rakuten/"
GET_ORDER = "getOrder"
UPDATE = "updateOrderShippingAsync"
GET_RESULT = "getResultUpdateOrderShippingAsync"
OPERATIONS = (GET_ORDER, UPDATE, GET_RESULT)
FAULT_MODES = ("fail", "throttle", "hang", "lose_answer", "bad_json")
RESULT_RETENTION = timedelta(days=30)

_UPDATE_CODE = "ORDER_EXT_API_UPDATE_ORDERSHIPPING"
_ASYNC_CODE = "ORDER_EXT_API_UPDATE_ORDERSHIPPING_ASYNC"
_RESULT_CODE = "ORDER_EXT_API_GET_RESULT_UPDATE_ORDERSHIPPING_ASYNC"
_GET_ORDER_CODE = "ORDER_EXT_API_GET_ORDER"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class _Request:
    method: str
    path: str
    headers: Any  # email.message.Message: get() is case-insensitive
    body: bytes


HttpRequest = _Request


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering


@dataclass
class RmsOptions:
    service_secret: str = "sandbox-service-secret"
    license_key: str = "sandbox-license-key"
    processing_seconds: float = 0.0  # how long a request stays "no result yet"
    enforce_rate_limit: bool = True  # about one call a second (a burst of 2 is let through)
    known_orders: set[str] | None = None  # None: every well-formed order number exists
    cancelled_orders: set[str] = field(default_factory=set)
    enabled_functions: set[str] | None = None  # None: every API function enabled for the key

    def __post_init__(self) -> None:
        if self.processing_seconds < 0:
            raise UsageError(i18n.Message("processing seconds cannot be negative"))
        self.known_orders = None if self.known_orders is None else set(self.known_orders)
        self.cancelled_orders = set(self.cancelled_orders)
        if self.enabled_functions is not None:
            self.enabled_functions = set(self.enabled_functions)


@dataclass
class Fault:
    mode: str
    remaining: int
    status: int = 500
    seconds: float = 30.0


@dataclass
class ShippingRow:
    shipping_detail_id: int
    delivery_company: str
    shipping_number: str
    shipping_date: str

    def as_json(self) -> dict[str, Any]:
        return {
            "shippingDetailId": self.shipping_detail_id,
            "deliveryCompany": self.delivery_company,
            "deliveryCompanyName": DELIVERY_COMPANIES.get(self.delivery_company, ""),
            "shippingNumber": self.shipping_number,
            "shippingDate": self.shipping_date,
        }


@dataclass
class Order:
    number: str
    baskets: dict[int, list[ShippingRow]]


@dataclass
class Job:
    """One accepted updateOrderShippingAsync request."""

    request_id: str
    models: list[dict[str, Any]]
    created: datetime
    processing_seconds: float
    results: list[dict[str, Any]] | None = None  # ResultShippingModelList once processed


def answer_json(status: int, payload: Any) -> Answer:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Answer(status, body, {"Content-Type": "application/json;charset=UTF-8"})


def platform_error(status: int, code: str, message: str) -> Answer:
    return answer_json(status, {"Results": {"errorCode": code, "message": message}})


def message(kind: str, code: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"messageType": kind, "messageCode": code, "message": text, **extra}


def format_error(code: str, text: str) -> Answer:
    """A whole-call refusal of the order API: 400 with its ERROR message (書式不正)."""
    return answer_json(400, {"MessageModelList": [message("ERROR", code, text)]})


def bad_gateway() -> Answer:
    body = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
        "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return Answer(502, body.encode(), {"Content-Type": "text/html"})


class RmsSandbox:
    """RMS's state and its three calls, without HTTP: a request in, an answer out."""

    def __init__(
        self,
        options: RmsOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.options = options or RmsOptions()
        self.calls: Counter[str] = Counter()
        self._clock = clock
        self._now = now
        self._release = threading.Event()
        self._lock = threading.RLock()
        self._orders: dict[str, Order] = {}
        self._jobs: dict[str, Job] = {}
        self._faults: defaultdict[str, list[Fault]] = defaultdict(list)
        self._basket_ids = itertools.count(10_000_001)
        self._detail_ids = itertools.count(15_001)
        self._tokens = 2.0
        self._stamp = clock()

    # control ------------------------------------------------------------------------------------

    def add_fault(
        self, operation: str, mode: str, *, count: int = 1, status: int = 500, seconds: float = 30.0
    ) -> None:
        if operation not in OPERATIONS:
            raise UsageError(
                i18n.Message(
                    "unknown operation {operation!r}: use one of {operations}",
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
        if count < 1 or not 400 <= status <= 599 or seconds < 0:
            raise UsageError(
                i18n.Message("a fault needs count >= 1, a status 400-599 and seconds >= 0")
            )
        with self._lock:
            self._faults[operation].append(Fault(mode, count, status, seconds))

    def set_options(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in fields(RmsOptions)}
        unknown = set(changes) - names
        if unknown:
            raise UsageError(
                i18n.Message(
                    "unknown RMS sandbox options: {names}", {"names": ", ".join(sorted(unknown))}
                )
            )
        with self._lock:
            self.options = replace(self.options, **changes)

    def add_order(
        self, number: str, baskets: int = 1, basket_ids: list[int] | None = None
    ) -> Order:
        """An order RMS knows, with its baskets (送付先): tests, the demo and the bench set them
        up (``basket_ids`` to choose the ids, as an import file's 送付先ID would give them)."""
        if not ORDER_NUMBER.fullmatch(number):
            raise UsageError(
                i18n.Message(
                    "{number!r} is not an RMS order number NNNNNN-YYYYMMDD-NNNNNNNNNN",
                    {"number": number},
                )
            )
        with self._lock:
            if basket_ids:
                if not all(_is_int(b) for b in basket_ids):
                    raise UsageError(i18n.Message("basket ids must be positive whole numbers"))
                order = Order(number, {int(b): [] for b in basket_ids})
                self._orders[number] = order
                return order
            return self._order(number, create=True, baskets=baskets) or Order(number, {})

    def orders(self) -> dict[str, dict[str, Any]]:
        """Every order with its baskets' shipment rows, after processing what is due."""
        with self._lock:
            self._process_due()
            return {number: _order_json(order) for number, order in self._orders.items()}

    def process_now(self) -> None:
        """Finish every accepted request now, whatever its processing time."""
        with self._lock:
            for job in self._jobs.values():
                job.processing_seconds = 0.0
            self._process_due()

    def release_hangs(self) -> None:
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()

    def banner_lines(self, url: str) -> list[str]:
        options = self.options
        return [
            "  " + _("RMS (楽天市場) endpoint: {url}").format(url=url + BASE_PATH),
            f"  RMS serviceSecret: {options.service_secret}  licenseKey: {options.license_key}",
        ]

    # dispatch -----------------------------------------------------------------------------------

    @staticmethod
    def claims(path: str) -> bool:
        return path.startswith(BASE_PATH) or path.startswith(CONTROL_PATH)

    def handle(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[str | None, Answer]:
        request = _Request(method, path, headers, body)
        if path.startswith(CONTROL_PATH):
            return path, self._control(request)
        operation = path[len(BASE_PATH) :].rstrip("/")
        if operation not in OPERATIONS or method != "POST":
            return None, platform_error(404, "ES02-01", "Not Found")
        return operation, self._operate(operation, request)

    def _operate(self, operation: str, request: HttpRequest) -> Answer:
        with self._lock:
            self.calls[operation] += 1
            fault = self._take_fault(operation)
        if fault and fault.mode == "fail":
            if fault.status == 502:
                return bad_gateway()
            return platform_error(fault.status, "ES03-01", "System Error")
        if fault and fault.mode == "throttle":
            return platform_error(429, "ES03-02", "Too Many Requests")
        if fault and fault.mode == "hang":
            with self._lock:
                released = self._release
            released.wait(fault.seconds)
        with self._lock:
            answer = self._authorize(request, operation) or self._throttle()
            if answer is None:
                answer = getattr(self, "_op_" + operation)(request)
        if fault and fault.mode == "lose_answer":
            answer.drop = True
        elif fault and fault.mode == "bad_json":
            answer.body = answer.body[: len(answer.body) // 2] or b"{"
        return answer

    def _take_fault(self, operation: str) -> Fault | None:
        queue = self._faults[operation]
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.pop(0)
        return fault

    def _authorize(self, request: HttpRequest, operation: str) -> Answer | None:
        options = self.options
        raw = f"{options.service_secret}:{options.license_key}".encode()
        expected = "ESA " + base64.b64encode(raw).decode("ascii")
        given = request.headers.get("Authorization") or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return platform_error(401, "ES01-01", "Un-Authorised")
        enabled = options.enabled_functions
        if enabled is not None and f"rpay.order.{operation}" not in enabled:
            return platform_error(403, "ES04-01", "Unauthorized for this function")
        content_type = (request.headers.get("Content-Type") or "").lower()
        if not content_type.startswith("application/json"):
            return format_error(f"{_ASYNC_CODE}_ERROR_001", "Content-Typeが不正です")
        return None

    def _throttle(self) -> Answer | None:
        now = self._clock()
        self._tokens = min(2.0, self._tokens + (now - self._stamp))
        self._stamp = now
        if not self.options.enforce_rate_limit or self._tokens >= 1:
            self._tokens = max(0.0, self._tokens - 1)
            return None
        return platform_error(429, "ES03-02", "Too Many Requests")

    # getOrder -----------------------------------------------------------------------------------

    def _op_getOrder(self, request: HttpRequest) -> Answer:
        body = _json(request.body)
        code = f"{_GET_ORDER_CODE}_ERROR"
        if not isinstance(body, dict) or not isinstance(body.get("orderNumberList"), list):
            return format_error(f"{code}_001", "orderNumberListは必須です")
        numbers = body["orderNumberList"]
        if not 1 <= len(numbers) <= MAX_ORDERS_PER_REQUEST:
            return format_error(
                f"{code}_002", "orderNumberListは1件以上100件以下で指定してください"
            )
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            return format_error(f"{code}_003", "versionが不正です")
        self._process_due()
        found, messages = [], []
        for number in numbers:
            order = self._order(number) if isinstance(number, str) else None
            if order is None:
                messages.append(
                    message("ERROR", f"{code}_101", "注文が存在しません", orderNumber=str(number))
                )
                continue
            found.append(_order_json(order, with_detail_ids=version >= GET_ORDER_VERSION))
        if found:
            messages.insert(
                0, message("INFO", f"{_GET_ORDER_CODE}_INFO_101", "受注情報取得に成功しました。")
            )
        return answer_json(
            200, {"MessageModelList": messages, "version": version, "OrderModelList": found}
        )

    # updateOrderShippingAsync -------------------------------------------------------------------

    def _op_updateOrderShippingAsync(self, request: HttpRequest) -> Answer:
        body = _json(request.body)
        models = body.get("OrderShippingModelList") if isinstance(body, dict) else None
        error = f"{_ASYNC_CODE}_ERROR"
        if not isinstance(models, list) or not models:
            return format_error(
                f"{error}_011", "リクエストの書式が不正です。(OrderShippingModelList)"
            )
        if len(models) > MAX_ORDERS_PER_REQUEST:
            return format_error(
                f"{error}_012", "OrderShippingModelListは100件以下で指定してください"
            )
        for index, model in enumerate(models, 1):
            problem = _model_problem(model)
            if problem:
                return format_error(
                    f"{error}_011", f"リクエストの書式が不正です。({index}件目: {problem})"
                )
        job = Job(
            request_id=str(uuid.uuid4()),
            models=json.loads(json.dumps(models)),
            created=self._now(),
            processing_seconds=self.options.processing_seconds,
        )
        self._jobs[job.request_id] = job
        answer = {
            "MessageModelList": [
                message("INFO", f"{_ASYNC_CODE}_INFO_101", "非同期処理を受け付けました。")
            ],
            "requestId": job.request_id,
        }
        return answer_json(200, answer)

    # getResultUpdateOrderShippingAsync ----------------------------------------------------------

    def _op_getResultUpdateOrderShippingAsync(self, request: HttpRequest) -> Answer:
        body = _json(request.body)
        request_id = body.get("requestId") if isinstance(body, dict) else None
        if not isinstance(request_id, str) or not request_id:
            return format_error(f"{_RESULT_CODE}_ERROR_001", "requestIdは必須です")
        self._process_due()
        job = self._jobs.get(request_id)
        if job is None or job.results is None or self._now() - job.created > RESULT_RETENTION:
            none = message("INFO", f"{_RESULT_CODE}_INFO_101", NO_RESULT_TEXT)
            return answer_json(200, {"MessageModelList": [none]})
        answer = {
            "MessageModelList": [
                message("INFO", f"{_RESULT_CODE}_INFO_102", "処理結果を取得しました")
            ],
            "ResultShippingModelList": job.results,
        }
        return answer_json(200, answer)

    # processing ---------------------------------------------------------------------------------

    def _process_due(self) -> None:
        now = self._now()
        for job in self._jobs.values():
            if (
                job.results is None
                and (now - job.created).total_seconds() >= job.processing_seconds
            ):
                job.results = self._apply(job)

    def _apply(self, job: Job) -> list[dict[str, Any]]:
        """Write a request's rows, order by order, as RMS does once it gets to it."""
        results = []
        data_number = 0
        for model in job.models:
            number = model["orderNumber"]
            messages = []
            rows = [(b, r) for b in model["BasketidModelList"] for r in b["ShippingModelList"]]
            numbers = list(range(data_number + 1, data_number + len(rows) + 1))
            data_number += len(rows)
            refusal = self._refusal(number, model)
            if refusal:
                code, text = refusal
                messages = [message("ERROR", code, text, dataNumber=n) for n in numbers]
            else:
                order = self._order(number)
                assert order is not None
                for n, (basket, row) in zip(numbers, rows, strict=True):
                    messages.append(self._write(order.baskets[basket["basketId"]], row, n))
            results.append({"orderNumber": number, "MessageModelList": messages})
        return results

    def _refusal(self, number: str, model: dict[str, Any]) -> tuple[str, str] | None:
        code = f"{_UPDATE_CODE}_ERROR"
        order = self._order(number)
        if order is None:
            return f"{code}_101", "注文が存在しません"
        if number in self.options.cancelled_orders:
            return f"{code}_102", "キャンセル済みの注文です"
        for basket in model["BasketidModelList"]:
            rows = order.baskets.get(basket["basketId"])
            if rows is None:
                return f"{code}_103", f"送付先ID {basket['basketId']} はこの注文にありません"
            known = {r.shipping_detail_id for r in rows}
            new = 0
            for row in basket["ShippingModelList"]:
                detail = row.get("shippingDetailId")
                if detail is None:
                    new += 1
                elif detail not in known:
                    return f"{code}_104", f"発送明細ID {detail} は存在しません"
            if len(rows) + new > MAX_ROWS_PER_BASKET:
                return f"{code}_105", "発送情報は1送付先につき20件までです"
        return None

    def _write(self, rows: list[ShippingRow], sent: dict[str, Any], data_number: int) -> dict:
        values = (sent["deliveryCompany"], sent["shippingNumber"], sent["shippingDate"])
        detail = sent.get("shippingDetailId")
        if detail is not None:
            row = next(r for r in rows if r.shipping_detail_id == detail)
            row.delivery_company, row.shipping_number, row.shipping_date = values
            return message(
                "INFO", f"{_UPDATE_CODE}_INFO_102", "発送情報を更新しました",
                dataNumber=data_number, shippingDetailId=detail,
            )  # fmt: skip
        row = ShippingRow(next(self._detail_ids), *values)
        rows.append(row)
        kind, code, text = "INFO", f"{_UPDATE_CODE}_INFO_101", "発送情報を登録しました"
        if date.fromisoformat(row.shipping_date) > self._now().date() + timedelta(days=30):
            kind, code = "WARNING", f"{_UPDATE_CODE}_WARNING_101"
            text = "発送日が30日以上先の日付です"
        return message(
            kind, code, text, dataNumber=data_number, shippingDetailId=row.shipping_detail_id
        )

    def _order(self, number: str, *, create: bool = False, baskets: int = 1) -> Order | None:
        order = self._orders.get(number)
        if order is not None:
            return order
        known = self.options.known_orders
        if not ORDER_NUMBER.fullmatch(number):
            return None
        if not create and known is not None and number not in known:
            return None
        order = Order(number, {next(self._basket_ids): [] for _ in range(max(1, baskets))})
        self._orders[number] = order
        return order

    # control over HTTP --------------------------------------------------------------------------

    def _control(self, request: HttpRequest) -> Answer:
        name = request.path[len(CONTROL_PATH) :].strip("/")
        body = _json(request.body) if request.body else {}
        try:
            if request.method == "GET" and name == "orders":
                return answer_json(200, self.orders())
            if request.method == "GET" and name == "calls":
                with self._lock:
                    return answer_json(200, dict(self.calls))
            if request.method != "POST" or not isinstance(body, dict):
                return answer_json(400, {"error": "POST a JSON object"})
            if name == "faults":
                self.add_fault(
                    str(body.get("operation", "")),
                    str(body.get("mode", "")),
                    count=int(body.get("count", 1)),
                    status=int(body.get("status", 500)),
                    seconds=float(body.get("seconds", 30.0)),
                )
            elif name == "options":
                self.set_options({k: set(v) if isinstance(v, list) else v for k, v in body.items()})
            elif name == "orders":
                for entry in body.get("orders") or []:
                    self.add_order(
                        str(entry.get("orderNumber", "")),
                        basket_ids=[int(b) for b in entry.get("basketIds") or []] or None,
                    )
            elif name == "process":
                self.process_now()
            else:
                return answer_json(404, {"error": f"no control {name!r}"})
        except (UsageError, TypeError, ValueError) as exc:
            return answer_json(400, {"error": error_text(exc)})
        return answer_json(200, {"ok": True})


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _model_problem(model: Any) -> str | None:
    """Why one OrderShippingModel is malformed (RMS's 書式不正), or None."""
    if not isinstance(model, dict) or not isinstance(model.get("orderNumber"), str):
        return "orderNumber"
    if not ORDER_NUMBER.fullmatch(model["orderNumber"]):
        return f"orderNumber {model['orderNumber']}"
    baskets = model.get("BasketidModelList")
    if not isinstance(baskets, list) or not baskets:
        return "BasketidModelList"
    for basket in baskets:
        if not isinstance(basket, dict) or not _is_int(basket.get("basketId")):
            return "basketId"
        rows = basket.get("ShippingModelList")
        if not isinstance(rows, list) or not rows or len(rows) > MAX_ROWS_PER_BASKET:
            return "ShippingModelList"
        for row in rows:
            problem = _row_problem(row)
            if problem:
                return problem
    return None


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return "ShippingModel"
    if "shippingDetailId" in row and not _is_int(row["shippingDetailId"]):
        return "shippingDetailId"
    if row.get("deliveryCompany") not in DELIVERY_COMPANIES:
        return f"deliveryCompany {row.get('deliveryCompany')!r}"
    number = row.get("shippingNumber")
    if not isinstance(number, str) or len(number) > MAX_VALUE_CHARS:
        return "shippingNumber"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in number):
        return "shippingNumber"
    shipped = row.get("shippingDate")
    if not isinstance(shipped, str) or not _DATE.fullmatch(shipped):
        return "shippingDate"
    try:
        date.fromisoformat(shipped)
    except ValueError:
        return "shippingDate"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _order_json(order: Order, *, with_detail_ids: bool = True) -> dict[str, Any]:
    packages = []
    for basket_id, rows in order.baskets.items():
        shipping = [r.as_json() for r in rows]
        if not with_detail_ids:
            for row in shipping:
                row.pop("shippingDetailId")
        packages.append({"basketId": basket_id, "ShippingModelList": shipping})
    return {"orderNumber": order.number, "orderProgress": 300, "PackageModelList": packages}
