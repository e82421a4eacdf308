"""What the operator does by hand (SPEC §6; CROSS MALL help: Amazon自動出荷通知, 5-1, 6 and 7):
read the history, change an order's API status, export the feed for an upload in Seller Central.

Click-free: functions take the Store and plain values and return what happened; the CLI prints it.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from crossship import i18n, malls
from crossship.errors import ConfigError, CrossshipError, UsageError
from crossship.i18n import N_, Message, _
from crossship.malls import offline_session
from crossship.output import csv_field
from crossship.prepare import prepare
from crossship.shell import word as q
from crossship.statuses import LABELS, Status, parse_status
from crossship.store import HistoryFilter, StatusChange, Store
from crossship.timeutil import from_db, local_iso, parse_moment, to_db

# ------------------------------------------------------------------------------------ history

HISTORY_FIELDS = (
    "time",
    "store",
    "order_no",
    "mall_order_id",
    "batch_id",
    "feed_id",
    "status",
    "status_label",
    "warning",
    "message",
    "source",
    "operator",
)
_LABEL_TEXT = {status.value: label for status, label in LABELS.items()}
_STORED_LENGTH = len(to_db(datetime(2000, 1, 1).astimezone()))  # to_db's fixed width
_BY_MINUTE = ("<by minute>", "")  # marker: this hour is converted minute by minute
_CACHE_LIMIT = 4096  # rows come newest first, so a small cache holds the current hours
_TIME_END = 9 + _STORED_LENGTH  # where the stored time ends in '{"time":"<stored>",...'
_SAMPLE_EVERY = timedelta(hours=6)  # offsets last months between changes, never hours
_SAMPLE_SPAN = timedelta(days=366 * 30)


class LocalTimes:
    """Stored UTC times (``to_db`` text) as ``local_iso`` gives them, for a million rows cheaply.

    The local offset is the same over a whole UTC hour (a minute, in zones like +05:30), so one
    real conversion per hour is reused by splicing the row's own minutes and seconds into it.
    An hour that holds an offset change, or a time not in ``to_db``'s shape, is converted whole.
    """

    def __init__(self) -> None:
        self._spans: dict[str, tuple[str, str] | None] = {}
        self._heads: dict[bytes, tuple[bytes, bytes] | None] = {}

    def __call__(self, stored: str | None) -> str:
        """``local_iso(stored)``."""
        if not stored:
            return ""
        if len(stored) != _STORED_LENGTH or not stored.endswith("+00:00"):
            return local_iso(stored)
        cut = 13
        span = self._span(stored[:cut])
        if span is _BY_MINUTE:
            cut = 16
            span = self._span(stored[:cut])
        if span is None:
            return local_iso(stored)
        return span[0] + stored[cut:19] + span[1]

    def json_line(self, line: bytes) -> bytes:
        """A JSON object from ``Store.history_json_chunks`` (stored ``time`` first) with its time
        made local."""
        # '{"time":"' is 9 bytes, then to_db's 32, ending +00:00, then the closing quote
        shaped = len(line) > _TIME_END and line[_TIME_END] == 0x22  # '"'
        if shaped and line.startswith(b'+00:00"', _TIME_END - 6):
            key = line[9:22]
            try:
                head = self._heads[key]
            except KeyError:
                head = self._head(key)
            if head is not None:
                return head[0] + line[22:28] + head[1] + line[_TIME_END + 1 :]
        end = line.index(b'"', 9)
        local = self(line[9:end].decode()).encode()
        return line[:9] + local + line[end:]

    def _span(self, key: str) -> tuple[str, str] | None:
        try:
            return self._spans[key]
        except KeyError:
            if len(self._spans) >= _CACHE_LIMIT:
                self._spans.clear()
            span = self._spans[key] = _span(key)
            return span

    def _head(self, key: bytes) -> tuple[bytes, bytes] | None:
        span = self._span(key.decode())
        head = None
        if span is not None and span is not _BY_MINUTE:
            head = (b'{"time":"' + span[0].encode(), span[1].encode() + b'"')
        if len(self._heads) >= _CACHE_LIMIT:
            self._heads.clear()
        self._heads[key] = head
        return head


def _span(key: str) -> tuple[str, str] | None:
    """For a UTC hour (``YYYY-MM-DDTHH``) or minute (``...THH:MM``): its local text up to the same
    place and the offset; ``_BY_MINUTE`` when the offset is not whole hours; None when the offset
    changes inside it."""
    by_hour = len(key) == 13
    start = datetime.fromisoformat(key + (":00:00" if by_hour else ":00") + "+00:00")
    width = timedelta(hours=1) if by_hour else timedelta(minutes=1)
    first = start.astimezone()
    last = (start + width - timedelta(microseconds=1)).astimezone()
    offset = first.utcoffset()
    if offset is None or offset != last.utcoffset() or offset.total_seconds() % 60:
        return None
    if by_hour and offset.total_seconds() % 3600:
        return _BY_MINUTE
    iso = first.isoformat(timespec="seconds")
    return iso[: len(key)], iso[19:]


def history_filter(
    store: Store,
    *,
    store_name: str | None = None,
    order_no: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    warnings_only: bool = False,
    now: datetime,
) -> HistoryFilter:
    """The history filter from the command line's words; unknown names are refused."""
    if store_name:
        store.get_store(store_name)
    if order_no:
        store.get_order(order_no)
    start = parse_moment(since, now=now, option="--since") if since else None
    end = parse_moment(until, now=now, option="--until") if until else None
    if start and end and start > end:
        raise UsageError(
            _("--since {since} is after --until {until}: nothing can match").format(
                since=since, until=until
            )
        )
    if limit is not None and limit < 1:
        raise UsageError(_("--limit must be 1 or more"))
    return HistoryFilter(
        store=store_name or None,
        order_no=order_no or None,
        status=parse_status(status).value if status else None,
        since=to_db(start) if start else None,
        until=to_db(end) if end else None,
        warnings_only=warnings_only,
        limit=limit,
    )


