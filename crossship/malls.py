"""The mall behind one interface (design: /work/design/MALL_INTERFACE.md, README "How it is built").

Each mall is one package (``crossship/amazon/``, ``crossship/rakuten/``, ``crossship/yahoo/``)
exposing one ``Mall`` that declares what the mall needs — its limits, its per-store settings, its
secrets, its carrier-code fields, its mail subjects, its order-id shape — and two factories: an
offline session (check and encode orders; dry runs and exports) and a session with credentials
(resolve, submit, reconcile, poll, read the result, follow up). The malls are found through the
entry-point group ``crossship.malls``, the same hook a third-party mall would use (as llm loads its
default plugins); nothing outside a mall's package knows which mall it is.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from crossship.errors import ConfigError, UsageError
from crossship.i18n import Part, Text, _
from crossship.statuses import Status
from crossship.timeutil import Clock

ENTRY_POINT_GROUP = "crossship.malls"
SETTING_KINDS = ("text", "int", "date", "url", "choice", "path", "days_or_never")

# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Limits:
    orders_per_request: int | None  # Amazon None (bytes decide), Rakuten 100, Yahoo 1
    bytes_per_request: int | None  # Amazon 10 MiB
    calls_per_second: float  # the store's pace (Amazon paces per operation inside its client)
    release_after: timedelta  # a lost submission with no trace at the mall after this → pending


@dataclass(frozen=True)
class Setting:
    """One per-store setting of a mall, from which `config store add/set` builds its flag."""

    name: str  # a stores column (seller_id, encoding, ...) or a key of stores.mall_settings JSON
    option: str  # "--license-expires"
    help: str
    kind: str = "text"  # one of SETTING_KINDS
    choices: tuple[str, ...] = ()
    default: Any = None  # stored by `config store add` when the option is not given
    required: bool = False  # `config store add` refuses without it (Yahoo --seller-id)
    # the mall's own check of a given value (after the kind's): returns the value to store or
    # raises UsageError saying what to fix (Amazon --template: a readable UTF-8 file)
    check: Callable[[Any], Any] | None = None
    metavar: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SETTING_KINDS:
            raise ValueError(f"setting {self.name}: kind {self.kind!r} not in {SETTING_KINDS}")


@dataclass(frozen=True)
class Secret:
    name: str  # attribute on StoreSecrets: "service_secret"
    key: str  # credentials.toml key under [stores.NAME]: "service_secret"
    env_suffix: str  # CROSSSHIP_<STORE>_<env_suffix>: "RMS_SERVICE_SECRET"


@dataclass(frozen=True)
class CarrierField:
    name: str  # "rakuten_delivery_company": key in the carrier dict
    option: str  # "--rakuten-delivery-company"
    help: str
    codes: Mapping[str, str] | None = None  # valid code → name (None: free text)
    needed: bool = False  # an order of this mall whose carrier lacks it is `error`
    metavar: str = "CODE"


@dataclass(frozen=True)
class Mall:
    key: str  # stores.mall: amazon, rakuten, yahoo
    label: str  # "Amazon" | "楽天市場" | "Yahoo!ショッピング"
    limits: Limits
    settings: tuple[Setting, ...]
    secrets: tuple[Secret, ...]
    carrier_fields: tuple[CarrierField, ...]
    subjects: Mapping[str, str]  # "notify", "results" (and Yahoo "complete") → mail subject
    order_id: re.Pattern[str] | None  # shape of mall_order_id
    order_id_hint: str  # "NNNNNN-YYYYMMDD-NNNNNNNNNN", for messages
    synchronous: bool  # True: submit() finishes each request at once (Yahoo)
    open_session: Callable[[StoreContext], MallSession]  # with credentials, for runs
    offline_session: Callable[[dict], OfflineSession]  # checks and encodes only
    sandbox: Any = None  # routes for `crossship sandbox serve` (the sandbox defines the type)
    demo: Any = None  # the store, carrier codes and orders `crossship demo` uses
    # common settings' defaults `config store add` stores when not given (endpoint)
    defaults: Mapping[str, str] = field(default_factory=dict)
    fba: bool = False  # only Amazon has FBA orders
    console: str = ""  # where the seller checks an order by hand ("Seller Central", "RMS")
    # the mall's rules across its carrier fields, given its fields of one carrier (after each
    # field's own check): raises UsageError, returns warnings (Amazon: Other needs a name)
    carrier_check: Callable[[str, dict[str, str | None]], list[str]] | None = None
    manual_file: bool = False  # `export feed` writes its file for an upload by hand (Amazon)
    unit: str = "request"  # what one batch is called in messages (Amazon: "feed")
    lost_lookup: str = ""  # the call that finds a lost submission, for messages ("getFeeds")
    # credentials and keys that run out (issue 14): health(store_row, now) -> [(level, text)],
    # level "warning" (near the end) or "critical" (ended); pure: no call, no secret, no write
    health: Callable[[dict, datetime], Sequence[tuple[str, str]]] | None = None
    # `config store add/set`: the mall's own work on its settings before they are stored, given
    # the store name and the database path (Yahoo copies --public-key beside the database);
    # it may change the mall_settings dict in place
    store_saved: Callable[[str, Path, dict[str, Any]], None] | None = None

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    @property
    def where_to_check(self) -> str:
        return self.console or _("{mall}'s seller pages").format(mall=self.label)


@dataclass(frozen=True)
class StoreContext:
    """What a session with credentials gets: the store, where its secrets are, time, pace."""

    store: dict  # the stores row, with mall_settings decoded into a dict
    db_path: Path  # credentials.toml is found next to it
    clock: Clock
    pace: Pacer


# ----------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class OrderCheck:
    errors: Sequence[Part]  # what to fix; any → the order is `error`, not sent (Messages: kept)
    warnings: Sequence[Part]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a request: maps the mall's answer back to an order."""

    record_no: int  # 1-based within the request (Amazon feed row, RMS dataNumber, Yahoo 1)
    order_no: str
    order_id: str  # mall_order_id
    item_id: str = ""


