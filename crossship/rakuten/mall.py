"""楽天市場 behind the mall interface: checks and requests from ``shipping``, calls through
``client``, results and lost answers through ``result``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from crossship.errors import ConfigError, ReportParseError
from crossship.i18n import Message, _
from crossship.malls import (
    Accepted,
    OrderCheck,
    Outcome,
    Poll,
    Prepared,
    Reconciled,
    Request,
    Result,
    Row,
    StoreContext,
    WithClient,
)
from crossship.rakuten import MALL, license
from crossship.rakuten.client import Credentials, Pace, RakutenError, RmsClient
from crossship.rakuten.codes import DEFAULT_ENDPOINT, MAX_ORDERS_PER_REQUEST
from crossship.rakuten.result import (
    ResultUnreadable,
    Verdict,
    basket_ids,
    no_result_yet,
    reconcile,
)
from crossship.rakuten.result import read_result as read_verdicts
from crossship.rakuten.shipping import (
    CONTENT_TYPE,
    SentRow,
    check_order,
    encode,
    sent_shipments,
    shipment,
)
from crossship.secrets import store_secrets
from crossship.statuses import Status
from crossship.timeutil import Clock, from_db, to_db

DEFAULT_DEADLINE = timedelta(hours=24)
PAST_DEADLINE = "NO_RESULT_PAST_DEADLINE"
# extra RmsClient keyword arguments for every session a run opens (tests: no pacing, no backoff)
CLIENT_OPTIONS: dict[str, Any] = {}


class RakutenSession(WithClient[RmsClient]):
    """One run's work with one Rakuten store (without a client: checks and encodes only)."""

    def __init__(self, store_row: Mapping[str, Any], client: RmsClient | None, clock: Clock):
        self.store = dict(store_row)
        self.client = client
        self.clock = clock

    @classmethod
    def offline(cls, store_row: Mapping[str, Any]) -> RakutenSession:
        return cls(store_row, None, lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def from_context(cls, context: StoreContext) -> RakutenSession:
        store_row = context.store
        name = str(store_row["name"])
        secrets = store_secrets(name, context.db_path, MALL.secrets)
        missing = secrets.missing()
        if missing:
            raise ConfigError(
                Message(
                    "store {store} has no RMS keys: set {missing}",
                    {"store": repr(name), "missing": ", ".join(missing)},
                )
            )
        credentials = Credentials(secrets.get("service_secret"), secrets.get("license_key"))
        return cls.open(store_row, credentials, context.clock, context.pace)

    @classmethod
    def open(
        cls,
        store_row: Mapping[str, Any],
        credentials: Credentials,
        clock: Clock,
        pace: Pace | None = None,
    ) -> RakutenSession:
        options = {"pace": pace, **CLIENT_OPTIONS}
        client = RmsClient(
            credentials=credentials,
            store=str(store_row["name"]),
            endpoint=str(store_row.get("endpoint") or DEFAULT_ENDPOINT),
            **options,
        )
        return cls(store_row, client, clock)

    @property
    def name(self) -> str:
        return str(self.store["name"])

    @property
    def _api(self) -> RmsClient:
        if self.client is None:
            raise RakutenError(
                _("internal: an offline Rakuten session cannot call RMS"), outcome="not_sent"
            )
        why = license.expired(self.name, license.expires_of(self.store), self._today())
        if why:  # an expired key fails every call: none is made
            raise RakutenError(why, outcome="not_sent", halt=True, code="license_expired")
        return self.client

    def _today(self) -> dt.date:
        return license.today(self.clock())

    def notices(self) -> list[Message]:
        """The licenseKey reminder, from 14 days before its recorded end."""
        text = license.warning(self.name, license.expires_of(self.store), self._today())
        return [text] if text else []

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
        errors = check_order(order, carrier, refs or {})
        if self.client is not None and not errors and not (refs or {}).get("basket_id"):
            # a run looked the basket up with getOrder before checking: RMS has no such order
            errors.append(
                Message(
                    "注文番号 (mall_order_id) {value}: RMS's getOrder does not know this order, "
                    "so its 送付先ID (basket_id) is unknown: check the order number in RMS "
                    "(受注管理), or give basket_id in the import file",
                    {"value": order.get("mall_order_id")},
                )
            )
        return OrderCheck(errors=errors, warnings=[])

    def encode(self, orders: Iterable[Prepared]) -> list[Request]:
        """Requests of at most 100 RMS orders; a split's packages are rows of one basket."""
        shipments = [shipment(p.order, p.carrier or {}, p.refs or {}) for p in orders]
        return [
            Request(
                body=request.body,
                content_type=CONTENT_TYPE,
                rows=[Row(r.record_no, r.order_no, r.order_id) for r in request.rows],
            )
            for request in encode(shipments)
        ]

    # --------------------------------------------------------------------- sending

    # the run looks up the missing basketIds of all its orders first, 100 a getOrder call
    resolve_ahead = True

    def resolve(self, orders: Sequence[dict], refs: dict[str, dict]) -> dict[str, dict]:
        """basketIds (送付先ID) the orders lack, from getOrder, 100 orders a call."""
        lacking: dict[str, list[str]] = {}
        for order in orders:
            if not str((refs.get(order["order_no"]) or {}).get("basket_id") or "").strip():
                number = str(order.get("mall_order_id") or "").strip()
                lacking.setdefault(number, []).append(order["order_no"])
        found: dict[str, dict] = {}
        numbers = list(lacking)
        for start in range(0, len(numbers), MAX_ORDERS_PER_REQUEST):
            chunk = numbers[start : start + MAX_ORDERS_PER_REQUEST]
            for number, basket in basket_ids(self._api.get_order(chunk)).items():
                for order_no in lacking.get(number, []):
                    found[order_no] = {"basket_id": basket}
        return found

    def submit(self, batch: dict, request: Request, commit: Callable[[dict], dict]) -> Accepted:
        api = self._api  # an expired key stops here, before anything is marked as sent
        # from here on RMS may hold the request: never send it again blindly
        commit({"state": "submitting", "submit_started_at": to_db(self.clock())})
        return Accepted(api.update_order_shipping_async(request.body))

    def reconcile(self, batch: dict, rows: list[Row], claimed: set[str]) -> Reconciled:
        """A lost updateOrderShippingAsync answer: after 10 minutes getOrder decides per order."""
        started = batch.get("submit_started_at")
        if started and self.clock() - from_db(started) < MALL.limits.release_after:
            return Reconciled(
                "wait",
                message=Message("RMS's rows are checked with getOrder 10 minutes after sending"),
            )
        verdicts = self._from_get_order(batch, rows, otherwise="pending")
        return Reconciled("verdicts", outcomes=[_outcome(v) for v in verdicts.values()])

    def _from_get_order(
        self, batch: Mapping[str, Any], rows: Sequence[Any], *, otherwise: str
    ) -> dict[str, Verdict]:
        sent_rows = [_sent_row(r) for r in rows]
        numbers = list(dict.fromkeys(r.order_id for r in sent_rows))
        orders: list[dict] = []
        for start in range(0, len(numbers), MAX_ORDERS_PER_REQUEST):
            orders += self._api.get_order(numbers[start : start + MAX_ORDERS_PER_REQUEST])
        return reconcile(orders, sent_rows, sent_shipments(_body(batch)), otherwise=otherwise)

    # --------------------------------------------------------------------- results

    def poll(self, batch: dict) -> Poll:
        request_id = str(batch.get("mall_id") or batch.get("feed_id") or "")
        answer = self._api.get_result(request_id)
        report = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        if not no_result_yet(answer):
            return Poll("done", "DONE", report, "utf-8")
        sent_at = batch.get("submitted_at") or batch.get("created_at")
        if not sent_at or self.clock() - from_db(sent_at) < self._deadline():
            return Poll("waiting", "INFO_101")
        # still "no result" past the deadline: RMS's rows decide (read_result asks getOrder)
        return Poll("done", PAST_DEADLINE, report, "utf-8")

    def _deadline(self) -> timedelta:
        hours = self.store.get("result_deadline_hours")
        return timedelta(hours=int(hours)) if hours else DEFAULT_DEADLINE

    def read_result(self, batch: dict, poll: Poll, rows: list[Row]) -> Result:
        notes: list[Message] = []
        if poll.processing_status == PAST_DEADLINE:
            verdicts = self._from_get_order(batch, rows, otherwise="result_failed")
            notes.append(
                Message(
                    "RMS still had no result past the deadline: getOrder showed which rows it holds"
                )
            )
        else:
            try:
                answer = json.loads((poll.report or b"").decode("utf-8"))
                sent = sent_shipments(_body(batch))
                verdicts = read_verdicts(answer, [_sent_row(r) for r in rows], sent)
            except (ValueError, ResultUnreadable) as exc:
                why = exc.kept if isinstance(exc, ResultUnreadable) else str(exc)
                raise ReportParseError(
                    Message("RMS's result cannot be read: {error}", {"error": why})
                ) from None
        successful = sum(1 for v in verdicts.values() if v.status == "success")
        return Result(
            outcomes={k: _outcome(v) for k, v in verdicts.items()},
            notes=notes,
            processed=len(verdicts),
            successful=successful,
        )

    def failure_text(self, poll: Poll) -> str:
        return ""  # RMS refuses a whole request at once, in updateOrderShippingAsync's answer

    def follow_up(self, due: Sequence[dict]) -> list[Outcome]:
        return []


# ---- helpers ---------------------------------------------------------------------------------


def _sent_row(row: Any) -> SentRow:
    if isinstance(row, Mapping):
        return SentRow(int(row["record_no"]), str(row["order_no"]), str(row["order_id"]))
    return SentRow(int(row.record_no), str(row.order_no), str(row.order_id))


def _body(batch: Mapping[str, Any]) -> bytes:
    body = batch.get("body") if batch.get("body") is not None else batch.get("feed")
    return bytes(body or b"")


def _outcome(verdict: Verdict) -> Outcome:
    return Outcome(
        order_no=verdict.order_no,
        status=Status(verdict.status),
        message=verdict.message,
        warnings=list(verdict.warnings),
        refs=dict(verdict.refs),
    )
