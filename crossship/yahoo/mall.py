"""Yahoo!ショッピング behind the mall interface: checks and shipments from ``shipping``, calls
through ``client``, 完了 timing from ``completion``.

Synchronous: every request is one order's orderShipStatusChange (a split's orders together), and
Yahoo's answer is the outcome. With ``--complete-after 0`` the 完了 follows at once in the same
request's work; otherwise it is scheduled on the order and ``follow_up`` (results fetch) sends it
when due.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crossship.errors import ConfigError, CrossshipError, YahooError
from crossship.i18n import Message, Part, _
from crossship.malls import (
    Finished,
    OrderCheck,
    Outcome,
    Pacer,
    Poll,
    Prepared,
    Reconciled,
    Request,
    Result,
    Row,
    StoreContext,
    WithClient,
)
from crossship.secrets import store_secrets
from crossship.statuses import Status
from crossship.timeutil import to_db
from crossship.urls import check_url, is_loopback
from crossship.yahoo import completion, keys, shipping, xmlmsg
from crossship.yahoo.client import (
    COMPLETE,
    DEFAULT_ENDPOINT,
    DEFAULT_TOKEN_URL,
    SHIP,
    Credentials,
    PublicKey,
    YahooClient,
)

# extra YahooClient keyword arguments for every session a run opens (tests: no pacing wait)
CLIENT_OPTIONS: dict[str, Any] = {}
# network failures in a row after which the rest of the store's orders wait for the next run
NETWORK_FAILURES_TO_STOP = 3
PACE_ENV = "CROSSSHIP_YAHOO_PACE_MS"


def settings_of(store_row: dict) -> dict[str, Any]:
    settings = store_row.get("mall_settings") or {}
    return settings if isinstance(settings, dict) else {}


def public_key_path(store_row: dict, db_path: Path) -> Path | None:
    """The store's PEM in the config directory beside the database, if one was given."""
    name = settings_of(store_row).get("public_key")
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else Path(db_path).parent / path


