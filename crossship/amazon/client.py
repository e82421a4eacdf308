"""The one module that knows SP-API HTTP: LWA tokens, Feeds API 2021-06-30, presigned S3 URLs.

Every call has a timeout. Calls that are safe to repeat are retried on 429, 5xx and network
failures with exponential backoff and full jitter; createFeed, which has no idempotency key, is
retried only on 429. Every failure becomes an ``AmazonError`` whose ``outcome`` says what is known
about the call's effect at Amazon, and whose message never holds a secret or an access token.
"""

from __future__ import annotations

import collections
import email.message
import email.utils
import gzip
import html
import json
import logging
import random
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import urlsplit

import requests

from crossship import __version__
from crossship.errors import AmazonError, ConfigError
from crossship.i18n import Message
from crossship.netfail import failed_before_sending as _failed_before_sending
from crossship.netfail import reason as _reason
from crossship.secrets import RefreshCredentials, Scrubbable, scrub
from crossship.urls import check_url, display_url

FEED_TYPE = "POST_FLAT_FILE_FULFILLMENT_DATA"
JP_MARKETPLACE = "A1VC38T7YXB528"
DEFAULT_ENDPOINT = "https://sellingpartnerapi-fe.amazon.com"
DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"

FEEDS_PATH = "/feeds/2021-06-30/feeds"
DOCUMENTS_PATH = "/feeds/2021-06-30/documents"
GZIP_MAGIC = b"\x1f\x8b"
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
GET_FEEDS_PAGE_SIZE = 100  # the model's maximum: fewest getFeeds calls (rate 1 per 45 s)
SNIPPET_CHARS = 200
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

log = logging.getLogger("crossship.amazon")