@dataclass(frozen=True)
class Request:
    """One call's worth of work: what a batch records before calling."""

    body: bytes  # exactly what is sent (feed file, JSON, XML)
    content_type: str
    rows: list[Row]
    encoding: str = "utf-8"


class Prepared(NamedTuple):
    """An order that passed its checks, as ``encode`` gets it."""

    order: dict
    items: list[dict]
    carrier: dict | None
    refs: dict
    warnings: Sequence[Part]


@dataclass(frozen=True)
class Outcome:
    """What the mall said about one order."""

    order_no: str
    status: Status  # success, error, notify_failed, result_failed, pending
    message: Part = ""  # the mall's own words (code: message) kept as written, or ours
    warnings: Sequence[Part] = field(default_factory=list)
    refs: dict[str, Any] = field(default_factory=dict)  # kept in order_refs


@dataclass(frozen=True)
class Accepted:
    """The mall took the request; its result comes later (Amazon feedId, RMS requestId)."""

    mall_id: str


@dataclass(frozen=True)
class Finished:
    """The mall answered for each order at once (Yahoo)."""

    outcomes: list[Outcome]


RECONCILED_KINDS = ("adopt", "verdicts", "wait", "release", "ambiguous")


@dataclass(frozen=True)
class Reconciled:
    """What a lost submission turned out to be."""

    kind: str  # one of RECONCILED_KINDS
    mall_id: str | None = None  # adopt
    outcomes: list[Outcome] = field(default_factory=list)  # verdicts; orders not named → pending
    message: Text = ""

    def __post_init__(self) -> None:
        if self.kind not in RECONCILED_KINDS:
            raise ValueError(f"Reconciled kind {self.kind!r} not in {RECONCILED_KINDS}")


