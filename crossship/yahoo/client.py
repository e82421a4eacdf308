"""The one module that knows Yahoo!ショッピング's HTTP: Yahoo! ID連携 v2 tokens, 公開鍵認証 headers,
the order APIs (orderShipStatusChange, orderStatusChange, orderInfo).

Every call has a timeout and waits for the pacer (about one call a second, on a monotonic clock).
An answer Yahoo gives about the order (``od…``) comes back as an ``Answer``; everything else that
goes wrong is a ``YahooError`` whose ``outcome`` says what is known about the call's effect and
whose ``halt`` says the store's run must stop (authentication, ``px-…``, throttling). No message
holds a secret or an access token.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from crossship import __version__
from crossship.errors import YahooError
from crossship.i18n import Message
from crossship.netfail import failed_before_sending as _failed_before_sending
from crossship.netfail import reason as _reason
from crossship.secrets import RefreshCredentials, Scrubbable, scrub
from crossship.urls import check_url, display_url
from crossship.yahoo import keys, xmlmsg
from crossship.yahoo.xmlmsg import Answer, AnswerError, Shipment

DEFAULT_ENDPOINT = "https://circus.shopping.yahooapis.jp/ShoppingWebService/V1/"
DEFAULT_TOKEN_URL = "https://auth.login.yahoo.co.jp/yconnect/v2/token"
SHIP = "orderShipStatusChange"
COMPLETE = "orderStatusChange"
INFO = "orderInfo"
ORDER_INFO_FIELDS = (
    "OrderId,OrderStatus,ShipStatus,ShipCompanyCode,ShipInvoiceNumber1,ShipInvoiceNumber2,"
    "ShipInvoiceNumberEmptyReason,ShipDate"
)

log = logging.getLogger("crossship.yahoo")


# a store's Yahoo! ID連携 credentials
Credentials = RefreshCredentials


class Pacer:
    """At most ``per_second`` calls a second, measured on a monotonic clock.

    It sleeps once for what is left of the interval, never in a loop: a wall clock that is faked
    or jumps cannot make it wait forever, and a frozen monotonic clock cannot either.
    """

    def __init__(
        self,
        per_second: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        now = self.monotonic()
        if self._last is not None:
            left = min(self.interval, self.interval - (now - self._last))
            if left > 0:
                self.sleep(left)
                now = self.monotonic()
        self._last = now


@dataclass(frozen=True)
class PublicKey:
    """The store's public key and its バージョン (X-sws-signature-version)."""

    key: rsa.RSAPublicKey
    version: str

    def __repr__(self) -> str:
        return f"PublicKey(version={self.version!r})"


