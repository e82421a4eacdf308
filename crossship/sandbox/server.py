"""A local stand-in for what crossship uses of Amazon: the LWA token exchange, the Feeds API
2021-06-30 and the presigned S3 upload and download, with feeds processed for real.

Amazon's own SP-API sandbox answers canned responses and never finishes a feed; this one follows the
published Feeds API model (``feeds_2021-06-30.json``) (paths, status codes, JSON shapes,
rate limits) and can be told to misbehave (faults) from the same process or over HTTP under
``/_sandbox/``.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import gzip
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from crossship import i18n
from crossship.errors import NotFound, UsageError
from crossship.i18n import _
from crossship.sandbox import processing
from crossship.sandbox.control import error_text
from crossship.sandbox.rakuten import RmsSandbox
from crossship.sandbox.yahoo import YahooSandbox

FEEDS_PATH = "/feeds/2021-06-30"
TOKEN_PATH = "/auth/o2/token"
OPERATIONS = (
    "token",
    "createFeedDocument",
    "upload",
    "createFeed",
    "getFeeds",
    "getFeed",
    "getFeedDocument",
    "download",
    "cancelFeed",
)
FAULT_MODES = (
    "fail",
    "throttle",
    "hang",
    "lose_answer",
    "bad_json",
    "truncated_gzip",
    "wrong_charset",
)
# fault modes that only make sense for some operations
FAULT_SCOPE = {
    "truncated_gzip": {"download"},
    "wrong_charset": {"download"},
    "bad_json": {
        "token",
        "createFeedDocument",
        "createFeed",
        "getFeeds",
        "getFeed",
        "getFeedDocument",
    },
}
# (rate per second, burst) of each SP-API operation, from the model's usage plans
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeeds": (0.0222, 10),
    "getFeed": (2.0, 15),
    "cancelFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
}
STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
FINISHED = frozenset({"CANCELLED", "DONE", "FATAL"})
URL_LIFETIME = timedelta(minutes=5)
TOKEN_LIFETIME = 3600
FEED_RETENTION = timedelta(days=90)
MAX_BODY = 64 * 1024 * 1024
AMZ_DATE = "%Y%m%dT%H%M%SZ"

_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("POST", TOKEN_PATH, "token"),
        ("POST", FEEDS_PATH + "/documents", "createFeedDocument"),
        ("GET", FEEDS_PATH + "/documents/(?P<id>[^/]+)", "getFeedDocument"),
        ("POST", FEEDS_PATH + "/feeds", "createFeed"),
        ("GET", FEEDS_PATH + "/feeds", "getFeeds"),
        ("GET", FEEDS_PATH + "/feeds/(?P<id>[^/]+)", "getFeed"),
        ("DELETE", FEEDS_PATH + "/feeds/(?P<id>[^/]+)", "cancelFeed"),
        ("PUT", "/_s3/upload/(?P<id>[^/]+)", "upload"),
        ("GET", "/_s3/download/(?P<id>[^/]+)", "download"),
        ("POST", "/_sandbox/faults", "_faults"),
        ("POST", "/_sandbox/release", "_release"),
        ("POST", "/_sandbox/feeds/(?P<id>[^/]+)/end", "_end"),
        ("GET", "/_sandbox/feeds", "_feeds"),
        ("GET", "/_sandbox/calls", "_calls"),
        ("POST", "/_sandbox/known-orders", "_known_orders"),
        ("POST", "/_sandbox/options", "_options"),
    )
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SandboxOptions:
    report_language: str = "en"  # "en" or "ja" (Japanese headings and error types)
    report_encoding: str = "utf-8"  # "utf-8" or "cp932" (answered as charset=windows-31j)
    gzip_reports: bool = False
    processing_seconds: float = 0.0  # IN_QUEUE -> IN_PROGRESS after half -> DONE after all
    latency_ms: int = 0  # every mall answer waits this long (in its own thread), as a network would
    enforce_rate_limits: bool = True
    known_order_ids: set[str] | None = None  # None: every well-formed order id is known
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    refresh_token: str = "Atzr|sandbox"

    def __post_init__(self) -> None:
        if self.report_language not in processing.LANGUAGES:
            raise UsageError(
                i18n.Message(
                    "report language must be one of {languages}",
                    {"languages": ", ".join(processing.LANGUAGES)},
                )
            )
        encoding = self.report_encoding.lower()
        if processing.CHARSETS.get(encoding) not in processing.REPORT_CHARSETS:
            raise UsageError(i18n.Message("report encoding must be utf-8 or cp932"))
        self.report_encoding = processing.CHARSETS[encoding]
        if self.processing_seconds < 0:
            raise UsageError(i18n.Message("processing seconds cannot be negative"))
        if self.latency_ms < 0:
            raise UsageError(i18n.Message("latency cannot be negative"))
        if self.known_order_ids is not None:
            self.known_order_ids = set(self.known_order_ids)


# --- HTTP values -------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    host: str  # the Host the client used: presigned URLs point back at it
    params: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # the fault mode the operation itself must play, if any
    seller: str = ""  # whose access token the request carries (see _seller_of)

    def first(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The JSON body, or None when it is not JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def error_response(status: int, code: str, message: str, details: str = "") -> Response:
    """An SP-API ErrorList body."""
    return json_response(
        status, {"errors": [{"code": code, "message": message, "details": details}]}
    )


def invalid_input(details: str, message: str = "Invalid input") -> Response:
    return error_response(400, "InvalidInput", message, details)


def quota_exceeded() -> Response:
    return error_response(
        429, "QuotaExceeded", "You exceeded your quota for the requested resource."
    )


def unauthorized(details: str) -> Response:
    return error_response(403, "Unauthorized", "Access to requested resource is denied.", details)


def s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return Response(status, body.encode(), {"Content-Type": "application/xml"})


def lwa_error(status: int, error: str, description: str) -> Response:
    return json_response(
        status,
        {"error_description": description, "error": error},
        {"Content-Type": "application/json;charset=UTF-8"},
    )


def bad_gateway() -> Response:
    # what a load balancer in front of the API answers: HTML, not JSON
    body = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
        "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(502, body.encode(), {"Content-Type": "text/html"})


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as SP-API writes times."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- state -------------------------------------------------------------------------------------


@dataclass
class Document:
    id: str
    content_type: str
    data: bytes | None = None  # uploaded bytes (input documents)
    report: str | None = None  # report text (result documents)
    encoding: str = "utf-8"
    compressed: bool = False

    def payload(self, encoding: str | None = None) -> bytes:
        """The bytes a download answers; ``encoding`` re-encodes a report (wrong_charset)."""
        if self.report is None:
            return self.data or b""
        return processing.encode_report(self.report, encoding or self.encoding, self.compressed)


@dataclass
class Feed:
    id: str
    seq: int  # creation order: newest first in getFeeds, cursor of its pages
    feed_type: str
    marketplace_ids: list[str]
    feed_options: dict[str, str]
    document_id: str
    created: datetime
    processing_seconds: float
    status: str = "IN_QUEUE"
    started: datetime | None = None
    ended: datetime | None = None
    result_document_id: str | None = None
    seller: str = ""  # only this seller's token sees the feed

    def as_json(self) -> dict[str, Any]:
        """The model's Feed object."""
        feed: dict[str, Any] = {
            "feedId": self.id,
            "feedType": self.feed_type,
            "marketplaceIds": self.marketplace_ids,
            "createdTime": iso(self.created),
            "processingStatus": self.status,
        }
        if self.started:
            feed["processingStartTime"] = iso(self.started)
        if self.ended:
            feed["processingEndTime"] = iso(self.ended)
        if self.result_document_id:
            feed["resultFeedDocumentId"] = self.result_document_id
        return feed


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class Fault:
    mode: str
    remaining: int
    status: int = 500
    seconds: float = 30.0