class _NoQueryStrings(logging.Filter):
    """urllib3 logs every request's URL at DEBUG (-vv): a presigned URL's query is its signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.split("?", 1)[0] if isinstance(a, str) and "?" in a else a for a in record.args
            )
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_NoQueryStrings())

# calls that change nothing a repeat would duplicate; createFeed is the one that would
IDEMPOTENT = frozenset(
    {"token", "createFeedDocument", "upload", "getFeeds", "getFeed", "getFeedDocument", "download"}
)
# calls to SP-API proper: they carry the access token; presigned S3 URLs and LWA do not
SP_API = frozenset({"createFeedDocument", "createFeed", "getFeeds", "getFeed", "getFeedDocument"})
S3 = frozenset({"upload", "download"})

# network failures that happen before any byte of the request leaves this machine
# request errors that are our own mistakes, not the network's: repeating cannot help
_NOT_NETWORK = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidJSONError,
)


# a store's LWA credentials
Credentials = RefreshCredentials


@dataclass
class _Failure:
    """One failed attempt, before it is known whether it will be retried."""

    outcome: str
    message: str | Message
    retryable: bool
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None


class AmazonClient:
    """SP-API Feeds calls for one store. One access token per client, that is per run."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        endpoint: str = DEFAULT_ENDPOINT,
        token_url: str = DEFAULT_TOKEN_URL,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        session: requests.Session | None = None,
        user_agent: str = f"crossship/{__version__}",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.credentials = credentials
        self.endpoint = check_url(endpoint, "endpoint").rstrip("/")
        self.token_url = check_url(token_url, "token URL")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.rand = rand
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self.user_agent = user_agent
        self.calls: collections.Counter[str] = collections.Counter()
        self._access_token: str | None = None
        self.clock = clock
        # Amazon's clock minus ours, learned from the Date header of its answers (None: none yet)
        self.offset: timedelta | None = None

    def __repr__(self) -> str:
        return f"AmazonClient(endpoint={self.endpoint!r})"

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- Amazon's clock -------------------------------------------------------------------

    def now(self) -> datetime:
        """Amazon's time now, as far as its answers told (our clock until one did).

        A Date header is truncated to the second and stamped before the answer travelled, so the
        time learned from it is never later than Amazon's: a window starting there never misses
        a feed Amazon created after that moment.
        """
        return self.clock() + (self.offset or timedelta(0))

    def learn_time(self) -> None:
        """Make sure Amazon's time is known before a window is computed (the LWA answer has one)."""
        self._token()

    def _learn_date(self, response: requests.Response) -> None:
        value = response.headers.get("Date")
        if not value:
            return
        try:
            date = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return  # a garbled Date teaches nothing
        if date.tzinfo is None:
            return
        self.offset = date - self.clock()

    # ---- Feeds API ------------------------------------------------------------------------

    def create_feed_document(self, content_type: str) -> dict[str, Any]:
        """Reserve a feed document; returns ``{"feedDocumentId", "url"}`` (url: presigned PUT)."""
        response = self._sp_api(
            "createFeedDocument", "POST", DOCUMENTS_PATH, json={"contentType": content_type}
        )
        body = self._json_object("createFeedDocument", response, ("feedDocumentId", "url"))
        self._safe_id("createFeedDocument", "not_sent", "feedDocumentId", body["feedDocumentId"])
        return {"feedDocumentId": body["feedDocumentId"], "url": body["url"]}

    def upload(self, url: str, data: bytes, content_type: str) -> None:
        """PUT the feed to its presigned URL; S3 checks the Content-Type against the signature."""
        self._presigned("upload", "PUT", url, data=data, headers={"Content-Type": content_type})

    def create_feed(
        self,
        document_id: str,
        *,
        feed_type: str = FEED_TYPE,
        marketplace_ids: Sequence[str] = (JP_MARKETPLACE,),
    ) -> str:
        """Submit an uploaded document as a feed; returns the feedId. Never repeated blindly."""
        spec = {
            "feedType": feed_type,
            "marketplaceIds": list(marketplace_ids),
            "inputFeedDocumentId": document_id,
        }
        response = self._sp_api("createFeed", "POST", FEEDS_PATH, json=spec)
        feed_id = self._json_object("createFeed", response, ("feedId",))["feedId"]
        # a feed may exist, but an id we cannot put in a URL is no answer: reconcile instead
        return self._safe_id("createFeed", "unknown", "feedId", feed_id)

    def get_feeds(
        self,
        *,
        created_since: datetime,
        feed_types: Sequence[str] = (FEED_TYPE,),
        marketplace_ids: Sequence[str] = (JP_MARKETPLACE,),
        processing_statuses: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every feed matching the filters, all pages: reconciles a lost createFeed answer."""
        params: dict[str, str] = {
            "feedTypes": ",".join(feed_types),
            "marketplaceIds": ",".join(marketplace_ids),
            "pageSize": str(GET_FEEDS_PAGE_SIZE),
            "createdSince": _iso_utc(created_since),
        }
        if processing_statuses:
            params["processingStatuses"] = ",".join(processing_statuses)
        feeds: list[dict[str, Any]] = []
        for page in self._feed_pages(params):
            feeds.extend(page)
        return feeds

    def _feed_pages(self, params: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
        seen: set[str] = set()
        while True:
            response = self._sp_api("getFeeds", "GET", FEEDS_PATH, params=params)
            body = self._json_object("getFeeds", response, ())
            feeds = body.get("feeds")
            if not isinstance(feeds, list) or not all(isinstance(f, dict) for f in feeds):
                raise self._error(
                    "getFeeds", "not_sent", Message("Amazon answered without a feeds list")
                )
            yield feeds
            token = body.get("nextToken")
            if not token:
                return
            if token in seen:  # a server repeating itself must not keep a cron run busy forever
                raise self._error("getFeeds", "not_sent", Message("Amazon repeated a nextToken"))
            seen.add(token)
            params = {"nextToken": token}  # the model: nextToken must be the only parameter

    def get_feed(self, feed_id: str) -> dict[str, Any]:
        """The feed's processing status and, once done, its resultFeedDocumentId."""
        self._safe_id("getFeed", "not_sent", "stored feedId", feed_id)
        response = self._sp_api("getFeed", "GET", f"{FEEDS_PATH}/{feed_id}")
        body = self._json_object("getFeed", response, ("feedId", "processingStatus"))
        document = body.get("resultFeedDocumentId")
        if document is not None:
            self._safe_id("getFeed", "not_sent", "resultFeedDocumentId", document)
        return body

    def get_feed_document(self, document_id: str) -> dict[str, Any]:
        """Where to download: ``{"feedDocumentId", "url", maybe "compressionAlgorithm"}``."""
        response = self._sp_api(
            "getFeedDocument",
            "GET",
            f"{DOCUMENTS_PATH}/{self._safe_id('getFeedDocument', 'not_sent', 'id', document_id)}",
        )
        return self._json_object("getFeedDocument", response, ("feedDocumentId", "url"))

    def download(self, url: str, compression: str | None) -> tuple[bytes, str | None]:
        """The report's bytes (gunzipped when needed) and the charset its Content-Type names."""
        response = self._presigned("download", "GET", url)
        charset = _charset(response.headers.get("Content-Type"))
        content = response.content
        if compression is None:
            return content, charset
        if compression.upper() != "GZIP":
            raise self._error(
                "download",
                "not_sent",
                Message("unknown compressionAlgorithm {value}", {"value": repr(compression)}),
            )
        return self._gunzip(content), charset

    def _gunzip(self, content: bytes) -> bytes:
        if not content.startswith(GZIP_MAGIC):
            return content  # requests already undid a Content-Encoding: gzip; never gunzip twice
        try:
            return gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise self._error(
                "download",
                "not_sent",
                Message(
                    "the report is compressed with GZIP but cannot be decompressed ({error}); "
                    "it is truncated or corrupt",
                    {"error": str(exc)},
                ),
            ) from None

    # ---- LWA ------------------------------------------------------------------------------

    def _token(self) -> str:
        if self._access_token is None:
            self._access_token = self._fetch_token()
        return self._access_token

    def _fetch_token(self) -> str:
        if not all(self.credentials.secrets()):
            raise self._error(
                "token",
                "not_sent",
                Message(
                    "the LWA credentials are incomplete: set the client id, client secret and "
                    "refresh token of this store"
                ),
            )
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.credentials.refresh_token,
            "client_id": self.credentials.client_id,
            "client_secret": self.credentials.client_secret,
        }
        response = self._send("token", "POST", self.token_url, data=form)
        token = self._json_object("token", response, ("access_token",))["access_token"]
        return token

    # ---- HTTP -----------------------------------------------------------------------------

    def _sp_api(self, op: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self._send(op, method, self.endpoint + path, **kwargs)

    def _presigned(self, op: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            check_url(url, "the document URL Amazon gave")
        except ConfigError as exc:
            raise self._error(op, "not_sent", exc.kept) from None
        return self._send(op, method, url, **kwargs)

    def _send(self, op: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One operation: retries with backoff, the single token renewal; returns a 2xx answer."""
        attempt = 1
        renewed = False
        while True:
            try:
                response = self._attempt(op, method, url, attempt, **kwargs)
            except requests.RequestException as exc:
                failure = self._network_failure(op, url, exc)
            else:
                if 200 <= response.status_code < 300:
                    return response
                if op in SP_API and response.status_code in (401, 403) and not renewed:
                    renewed = True  # the token may have expired or been revoked: renew once
                    self._access_token = None
                    continue
                failure = self._http_failure(op, response)
            delay = self._delay(attempt, failure)
            if delay is None:
                raise self._error(
                    op, failure.outcome, failure.message, status=failure.status, code=failure.code
                )
            log.debug("%s: retrying in %.1f s", op, delay)
            self.sleep(delay)
            attempt += 1

    def _attempt(
        self,
        op: str,
        method: str,
        url: str,
        attempt: int,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        headers = {"User-Agent": self.user_agent, **(headers or {})}
        if op in SP_API:
            headers["x-amz-access-token"] = self._token()
        self.calls[op] += 1
        try:
            # redirects are refused: requests would forward x-amz-access-token to any host
            response = self.session.request(
                method, url, headers=headers, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            log.debug(
                "%s %s %s failed: %s (attempt %d)",
                op,
                method,
                display_url(url),
                type(exc).__name__,
                attempt,
            )
            raise
        self._learn_date(response)
        log.debug(
            "%s %s %s -> %d (attempt %d)",
            op,
            method,
            display_url(url),
            response.status_code,
            attempt,
        )
        return response

    def _delay(self, attempt: int, failure: _Failure) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if not failure.retryable or attempt >= self.max_attempts:
            return None
        if failure.retry_after is not None:
            # waiting longer than the cap would hold the run's lock: give up, the next run retries
            return failure.retry_after if failure.retry_after <= BACKOFF_CAP else None
        return self.rand() * min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))

    def _network_failure(self, op: str, url: str, exc: requests.RequestException) -> _Failure:
        host = urlsplit(url).hostname or "?"
        if isinstance(exc, _NOT_NETWORK):
            return _Failure(
                "not_sent",
                Message(
                    "{op}: the request could not be made ({reason})",
                    {"op": op, "reason": _reason(exc)},
                ),
                False,
            )
        if op == "token":
            message = Message(
                "could not get an LWA access token from {host} ({reason})",
                {"host": host, "reason": _reason(exc)},
            )
            return _Failure("not_sent", message, True)
        if _failed_before_sending(exc):
            message = Message(
                "could not reach {host} ({reason}); nothing was sent",
                {"host": host, "reason": _reason(exc)},
            )
            return _Failure("not_sent", message, op in IDEMPOTENT)
        message = Message(
            "the connection to {host} failed after the request was sent ({reason}); "
            "whether Amazon received it is unknown",
            {"host": host, "reason": _reason(exc)},
        )
        return _Failure("unknown", message, op in IDEMPOTENT)

    def _http_failure(self, op: str, response: requests.Response) -> _Failure:
        status = response.status_code
        code, text = _describe_error(op, response)
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if status == 429:
            # throttled: Amazon refused the call before acting on it
            return _Failure("not_sent", text, True, status, code, retry_after)
        if op == "token":
            text = Message(
                "{error}; check the LWA client id, client secret and refresh token of this store",
                {"error": text},
            )
            return _Failure("not_sent", text, status >= 500, status, code, retry_after)
        if status >= 500:
            return _Failure("unknown", text, op in IDEMPOTENT, status, code, retry_after)
        if op in SP_API and status in (401, 403):
            text = Message(
                "{error} (a renewed access token was refused too: check the app's authorization)",
                {"error": text},
            )
        return _Failure("rejected", text, False, status, code)

    def _json_object(self, op: str, response: requests.Response, required: tuple[str, ...]) -> dict:
        """The 2xx answer's JSON object, with each required field a non-empty string."""
        # a createFeed answer we cannot read may still mean a feed was created; other calls are
        # safe to repeat, so nothing is lost by treating them as not sent
        outcome = "unknown" if op == "createFeed" else "not_sent"
        try:
            body = json.loads(response.content)
        except ValueError:
            snippet = _snippet(response.content)
            raise self._error(
                op,
                outcome,
                Message(
                    "Amazon answered {status} with a body that is not JSON: {snippet}",
                    {"status": response.status_code, "snippet": repr(snippet)},
                ),
                status=response.status_code,
            ) from None
        if not isinstance(body, dict):
            raise self._error(
                op,
                outcome,
                Message("Amazon answered with JSON that is not an object"),
                status=response.status_code,
            )
        missing = [
            name for name in required if not (isinstance(body.get(name), str) and body[name])
        ]
        if missing:
            raise self._error(
                op,
                outcome,
                Message("Amazon's answer lacks {fields}", {"fields": ", ".join(missing)}),
                status=response.status_code,
            )
        return body

    def _safe_id(self, op: str, outcome: str, what: str, value: object) -> str:
        """An identifier Amazon gave, if it is one (letters, digits, ``.``, ``_``, ``-``): a
        hostile answer must not put ``/`` or ``..`` into a later request's path."""
        if isinstance(value, str) and SAFE_ID.fullmatch(value):
            return value
        raise self._error(
            op,
            outcome,
            Message(
                "Amazon's answer has an unusable {what} {value}",
                {"what": what, "value": repr(str(value)[:80])},
            ),
        )

    def _error(
        self,
        op: str,
        outcome: str,
        message: str | Message,
        *,
        status: int | None = None,
        code: str | None = None,
    ) -> AmazonError:
        """The error of a call, its message kept as a Message (the run's mail shows it in the
        mail's language), named by the operation."""
        if isinstance(message, str):
            text = message if message.startswith(f"{op}: ") else f"{op}: {message}"
            kept: str | Message = self._scrub(text)
        elif message.render("en").startswith(f"{op}: "):  # already named
            kept = self._scrub(message)
        else:
            kept = Message("{op}: {message}", {"op": op, "message": self._scrub(message)})
        return AmazonError(kept, outcome=outcome, status=status, code=code, operation=op)

    def _scrub(self, text: Scrubbable) -> Scrubbable:
        """``text`` (ours or the mall's) without any secret an answer might have echoed back."""
        return scrub(text, (*self.credentials.secrets(), self._access_token or ""))


# ---- helpers without state -------------------------------------------------------------------


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("created_since must be timezone-aware")
    # seconds are floored: a slightly earlier bound only widens the reconciliation window
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    message = email.message.Message()
    message["Content-Type"] = content_type
    charset = message.get_param("charset")
    return charset.strip() if isinstance(charset, str) and charset.strip() else None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; an HTTP-date or garbage is ignored in favour of our own backoff."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None


def _snippet(content: bytes) -> str:
    text = content[: SNIPPET_CHARS * 4].decode("utf-8", "replace")
    return " ".join(text.split())[:SNIPPET_CHARS]


def _describe_error(op: str, response: requests.Response) -> tuple[str | None, Message]:
    """``(code, message)`` for a non-2xx answer: SP-API JSON, LWA JSON, S3 XML or anything."""
    status = f"{response.status_code}"
    who: str | Message = Message("the document storage (S3)") if op in S3 else "Amazon"
    content = response.content
    xml = _s3_error(content)
    if xml is not None:
        code, message = xml
        args = {"op": op, "who": who, "status": status, "code": code, "message": message}
        if code == "SignatureDoesNotMatch" and op == "upload":
            text = Message(
                "{op}: {who} answered {status} {code}: {message} (the upload's Content-Type "
                "must equal the contentType given to createFeedDocument)",
                args,
            )
        else:
            text = Message("{op}: {who} answered {status} {code}: {message}", args)
        return code, text
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    described = _json_error(body)
    if described is not None:
        json_code, message = described
        return json_code, Message(
            "{op}: {who} answered {status} {message}",
            {"op": op, "who": who, "status": status, "message": message},
        )
    reason = f" {response.reason}" if response.reason else ""
    if not content.strip():
        return None, Message(
            "{op}: {who} answered {status}{reason} with an empty body",
            {"op": op, "who": who, "status": status, "reason": reason},
        )
    args = {"op": op, "who": who, "status": status, "reason": reason}
    args["body"] = repr(_snippet(content))
    if body is not None:
        return None, Message(
            "{op}: {who} answered {status}{reason} with JSON without an error list: {body}", args
        )
    return None, Message(
        "{op}: {who} answered {status}{reason} with a body that is not JSON: {body}", args
    )


def _json_error(body: object) -> tuple[str | None, str] | None:
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
        parts = [_one_error(e) for e in errors]
        return str(errors[0].get("code") or "") or None, "; ".join(parts)
    if isinstance(body.get("error"), str):  # LWA: {"error": ..., "error_description": ...}
        description = body.get("error_description")
        tail = f": {' '.join(str(description).split())}" if description else ""
        return body["error"], f"{body['error']}{tail}"
    return None


def _one_error(error: dict[str, Any]) -> str:
    text = f"{error.get('code') or 'error'}: {' '.join(str(error.get('message') or '').split())}"
    details = " ".join(str(error.get("details") or "").split()).rstrip(";")
    return f"{text} ({details})" if details else text


def _s3_error(content: bytes) -> tuple[str, str] | None:
    # a regex, not an XML parser: the body is untrusted and may be truncated
    head = content[:4096].decode("utf-8", "replace")
    code = re.search(r"<Code>\s*([^<]*?)\s*</Code>", head)
    if "<Error>" not in head or code is None:
        return None
    message = re.search(r"<Message>\s*([^<]*?)\s*</Message>", head)
    text = html.unescape(message.group(1)) if message else ""
    return html.unescape(code.group(1)), " ".join(text.split())[:SNIPPET_CHARS]