class YahooClient:
    """The order APIs for one store. One access token per client, that is per run."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        seller_id: str,
        endpoint: str = DEFAULT_ENDPOINT,
        token_url: str = DEFAULT_TOKEN_URL,
        public_key: PublicKey | None = None,
        timeout: tuple[float, float] = (10.0, 30.0),
        pace: Any = None,
        unix_time: Callable[[], float] = time.time,
        session: requests.Session | None = None,
        user_agent: str = f"crossship/{__version__}",
    ) -> None:
        self.credentials = credentials
        self.seller_id = seller_id
        self.endpoint = check_url(endpoint, "endpoint")
        if not self.endpoint.endswith("/"):
            self.endpoint += "/"
        self.token_url = check_url(token_url, "token URL")
        self.public_key = public_key
        self.timeout = timeout
        self.pace = pace if pace is not None else Pacer(1.0)
        self.unix_time = unix_time
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self.user_agent = user_agent
        self.calls: collections.Counter[str] = collections.Counter()
        self._access_token: str | None = None

    def __repr__(self) -> str:
        return f"YahooClient(endpoint={self.endpoint!r}, seller_id={self.seller_id!r})"

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- order APIs -----------------------------------------------------------------------

    def ship(self, shipment: Shipment) -> Answer:
        """orderShipStatusChange: 出荷済み with company, tracking numbers and ship date."""
        return self.send(SHIP, xmlmsg.ship_request(self.seller_id, shipment))

    def complete(self, order_id: str) -> Answer:
        """orderStatusChange: order status 5 (完了)."""
        return self.send(COMPLETE, xmlmsg.complete_request(self.seller_id, order_id))

    def order_info(self, order_id: str) -> dict[str, str]:
        """orderInfo: the order's status and shipment fields, flat (tag → text)."""
        body = xmlmsg.info_request(self.seller_id, order_id, ORDER_INFO_FIELDS)
        answer = self.send(INFO, body, keep=True)
        if not answer.ok:
            raise self._error(INFO, "not_sent", answer.said, code=answer.code)
        return dict(answer.fields)

    def send(self, op: str, body: bytes, *, keep: bool = False) -> Answer:
        """One order API call with its single token renewal; ``keep`` keeps orderInfo's fields."""
        renewed = False
        while True:
            response = self._post(op, body)
            status = response.status_code
            if status == 401 and not renewed:
                renewed = True  # the access token expired or was revoked: renew it once
                self._access_token = None
                continue
            return self._answer(op, response, keep=keep)

    # ---- answers --------------------------------------------------------------------------

    def _answer(self, op: str, response: requests.Response, *, keep: bool) -> Answer:
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = xmlmsg.read_answer(response.content, keep=keep)
            except AnswerError as exc:
                # the call may have taken effect: the order goes back to pending and is resent,
                # which orderShipStatusChange and orderStatusChange take without harm
                raise self._error(
                    op,
                    "unknown",
                    Message(
                        "Yahoo answered {status} with {body}; whether it took effect is unknown",
                        {"status": status, "body": exc.kept},
                    ),
                    status=status,
                ) from None
            if answer.ok:
                return answer
            return self._refusal(op, status, answer)
        error = xmlmsg.read_error(response.content)
        if error is not None:
            return self._refusal(op, status, error)
        what = xmlmsg.describe_body(response.content)
        if status == 401:
            raise self._auth_failure(op, status, _bearer_error(response) or what)
        if status == 429:
            raise self._throttled(op, status)
        args = {"status": status, "body": what}
        if status >= 500:
            raise self._error(
                op,
                "unknown",
                Message(
                    "Yahoo answered {status} with {body}; whether it took effect is unknown", args
                ),
                status=status,
            )
        raise self._error(
            op, "rejected", Message("Yahoo answered {status} with {body}", args), status=status
        )

    def _refusal(self, op: str, status: int, answer: Answer) -> Answer:
        """Yahoo's own error: ``od…`` is about the order (returned); the rest stops the run."""
        code = answer.code
        # Yahoo's own code and words stay as Yahoo wrote them: an argument of our sentence
        said = answer.said
        if code.lower().startswith("px-"):
            if code.lower() == "px-04102":
                raise self._error(
                    op,
                    "not_sent",
                    Message("{said}. {help}", {"said": said, "help": keys.PX_04102_HELP}),
                    halt=True,
                    status=status,
                    code=code,
                )
            raise self._error(
                op,
                "not_sent",
                Message(
                    "Yahoo refused the call ({said}); the rest of this store's orders wait for "
                    "the next run",
                    {"said": said},
                ),
                halt=True,
                status=status,
                code=code,
            )
        if status == 401:
            raise self._auth_failure(op, status, said)
        if status == 429:
            raise self._throttled(op, status)
        if status >= 500:
            raise self._error(
                op,
                "unknown",
                Message(
                    "Yahoo answered {status} ({said}); whether it took effect is unknown",
                    {"status": status, "said": said},
                ),
                status=status,
                code=code,
            )
        return answer

    def _auth_failure(self, op: str, status: int, said: str | Message) -> YahooError:
        return self._error(
            op,
            "not_sent",
            Message(
                "Yahoo refused the access token even after renewing it ({said}): authorize "
                "crossship again (Yahoo! ID連携) and set the new refresh token",
                {"said": said},
            ),
            halt=True,
            status=status,
        )

    def _throttled(self, op: str, status: int) -> YahooError:
        return self._error(
            op,
            "not_sent",
            Message(
                "Yahoo is throttling this store's calls ({status}); the rest of its orders wait "
                "for the next run",
                {"status": status},
            ),
            halt=True,
            status=status,
        )

    # ---- Yahoo! ID連携 --------------------------------------------------------------------

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
                    "the Yahoo! ID連携 credentials are incomplete: set the client id, client "
                    "secret and refresh token of this store"
                ),
                halt=True,
            )
        form = {"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token}
        self.calls["token"] += 1
        try:
            response = self.session.post(
                self.token_url,
                data=form,
                auth=(self.credentials.client_id, self.credentials.client_secret),
                headers={"User-Agent": self.user_agent},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            host = urlsplit(self.token_url).hostname or "?"
            raise self._error(
                "token",
                "not_sent",
                Message(
                    "could not get a Yahoo access token from {host} ({reason})",
                    {"host": host, "reason": _reason(exc)},
                ),
                halt=True,
            ) from None
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if 200 <= response.status_code < 300:
            token = body.get("access_token") if isinstance(body, dict) else None
            if isinstance(token, str) and token:
                return token
            what = (
                xmlmsg.describe_body(response.content)
                if body is None
                else Message("JSON without it")
            )
            raise self._error(
                "token",
                "not_sent",
                Message(
                    "Yahoo's token answer {status} holds no access_token: {body}",
                    {"status": response.status_code, "body": what},
                ),
                halt=True,
                status=response.status_code,
            )
        said: str | Message
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            said = body["error"]  # Yahoo's own code and words
            if body.get("error_description"):
                said = f"{said}: {' '.join(str(body['error_description']).split())}"
        else:
            said = xmlmsg.describe_body(response.content)
        args = {"status": response.status_code, "said": said}
        if response.status_code < 500:
            message = Message(
                "Yahoo refused the token request ({status} {said}): the refresh token has "
                "expired (28 days) or was revoked: authorize crossship again (Yahoo! ID連携) and "
                "set the new refresh token",
                args,
            )
        else:
            message = Message(
                "Yahoo refused the token request ({status} {said}): Yahoo's login service "
                "failed; the next run tries again",
                args,
            )
        raise self._error("token", "not_sent", message, halt=True, status=response.status_code)

    # ---- HTTP -----------------------------------------------------------------------------

    def _post(self, op: str, body: bytes) -> requests.Response:
        token = self._token()
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": xmlmsg.CONTENT_TYPE,
            "User-Agent": self.user_agent,
        }
        self.pace.wait()
        if self.public_key is not None:
            headers["X-sws-signature"] = keys.signature(
                self.public_key.key, self.seller_id, int(self.unix_time())
            )
            headers["X-sws-signature-version"] = self.public_key.version
        url = self.endpoint + op
        self.calls[op] += 1
        try:
            # redirects are refused: requests would carry the Bearer token to another host
            response = self.session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            log.debug("%s %s failed: %s", op, display_url(url), type(exc).__name__)
            args = {"host": urlsplit(url).hostname or "?", "reason": _reason(exc)}
            if _failed_before_sending(exc):
                raise self._error(
                    op,
                    "not_sent",
                    Message("could not reach {host} ({reason}); nothing was sent", args),
                ) from None
            raise self._error(
                op,
                "unknown",
                Message(
                    "the connection to {host} failed after the request was sent ({reason}); "
                    "whether Yahoo received it is unknown",
                    args,
                ),
            ) from None
        log.debug("%s %s -> %d", op, display_url(url), response.status_code)
        return response

    def _error(
        self,
        op: str,
        outcome: str,
        message: str | Message,
        *,
        halt: bool = False,
        status: int | None = None,
        code: str | None = None,
    ) -> YahooError:
        """The error of a call, named by the operation, its message kept as a Message (the
        run's mail shows it in the mail's language) with every secret scrubbed out of it."""
        kept: str | Message
        if isinstance(message, str):  # Yahoo's own words only
            kept = self._scrub(message if message.startswith(f"{op}: ") else f"{op}: {message}")
        else:
            kept = Message("{op}: {message}", {"op": op, "message": self._scrub(message)})
        return YahooError(kept, outcome=outcome, halt=halt, status=status, code=code, operation=op)

    def _scrub(self, text: Scrubbable) -> Scrubbable:
        """``text`` (ours or the mall's) without any secret an answer might have echoed back."""
        return scrub(text, (*self.credentials.secrets(), self._access_token or ""))


def _bearer_error(response: requests.Response) -> str:
    """``invalid_token: ...`` from a 401's WWW-Authenticate header, if it says so."""
    header = response.headers.get("WWW-Authenticate", "")
    if "error=" not in header:
        return ""
    parts = dict(
        p.strip().split("=", 1) for p in header.removeprefix("Bearer").split(",") if "=" in p
    )
    error = parts.get("error", "").strip('"')
    description = parts.get("error_description", "").strip('"')
    return f"{error}: {description}" if description else error
