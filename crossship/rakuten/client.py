"""The one module that knows RMS HTTP: the ESA header, the order API's three calls, its errors.

Every call has a timeout and waits its turn on a pacer (at most one RMS call a second per store,
on a monotonic clock). getOrder and getResultUpdateOrderShippingAsync change nothing, so they are
retried on 429, 5xx and network failures with exponential backoff and full jitter;
updateOrderShippingAsync is retried only on 429 (RMS refused it before acting). Every failure is a
``RakutenError`` whose ``outcome`` says what is known of the call's effect at RMS, and whose
message never holds the service secret or the license key.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import requests

from crossship import __version__
from crossship.errors import MallError
from crossship.i18n import Message
from crossship.netfail import failed_before_sending as _failed_before_sending
from crossship.netfail import reason as _reason
from crossship.rakuten.codes import (
    DEFAULT_ENDPOINT,
    GET_ORDER_VERSION,
    MAX_ORDERS_PER_REQUEST,
    RMS_API_SCREEN,
    api_function,
)
from crossship.secrets import Scrubbable, scrub
from crossship.urls import check_url, display_url

GET_ORDER = "getOrder"
UPDATE = "updateOrderShippingAsync"
GET_RESULT = "getResultUpdateOrderShippingAsync"
OPERATIONS = (GET_ORDER, UPDATE, GET_RESULT)
IDEMPOTENT = frozenset({GET_ORDER, GET_RESULT})
AUTH_CODES = frozenset({"ES01-01"})
NOT_ENABLED_CODES = frozenset({"ES04-01"})
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
SNIPPET_CHARS = 200

log = logging.getLogger("crossship.rakuten")


class RakutenError(MallError):
    """An RMS call failed (see ``MallError``: ``outcome`` ``not_sent`` / ``rejected`` /
    ``unknown``; ``halt`` stops this store's run: authentication, an expired license key)."""


@dataclass(frozen=True)
class Credentials:
    """A store's RMS keys. Both are secrets: never shown, logged or stored."""

    service_secret: str
    license_key: str

    def __repr__(self) -> str:
        return "Credentials(service_secret=***, license_key=***)"

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        return (self.service_secret, self.license_key, self.authorization())

    def authorization(self) -> str:
        raw = f"{self.service_secret}:{self.license_key}".encode()
        return "ESA " + base64.b64encode(raw).decode("ascii")


class Pace(Protocol):
    def wait(self) -> None: ...


class Pacer:
    """At most one call per ``interval`` seconds, on a monotonic clock: a faked or jumping wall
    clock neither stalls nor rushes it."""

    def __init__(
        self,
        interval: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = interval
        self.monotonic = monotonic
        self.sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        if self._last is not None:
            gap = self.interval - (self.monotonic() - self._last)
            if gap > 0:
                self.sleep(gap)
        self._last = self.monotonic()


def license_key_help(store: str) -> Message:
    """What to do when RMS refuses the keys or the license key has expired."""
    variable = f"CROSSSHIP_{_env_store(store)}_RMS_LICENSE_KEY"
    return Message(
        "the licenseKey expires every 90 days: issue a new one in {screen}, set it as {variable} "
        "(or license_key under [stores.{store}] in credentials.toml) and record its end with "
        "`crossship config store set {store} --license-expires YYYY-MM-DD`",
        {
            "screen": RMS_API_SCREEN,
            "variable": variable,
            "store": store,
        },
    )


def _env_store(store: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in store.upper())


@dataclass
class _Failure:
    outcome: str
    message: str | Message
    retryable: bool
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    halt: bool = False


# network failures that happen before any byte of the request leaves this machine
_NOT_NETWORK = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


class RmsClient:
    """RMS order API calls for one store, paced to one a second."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        store: str = "STORE",
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_attempts: int = 5,
        pace: Pace | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.credentials = credentials
        self.store = store
        base = check_url(endpoint, "endpoint")
        self.endpoint = base if base.endswith("/") else base + "/"
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.pace: Pace = pace if pace is not None else Pacer(sleep=sleep)
        self.sleep = sleep
        self.rand = rand
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self.calls: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        return f"RmsClient(endpoint={self.endpoint!r})"

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, operation: str) -> str:
        """The operation's URL: the base plus its name and RMS's trailing slash."""
        return f"{self.endpoint}{operation}/"

    # ---- the three calls ------------------------------------------------------------------

    def get_order(self, order_numbers: Sequence[str]) -> list[dict[str, Any]]:
        """``OrderModelList`` of at most 100 orders (version 7: basketId, shippingDetailId).

        Orders RMS does not know are simply absent from the list.
        """
        numbers = list(order_numbers)
        if not 1 <= len(numbers) <= MAX_ORDERS_PER_REQUEST:
            raise ValueError(f"getOrder takes 1 to {MAX_ORDERS_PER_REQUEST} order numbers")
        payload = {"orderNumberList": numbers, "version": GET_ORDER_VERSION}
        body = self._call(GET_ORDER, json.dumps(payload).encode())
        orders = body.get("OrderModelList")
        if orders is None:
            if self._errors(body) or isinstance(body.get("MessageModelList"), list):
                return []  # RMS found none of them and said so in its messages
            raise self._malformed(GET_ORDER, "not_sent", Message("it lacks OrderModelList"))
        if not isinstance(orders, list):
            raise self._malformed(GET_ORDER, "not_sent", Message("OrderModelList is not a list"))
        for order in orders:
            problem = _order_problem(order)
            if problem:
                raise self._malformed(GET_ORDER, "not_sent", problem)
        return orders

    def update_order_shipping_async(self, body: bytes) -> str:
        """Send a recorded request body (≤100 orders); returns RMS's requestId.

        Never repeated after it may have reached RMS: only a 429 (refused before acting) is.
        """
        answer = self._call(UPDATE, body)
        request_id = answer.get("requestId")
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            request_id = str(request_id)
        if isinstance(request_id, str) and request_id.strip():
            return request_id.strip()
        errors = self._errors(answer)
        if errors:
            code, text = errors
            raise self._error(
                UPDATE,
                "rejected",
                Message("RMS refused the request: {error}", {"error": text}),
                status=200,
                code=code,
            )
        raise self._malformed(
            UPDATE, "unknown", Message("it holds neither a requestId nor an ERROR")
        )

    def get_result(self, request_id: str) -> dict[str, Any]:
        """The answer of getResultUpdateOrderShippingAsync, checked for shape, unread."""
        body = self._call(GET_RESULT, json.dumps({"requestId": request_id}).encode())
        results = body.get("ResultShippingModelList")
        if results is None:
            if isinstance(body.get("MessageModelList"), list) and body["MessageModelList"]:
                return body
            raise self._malformed(
                GET_RESULT, "not_sent", Message("it lacks ResultShippingModelList")
            )
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise self._malformed(
                GET_RESULT, "not_sent", Message("ResultShippingModelList is not a list")
            )
        return body

    # ---- HTTP -----------------------------------------------------------------------------

    def _call(self, op: str, body: bytes) -> dict[str, Any]:
        """One operation with its retries; the 2xx answer's JSON object."""
        attempt = 1
        while True:
            try:
                response = self._attempt(op, body, attempt)
            except requests.RequestException as exc:
                failure = self._network_failure(op, exc)
            else:
                refused = self._http_failure(op, response)
                if refused is None:
                    return self._json_object(op, response)
                failure = refused
            delay = self._delay(attempt, failure)
            if delay is None:
                raise self._error(
                    op,
                    failure.outcome,
                    failure.message,
                    status=failure.status,
                    code=failure.code,
                    halt=failure.halt,
                )
            log.debug("%s: retrying in %.1f s", op, delay)
            self.sleep(delay)
            attempt += 1

    def _attempt(self, op: str, body: bytes, attempt: int) -> requests.Response:
        headers = {
            "Authorization": self.credentials.authorization(),
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": f"crossship/{__version__}",
        }
        url = self.url(op)
        self.pace.wait()
        self.calls[op] += 1
        try:
            # redirects are refused: requests would carry the Authorization header along
            response = self.session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            log.debug("%s %s failed: %s (attempt %d)", op, display_url(url), _reason(exc), attempt)
            raise
        log.debug("%s %s -> %d (attempt %d)", op, display_url(url), response.status_code, attempt)
        return response

    def _delay(self, attempt: int, failure: _Failure) -> float | None:
        if not failure.retryable or attempt >= self.max_attempts:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= BACKOFF_CAP else None
        return self.rand() * min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))

    def _network_failure(self, op: str, exc: requests.RequestException) -> _Failure:
        host = urlsplit(self.endpoint).hostname or "?"
        args = {"host": host, "reason": _reason(exc)}
        if isinstance(exc, _NOT_NETWORK):
            message = Message("the request could not be made ({reason})", args)
            return _Failure("not_sent", message, False)
        if _failed_before_sending(exc):
            message = Message("could not reach {host} ({reason}); nothing was sent", args)
            return _Failure("not_sent", message, op in IDEMPOTENT)
        if op in IDEMPOTENT:
            message = Message("the connection to {host} failed ({reason})", args)
            return _Failure("not_sent", message, True)
        message = Message(
            "the connection to {host} failed after the request was sent ({reason}); "
            "whether RMS received it is unknown",
            args,
        )
        return _Failure("unknown", message, False)

    def _http_failure(self, op: str, response: requests.Response) -> _Failure | None:
        """What a non-2xx answer, or a 2xx answer carrying an RMS platform error, means."""
        status = response.status_code
        body = _json_or_none(response.content)
        code, text = _platform_error(body)
        if 200 <= status < 300 and code is None:
            return None
        if code is None:
            messages = self._errors(body) if isinstance(body, dict) else None
            if messages:
                code, text = messages
        # RMS's own code and words stay as RMS wrote them: arguments of our sentence
        described = (
            Message(
                "RMS answered {status} {code}: {text}",
                {"status": status, "code": code, "text": text},
            )
            if code
            else Message(
                "RMS answered {status} with {body}",
                {"status": status, "body": _describe_body(response)},
            )
        )
        if status == 401 or code in AUTH_CODES:
            return _Failure(
                "not_sent",
                Message(
                    "{answer}: RMS refused the service secret and license key; {help}",
                    {"answer": described, "help": license_key_help(self.store)},
                ),
                False,
                status,
                code or "ES01-01",
                halt=True,
            )
        if code in NOT_ENABLED_CODES:
            return _Failure(
                "rejected",
                Message(
                    "{answer}: the API function {function} is not enabled for this license key: "
                    "enable it in {screen} (API利用設定)",
                    {"answer": described, "function": api_function(op), "screen": RMS_API_SCREEN},
                ),
                False,
                status,
                code,
            )
        if status == 429:
            # throttled: RMS refused the call before acting on it
            return _Failure(
                "not_sent", described, True, status, code, _retry_after(response.headers)
            )
        if status >= 500:
            if op in IDEMPOTENT:
                return _Failure("not_sent", described, True, status, code)
            return _Failure(
                "unknown",
                Message(
                    "{answer}; whether RMS registered the shipments is unknown",
                    {"answer": described},
                ),
                False,
                status,
                code,
            )
        return _Failure("rejected", described, False, status, code)

    def _json_object(self, op: str, response: requests.Response) -> dict[str, Any]:
        # an updateOrderShippingAsync answer we cannot read may still mean RMS took the request
        outcome = "unknown" if op == UPDATE else "not_sent"
        body = _json_or_none(response.content)
        if body is None:
            raise self._malformed(
                op,
                outcome,
                Message(
                    "it is not JSON ({status} with {body})",
                    {"status": response.status_code, "body": _describe_body(response)},
                ),
                status=response.status_code,
            )
        if not isinstance(body, dict):
            raise self._malformed(op, outcome, Message("it is JSON but not an object"))
        return body

    def _errors(self, body: dict[str, Any]) -> tuple[str | None, str] | None:
        """The ERROR messages of an order-API answer: (first code, all as one text)."""
        messages = body.get("MessageModelList")
        if not isinstance(messages, list):
            return None
        errors = [
            m for m in messages if isinstance(m, dict) and str(m.get("messageType")) == "ERROR"
        ]
        if not errors:
            return None
        text = "; ".join(f"{m.get('messageCode')}: {_words(m.get('message'))}" for m in errors)
        code = errors[0].get("messageCode")
        return (str(code) if code else None), text

    def _malformed(
        self, op: str, outcome: str, why: Message, *, status: int | None = None
    ) -> RakutenError:
        if outcome == "unknown":
            message = Message(
                "RMS's answer cannot be read: {why}; whether RMS registered the shipments is "
                "unknown: it is checked with getOrder before anything is sent again",
                {"why": why},
            )
        else:
            message = Message("RMS's answer cannot be read: {why}", {"why": why})
        return self._error(op, outcome, message, status=status)

    def _error(
        self,
        op: str,
        outcome: str,
        message: str | Message,
        *,
        status: int | None = None,
        code: str | None = None,
        halt: bool = False,
    ) -> RakutenError:
        """The error of a call, named by the operation, its message kept as a Message (the
        run's mail shows it in the mail's language) with every secret scrubbed out of it."""
        kept: str | Message
        if isinstance(message, str):  # RMS's own words only
            kept = self._scrub(f"{op}: {message}")
        else:
            kept = Message("{op}: {message}", {"op": op, "message": self._scrub(message)})
        return RakutenError(
            kept, outcome=outcome, halt=halt, status=status, code=code, operation=op
        )

    def _scrub(self, text: Scrubbable) -> Scrubbable:
        """``text`` (ours or the mall's) without any secret an answer might have echoed back."""
        return scrub(text, self.credentials.secrets())