class YahooSession(WithClient[YahooClient]):
    """One run's work with one Yahoo store: one client, so one access token per run."""

    def __init__(
        self,
        store_row: dict,
        client: YahooClient | None,
        clock: Callable[[], datetime],
    ):
        self.store = store_row
        self.client = client
        self.clock = clock
        settings = settings_of(store_row)
        self.seller_id = str(store_row.get("seller_id") or "")
        self.complete_after = completion.parse_complete_after(settings.get("complete_after"))
        self._left_out: dict[str, list[Part]] = {}  # warnings made while encoding, by order_no
        self._network_failures = 0
        self._halt: YahooError | None = None  # a halting error met after a shipment went through

    @classmethod
    def open(cls, context: StoreContext) -> YahooSession:
        from crossship.yahoo import MALL

        row = context.store
        settings = settings_of(row)
        seller_id = str(row.get("seller_id") or "")
        if not seller_id:
            raise ConfigError(
                Message(
                    "store {store} has no Yahoo seller id: `crossship config store set {name} "
                    "--seller-id STOREACCOUNT`",
                    {"store": repr(row["name"]), "name": row["name"]},
                )
            )
        endpoint = check_url(row.get("endpoint") or DEFAULT_ENDPOINT, "endpoint")
        token_url = check_url(row.get("token_url") or DEFAULT_TOKEN_URL, "token URL")
        secrets = store_secrets(row["name"], context.db_path, MALL.secrets)
        missing = secrets.missing()
        if missing:
            raise ConfigError(
                Message(
                    "store {store} has no Yahoo credentials: set {missing}",
                    {"store": repr(row["name"]), "missing": ", ".join(missing)},
                )
            )
        key = None
        path = public_key_path(row, context.db_path)
        if path is not None:
            version = str(settings.get("public_key_version") or "")
            if not version:
                raise ConfigError(
                    Message(
                        "store {store} has a public key but no --public-key-version: set the "
                        "key's バージョン from ストアクリエイターPro (設定 > 暗号鍵管理)",
                        {"store": repr(row["name"])},
                    )
                )
            key = PublicKey(keys.load_public_key(path), version)
        options = {"pace": _pace(context.pace, endpoint), **CLIENT_OPTIONS}
        client = YahooClient(
            credentials=Credentials(
                secrets.get("client_id"), secrets.get("client_secret"), secrets.get("refresh_token")
            ),
            seller_id=seller_id,
            endpoint=endpoint,
            token_url=token_url,
            public_key=key,
            **options,
        )
        return cls(row, client, context.clock)

    def notices(self) -> list[Part]:
        """Reminders for the run's mail (in its language): no public key, the 28-day
        authorization or the key's year ending within 5 days (or ended)."""
        return [text for _level, text in _problems(self.store, self.clock())]

    @property
    def _api(self) -> YahooClient:
        if self.client is None:
            raise CrossshipError(_("internal: an offline Yahoo session cannot call Yahoo"))
        return self.client

    # --------------------------------------------------------------------- checking, encoding

    def check(
        self,
        order: dict,
        items: list[dict],
        carrier: dict | None,
        *,
        is_split_parent: bool = False,
        refs: dict | None = None,
    ) -> OrderCheck:
        errors, warnings = shipping.check_order(order, carrier, self.seller_id)
        return OrderCheck(errors=errors, warnings=warnings)

    def encode(self, orders: Iterable[Prepared]) -> list[Request]:
        """One request per shipment: one order, or the orders of a split together."""
        pairs = [(p.order, p.carrier) for p in orders]
        requests = []
        for planned in shipping.plan(pairs):
            for order_no, warnings in planned.warnings.items():
                self._left_out.setdefault(order_no, []).extend(warnings)
            # one call; a split's orders are its rows 1, 2, ... (each row of a batch is numbered)
            rows = [
                Row(record_no=n, order_no=order_no, order_id=planned.shipment.order_id)
                for n, order_no in enumerate(planned.order_nos, start=1)
            ]
            body = xmlmsg.ship_request(self.seller_id, planned.shipment)
            requests.append(Request(body=body, content_type=xmlmsg.CONTENT_TYPE, rows=rows))
        return requests

    def resolve(self, orders: Sequence[dict], refs: dict[str, dict]) -> dict[str, dict]:
        return {}

    # --------------------------------------------------------------------- sending

    def submit(self, batch: dict, request: Request, commit: Callable[[dict], dict]) -> Finished:
        """Send one shipment; Yahoo's answer is every order's outcome at once."""
        order_id = request.rows[0].order_id
        if self._halt is not None:
            raise self._halt
        try:
            answer = self._api.send(SHIP, request.body)
        except YahooError as exc:
            self._count_network(exc)
            raise
        self._network_failures = 0
        if not answer.ok:
            return Finished(
                [Outcome(r.order_no, Status.ERROR, message=answer.said) for r in request.rows]
            )
        warnings = list(answer.warnings)
        refs = self._after_shipment(order_id, _ship_date(request.body), request.rows)
        return Finished(
            [
                Outcome(
                    r.order_no,
                    refs[r.order_no][0],
                    message=refs[r.order_no][1],
                    warnings=warnings + self._left_out.pop(r.order_no, []),
                    refs=refs[r.order_no][2],
                )
                for r in request.rows
            ]
        )

    def _after_shipment(
        self, order_id: str, ship_date: str, rows: Sequence[Row]
    ) -> dict[str, tuple[Status, Part, dict]]:
        """Each order's (status, message, refs) once its shipment is in: 完了 now or later."""
        if self.complete_after == completion.NEVER:
            return {r.order_no: (Status.SUCCESS, "", {}) for r in rows}
        if self.complete_after != "0":
            days = int(self.complete_after)
            due = completion.due_time(ship_date, days) if ship_date else self.clock()
            refs = {"completion": "scheduled", "complete_due": to_db(due)}
            when = due.astimezone(completion.JST).date().isoformat()
            message: Part = Message(
                "完了 scheduled for {when} (--complete-after {days})", {"when": when, "days": days}
            )
            return {r.order_no: (Status.SUCCESS, message, refs) for r in rows}
        status, message, refs = self._complete(order_id, shipped=True)
        return {r.order_no: (status, message, refs) for r in rows}

    def _complete(self, order_id: str, *, shipped: bool = False) -> tuple[Status, Part, dict]:
        """Send 完了 now. A network failure leaves it scheduled for results fetch; so does a
        halting error right after a shipment (the shipment is kept, the run stops next)."""
        if self._halt is not None:
            raise self._halt
        try:
            answer = self._api.send(COMPLETE, xmlmsg.complete_request(self.seller_id, order_id))
        except YahooError as exc:
            self._count_network(exc)
            if exc.halt and not shipped:
                raise
            if exc.halt:
                self._halt = exc  # raised before the next call: this order's shipment stands
            due = {"completion": "scheduled", "complete_due": to_db(self.clock())}
            later = Message(
                "完了 not sent yet ({error}): results fetch retries", {"error": exc.kept}
            )
            return Status.SUCCESS, later, due
        self._network_failures = 0
        if answer.ok or completion.already_completed(str(answer.message)):
            done = {"completion": "done", "complete_due": None}
            return Status.SUCCESS, Message("完了 (order status 5) set at Yahoo"), done
        said = answer.said
        refused = (
            Message(
                "完了 (orderStatusChange) was refused: {said}; the shipment itself was reported",
                {"said": said},
            )
            if shipped
            else Message("完了 (orderStatusChange) was refused: {said}", {"said": said})
        )
        return Status.ERROR, refused, {"completion": "failed"}

    def follow_up(self, due: Sequence[dict]) -> list[Outcome]:
        """results fetch: 完了 for each order whose time has come."""
        outcomes = []
        for order in due:
            status, message, refs = self._complete(order["mall_order_id"])
            if refs.get("completion") == "scheduled":
                continue  # the network failed: it stays due, the next run tries again
            outcomes.append(Outcome(order["order_no"], status, message=message, refs=refs))
        return outcomes

    def _count_network(self, exc: YahooError) -> None:
        if exc.halt or exc.outcome == "rejected":
            return
        self._network_failures += 1
        if self._network_failures >= NETWORK_FAILURES_TO_STOP:
            exc.halt = True
            exc.kept = Message(
                "{error} ({count} calls in a row failed: the rest of this store's orders wait "
                "for the next run)",
                {"error": exc.kept, "count": NETWORK_FAILURES_TO_STOP},
            )
            exc.message = exc.kept.render()
            exc.args = (exc.message,)

    # --------------------------------------------------------------------- not asynchronous

    def reconcile(self, batch: dict, rows: list[Row], claimed: set[str]) -> Reconciled:
        # a resent orderShipStatusChange sets the same values again: release, the next run resends
        return Reconciled("release")

    def poll(self, batch: dict) -> Poll:
        return Poll("done", "DONE")

    def read_result(self, batch: dict, poll: Poll, rows: list[Row]) -> Result:
        raise CrossshipError(_("internal: Yahoo answers at once; there is no result to read"))

    def failure_text(self, poll: Poll) -> str:
        return ""