def history_rows(store: Store, f: HistoryFilter) -> Iterator[dict]:
    """History rows, newest first, as HISTORY_FIELDS dicts (time local, warning a bool)."""
    local = LocalTimes()
    for row in store.iter_history(f, i18n.current()):
        row["time"] = local(row["time"])
        row["status_label"] = _LABEL_TEXT.get(row["status"], "")
        row["warning"] = bool(row["warning"])
        yield row


def history_json(store: Store, f: HistoryFilter) -> Iterator[list[bytes]]:
    """History rows, newest first, in chunks of UTF-8 JSON objects with HISTORY_FIELDS.

    SQLite writes each object. When the machine's offset is the same over the whole history
    (always, in zones without daylight saving time) SQLite writes the local time too; otherwise
    each time is made local here.
    """
    offset = fixed_offset(*store.history_time_span())
    chunks = store.history_json_chunks(f, _LABEL_TEXT, offset=offset, language=i18n.current())
    if offset is not None:
        yield from chunks
        return
    fix = LocalTimes().json_line
    for chunk in chunks:
        yield [fix(line) for line in chunk]


def history_csv(store: Store, f: HistoryFilter, delimiter: str = ",") -> Iterator[list[bytes]]:
    """History rows, newest first, in chunks of UTF-8 CSV (or TSV) lines without their "\n",
    byte for byte what Python's csv writer makes of ``history_rows`` (the header is the caller's).

    SQLite writes each line; the time too when the machine's offset is one over the whole
    history, else each time is made local here, as for ``history_json``.
    """
    offset = fixed_offset(*store.history_time_span())
    chunks = store.history_csv_chunks(
        f, _LABEL_TEXT, offset=offset, delimiter=delimiter, language=i18n.current()
    )
    if offset is not None:
        for rows in chunks:
            yield [line for (line,) in rows]
        return
    local = LocalTimes()
    sep = delimiter.encode()
    for chunk in chunks:
        yield [
            csv_field(local(time.decode() if time else None), delimiter).encode() + sep + rest
            for time, rest in chunk
        ]