# ---- helpers without state -------------------------------------------------------------------


def _order_problem(order: object) -> Message | None:
    """Why one OrderModelList entry is not what getOrder version 7 gives, or None."""
    if not isinstance(order, dict) or not isinstance(order.get("orderNumber"), str):
        return Message("an order without orderNumber")
    which = {"order": order["orderNumber"]}
    packages = order.get("PackageModelList") or []
    if not isinstance(packages, list):
        return Message("order {order}: PackageModelList is not a list", which)
    for package in packages:
        if not isinstance(package, dict) or not _is_id(package.get("basketId")):
            return Message("order {order}: a package without a basketId", which)
        rows = package.get("ShippingModelList") or []
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and _is_id(r.get("shippingDetailId")) for r in rows
        ):
            return Message("order {order}: a shipment row without shippingDetailId", which)
    return None


def _is_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.isdigit()


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _platform_error(body: Any) -> tuple[str | None, str]:
    """``{"Results": {"errorCode": "ES04-01", "message": ...}}``: RMS's gateway errors."""
    if not isinstance(body, dict):
        return None, ""
    results = body.get("Results") or body.get("result")
    if isinstance(results, dict) and isinstance(results.get("errorCode"), str):
        return results["errorCode"], _words(results.get("message"))
    return None, ""


def _words(value: object) -> str:
    return " ".join(str(value or "").split())[: SNIPPET_CHARS * 2]


def _describe_body(response: requests.Response) -> Message | str:
    """What an answer's body was, for a message: empty, or its kind and a snippet."""
    content = response.content
    if not content.strip():
        return Message("an empty body")
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    snippet = repr(_snippet(content))
    if kind:
        return f"{kind}: {snippet}"  # the answer's own Content-Type and words
    return Message("a body: {snippet}", {"snippet": snippet})


def _snippet(content: bytes) -> str:
    text = content[: SNIPPET_CHARS * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:SNIPPET_CHARS]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None