def _pace(pace: Any, endpoint: str) -> Any:
    """The run's pacer, or, for a bench against a local sandbox only, a shorter interval given
    explicitly in CROSSSHIP_YAHOO_PACE_MS (Yahoo itself blocks bursts: never for a real host)."""
    given = os.environ.get(PACE_ENV)
    if not given:
        return pace
    host = urlsplit(endpoint).hostname or ""
    if not is_loopback(host):
        raise ConfigError(
            Message(
                "{variable} shortens Yahoo's pacing for a local sandbox only; the endpoint "
                "{host} is not a loopback address: unset it",
                {"variable": PACE_ENV, "host": host},
            )
        )
    try:
        milliseconds = float(given)
    except ValueError:
        raise ConfigError(
            Message(
                "{variable} must be a number of milliseconds, not {value}",
                {"variable": PACE_ENV, "value": repr(given)},
            )
        ) from None
    return Pacer(1000.0 / milliseconds if milliseconds > 0 else 0.0)


def health(store_row: dict, now: datetime) -> list[tuple[str, str]]:
    """`crossship check`: the 28-day authorization and the public key's year, from 5 days before."""
    return [(level, str(text)) for level, text in _problems(store_row, now)]


def _problems(store_row: dict, now: datetime) -> list[tuple[str, Message]]:
    settings = settings_of(store_row)
    return keys.date_problems(
        authorized_on=settings.get("authorized_on"),
        key_expires=settings.get("public_key_expires"),
        has_key=bool(settings.get("public_key")),
        today=now.astimezone(completion.JST).date(),
    )


def _ship_date(body: bytes) -> str:
    """The ShipDate of our own request body, as YYYY-MM-DD ("" if it has none)."""
    text = (xmlmsg.parse_xml(body).findtext("Order/Ship/ShipDate") or "").strip()
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 else ""