def fixed_offset(first: str | None, last: str | None) -> timedelta | None:
    """The machine's UTC offset if it is one and the same, in whole minutes, from ``first`` to
    ``last`` (stored times); else None."""
    if not first or not last:
        return None
    start, end = from_db(first), from_db(last)
    if end - start > _SAMPLE_SPAN:
        return None
    offsets = {end.astimezone().utcoffset()}
    moment = start
    while moment < end and len(offsets) == 1:
        offsets.add(moment.astimezone().utcoffset())
        moment += _SAMPLE_EVERY
    offset = offsets.pop()
    if offsets or offset is None or offset.total_seconds() % 60:
        return None
    return offset


# ------------------------------------------------------------------------------------ status set

SETTABLE = (Status.PENDING, Status.SUCCESS)


@dataclass(frozen=True)
class OrderNote:
    """Why an order was refused, or what the operator should know about it."""

    order_no: str
    text: i18n.Text  # Messages: the mall's checks (shown in the reader's language)


@dataclass(frozen=True)
class ChangedOrder:
    order_no: str
    old: Status
    new: Status
    phase: str  # where the order is now
    moved_from: str | None = None  # its phase before --move-to (None: not moved)


@dataclass
class StatusSetResult:
    to: Status
    move_to: str | None
    changed: list[ChangedOrder] = field(default_factory=list)
    refused: list[OrderNote] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # changed, but the operator should know