@dataclass(frozen=True)
class Poll:
    """What the mall says about an accepted batch."""

    state: str  # "waiting" | "done" | "failed" (the notification did not take effect)
    processing_status: str
    report: bytes | None = None  # kept raw on the batch before it is read
    report_charset: str | None = None
    result_document_id: str | None = None


@dataclass(frozen=True)
class Result:
    """Per-order outcomes of a finished batch.

    ``outcomes`` MUST name every order of the batch: an order the mall's result does not account
    for is ``result_failed`` with a message to check it at the mall, never assumed ``success``.
    """

    outcomes: dict[str, Outcome]
    notes: Sequence[Part] = field(default_factory=list)
    processed: int | None = None
    successful: int | None = None


class OfflineSession(Protocol):
    """Checks and encodes orders for one store; never calls the mall (dry runs, exports)."""

    def check(
        self,
        order: dict,
        items: list[dict],
        carrier: dict | None,
        *,
        is_split_parent: bool,
        refs: dict,
    ) -> OrderCheck: ...

    def encode(self, orders: Iterable[Prepared]) -> list[Request]:
        """The requests for these orders, within the mall's limits; ``orders`` may be streamed."""
        ...


class MallSession(OfflineSession, Protocol):
    """One run's conversation with one store's mall (one access token per run)."""

    @property
    def calls(self) -> Counter:
        """Calls made, by operation name (for tests and the bench)."""
        ...

    def resolve(self, orders: Sequence[dict], refs: dict[str, dict]) -> dict[str, dict]:
        """References the mall needs that the orders lack (Rakuten basketId via getOrder).

        Returns refs to store per order_no; an order still lacking one after this is `error`.
        Others: {}.
        """
        ...

    def submit(
        self, batch: dict, request: Request, commit: Callable[[dict], dict]
    ) -> Accepted | Finished:
        """Send a recorded request; ``commit(changes)`` stores the batch's state (and its
        ``mall_state`` JSON) before each call. Raises MallError."""
        ...

    def reconcile(self, batch: dict, rows: list[Row], claimed: set[str]) -> Reconciled:
        """What became of a batch whose submission answer was lost (state ``submitting``);
        ``claimed``: mall ids other batches already hold."""
        ...

    def poll(self, batch: dict) -> Poll: ...

    def read_result(self, batch: dict, poll: Poll, rows: list[Row]) -> Result:
        """Per-order outcomes; raises ReportParseError for an unreadable result."""
        ...

    def failure_text(self, poll: Poll) -> str:
        """The mall's own words on a batch that failed as a whole ("" when it gave none)."""
        ...

    def follow_up(self, due: Sequence[dict]) -> list[Outcome]:
        """results fetch: work that comes after success (Yahoo 完了 when due). Others: []."""
        ...

    # A session may also have ``close()``: the run calls it when the store's run is over,
    # whatever happened in it (500 stores leave no 500 connection pools to the garbage
    # collector). Optional, so a mall package written before it still works: see closing().


# ----------------------------------------------------------------------------- pacing


