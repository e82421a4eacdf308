"""Amazon behind the mall interface: checks and feed from ``feed``, calls through ``client``,
results through ``report``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from crossship.amazon import MALL
from crossship.amazon import feed as amazon_feed
from crossship.amazon.client import (
    DEFAULT_ENDPOINT,
    DEFAULT_TOKEN_URL,
    FEED_TYPE,
    JP_MARKETPLACE,
    SAFE_ID,
    AmazonClient,
    Credentials,
    check_url,
)
from crossship.amazon.report import SentRow, decode_report, outcomes, parse_report
from crossship.errors import AmazonError, ConfigError, CrossshipError, ReportParseError
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
from crossship.secrets import store_secrets
from crossship.timeutil import Clock, from_db, to_db

WAITING = ("IN_QUEUE", "IN_PROGRESS")
# extra AmazonClient keyword arguments for every session a run opens (tests: instant backoff)
CLIENT_OPTIONS: dict[str, Any] = {}


class AmazonSession(WithClient[AmazonClient]):
    """One run's work with one Amazon store: one client, so one access token per run."""

    def __init__(self, store_row: dict, client: AmazonClient | None, clock: Clock):
        # without a client the session only checks and renders (dry runs, exports)
        self.store = store_row
        self.client = client
        self.clock = clock
        self.encoding = store_row.get("encoding") or "utf-8"
        self.content_type = amazon_feed.content_type(self.encoding)
        self.marketplace = store_row.get("marketplace_id") or JP_MARKETPLACE
        self.renderer = amazon_feed.FeedRenderer(self.encoding, store_row.get("template") or None)

    @classmethod
    def open(cls, context: StoreContext) -> AmazonSession:
        store_row = context.store
        endpoint = check_url(store_row.get("endpoint") or DEFAULT_ENDPOINT, "endpoint")
        token_url = check_url(store_row.get("token_url") or DEFAULT_TOKEN_URL, "token URL")
        secrets = store_secrets(store_row["name"], context.db_path, MALL.secrets)
        missing = secrets.missing()
        if missing:
            raise ConfigError(
                _("store {store} has no Amazon credentials: set {missing}").format(
                    store=repr(store_row["name"]), missing=", ".join(missing)
                )
            )
        credentials = Credentials(  # missing() is empty: all three are set
            client_id=secrets.get("client_id"),
            client_secret=secrets.get("client_secret"),
            refresh_token=secrets.get("refresh_token"),
        )
        client = AmazonClient(
            credentials=credentials,
            endpoint=endpoint,
            token_url=token_url,
            clock=context.clock,
            **CLIENT_OPTIONS,
        )
        return cls(store_row, client, context.clock)

    def now(self) -> datetime:
        """Amazon's clock (learned from its answers; ours until it answered)."""
        return self.client.now() if self.client else self.clock()

    @property
    def _api(self) -> AmazonClient:
        if self.client is None:
            raise CrossshipError(_("internal: an offline Amazon session cannot call Amazon"))
        return self.client

    # --------------------------------------------------------------------- checking, encoding

    def check(
        self,
        order: dict,
        items: list[dict],
        carrier: dict | None,
        *,
        is_split_parent: bool,
        refs: dict | None = None,
    ) -> OrderCheck:
        found = amazon_feed.check_order(
            order, items, carrier, self.encoding, is_split_parent=is_split_parent
        )
        return OrderCheck(errors=list(found.errors), warnings=list(found.warnings))

    def encode(self, orders: Iterable[Prepared]) -> list[Request]:
        """One feed, or several when one would pass Amazon's 10 MiB (an order never split)."""
        lines: list[amazon_feed.FeedLine] = []
        for prepared in orders:
            lines.extend(amazon_feed.feed_lines(prepared.order, prepared.items, prepared.carrier))
        if not lines:
            return []
        return [
            Request(
                body=data,
                content_type=self.content_type,
                rows=[
                    Row(number, line.order_no, line.order_id, line.order_item_id)
                    for number, line in enumerate(part, start=1)
                ],
                encoding=self.encoding,
            )
            for data, part in self.render(lines)
        ]

    def render(self, lines: Sequence) -> list[tuple[bytes, list]]:
        return self.renderer.split(lines)

    def resolve(self, orders: Sequence[dict], refs: dict[str, dict]) -> dict[str, dict]:
        return {}  # an Amazon feed needs nothing the order lacks

    # --------------------------------------------------------------------- sending

    def submit(self, batch: dict, request: Request, commit: Callable[[dict], dict]) -> Accepted:
        document = self._api.create_feed_document(request.content_type)
        commit({"state": "document_created", "feed_document_id": document["feedDocumentId"]})
        self._api.upload(document["url"], request.body, request.content_type)
        commit({"state": "uploaded"})
        # from here on Amazon may hold a feed for this batch: never send it again blindly. The
        # moment is kept on Amazon's clock: only feeds created at or after it can be this batch's
        commit({"state": "submitting", "submit_started_at": to_db(self.now())})
        feed_id = self._api.create_feed(
            document["feedDocumentId"], feed_type=FEED_TYPE, marketplace_ids=(self.marketplace,)
        )
        return Accepted(feed_id)

    def reconcile(self, batch: dict, rows: list[Row], claimed: set[str]) -> Reconciled:
        """Feeds that could be this batch: created (on Amazon's clock) at or after the moment it
        entered ``submitting``, of our type, owned by no other batch. A feed created before then
        is someone else's (another system, an upload by hand) and is never adopted."""
        self._api.learn_time()
        started = from_db(batch["submit_started_at"])
        # seconds floored: createdTime has whole seconds. Never after Amazon's now, which
        # getFeeds refuses with a 400 (a clock that moved must not hide the feed)
        since = min(started, self.now()).replace(microsecond=0)
        feeds = self._api.get_feeds(
            created_since=since, feed_types=(FEED_TYPE,), marketplace_ids=(self.marketplace,)
        )
        candidates = [
            f["feedId"]
            for f in feeds
            if isinstance(f.get("feedId"), str)
            and SAFE_ID.fullmatch(f["feedId"])  # a hostile id is never ours, never stored
            and f["feedId"] not in claimed
            and f.get("feedType", FEED_TYPE) == FEED_TYPE
            and not _created_before(f, since)
        ]
        if len(candidates) == 1:
            return Reconciled(
                "adopt",
                mall_id=candidates[0],
                message=Message(
                    "its lost submission was found at Amazon as feed {feed_id}",
                    {"feed_id": candidates[0]},
                ),
            )
        if candidates:
            return Reconciled(
                "ambiguous",
                message=Message(
                    "Amazon shows {count} feeds that could be this batch ({feed_ids}): check the "
                    "orders in Seller Central",
                    {"count": len(candidates), "feed_ids": ", ".join(candidates)},
                ),
            )
        if self.now() - started >= MALL.limits.release_after:  # both on Amazon's clock
            return Reconciled(
                "release",
                message=Message(
                    "Amazon never created a feed for this batch; back to 未連携 to be sent again"
                ),
            )
        return Reconciled(
            "wait",
            message=Message(
                "no feed at Amazon yet for its lost submission; checked again next run"
            ),
        )

    def follow_up(self, due: Sequence[dict]) -> list[Outcome]:
        return []  # nothing comes after a confirmed Amazon shipment

    # --------------------------------------------------------------------- results

    def poll(self, batch: dict) -> Poll:
        feed = self._api.get_feed(batch["feed_id"])
        status = feed.get("processingStatus", "")
        document_id = feed.get("resultFeedDocumentId")
        if status in WAITING:
            return Poll("waiting", status)
        if status not in ("DONE", "FATAL", "CANCELLED"):
            return Poll("waiting", status or "UNKNOWN")
        report = charset = None
        if document_id:
            document = self._api.get_feed_document(document_id)
            report, charset = self._api.download(
                document["url"], document.get("compressionAlgorithm")
            )
            if status == "DONE" and not report.strip():
                # a DONE report always has its summary: nothing means the download was cut
                # (a truncated Content-Encoding: gzip decodes to nothing), so fetch it again
                raise AmazonError(
                    _("download: the processing report {document_id} came empty").format(
                        document_id=document_id
                    ),
                    outcome="not_sent",
                    operation="download",
                )
        state = "done" if status == "DONE" else "failed"
        return Poll(state, status, report, charset, document_id)

    def read_result(self, batch: dict, poll: Poll, rows: list[Row]) -> Result:
        parsed = parse_report(decode_report(poll.report or b"", poll.report_charset))
        sent = [SentRow(r.record_no, r.order_no, r.order_id, r.item_id or "") for r in rows]
        found = outcomes(parsed, sent)
        return Result(
            outcomes={
                o.order_no: Outcome(o.order_no, o.status, o.message, list(o.warnings))
                for o in found.orders.values()
            },
            notes=list(found.notes),
            processed=parsed.processed,
            successful=parsed.successful,
        )

    def failure_text(self, poll: Poll) -> str:
        """Amazon's messages for a FATAL or CANCELLED feed, when it left a report."""
        if not poll.report:
            return ""
        try:
            parsed = parse_report(decode_report(poll.report, poll.report_charset))
        except ReportParseError:  # a broken report must not hide the feed's failure itself
            return decode_report(poll.report, poll.report_charset)[:500]
        return "; ".join(f"{r.code}: {r.message}" for r in parsed.rows)


def _created_before(feed: dict, since: datetime) -> bool:
    """True when the feed's createdTime is before ``since`` (an unreadable time is kept)."""
    text = feed.get("createdTime")
    if not isinstance(text, str):
        return False
    try:
        created = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return created.tzinfo is not None and created < since