def default_operator() -> str:
    """The login name, for the history's operator column."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return os.environ.get("USER") or "unknown"


def order_numbers(words: Iterable[str], stdin_text: str | None = None) -> list[str]:
    """Order numbers from arguments, ``-`` standing for ``stdin_text`` (whitespace-separated);
    duplicates dropped, first order kept."""
    found: list[str] = []
    for word in words:
        if word == "-":
            found.extend((stdin_text or "").split())
        elif word.strip():
            found.append(word.strip())
    if not found:
        raise UsageError(
            _("give at least one order number (管理番号), or - to read them from stdin")
        )
    return list(dict.fromkeys(found))


def set_statuses(
    store: Store,
    order_nos: Sequence[str],
    to: str,
    *,
    move_to: str | None = None,
    operator: str | None = None,
    reason: str | None = None,
    now: datetime,
) -> StatusSetResult:
    """Change the API status of orders by hand, and move them.

    CROSS MALL help: Amazon自動出荷通知, 6 and 7 方法1.

    Refused per order, with the reason: unknown orders, orders of non-Amazon stores, FBA orders,
    orders 連携中 (in_progress), and with ``move_to`` a phase that requires a ship date for an
    order without one. The others change in one transaction, each with a history row (source
    ``manual``, the operator, a message with the old and new status).
    """
    new = parse_status(to, allowed=SETTABLE)
    operator = (operator if operator is not None else default_operator()).strip()
    if not operator:
        raise UsageError(_("--operator must not be empty"))
    reason = (reason or "").strip() or None
    result = StatusSetResult(to=new, move_to=move_to)
    stamp = to_db(now)
    # BEGIN IMMEDIATE: a notify run cannot make an order 連携中 between the check and the change
    with store.immediate():
        phase = store.get_phase(move_to) if move_to else None
        orders = store.find_orders(order_nos)
        store_malls = {s["name"]: s["mall"] for s in store.list_stores()}
        targets = {(t["store"], t["phase"]) for t in store.list_targets()}
        changes: list[StatusChange] = []
        moves: dict[str, str] = {}
        for order_no in order_nos:
            order = orders.get(order_no)
            why = _refusal(order, store_malls, phase) if order else _("no such order (管理番号)")
            if why or order is None:
                result.refused.append(OrderNote(order_no, why or ""))
                continue
            old = Status(order["status"])
            moved_from = None
            if phase is not None and order["phase"] != phase["name"]:
                moved_from = order["phase"]
                moves[order_no] = phase["name"]
            where = phase["name"] if phase is not None else order["phase"]
            changes.append(
                StatusChange(order_no, new, _manual_message(old, new, moved_from, where, reason))
            )
            result.changed.append(ChangedOrder(order_no, old, new, where, moved_from))
            if new is Status.PENDING:
                result.notes.extend(_not_sent_notes(order, where, targets))
        if changes:
            store.change_statuses(
                changes, now=stamp, source="manual", operator=operator, move_to=moves
            )
    return result


def _manual_message(
    old: Status, new: Status, moved_from: str | None, phase: str, reason: str | None
) -> Message:
    """The history message of a status set by hand, kept with its key."""
    if moved_from is None:
        key = N_("manual: {old} → {new} ({reason})") if reason else N_("manual: {old} → {new}")
    elif reason:
        key = N_("manual: {old} → {new}, 処理フェーズ {moved_from} → {phase} ({reason})")
    else:
        key = N_("manual: {old} → {new}, 処理フェーズ {moved_from} → {phase}")
    args = {"old": old.label, "new": new.label}
    if moved_from is not None:
        args |= {"moved_from": moved_from, "phase": phase}
    if reason:
        args["reason"] = reason
    return Message(key, args)


def _refusal(order: dict, store_malls: dict[str, str], phase: dict | None) -> str | None:
    mall = store_malls.get(order["store"], "?")
    if malls.find(mall) is None:
        return _(
            "an order of {store!r}, a {mall} store: the API status is kept only for "
            "the malls this crossship notifies ({installed})"
        ).format(store=order["store"], mall=mall, installed=", ".join(malls.registry()))
    if order["fba"]:
        return _("an FBA order (fulfilled by Amazon): crossship never notifies it")
    if order["status"] == Status.IN_PROGRESS:
        return _(
            "連携中 (in_progress) in batch {batch_id}: Amazon has not finished it; "
            "wait for `{fetch}` (see `{show}`)"
        ).format(
            batch_id=order["batch_id"],
            fetch="crossship results fetch",
            show=f"crossship batches show {order['batch_id']}",
        )
    if phase is not None and phase["ship_date"] == "required" and not order["ship_date"]:
        return _(
            "no ship date (発送日) and phase {phase!r} requires one (発送日設定=必須): "
            "set it with `{command}` first"
        ).format(
            phase=phase["name"],
            command=f"crossship orders update {q(order['order_no'])} --ship-date YYYY-MM-DD",
        )
    return None


def _not_sent_notes(order: dict, phase: str, targets: set[tuple[str, str]]) -> list[str]:
    """Why an order set 未連携 will still not be sent automatically (SPEC §3)."""
    order_no, notes = order["order_no"], []
    if (order["store"], phase) not in targets:
        notes.append(
            _(
                "{order_no}: phase {phase!r} is not a target phase of {store!r}: it is not "
                "sent until it moves into one (--move-to PHASE)"
            ).format(order_no=order_no, phase=phase, store=order["store"])
        )
    if order["category"] != "normal":
        notes.append(
            _("{order_no}: 管理区分 is {category}, not normal: it is not sent").format(
                order_no=order_no, category=order["category"]
            )
        )
    if order["bundle_parent"]:
        notes.append(
            _("{order_no}: bundled into {parent} (同梱子注文): only the parent is sent").format(
                order_no=order_no, parent=order["bundle_parent"]
            )
        )
    return notes


# ------------------------------------------------------------------------------------ export feed


@dataclass
class ExportResult:
    store: str
    feeds: list[bytes] = field(default_factory=list)  # one, or several above Amazon's 10 MiB
    order_nos: list[str] = field(default_factory=list)  # exported, in feed order
    rows: int = 0
    refused: list[OrderNote] = field(default_factory=list)  # not exported: the operator must act
    warnings: list[OrderNote] = field(default_factory=list)  # exported, with these warnings
    # --phase: skipped kinds (FBA, BUNDLED or a 管理区分), with counts
    left_out: Counter = field(default_factory=Counter)


def export_feed(
    store: Store,
    store_name: str,
    *,
    phase: str | None = None,
    order_nos: Sequence[str] = (),
) -> ExportResult:
    """The flat file `notify run` would send for these orders, changing nothing.

    CROSS MALL help: Amazon自動出荷通知, 6 and 7 方法2.

    With ``phase``: every order of the store in that phase, whatever its API status, but for FBA
    orders, bundled children and orders whose 管理区分 is not normal (counted in ``left_out``).
    With order numbers: those orders; any that cannot be exported is refused with the reason.
    Orders failing the mall's checks are refused too; the others are rendered exactly as
    `notify run` renders them (order-number order, same checks, same template).
    """
    if phase and order_nos:
        raise UsageError(_("give either --phase PHASE or order numbers (管理番号), not both"))
    if not phase and not order_nos:
        raise UsageError(_("give either --phase PHASE or order numbers (管理番号)"))
    row = store.get_store(store_name)
    mall = malls.find(row["mall"])
    if mall is None or not mall.manual_file:
        raise ConfigError(
            _(
                "store {store!r} is a {mall} store: `export feed` writes Amazon's flat "
                "file (CROSS MALL help 7 方法2) only"
            ).format(store=store_name, mall=row["mall"])
        )
    session = offline_session(row)
    result = ExportResult(store=store_name)
    chosen: list[dict] = []
    if phase:
        store.get_phase(phase)
        for order in store.iter_orders(store=store_name, phase=phase):
            kind = _left_out(order)
            if kind:
                result.left_out[kind] += 1
            else:
                chosen.append(order)
        if not chosen and not result.left_out:
            raise CrossshipError(
                _("no orders of store {store!r} in phase {phase!r}").format(
                    store=store_name, phase=phase
                )
            )
    else:
        found = store.find_orders(order_nos)
        for order_no in order_nos:
            named = found.get(order_no)
            why = _export_refusal(named, store_name) if named else _("no such order (管理番号)")
            if why or named is None:
                result.refused.append(OrderNote(order_no, why or ""))
            else:
                chosen.append(named)
        chosen.sort(key=lambda o: o["order_no"])  # the order `notify run` renders them in
    if not chosen:
        return result
    prepared = prepare(store, session, chosen)
    result.refused.extend(OrderNote(o["order_no"], message) for o, message in prepared.errors)
    result.warnings.extend(OrderNote(order_no, w) for order_no, w in prepared.warnings)
    for order in prepared.ready:
        if order["status"] == Status.IN_PROGRESS:
            result.warnings.append(
                OrderNote(
                    order["order_no"],
                    _("連携中 (in_progress): batch {batch_id} already sent it to Amazon").format(
                        batch_id=order["batch_id"]
                    ),
                )
            )
        result.order_nos.append(order["order_no"])
    if prepared.requests:
        result.rows = prepared.rows
        result.feeds = [request.body for request in prepared.requests]
    return result


FBA, BUNDLED = "fba", "bundled"  # kinds left out; any other kind is a 管理区分


def _left_out(order: dict) -> str | None:
    if order["fba"]:
        return FBA
    if order["bundle_parent"]:
        return BUNDLED
    if order["category"] != "normal":
        return str(order["category"])
    return None


def left_out_text(kind: str, count: int) -> str:
    """``Left out 3 FBA orders.``: what an export by phase skipped, for people."""
    if kind == FBA:
        said = _("Left out {count} FBA orders.")
    elif kind == BUNDLED:
        said = _("Left out {count} bundled children (同梱子注文).")
    else:
        said = _("Left out {count} {category} orders (管理区分).")
    return said.format(count=count, category=kind)


def _export_refusal(order: dict, store_name: str) -> str | None:
    if order["store"] != store_name:
        return _("an order of store {store!r}, not of {other!r}").format(
            store=order["store"], other=store_name
        )
    if order["fba"]:
        return _("an FBA order (fulfilled by Amazon): it needs no shipment notification")
    if order["bundle_parent"]:
        return _("bundled into {parent} (同梱子注文): export the parent order instead").format(
            parent=order["bundle_parent"]
        )
    if order["category"] != "normal":
        return _("管理区分 is {category}, not normal: it is not notified as shipped").format(
            category=order["category"]
        )
    return None


def part_paths(path: Path, count: int) -> list[Path]:
    """Where the feeds of an export go: ``path``, then ``name-2.ext``, ``name-3.ext``..."""
    return [path] + [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in range(2, count + 1)]


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all or nothing: a temp file beside it, then os.replace."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(_("{path} is a directory: give a file name with -o").format(path=path))
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CrossshipError(
            _("cannot write {path}: {error}").format(path=path, error=exc.strerror)
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file 0600: give it the mode a plain new file would get
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except OSError as exc:
        _remove(temp)
        raise CrossshipError(
            _("cannot write {path}: {error}").format(path=path, error=exc.strerror)
        ) from None
    except BaseException:
        _remove(temp)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
