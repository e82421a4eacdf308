"""The mall behind one interface.

A run is select → check → render → send → record. Only checking an order for the mall, rendering
its file, sending it and reading the result differ per mall; each mall is one module that
implements ``MallSession``. Amazon is the first; Rakuten and Yahoo!ショッピング come next.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from crossship.errors import ConfigError
from crossship.statuses import Status
from crossship.timeutil import Clock


@dataclass(frozen=True)
class OrderCheck:
    errors: list[str]
    warnings: list[str]


class FeedLineLike(Protocol):
    order_no: str
    order_id: str
    order_item_id: str


@dataclass(frozen=True)
class Poll:
    """What the mall says about a submitted batch."""

    state: str  # "waiting", "done", "failed" (the notification did not take effect)
    processing_status: str
    report: bytes | None = None
    report_charset: str | None = None
    result_document_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    order_no: str
    status: Status  # success, error or result_failed
    message: str
    warnings: list[str]


@dataclass(frozen=True)
class Result:
    orders: dict[str, Outcome]
    notes: list[str]
    processed: int | None = None
    successful: int | None = None


class MallSession(Protocol):
    """One run's conversation with one store's mall (one access token per run)."""

    encoding: str
    content_type: str

    @property
    def calls(self) -> Counter: ...

    def check(
        self, order: dict, items: list[dict], carrier: dict | None, *, is_split_parent: bool
    ) -> OrderCheck: ...

    def lines(self, order: dict, items: list[dict], carrier: dict | None) -> list[FeedLineLike]: ...

    def render(self, lines: Sequence[FeedLineLike]) -> list[tuple[bytes, list[FeedLineLike]]]: ...

    def submit(self, batch: dict, commit: Callable[[dict], dict]) -> str:
        """Send a recorded batch; ``commit(changes)`` stores its state before each call.

        Returns the mall's id for the batch (Amazon's feedId).
        """
        ...

    def now(self) -> datetime:
        """The mall's clock, as its answers told it (the run's clock until one did)."""
        ...

    def find_lost(self, batch: dict, claimed: set[str]) -> list[str]:
        """Ids at the mall that could be this batch, whose submission answer was lost."""
        ...

    def poll(self, batch: dict) -> Poll: ...

    def failure_text(self, poll: Poll) -> str:
        """The mall's own words on a batch that failed as a whole ("" when it gave none)."""
        ...

    def read_result(self, poll: Poll, sent: Sequence[dict]) -> Result:
        """Per-order outcomes of a finished batch; raises ReportParseError for an unreadable report.

        ``sent`` is the batch's row map (record_no, order_no, order_id, item_id).
        """
        ...


SessionFactory = Callable[[dict, Path, Clock], MallSession]

SUPPORTED = ("amazon",)


def open_session(store_row: dict, db_path: Path, clock: Clock) -> MallSession:
    """A session for the store's mall, with its credentials."""
    if store_row["mall"] == "amazon":
        from crossship.amazon.mall import AmazonSession

        return AmazonSession.open(store_row, db_path, clock)
    raise ConfigError(
        f"store {store_row['name']!r} is a {store_row['mall']} store: automatic notification "
        "supports Amazon stores only so far"
    )


def offline_session(store_row: dict) -> MallSession:
    """A session that checks and renders but never calls the mall (dry runs, exports)."""
    if store_row["mall"] == "amazon":
        from crossship.amazon.mall import AmazonSession

        return AmazonSession(store_row, None, clock=lambda: None)  # type: ignore[arg-type,return-value]
    raise ConfigError(
        f"store {store_row['name']!r} is a {store_row['mall']} store: not supported yet"
    )