class Pacer:
    """At most ``per_second`` calls a second, on a monotonic clock (a faked or jumping wall
    clock changes nothing). ``wait()`` before each call; the session decides when to call it."""

    def __init__(
        self,
        per_second: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._monotonic = monotonic
        self._sleep = sleep
        self._next: float | None = None
        self.waited = 0.0  # seconds slept, for tests and the bench

    def wait(self) -> None:
        now = self._monotonic()
        if self._next is not None and now < self._next:
            pause = self._next - now
            self._sleep(pause)
            self.waited += pause
            now = self._next
        self._next = now + self.interval


# ----------------------------------------------------------------------------- registry

# The malls of CROSS MALL's help page whose packages are still being built (issues 12, 13): a
# store may be configured on them before its package is installed; its orders are not sent.
# Each entry goes once its package registers (the registry wins anyway).
PLANNED: dict[str, str] = {}

_lock = threading.Lock()
_loaded: dict[str, Mall] | None = None
_registered: dict[str, Mall] = {}  # tests: malls that are not installed


def _load() -> dict[str, Mall]:
    global _loaded
    with _lock:
        if _loaded is None:
            found: dict[str, Mall] = {}
            for point in entry_points(group=ENTRY_POINT_GROUP):
                mall = point.load()
                if not isinstance(mall, Mall):
                    raise ConfigError(
                        _("entry point {name} = {value} of {group} is not a crossship Mall").format(
                            name=point.name, value=point.value, group=ENTRY_POINT_GROUP
                        )
                    )
                if mall.key != point.name:
                    raise ConfigError(
                        _(
                            "entry point {name} of {group} declares mall {mall!r}: "
                            "the names must match"
                        ).format(name=point.name, group=ENTRY_POINT_GROUP, mall=mall.key)
                    )
                found[mall.key] = mall
            _loaded = found
        return _loaded


def registry() -> dict[str, Mall]:
    """Every installed mall (and any registered by a test), by key, sorted."""
    malls = {**_load(), **_registered}
    return dict(sorted(malls.items()))


def get(key: str) -> Mall:
    """The mall ``key``; a UsageError naming the known malls when there is none."""
    malls = registry()
    if key not in malls:
        raise UsageError(
            _("unknown mall {mall!r}: crossship knows {known}").format(
                mall=key, known=", ".join(malls) or _("none")
            )
        )
    return malls[key]


def find(key: str) -> Mall | None:
    return registry().get(key)


def register(mall: Mall) -> None:
    """Test-only: add a mall that is not installed (cleared by ``clear_registered``)."""
    _registered[mall.key] = mall


def clear_registered() -> None:
    _registered.clear()


def supported() -> tuple[str, ...]:
    """Keys of the malls crossship can notify (the installed ones)."""
    return tuple(registry())


def __getattr__(name: str) -> Any:
    # SUPPORTED stays importable, computed from the registry when asked
    if name == "SUPPORTED":
        return supported()
    raise AttributeError(name)


def mall_of(store_row: dict) -> Mall:
    """The store's mall; a ConfigError when that mall is not installed."""
    mall = find(store_row["mall"])
    if mall is None:
        raise ConfigError(
            _(
                "store {store!r} is on {mall}, which this crossship cannot "
                "notify (installed malls: {installed})"
            ).format(
                store=store_row["name"],
                mall=store_row["mall"],
                installed=", ".join(registry()) or _("none"),
            )
        )
    return mall


S = TypeVar("S")


class _Client(Protocol):
    calls: Counter

    def close(self) -> None: ...


C = TypeVar("C", bound=_Client)


class WithClient(Generic[C]):
    """What a session does with its mall client, or without one (offline: checks and encodes):
    counts its calls and closes it at the end of the store's run."""

    client: C | None

    @property
    def calls(self) -> Counter:
        return self.client.calls if self.client is not None else Counter()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@contextmanager
def closing(session: S) -> Iterator[S]:
    """``session`` for the store's run, closed at its end if it can be (``close()``)."""
    try:
        yield session
    finally:
        close = getattr(session, "close", None)
        if callable(close):
            close()


def open_session(context: StoreContext) -> MallSession:
    """A session for the store's mall, with its credentials."""
    return mall_of(context.store).open_session(context)


def offline_session(store_row: dict) -> OfflineSession:
    """A session that checks and encodes but never calls the mall (dry runs, exports)."""
    return mall_of(store_row).offline_session(store_row)


SessionFactory = Callable[[StoreContext], MallSession]


def context_for(store_row: dict, db_path: Path, clock: Clock) -> StoreContext:
    """The StoreContext of a run for this store, paced at its mall's rate."""
    mall = mall_of(store_row)
    return StoreContext(store_row, Path(db_path), clock, Pacer(mall.limits.calls_per_second))
