"""Amazon behind the mall interface: checks and feed from ``feed``, calls through ``client``,
results through ``report``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from crossship.amazon import feed as amazon_feed
from crossship.amazon.client import (
    DEFAULT_ENDPOINT,
    DEFAULT_TOKEN_URL,
    FEED_TYPE,
    JP_MARKETPLACE,
    AmazonClient,
    Credentials,
    check_url,
)
from crossship.amazon.report import SentRow, decode_report, outcomes, parse_report
from crossship.errors import AmazonError, ConfigError, CrossshipError, ReportParseError
from crossship.malls import OrderCheck, Outcome, Poll, Result
from crossship.secrets import store_secrets
from crossship.timeutil import Clock, from_db, to_db

WAITING = ("IN_QUEUE", "IN_PROGRESS")
# extra AmazonClient keyword arguments for every session a run opens (tests: instant backoff)
CLIENT_OPTIONS: dict[str, Any] = {}


class AmazonSession:
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
    def open(cls, store_row: dict, db_path: Path, clock: Clock) -> AmazonSession:
        endpoint = check_url(store_row.get("endpoint") or DEFAULT_ENDPOINT, "endpoint")
        token_url = check_url(store_row.get("token_url") or DEFAULT_TOKEN_URL, "token URL")
        secrets = store_secrets(store_row["name"], db_path)
        missing = secrets.missing()
        if missing:
            raise ConfigError(
                f"store {store_row['name']!r} has no Amazon credentials: set " + ", ".join(missing)
            )
        credentials = Credentials(  # missing() is empty: all three are set
            client_id=secrets.client_id or "",
            client_secret=secrets.client_secret or "",
            refresh_token=secrets.refresh_token or "",
        )
        client = AmazonClient(
            credentials=credentials,
            endpoint=endpoint,
            token_url=token_url,
            clock=clock,
            **CLIENT_OPTIONS,
        )
        return cls(store_row, client, clock)

    @property
    def calls(self) -> Counter:
        return self.client.calls if self.client else Counter()

    def now(self) -> datetime:
        """Amazon's clock (learned from its answers; ours until it answered)."""
        return self.client.now() if self.client else self.clock()

    @property
    def _api(self) -> AmazonClient:
        if self.client is None:
            raise CrossshipError("internal: an offline Amazon session cannot call Amazon")
        return self.client

    # --------------------------------------------------------------------- checking, rendering

    def check(
        self, order: dict, items: list[dict], carrier: dict | None, *, is_split_parent: bool
    ) -> OrderCheck:
        found = amazon_feed.check_order(
            order, items, carrier, self.encoding, is_split_parent=is_split_parent
        )
        return OrderCheck(errors=list(found.errors), warnings=list(found.warnings))

    def lines(self, order: dict, items: list[dict], carrier: dict | None) -> list:
        return amazon_feed.feed_lines(order, items, carrier)

    def render(self, lines: Sequence) -> list[tuple[bytes, list]]:
        return self.renderer.split(lines)

    # --------------------------------------------------------------------- sending

    def submit(self, batch: dict, commit: Callable[[dict], dict]) -> str:
        document = self._api.create_feed_document(self.content_type)
        commit({"state": "document_created", "feed_document_id": document["feedDocumentId"]})
        self._api.upload(document["url"], batch["feed"], self.content_type)
        commit({"state": "uploaded"})
        # from here on Amazon may hold a feed for this batch: never send it again blindly. The
        # moment is kept on Amazon's clock: only feeds created at or after it can be this batch's
        commit({"state": "submitting", "submit_started_at": to_db(self.now())})
        return self._api.create_feed(
            document["feedDocumentId"], feed_type=FEED_TYPE, marketplace_ids=(self.marketplace,)
        )

    def find_lost(self, batch: dict, claimed: set[str]) -> list[str]:
        """Feeds that could be this batch: created (on Amazon's clock) at or after the moment it
        entered ``submitting``, of our type, owned by no other batch. A feed created before then
        is someone else's (another system, an upload by hand) and is never adopted."""
        self._api.learn_time()
        # seconds floored: createdTime has whole seconds. Never after Amazon's now, which
        # getFeeds refuses with a 400 (a clock that moved must not hide the feed)
        since = min(from_db(batch["submit_started_at"]), self.now()).replace(microsecond=0)
        feeds = self._api.get_feeds(
            created_since=since, feed_types=(FEED_TYPE,), marketplace_ids=(self.marketplace,)
        )
        return [
            f["feedId"]
            for f in feeds
            if f["feedId"] not in claimed
            and f.get("feedType", FEED_TYPE) == FEED_TYPE
            and not _created_before(f, since)
        ]

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
                    f"download: the processing report {document_id} came empty",
                    outcome="not_sent",
                    operation="download",
                )
        state = "done" if status == "DONE" else "failed"
        return Poll(state, status, report, charset, document_id)

    def read_result(self, poll: Poll, sent: Sequence[dict]) -> Result:
        parsed = parse_report(decode_report(poll.report or b"", poll.report_charset))
        rows = [
            SentRow(
                record_no=r["record_no"],
                order_no=r["order_no"],
                order_id=r["order_id"],
                order_item_id=r["item_id"] or "",
            )
            for r in sent
        ]
        found = outcomes(parsed, rows)
        return Result(
            orders={
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