@dataclass(frozen=True)
class FeedFilter:
    """getFeeds' filters, resolved once so that every page of one listing sees the same set."""

    feed_types: frozenset[str]
    marketplace_ids: frozenset[str] | None
    statuses: frozenset[str] | None
    since: datetime
    until: datetime
    page_size: int
    seller: str = ""

    def matches(self, feed: Feed) -> bool:
        return (
            feed.seller == self.seller
            and feed.feed_type in self.feed_types
            and (
                self.marketplace_ids is None
                or bool(self.marketplace_ids & set(feed.marketplace_ids))
            )
            and (self.statuses is None or feed.status in self.statuses)
            and self.since <= feed.created <= self.until
        )


class Sandbox:
    """The sandbox's state and operations, without HTTP: requests in, responses out."""

    def __init__(
        self,
        options: SandboxOptions,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ):
        self.options = options
        self.calls: Counter[str] = Counter()
        self._clock = clock
        self._now = now
        self._lock = threading.RLock()
        self._tokens: dict[str, datetime] = {}
        self._sellers: dict[str, str] = {}  # access token -> seller
        self._documents: dict[str, Document] = {}
        self._feeds: dict[str, Feed] = {}
        self._faults: defaultdict[str, list[Fault]] = defaultdict(list)
        self._pages: dict[str, tuple[FeedFilter, int]] = {}
        self._buckets: dict[str, dict[str, TokenBucket]] = {}  # per seller, filled on first use
        self._release = threading.Event()
        self._signing_key = secrets.token_bytes(32)
        self._seq = itertools.count(1)
        # numeric ids like Amazon's, starting anywhere so two sandbox runs rarely share one
        self._feed_ids = itertools.count(50_000_000_000 + secrets.randbelow(10**9))
        # the other malls on the same port, each owning its own paths
        self.yahoo = YahooSandbox(now=now, monotonic=clock)
        self.rakuten = RmsSandbox(clock=clock, now=now)
        self.parts: list[YahooSandbox | RmsSandbox] = [self.yahoo, self.rakuten]

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
        if operation not in FAULT_SCOPE.get(mode, OPERATIONS):
            raise UsageError(
                i18n.Message(
                    "fault mode {mode} does not apply to {operation}",
                    {"mode": mode, "operation": operation},
                )
            )
        if count < 1 or not 400 <= status <= 599 or seconds < 0:
            raise UsageError(
                i18n.Message("a fault needs count >= 1, a status 400-599 and seconds >= 0")
            )
        with self._lock:
            self._faults[operation].append(Fault(mode, count, status, seconds))

    def release_hangs(self) -> None:
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()
        for part in self.parts:
            part.release_hangs()

    def end_feed(self, feed_id: str, status: str) -> None:
        """Force a feed to FATAL (with a report holding one Fatal row) or CANCELLED."""
        if status not in ("FATAL", "CANCELLED"):
            raise UsageError(i18n.Message("a feed can be ended only as FATAL or CANCELLED"))
        with self._lock:
            feed = self._feeds.get(feed_id)
            if feed is None:
                raise NotFound(
                    i18n.Message("no feed {feed_id} in the sandbox", {"feed_id": feed_id})
                )
            now = self._now()
            feed.status, feed.ended, feed.result_document_id = status, now, None
            if status == "FATAL":
                feed.started = feed.started or now
                language = self.options.report_language
                self._attach_report(feed, processing.fatal_result("aborted", language))

    def feeds(self) -> list[dict[str, Any]]:
        """Every feed with its uploaded bytes and report, in creation order (for assertions)."""
        with self._lock:
            return [self._describe(self._advance(feed)) for feed in self._feeds.values()]

    def set_options(self, changes: dict[str, Any]) -> None:
        """Change options at run time; ``expire_tokens`` and ``reset_rate_limits`` act once."""
        changes = dict(changes)
        expire = changes.pop("expire_tokens", False)
        reset = changes.pop("reset_rate_limits", False)
        names = {f.name for f in fields(SandboxOptions)}
        unknown = set(changes) - names
        if unknown:
            raise UsageError(
                i18n.Message(
                    "unknown sandbox options: {names}", {"names": ", ".join(sorted(unknown))}
                )
            )
        with self._lock:
            self.options = replace(self.options, **changes)
            if expire:
                self._tokens.clear()
            if reset:
                self._buckets.clear()

    # dispatch -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> tuple[str | None, Response]:
        """Answer one request; also names its operation (None when no route matched)."""
        for part in self.parts:
            if part.claims(request.path):
                name, reply = part.handle(
                    request.method, request.path, request.headers, request.body
                )
                return name, Response(reply.status, reply.body, reply.headers, reply.drop)
        route = _route(request)
        if route is None:
            return None, error_response(404, "NotFound", "Resource not found.")
        name, params = route
        request.params = params
        if name.startswith("_"):
            return name, self._control(name, request)
        return name, self._operate(name, request)

    def _operate(self, operation: str, request: Request) -> Response:
        with self._lock:
            self.calls[operation] += 1
            fault = self._take_fault(operation)
        if fault and fault.mode == "fail":
            return _failure(operation, fault.status)
        if fault and fault.mode == "throttle":
            return quota_exceeded()
        if fault and fault.mode == "hang":
            self._hang(fault.seconds)
        request.fault = fault.mode if fault else None
        response = self._perform(operation, request)
        if request.fault == "lose_answer":
            response.drop = True
        elif request.fault == "bad_json":
            response.body = response.body[: len(response.body) // 2] or b"{"
        return response

    def _perform(self, operation: str, request: Request) -> Response:
        handler = getattr(self, "_op_" + operation)
        if operation not in RATE_LIMITS:
            with self._lock:
                return handler(request)
        with self._lock:
            refused = self._authorize(request) or self._throttle(operation, request.seller)
            response = refused or handler(request)
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        if 200 <= response.status < 300:
            response.headers["x-amzn-RateLimit-Limit"] = str(RATE_LIMITS[operation][0])
        return response

    def _take_fault(self, operation: str) -> Fault | None:
        queue = self._faults[operation]
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.pop(0)
        return fault

    def _hang(self, seconds: float) -> None:
        with self._lock:
            released = self._release
        released.wait(seconds)

    def _authorize(self, request: Request) -> Response | None:
        token = request.headers.get("x-amz-access-token")
        if not token:
            return unauthorized("Access token is missing in the request header.")
        expires = self._tokens.get(token)
        if expires is None:
            return unauthorized("The access token you provided is revoked, malformed or invalid.")
        if self._now() >= expires:
            return unauthorized("The access token you provided has expired.")
        request.seller = self._sellers.get(token, "")
        return None

    def _throttle(self, operation: str, seller: str) -> Response | None:
        """Rate limits per seller, as Amazon's are per selling partner."""
        if not self.options.enforce_rate_limits:
            return None
        buckets = self._buckets.get(seller)
        if buckets is None:
            buckets = self._buckets[seller] = self._full_buckets()
        if buckets[operation].take(self._clock()):
            return None
        return quota_exceeded()

    def _full_buckets(self) -> dict[str, TokenBucket]:
        now = self._clock()
        return {
            op: TokenBucket(rate, burst, burst, now) for op, (rate, burst) in RATE_LIMITS.items()
        }

    # LWA ----------------------------------------------------------------------------------------

    def _op_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return lwa_error(
                400, "unsupported_grant_type", "The authorization grant type is not supported."
            )
        for name in ("refresh_token", "client_id", "client_secret"):
            if not form.get(name):
                return lwa_error(
                    400, "invalid_request", f"The request is missing a required parameter : {name}"
                )
        options = self.options
        if not (
            _same(form["client_id"], options.client_id)
            and _same(form["client_secret"], options.client_secret)
        ):
            return lwa_error(400, "invalid_client", "Client authentication failed")
        seller = _seller_of(form["refresh_token"], options.refresh_token)
        if seller is None:
            return lwa_error(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        token = "Atza|" + secrets.token_urlsafe(48)
        self._tokens[token] = self._now() + timedelta(seconds=TOKEN_LIFETIME)
        self._sellers[token] = seller
        answer = {
            "access_token": token,
            "refresh_token": options.refresh_token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME,
        }
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
        }
        return json_response(200, answer, headers)

    # documents ----------------------------------------------------------------------------------

    def _op_createFeedDocument(self, request: Request) -> Response:
        body = request.json()
        content_type = body.get("contentType") if isinstance(body, dict) else None
        if not isinstance(content_type, str) or not content_type.strip():
            return invalid_input("contentType is required.")
        document = Document(_document_id(), content_type)
        self._documents[document.id] = document
        url = self._presign(request.host, "upload", document.id, content_type)
        return json_response(201, {"feedDocumentId": document.id, "url": url})

    def _op_upload(self, request: Request) -> Response:
        content_type = request.headers.get("Content-Type", "")
        refused = self._check_presigned(request, "upload", content_type)
        if refused:
            return refused
        document = self._documents.get(request.params["id"])
        if document is None or document.report is not None:
            return s3_error(403, "AccessDenied", "Access Denied")
        if "Content-Length" not in request.headers:
            return s3_error(
                411, "MissingContentLength", "You must provide the Content-Length HTTP header."
            )
        document.data = request.body
        return Response(200, headers={"ETag": '"' + hashlib.md5(request.body).hexdigest() + '"'})

    def _op_getFeedDocument(self, request: Request) -> Response:
        document_id = request.params["id"]
        if not document_id.startswith("amzn1.tortuga."):
            return invalid_input("Invalid input")
        document = self._documents.get(document_id)
        if document is None:
            return error_response(
                404, "NotFound", "The requested feed document was not found.", document_id
            )
        gzip_header = (
            request.first("enableContentEncodingUrlHeader") == "true" and document.compressed
        )
        url = self._presign(request.host, "download", document_id, "gzip" if gzip_header else "")
        answer = {"feedDocumentId": document_id, "url": url}
        if document.compressed:
            answer["compressionAlgorithm"] = "GZIP"
        return json_response(200, answer)

    def _op_download(self, request: Request) -> Response:
        encoding_header = request.first("response-content-encoding") or ""
        refused = self._check_presigned(request, "download", encoding_header)
        if refused:
            return refused
        document = self._documents.get(request.params["id"])
        if document is None or (document.data is None and document.report is None):
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        headers = {"Content-Type": self._download_type(document, request.fault)}
        if encoding_header:
            headers["Content-Encoding"] = encoding_header
        body = document.payload("cp932" if request.fault == "wrong_charset" else None)
        if request.fault == "truncated_gzip":
            body = body if document.compressed else gzip.compress(body, mtime=0)
            body = body[: len(body) // 2]
        return Response(200, body, headers)

    def _download_type(self, document: Document, fault: str | None) -> str:
        if document.report is None:
            return document.content_type
        # wrong_charset: cp932 bytes labelled UTF-8
        return processing.report_content_type(
            "utf-8" if fault == "wrong_charset" else document.encoding
        )

    def _presign(self, host: str, action: str, document_id: str, signed: str) -> str:
        """A URL valid for 5 minutes, signed over ``signed`` (the upload's Content-Type)."""
        date = self._now().strftime(AMZ_DATE)
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": date,
            "X-Amz-Expires": str(int(URL_LIFETIME.total_seconds())),
            "X-Amz-SignedHeaders": "content-type;host" if action == "upload" else "host",
        }
        if action == "download" and signed:
            query["response-content-encoding"] = signed
        query["X-Amz-Signature"] = self._signature(action, document_id, date, signed)
        return f"http://{host}/_s3/{action}/{document_id}?{urlencode(query)}"

    def _signature(self, action: str, document_id: str, date: str, signed: str) -> str:
        message = "\n".join((action, document_id, date, signed)).encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def _check_presigned(self, request: Request, action: str, signed: str) -> Response | None:
        date = request.first("X-Amz-Date") or ""
        try:
            issued = datetime.strptime(date, AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            return s3_error(
                403, "AccessDenied", "Query-string authentication requires the X-Amz-Date parameter"
            )
        if self._now() > issued + URL_LIFETIME:
            return s3_error(403, "AccessDenied", "Request has expired")
        expected = self._signature(action, request.params["id"], date, signed)
        if not hmac.compare_digest(expected, request.first("X-Amz-Signature") or ""):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        return None

    # feeds --------------------------------------------------------------------------------------

    def _op_createFeed(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            return invalid_input("The request body is not a JSON object.")
        missing = [
            k for k in ("marketplaceIds", "feedType", "inputFeedDocumentId") if not body.get(k)
        ]
        if missing:
            return invalid_input(
                "".join(k + ";" for k in missing), "One or more required parameters missing"
            )
        problem = _create_feed_problem(body)
        if problem:
            return invalid_input(problem)
        document = self._documents.get(body["inputFeedDocumentId"])
        if document is None or document.report is not None or document.data is None:
            return invalid_input(
                f"Feed document {body['inputFeedDocumentId']} does not exist or has no content."
            )
        feed = Feed(
            id=str(next(self._feed_ids)),
            seq=next(self._seq),
            feed_type=body["feedType"],
            marketplace_ids=list(body["marketplaceIds"]),
            feed_options=dict(body.get("feedOptions") or {}),
            document_id=document.id,
            created=self._now(),
            processing_seconds=self.options.processing_seconds,
            seller=request.seller,
        )
        self._feeds[feed.id] = feed
        return json_response(202, {"feedId": feed.id})

    def _op_getFeed(self, request: Request) -> Response:
        feed, refused = self._find_feed(request.params["id"], request.seller)
        if feed is None:
            return refused or invalid_input("Invalid input")
        return json_response(200, self._advance(feed).as_json())

    def _op_cancelFeed(self, request: Request) -> Response:
        feed, refused = self._find_feed(request.params["id"], request.seller)
        if feed is None:
            return refused or invalid_input("Invalid input")
        if self._advance(feed).status != "IN_QUEUE":
            return invalid_input(
                f"Feed {feed.id} is {feed.status}: only IN_QUEUE feeds can be cancelled."
            )
        feed.status, feed.ended = "CANCELLED", self._now()
        return Response(200)

    def _find_feed(self, feed_id: str, seller: str) -> tuple[Feed, None] | tuple[None, Response]:
        if not feed_id.isdigit():
            return None, invalid_input("Invalid input")
        feed = self._feeds.get(feed_id)
        if feed is None or feed.seller != seller:  # another seller's feed is not there for this one
            return None, error_response(
                404, "NotFound", "The requested feed was not found.", feed_id
            )
        return feed, None

    def _op_getFeeds(self, request: Request) -> Response:
        token = request.first("nextToken")
        if token is not None:
            if set(request.query) != {"nextToken"}:
                return invalid_input("nextToken cannot be combined with other parameters.")
            if token not in self._pages:
                return invalid_input("Invalid nextToken.")
            flt, after = self._pages[token]
        else:
            flt_or_error = self._feed_filter(request)
            if isinstance(flt_or_error, Response):
                return flt_or_error
            flt, after = flt_or_error, sys.maxsize
        matching = [
            f
            for f in sorted(self._feeds.values(), key=lambda f: -f.seq)
            if f.seq < after and flt.matches(self._advance(f))
        ]
        page = matching[: flt.page_size]
        answer: dict[str, Any] = {"feeds": [f.as_json() for f in page]}
        if len(matching) > flt.page_size:
            next_token = base64.b64encode(secrets.token_bytes(24)).decode()
            self._pages[next_token] = (flt, page[-1].seq)
            answer["nextToken"] = next_token
        return json_response(200, answer)

    def _feed_filter(self, request: Request) -> FeedFilter | Response:
        query = request.query
        feed_types = _list_param(query, "feedTypes")
        if not feed_types:
            return invalid_input("Either feedTypes or nextToken is required.")
        statuses = _list_param(query, "processingStatuses")
        if statuses and not set(statuses) <= set(STATUSES):
            return invalid_input(f"processingStatuses must be among {', '.join(STATUSES)}.")
        page_size = request.first("pageSize") or "10"
        if not page_size.isdigit() or not 1 <= int(page_size) <= 100:
            return invalid_input("pageSize must be a whole number from 1 to 100.")
        now = self._now()
        since_text, until_text = request.first("createdSince"), request.first("createdUntil")
        try:
            since = parse_time(since_text) if since_text else now - FEED_RETENTION
            until = parse_time(until_text) if until_text else now
        except ValueError:
            return invalid_input("createdSince and createdUntil must be ISO 8601 date-times.")
        if since > until:
            return invalid_input("createdSince must not be after createdUntil.")
        marketplaces = _list_param(query, "marketplaceIds")
        return FeedFilter(
            frozenset(feed_types),
            frozenset(marketplaces) if marketplaces else None,
            frozenset(statuses) if statuses else None,
            max(since, now - FEED_RETENTION),
            until,
            int(page_size),
            request.seller,
        )

    def _advance(self, feed: Feed) -> Feed:
        """Bring a feed up to the clock: IN_PROGRESS after half its time, DONE after all of it."""
        if feed.status in FINISHED:
            return feed
        elapsed = (self._now() - feed.created).total_seconds()
        half = timedelta(seconds=feed.processing_seconds / 2)
        if elapsed >= feed.processing_seconds:
            feed.started = feed.started or feed.created + half
            feed.ended = feed.created + 2 * half
            feed.status = "DONE"
            self._attach_report(feed, self._process(feed))
        elif elapsed >= feed.processing_seconds / 2:
            feed.status, feed.started = "IN_PROGRESS", feed.created + half
        return feed

    def _process(self, feed: Feed) -> processing.ProcessingResult:
        document = self._documents[feed.document_id]
        return processing.process_feed(
            document.data or b"",
            document.content_type,
            known_order_ids=self.options.known_order_ids,
            language=self.options.report_language,
        )

    def _attach_report(self, feed: Feed, result: processing.ProcessingResult) -> None:
        options = self.options
        report = Document(
            _document_id(),
            processing.report_content_type(options.report_encoding),
            report=processing.render_report(result, options.report_language),
            encoding=options.report_encoding,
            compressed=options.gzip_reports,
        )
        self._documents[report.id] = report
        feed.result_document_id = report.id

    def _describe(self, feed: Feed) -> dict[str, Any]:
        document = self._documents[feed.document_id]
        report = self._documents.get(feed.result_document_id or "")
        return {
            **feed.as_json(),
            "feedOptions": feed.feed_options,
            "inputFeedDocumentId": document.id,
            "contentType": document.content_type,
            "document": document.data,
            "report": report.report if report else None,
        }

    # control over HTTP --------------------------------------------------------------------------

    def _control(self, name: str, request: Request) -> Response:
        body = request.json()
        if request.method == "POST" and not isinstance(body, dict) and name != "_release":
            return invalid_input("The request body must be a JSON object.")
        try:
            return getattr(self, "_control" + name)(request, body)
        except NotFound as exc:
            return error_response(404, "NotFound", error_text(exc))
        except (UsageError, TypeError, ValueError) as exc:
            return invalid_input(error_text(exc))

    def _control_faults(self, request: Request, body: dict[str, Any]) -> Response:
        self.add_fault(
            body.get("operation", ""),
            body.get("mode", ""),
            count=int(body.get("count", 1)),
            status=int(body.get("status", 500)),
            seconds=float(body.get("seconds", 30.0)),
        )
        return json_response(200, {"ok": True})

    def _control_release(self, request: Request, body: Any) -> Response:
        self.release_hangs()
        return json_response(200, {"ok": True})

    def _control_end(self, request: Request, body: dict[str, Any]) -> Response:
        self.end_feed(request.params["id"], str(body.get("status", "")))
        return json_response(200, {"ok": True})

    def _control_feeds(self, request: Request, body: Any) -> Response:
        feeds = self.feeds()
        for feed in feeds:
            data = feed.pop("document")
            feed["documentBase64"] = base64.b64encode(data).decode() if data is not None else None
        return json_response(200, feeds)

    def _control_calls(self, request: Request, body: Any) -> Response:
        with self._lock:
            return json_response(200, dict(self.calls))

    def _control_known_orders(self, request: Request, body: dict[str, Any]) -> Response:
        order_ids = body.get("order_ids")
        if order_ids is not None and not isinstance(order_ids, list):
            raise UsageError(
                i18n.Message("order_ids must be a list, or null for every well-formed order id")
            )
        self.set_options({"known_order_ids": None if order_ids is None else set(order_ids)})
        return json_response(200, {"ok": True})

    def _control_options(self, request: Request, body: dict[str, Any]) -> Response:
        self.set_options(body)
        return json_response(200, {"ok": True})


def _route(request: Request) -> tuple[str, dict[str, str]] | None:
    for method, pattern, name in _ROUTES:
        match = pattern.fullmatch(request.path)
        if match and method == request.method:
            return name, match.groupdict()
    return None


def _failure(operation: str, status: int) -> Response:
    """The answer of a ``fail`` fault, in the dialect of the service that fails."""
    if status == 502:
        return bad_gateway()
    if operation == "token":
        return lwa_error(status, "server_error", "The server encountered an unexpected error.")
    if operation in ("upload", "download"):
        if status == 503:
            return s3_error(503, "SlowDown", "Please reduce your request rate.")
        return s3_error(
            status, "InternalError", "We encountered an internal error. Please try again."
        )
    codes = {
        400: ("InvalidInput", "Invalid input"),
        403: ("Unauthorized", "Access to requested resource is denied."),
        404: ("NotFound", "Resource not found."),
        429: ("QuotaExceeded", "You exceeded your quota for the requested resource."),
        503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
    }
    code, message = codes.get(
        status, ("InternalFailure", "We encountered an internal error. Please try again.")
    )
    return error_response(status, code, message)


def _create_feed_problem(body: dict[str, Any]) -> str | None:
    marketplaces = body["marketplaceIds"]
    if not isinstance(body["feedType"], str) or not isinstance(body["inputFeedDocumentId"], str):
        return "feedType and inputFeedDocumentId must be strings."
    if not isinstance(marketplaces, list) or not 1 <= len(marketplaces) <= 25:
        return "marketplaceIds must be a list of 1 to 25 marketplace ids."
    if not all(isinstance(m, str) for m in marketplaces):
        return "marketplaceIds must be strings."
    options = body.get("feedOptions")
    if options is not None and not (
        isinstance(options, dict) and all(isinstance(v, str) for v in options.values())
    ):
        return "feedOptions must map names to strings."
    return None


def _list_param(query: dict[str, list[str]], name: str) -> list[str]:
    """An array query parameter, comma-separated (the model's csv format) or repeated."""
    return [
        item.strip() for value in query.get(name, []) for item in value.split(",") if item.strip()
    ]


def _seller_of(given: str, refresh_token: str) -> str | None:
    """The seller a refresh token stands for: the configured one is seller "", and
    ``<refresh token>-NAME`` is seller NAME (its own feeds and rate limits, as one of an agency's
    stores is its own Amazon seller); None for any other token."""
    if _same(given, refresh_token):
        return ""
    prefix = refresh_token + "-"
    name = given[len(prefix) :]
    if given.startswith(prefix) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        return name
    return None


def _document_id() -> str:
    # the shape of Amazon's feed document ids
    suffix = "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(13))
    return f"amzn1.tortuga.4.fe.{uuid.uuid4()}.T{suffix}"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


# --- HTTP --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect from Amazon
    server_version = "crossship-sandbox"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection ends instead of holding its thread
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed ACK
    server: _HTTPServer

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header of every answer, on the sandbox's clock (Amazon's time for clients)."""
        return email.utils.format_datetime(self.server.owner.sandbox._now(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default log: it would print query strings (signatures)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY or "Transfer-Encoding" in self.headers:
            # S3 takes neither chunked nor huge bodies; closing keeps unread bytes off the next one
            self.close_connection = True
            if length > MAX_BODY:
                self._send(
                    s3_error(
                        413,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size",
                    )
                )
            else:
                self._send(
                    s3_error(
                        411,
                        "MissingContentLength",
                        "You must provide the Content-Length HTTP header.",
                    )
                )
            return
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            body=self.rfile.read(length) if length else b"",
            host=self.headers.get("Host") or self.server.owner.url.removeprefix("http://"),
        )
        owner = self.server.owner
        operation, response = owner.sandbox.handle(request)
        latency = owner.options.latency_ms
        if latency and operation and not operation.startswith("_"):
            owner.sleep(latency / 1000)  # this request's thread only: the others go on
        if response.drop:
            self._drop()
        else:
            self._send(response)
        self.server.owner._log(request, operation, response)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            self.close_connection = True  # the client went away (it timed out on a hang)

    def _drop(self) -> None:
        """Close the connection without a word: the effect happened, the answer is lost."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not hold up stop()
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: SandboxServer):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.owner = owner
        super().__init__(address, _Handler)


class SandboxServer:
    """The sandbox on a socket: ``start()`` in a background thread or ``serve_forever()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        options: SandboxOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
        verbose: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.sandbox = Sandbox(options or SandboxOptions(), clock, now)
        self.verbose = verbose
        self.sleep = sleep  # how an answer waits its latency (tests hold it instead)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None
        self._serving = False
        bound_port = self._httpd.server_address[1]
        self.url = f"http://{_url_host(host)}:{bound_port}"
        self.token_url = self.url + TOKEN_PATH
        self.yahoo_key_file: Path | None = None  # where `sandbox serve` wrote Yahoo's public key

    @property
    def options(self) -> SandboxOptions:
        return self.sandbox.options

    @property
    def calls(self) -> Counter[str]:
        return self.sandbox.calls

    def start(self) -> Self:
        self._serving = True
        # a short poll interval keeps stop() quick in tests
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (from any thread), end held requests and close open connections."""
        self.sandbox.release_hangs()
        with self._connections_lock:
            serving, self._serving = self._serving, False
        if serving:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._httpd.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self if self._serving else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def banner(self) -> str:
        """What `sandbox serve` says first, in the reader's language: where each mall is and
        the credentials to configure (the first line names the URL, for scripts to read)."""
        options = self.options
        lines = [
            _("crossship sandbox (LWA + Feeds API 2021-06-30) listening on {url}").format(
                url=self.url
            ),
            "  " + _("endpoint:  {url}").format(url=self.url),
            "  " + _("token URL: {url}").format(url=self.token_url),
            "  "
            + _("LWA client id: {client_id} (secret and refresh token as configured)").format(
                client_id=options.client_id
            ),
            *self.sandbox.yahoo.banner_lines(self.url, self.yahoo_key_file),
            *self.sandbox.rakuten.banner_lines(self.url),
            _("Press Ctrl-C to stop."),
        ]
        return "\n".join(lines)

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (or ``stop()`` from another thread)."""
        self._serving = True
        print(self.banner(), file=sys.stderr, flush=True)
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # the control API, in process
    def add_fault(
        self, operation: str, mode: str, *, count: int = 1, status: int = 500, seconds: float = 30.0
    ) -> None:
        self.sandbox.add_fault(operation, mode, count=count, status=status, seconds=seconds)

    def release_hangs(self) -> None:
        self.sandbox.release_hangs()

    def end_feed(self, feed_id: str, status: str) -> None:
        self.sandbox.end_feed(feed_id, status)

    def feeds(self) -> list[dict[str, Any]]:
        return self.sandbox.feeds()

    def set_options(self, **changes: Any) -> None:
        self.sandbox.set_options(changes)

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _log(self, request: Request, operation: str | None, response: Response) -> None:
        if not self.verbose:
            return
        outcome = _("dropped") if response.drop else str(response.status)
        # the path only: query strings carry signatures, bodies carry secrets
        sys.stderr.write(f"sandbox: {request.method} {request.path} {operation or '-'} {outcome}\n")


def _url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind is reached through loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
