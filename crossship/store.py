"""The one class that owns the SQLite database: every SQL statement of crossship lives here.

Each public method that changes data is one transaction (or joins the caller's ``atomic()``
block), so a command never leaves an order changed half-way.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from sqlite_utils import Database

from crossship.errors import NotFound, OrdersChanged, StoreError, UsageError
from crossship.i18n import Text, _, keep, render_stored
from crossship.migrations import known as known_migrations
from crossship.migrations import migrations
from crossship.output import csv_field
from crossship.statuses import Status

ORDER_FIELDS = (
    "order_no",
    "store",
    "mall_order_id",
    "phase",
    "category",
    "fba",
    "bundle_parent",
    "split_from",
    "ship_date",
    "carrier",
    "tracking_number",
)
STORE_FIELDS = (
    "seller_id",
    "marketplace_id",
    "endpoint",
    "token_url",
    "encoding",
    "interval_minutes",
    "result_deadline_hours",
    "template",
    "time_budget_minutes",
)
# batch states: the order of a send, then the end states. A mall's session moves a batch
# through its own states between prepared and submitting (Amazon: document_created, uploaded);
# a synchronous mall's request is ``sending`` while its call is in flight
BATCH_OPEN_STATES = ("prepared", "document_created", "uploaded", "sending", "submitting")
BATCH_STATES = (
    *BATCH_OPEN_STATES,
    "submitted",
    "done",
    "notify_failed",
    "result_failed",
    "released",
)
CHUNK = 500  # parameters per IN (...) list, under SQLite's variable limit
# how long a command waits for another one's write transaction before giving up
BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class StatusChange:
    """One order's new API status, and the history row that records it."""

    order_no: str
    status: Status
    message: Text = ""  # our messages kept with their keys, shown in the reader's language
    warning: bool = False


@dataclass(frozen=True)
class HistoryFilter:
    store: str | None = None
    order_no: str | None = None
    status: str | None = None
    since: str | None = None  # UTC text, as stored
    until: str | None = None
    warnings_only: bool = False
    limit: int | None = None


def _kept(message: Text | None) -> tuple[str | None, str | None]:
    text, key = keep(message)
    return text or None, key


def _message_sql(language: str, params: list[Any]) -> str:
    """The history or order ``message`` for a reader of ``language``: as stored (English, and
    the malls' own words) or, for another language, ours rendered from their kept keys."""
    if language == "en":
        return "message"
    params.append(language)
    return (
        "CASE WHEN message_key IS NULL THEN message ELSE crossship_say(message, message_key, ?) END"
    )


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class ImportKnown:
    """What an order import checks its rows against, read once inside its transaction."""

    stores: frozenset[str]
    phases: dict[str, str]  # name -> ship-date setting
    malls: dict[str, str]  # store name -> its mall
    carriers: frozenset[str]
    in_progress: frozenset[str]  # order numbers inside a batch not yet finished


class OrderImport:
    """The writes of one order import, buffered and sent with executemany.

    Only the columns the file has are written, so a re-import without a column keeps its values;
    the API status is never written, and an order ``in_progress`` is never touched.
    """

    def __init__(self, db: Database, columns: Sequence[str], now: str, chunk: int = 5000):
        self.db = db
        self.columns = tuple(columns)
        self.now = now
        self.chunk = chunk
        names = ", ".join(self.columns)
        marks = ", ".join("?" * len(self.columns))
        fields = [c for c in self.columns if c != "order_no"]
        updates = "".join(f"{c} = excluded.{c}, " for c in fields)
        # a row that changes nothing is no change: updated_at stays, so a run that selected the
        # order still sends it (an import cron re-reading the same file starves no store)
        differs = " OR ".join(f"orders.{c} IS NOT excluded.{c}" for c in fields) or "0"
        self._upsert = (
            f"INSERT INTO orders ({names}, updated_at) VALUES ({marks}, ?) "
            f"ON CONFLICT (order_no) DO UPDATE SET {updates}"
            f"updated_at = CASE WHEN {differs} THEN excluded.updated_at ELSE orders.updated_at END "
            "WHERE orders.status != 'in_progress'"
        )
        self._orders: dict[str, tuple] = {}
        self._replace: list[tuple[str]] = []
        # fingerprints of the item lines an import replaces, to tell a change from a re-import
        self._old_items: dict[str, bytes] = {}
        self._items: list[tuple] = []
        self.items_written = 0

    def known(self) -> ImportKnown:
        conn = self.db.conn
        return ImportKnown(
            stores=frozenset(r[0] for r in conn.execute("SELECT name FROM stores")),
            malls=dict(conn.execute("SELECT name, mall FROM stores").fetchall()),
            phases=dict(conn.execute("SELECT name, ship_date FROM phases").fetchall()),
            carriers=frozenset(r[0] for r in conn.execute("SELECT name FROM carriers")),
            in_progress=frozenset(
                r[0]
                for r in conn.execute("SELECT order_no FROM orders WHERE status = 'in_progress'")
            ),
        )

    def finish(self) -> None:
        """Write what is buffered; an order whose item lines differ from before is changed."""
        self.flush()
        replaced = list(self._old_items)
        for chunk in _chunks(replaced):
            now = self._item_prints(chunk)
            changed = [(self.now, o) for o in chunk if now.get(o) != self._old_items[o]]
            self.db.conn.executemany(
                "UPDATE orders SET updated_at = ? WHERE order_no = ? AND status != 'in_progress'",
                changed,
            )
        self._old_items.clear()

    def _item_prints(self, order_nos: Sequence[str]) -> dict[str, bytes]:
        prints: dict[str, bytes] = {o: b"" for o in order_nos}
        for chunk in _chunks(order_nos):
            marks = ",".join("?" * len(chunk))
            rows = self.db.conn.execute(
                "SELECT order_no, line, item_id, sku, quantity FROM order_items "
                f"WHERE order_no IN ({marks}) ORDER BY order_no, line",
                chunk,
            )
            digests: dict[str, Any] = {}
            for order_no, *values in rows:
                digest = digests.get(order_no)
                if digest is None:
                    digest = digests[order_no] = hashlib.blake2b(digest_size=16)
                digest.update(repr(values).encode())
            prints.update({o: d.digest() for o, d in digests.items()})
        return prints

    def count_orders(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM orders").fetchone()[0]

    def stored(self, order_no: str) -> dict | None:
        """The order as this import has written it so far, or as it was before."""
        if order_no in self._orders:
            return dict(zip(self.columns, self._orders[order_no], strict=True))
        cursor = self.db.conn.execute("SELECT * FROM orders WHERE order_no = ?", [order_no])
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def add_order(self, values: tuple) -> None:
        """Write an order's fields (``values`` in ``columns`` order, order_no first)."""
        self._orders[values[0]] = values
        if len(self._orders) >= self.chunk:
            self.flush()

    def replace_items(self, order_no: str) -> None:
        """Drop the order's stored item lines: the file brings its own."""
        self._replace.append((order_no,))

    def add_item(
        self, order_no: str, line: int, item_id: str | None, sku: str | None, quantity: int | None
    ) -> None:
        self._items.append((order_no, line, item_id, sku, quantity))
        if len(self._items) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        conn = self.db.conn
        if self._orders:
            now = self.now
            conn.executemany(self._upsert, ((*v, now) for v in self._orders.values()))
            self._orders.clear()
        if self._replace:
            # orders in progress were refused before, and the transaction keeps it so
            self._old_items.update(self._item_prints([o for (o,) in self._replace]))
            conn.executemany("DELETE FROM order_items WHERE order_no = ?", self._replace)
            self._replace.clear()
        if self._items:
            conn.executemany(
                "INSERT INTO order_items (order_no, line, item_id, sku, quantity) "
                "VALUES (?, ?, ?, ?, ?)",
                self._items,
            )
            self.items_written += len(self._items)
            self._items.clear()


def _history_time_sql(offset: timedelta | None) -> tuple[str, list[Any]]:
    """SQL for a history row's time: the stored UTC text (offset None), else ISO 8601 to the
    second at that fixed offset (times are to_db's UTC text: its first 19 characters are the UTC
    date and time)."""
    if offset is None:
        return "time", []
    seconds = int(offset.total_seconds())
    sign = "-" if seconds < 0 else "+"
    suffix = f"{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"
    if seconds == 0:
        return "(substr(time, 1, 19) || ?)", [suffix]
    return "(strftime('%Y-%m-%dT%H:%M:%S', substr(time, 1, 19), ?) || ?)", [
        f"{seconds} seconds",
        suffix,
    ]


def _csv_cell(value: Any, delimiter: str) -> str:
    """SQL function crossship_csv: one text as a csv / tsv field (NULL: empty)."""
    return "" if value is None else csv_field(str(value), delimiter)


def _label_sql(labels: Mapping[str, str]) -> tuple[str, list[Any]]:
    """SQL for a status's label (``labels``: status -> label; '' for any other)."""
    sql = "(CASE status " + "WHEN ? THEN ? " * len(labels) + "ELSE '' END)"
    return sql, [v for pair in labels.items() for v in pair]


class _Database(Database):
    """sqlite-utils' Database whose outermost ``atomic()`` takes the write lock at once.

    A deferred BEGIN that reads first and writes later cannot wait for the lock: SQLite fails it
    with SQLITE_BUSY when another connection wrote meanwhile, busy timeout or not. BEGIN IMMEDIATE
    waits its turn (up to the busy timeout), so concurrent runs and a job's worker threads queue
    their short writes instead of failing. Nested blocks stay savepoints.
    """

    @contextmanager
    def atomic(self) -> Iterator[Database]:
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise


class Store:
    """A crossship database. Opening it applies any pending migrations.

    ``create=False`` (every command but ``init``) refuses a path where no database is, instead of
    creating an empty one there. Either way a database written by a newer crossship (a migration
    this one does not know) or an SQLite file that is not crossship's is refused, unchanged.
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(
                _(
                    "no crossship database at {path}: create it with `{command}`, or "
                    "name yours with --db or CROSSSHIP_DB"
                ).format(path=self.path, command="crossship init")
            )
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000)
            self.db: Database = _Database(conn)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
                self._check_schema(create)  # reads only: a refused file is left as it was
                self._configure()
                # foreign keys off while migrating: a migration that rebuilds a table (0003)
                # checks them itself (PRAGMA foreign_key_check), as SQLite's procedure says
                migrations.apply(self.db)
                self.db.conn.execute("PRAGMA foreign_keys = ON")
            except BaseException:
                self.db.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                _("cannot open database {path}: {error}").format(path=self.path, error=exc)
            ) from None
        except OSError as exc:
            raise StoreError(
                _("cannot create database {path}: {error}").format(
                    path=self.path, error=exc.strerror
                )
            ) from None

    def _check_schema(self, create: bool) -> None:
        applied = [m.name for m in migrations.applied(self.db)]
        unknown = [name for name in applied if name not in known_migrations()]
        if unknown:
            raise StoreError(
                _(
                    "database {path} was written by a newer crossship (schema migration "
                    "{migration} is unknown to this one): upgrade crossship; nothing was changed"
                ).format(path=self.path, migration=unknown[0])
            )
        if applied:
            return
        tables = [
            row[0]
            for row in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        if tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise StoreError(
                _(
                    "{path} is an SQLite database but not crossship's (tables: {tables}): "
                    "name crossship's database with --db or CROSSSHIP_DB; nothing was changed"
                ).format(path=self.path, tables=shown)
            )
        if not create:
            raise StoreError(
                _("database {path} is empty: create crossship's tables with `{command}`").format(
                    path=self.path, command="crossship init"
                )
            )

    @classmethod
    def open_readonly(cls, path: str | Path) -> Store:
        """An existing database opened for reading only: no migration, no write, and a missing
        file is not created (`crossship check` must leave the database as it found it)."""
        self = cls.__new__(cls)
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(
                _("no database at {path}: create it with `{command}`").format(
                    path=self.path, command="crossship init"
                )
            )
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute("PRAGMA query_only = ON")
            self.db = Database(conn)
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            # a newer crossship's database or a foreign SQLite file is refused here too
            self._check_schema(create=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                _("cannot open database {path}: {error}").format(path=self.path, error=exc)
            ) from None
        except StoreError:
            self.db.close()
            raise
        return self

    def _configure(self) -> None:
        conn = self.db.conn
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed batch survives power loss, so nothing is sent twice after a crash
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.create_function("crossship_say", 3, render_stored, deterministic=True)
        conn.create_function("crossship_csv", 2, _csv_cell, deterministic=True)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[Store]:
        with self.db.atomic():
            yield self

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
        return list(self.db.query(sql, params))

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict | None:
        for row in self.db.query(sql, params):
            return row
        return None

    def applied_migrations(self) -> list[str]:
        """Names of the schema migrations applied to this database, oldest first."""
        return [m.name for m in migrations.applied(self.db)]

    # ----------------------------------------------------------------------------- stores

    def add_store(
        self,
        name: str,
        mall: str,
        values: dict[str, Any],
        now: str,
        mall_settings: dict[str, Any] | None = None,
    ) -> None:
        """Add a store: ``values`` are stores columns, ``mall_settings`` its mall's own."""
        if self._one("SELECT 1 FROM stores WHERE name = ?", [name]):
            raise UsageError(
                _("store {name!r} already exists: change it with `{command}`").format(
                    name=name, command="config store set"
                )
            )
        row = {"name": name, "mall": mall, "created_at": now}
        row.update({k: v for k, v in values.items() if k in STORE_FIELDS and v is not None})
        settings = {k: v for k, v in (mall_settings or {}).items() if v is not None}
        row["mall_settings"] = json.dumps(settings, ensure_ascii=False, sort_keys=True)
        with self.db.atomic():
            self.db.table("stores").insert(row)

    def update_store(
        self, name: str, values: dict[str, Any], mall_settings: dict[str, Any] | None = None
    ) -> None:
        """Change stores columns (None: not given) and merge ``mall_settings`` (None removes)."""
        with self.db.atomic():
            current = self.get_store(name)
            changes = {k: v for k, v in values.items() if k in STORE_FIELDS and v is not None}
            if mall_settings:
                merged = {**current["mall_settings"], **mall_settings}
                merged = {k: v for k, v in merged.items() if v is not None}
                changes["mall_settings"] = json.dumps(merged, ensure_ascii=False, sort_keys=True)
            if changes:
                self.db.table("stores").update(name, changes)

    @staticmethod
    def _store_row(row: dict) -> dict:
        row["mall_settings"] = json.loads(row.get("mall_settings") or "{}")
        return row

    def get_store(self, name: str) -> dict:
        """A stores row; its ``mall_settings`` decoded into a dict."""
        row = self._one("SELECT * FROM stores WHERE name = ?", [name])
        if row is None:
            known = ", ".join(r["name"] for r in self.list_stores()) or _("none yet")
            raise NotFound(
                _("no store named {name!r} (stores: {known}): add it with `{command}`").format(
                    name=name, known=known, command="config store add"
                )
            )
        return self._store_row(row)

    def list_stores(self, *, mall: str | None = None, started: bool | None = None) -> list[dict]:
        where: list[str] = []
        params: list[Any] = []
        if mall:
            where.append("mall = ?")
            params.append(mall)
        if started is not None:
            where.append("started = ?")
            params.append(int(started))
        sql = "SELECT * FROM stores" + (" WHERE " + " AND ".join(where) if where else "")
        return [self._store_row(r) for r in self._rows(sql + " ORDER BY name", params)]

    def set_started(self, name: str, started: bool) -> None:
        self.get_store(name)
        with self.db.atomic():
            self.db.execute("UPDATE stores SET started = ? WHERE name = ?", [int(started), name])

    # ----------------------------------------------------------------------------- phases

    def create_phase(self, name: str, ship_date: str) -> None:
        if self._one("SELECT 1 FROM phases WHERE name = ?", [name]):
            raise UsageError(
                _("phase {name!r} already exists: change it with `{command}`").format(
                    name=name, command="config phase update"
                )
            )
        with self.db.atomic():
            self.db.table("phases").insert({"name": name, "ship_date": ship_date})

    def update_phase(self, name: str, ship_date: str) -> None:
        self.get_phase(name)
        with self.db.atomic():
            self.db.execute("UPDATE phases SET ship_date = ? WHERE name = ?", [ship_date, name])

    def get_phase(self, name: str) -> dict:
        row = self._one("SELECT * FROM phases WHERE name = ?", [name])
        if row is None:
            known = ", ".join(r["name"] for r in self.list_phases()) or _("none yet")
            raise NotFound(
                _("no phase named {name!r} (phases: {known}): create it with `{command}`").format(
                    name=name, known=known, command="config phase create"
                )
            )
        return row

    def list_phases(self) -> list[dict]:
        return self._rows("SELECT * FROM phases ORDER BY rowid")

    def add_target(self, store: str, phase: str, move_to: str | None) -> None:
        self.get_store(store)
        self.get_phase(phase)
        if move_to is not None:
            self.get_phase(move_to)
            if move_to == phase:
                raise UsageError(_("--move-to must be another phase than the target phase itself"))
        with self.db.atomic():
            self.db.table("targets").upsert(
                {"store": store, "phase": phase, "move_to": move_to}, pk=("store", "phase")
            )

    def remove_target(self, store: str, phase: str) -> None:
        with self.db.atomic():
            cursor = self.db.execute(
                "DELETE FROM targets WHERE store = ? AND phase = ?", [store, phase]
            )
        if cursor.rowcount == 0:
            raise NotFound(
                _("phase {phase!r} is not a target phase of store {store!r}").format(
                    phase=phase, store=store
                )
            )

    def list_targets(self, store: str | None = None) -> list[dict]:
        sql = (
            "SELECT t.store, t.phase, t.move_to, p.ship_date FROM targets t "
            "JOIN phases p ON p.name = t.phase"
        )
        if store:
            return self._rows(sql + " WHERE t.store = ? ORDER BY t.store, t.phase", [store])
        return self._rows(sql + " ORDER BY t.store, t.phase")

    # ----------------------------------------------------------------------------- carriers

    def save_carrier(
        self, name: str, values: Mapping[str, str | None], replace: Sequence[str] = ()
    ) -> None:
        """Add or change a carrier: each field of ``replace`` gets its value in ``values``
        (None or absent: removed); fields not named keep theirs (another mall's codes)."""
        fields = list(dict.fromkeys([*replace, *values]))
        with self.db.atomic():
            self.db.execute("INSERT OR IGNORE INTO carriers (name) VALUES (?)", [name])
            for field in fields:
                value = values.get(field)
                if value is None:
                    self.db.execute(
                        "DELETE FROM carrier_codes WHERE carrier = ? AND field = ?", [name, field]
                    )
                else:
                    self.db.execute(
                        "INSERT INTO carrier_codes (carrier, field, value) VALUES (?, ?, ?) "
                        "ON CONFLICT (carrier, field) DO UPDATE SET value = excluded.value",
                        [name, field, value],
                    )

    def get_carrier(self, name: str, fields: Sequence[str] = ()) -> dict | None:
        """One flat dict: ``name`` and each code field (every one of ``fields``, None if unset)."""
        for carrier in self._carriers("WHERE name = ?", [name], fields):
            return carrier
        return None

    def list_carriers(self, fields: Sequence[str] = ()) -> list[dict]:
        """Every carrier as a flat dict (see ``get_carrier``), in the order they were added."""
        return self._carriers("", [], fields)

    def _carriers(self, where: str, params: list[Any], fields: Sequence[str]) -> list[dict]:
        carriers = {
            r["name"]: {"name": r["name"], **dict.fromkeys(fields)}
            for r in self._rows(f"SELECT name FROM carriers {where} ORDER BY rowid", params)
        }
        if carriers:
            sql = "SELECT carrier, field, value FROM carrier_codes"
            if where:
                sql += " WHERE carrier = ?"
            for row in self.db.query(sql, params):
                carriers[row["carrier"]][row["field"]] = row["value"]
        return list(carriers.values())

    # ----------------------------------------------------------------------------- settings

    def get_settings(self, prefix: str) -> dict[str, Any]:
        rows = self._rows("SELECT key, value FROM settings WHERE key LIKE ?", [prefix + ".%"])
        return {r["key"][len(prefix) + 1 :]: json.loads(r["value"]) for r in rows}

    def set_settings(self, prefix: str, values: dict[str, Any]) -> None:
        with self.db.atomic():
            for key, value in values.items():
                self.db.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [f"{prefix}.{key}", json.dumps(value, ensure_ascii=False)],
                )

    # ----------------------------------------------------------------------------- orders

    def get_order(self, order_no: str) -> dict:
        row = self._one(
            "SELECT o.*, r.completion, r.complete_due FROM orders o "
            "LEFT JOIN order_refs r ON r.order_no = o.order_no WHERE o.order_no = ?",
            [order_no],
        )
        if row is None:
            raise NotFound(_("no order {order_no!r}").format(order_no=order_no))
        return row

    def find_orders(self, order_nos: Sequence[str]) -> dict[str, dict]:
        """The orders that exist among ``order_nos``, by order number."""
        found: dict[str, dict] = {}
        for chunk in _chunks(list(order_nos)):
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(f"SELECT * FROM orders WHERE order_no IN ({marks})", chunk):
                found[row["order_no"]] = row
        return found

    def order_items(self, order_no: str) -> list[dict]:
        return self._rows("SELECT * FROM order_items WHERE order_no = ? ORDER BY line", [order_no])

    def items_for(self, order_nos: Sequence[str]) -> dict[str, list[dict]]:
        items: dict[str, list[dict]] = {}
        for chunk in _chunks(list(order_nos)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM order_items WHERE order_no IN ({marks}) ORDER BY order_no, line"
            for row in self.db.query(sql, chunk):
                items.setdefault(row["order_no"], []).append(row)
        return items

    def iter_orders(
        self,
        *,
        store: str | None = None,
        phase: str | None = None,
        statuses: Sequence[str] = (),
    ) -> Iterator[dict]:
        where, params = [], []
        if store:
            where.append("o.store = ?")
            params.append(store)
        if phase:
            where.append("o.phase = ?")
            params.append(phase)
        if statuses:
            where.append(f"o.status IN ({','.join('?' * len(statuses))})")
            params.extend(statuses)
        # a follow-up's state (Yahoo 完了) rides along: order_refs is keyed by order_no
        sql = (
            "SELECT o.*, r.completion, r.complete_due FROM orders o "
            "LEFT JOIN order_refs r ON r.order_no = o.order_no"
        )
        sql += " WHERE " + " AND ".join(where) if where else ""
        yield from self.db.query(sql + " ORDER BY o.order_no", params)

    def split_parents(self, order_nos: Sequence[str]) -> set[str]:
        """Which of ``order_nos`` have split children."""
        parents: set[str] = set()
        for chunk in _chunks(list(order_nos)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT DISTINCT split_from FROM orders WHERE split_from IN ({marks})"
            parents.update(r["split_from"] for r in self.db.query(sql, chunk))
        return parents

    def import_orders(self, orders: Sequence[dict], items: Sequence[dict], now: str) -> None:
        """Insert or update checked orders with their item lines, in one transaction, through the
        same writer as `orders import` (never an API status, never an order ``in_progress``)."""
        with self.order_import(ORDER_FIELDS, now) as writer:
            for order in orders:
                writer.add_order(tuple(order.get(f) for f in ORDER_FIELDS))
            for order_no in dict.fromkeys(i["order_no"] for i in items):
                writer.replace_items(order_no)
            writer.flush()  # item lines after their orders (foreign key)
            for i in items:
                writer.add_item(i["order_no"], i["line"], i["item_id"], i["sku"], i["quantity"])

    def update_order(self, order_no: str, changes: dict[str, Any], now: str) -> None:
        allowed = {k: v for k, v in changes.items() if k in ORDER_FIELDS and k != "order_no"}
        if not allowed:
            return
        sets = ", ".join(f"{k} = ?" for k in allowed)
        with self.db.atomic():
            self.db.execute(
                f"UPDATE orders SET {sets}, updated_at = ? WHERE order_no = ?",
                [*allowed.values(), now, order_no],
            )

    def move_orders(
        self, order_nos: Sequence[str], phase: str, ship_date: str | None, now: str
    ) -> None:
        with self.db.atomic():
            for chunk in _chunks(list(order_nos)):
                marks = ",".join("?" * len(chunk))
                if ship_date:
                    self.db.execute(
                        f"UPDATE orders SET phase = ?, ship_date = ?, updated_at = ? "
                        f"WHERE order_no IN ({marks})",
                        [phase, ship_date, now, *chunk],
                    )
                else:
                    self.db.execute(
                        f"UPDATE orders SET phase = ?, updated_at = ? WHERE order_no IN ({marks})",
                        [phase, now, *chunk],
                    )

    def status_counts(self, store: str) -> dict[str, int]:
        rows = self._rows(
            "SELECT status, count(*) AS n FROM orders WHERE store = ? GROUP BY status", [store]
        )
        return {r["status"]: r["n"] for r in rows}

    @contextmanager
    def order_import(self, columns: Sequence[str], now: str) -> Iterator[OrderImport]:
        """An import in one write transaction taken at once (BEGIN IMMEDIATE), so what it checks
        (stores, phases, orders in progress) cannot change under it. Rolled back on any error."""
        if self.db.conn.in_transaction:
            with self.db.atomic():
                writer = OrderImport(self.db, columns, now)
                yield writer
                writer.finish()
            return
        try:
            self.db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                _(
                    "cannot import now: the database is busy ({error}); try again in a minute"
                ).format(error=exc)
            ) from None
        try:
            writer = OrderImport(self.db, columns, now)
            yield writer
            writer.finish()
        except BaseException:
            self.db.rollback()
            raise
        self.db.conn.execute("COMMIT")

    # ----------------------------------------------------------------------------- status + history

    def change_statuses(
        self,
        changes: Sequence[StatusChange],
        *,
        now: str,
        source: str = "auto",
        operator: str | None = None,
        batch: dict | None = None,
        move_to: dict[str, str] | None = None,
    ) -> None:
        """Set each order's API status and write its history row, in the caller's transaction.

        ``batch`` (a batches row) ties the history rows to a batch id and feedId; ``move_to``
        maps order numbers (among ``changes``) to the phase they move to with this change.
        Set-based: the changes go into a temporary table, then one UPDATE and one INSERT ...
        SELECT do the work (per-order statements cost three times as much for 100,000 orders).
        """
        batch_id = batch["id"] if batch else None
        feed_id = batch.get("feed_id") if batch else None
        in_batch = None if batch is None else batch_id
        moves = move_to or {}
        conn = self.db.conn
        with self.db.atomic():
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS status_changes (seq INTEGER PRIMARY KEY, "
                "order_no TEXT NOT NULL, status TEXT NOT NULL, message TEXT, message_key TEXT, "
                "warning INTEGER NOT NULL, phase TEXT)"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS temp.status_changes_order "
                "ON status_changes (order_no, seq)"
            )
            conn.execute("DELETE FROM temp.status_changes")
            conn.executemany(
                "INSERT INTO temp.status_changes "
                "(order_no, status, message, message_key, warning, phase) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (
                        c.order_no,
                        c.status.value,
                        *_kept(c.message),
                        int(c.warning),
                        moves.get(c.order_no),
                    )
                    for c in changes
                ),
            )
            # an order named twice takes its last change, and gets a history row for each
            conn.execute(
                "UPDATE orders SET (status, message, message_key, warning, phase) = ("
                "SELECT c.status, c.message, c.message_key, c.warning, "
                "coalesce(c.phase, orders.phase) "
                "FROM temp.status_changes c WHERE c.order_no = orders.order_no "
                "ORDER BY c.seq DESC LIMIT 1), batch_id = ?, updated_at = ? "
                "WHERE order_no IN (SELECT order_no FROM temp.status_changes)",
                [in_batch, now],
            )
            conn.execute(
                "INSERT INTO history (time, store, order_no, mall_order_id, batch_id, feed_id, "
                "status, warning, message, message_key, source, operator) "
                "SELECT ?, o.store, o.order_no, o.mall_order_id, ?, ?, c.status, c.warning, "
                "c.message, c.message_key, ?, ? FROM temp.status_changes c "
                "CROSS JOIN orders o ON o.order_no = c.order_no ORDER BY c.seq",
                [now, batch_id, feed_id, source, operator],
            )
            conn.execute("DELETE FROM temp.status_changes")

    def iter_history(self, f: HistoryFilter, language: str = "en") -> Iterator[dict]:
        """History rows, newest first, streamed from SQLite (never loaded whole); ``message``
        in the reader's ``language``."""
        params: list[Any] = []
        message = _message_sql(language, params)
        tail, where_params = self._history_where(f)
        sql = (
            "SELECT time, store, order_no, mall_order_id, batch_id, feed_id, status, warning, "
            f"{message} AS message, source, operator FROM history" + tail
        )
        cursor = self.db.conn.execute(sql, params + where_params)
        columns = [d[0] for d in cursor.description]
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                return
            for row in rows:
                yield dict(zip(columns, row, strict=False))

    def _history_where(self, f: HistoryFilter) -> tuple[str, list[Any]]:
        """The WHERE, ORDER BY and LIMIT of a history query, with its parameters."""
        where: list[str] = []
        params: list[Any] = []
        for column, op, value in (
            ("store", "=", f.store),
            ("order_no", "=", f.order_no),
            ("status", "=", f.status),
            ("time", ">=", f.since),
            ("time", "<=", f.until),
        ):
            if value:
                where.append(f"{column} {op} ?")
                params.append(value)
        if f.warnings_only:
            where.append("warning = 1")
        # a lone time bound also bounds the id (by the smallest or largest id among the rows it
        # admits, so no row is lost even if the clock went back): SQLite walks only those ids,
        # newest first, instead of the whole history. A window (both) reads history_time.
        if f.since and not f.until:
            where.append(
                "id >= (SELECT min(id) FROM history INDEXED BY history_time WHERE time >= ?)"
            )
            params.append(f.since)
        elif f.until and not f.since:
            where.append(
                "id <= (SELECT max(id) FROM history INDEXED BY history_time WHERE time <= ?)"
            )
            params.append(f.until)
        sql = (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC"
        if f.limit is not None:
            sql += " LIMIT ?"
            params.append(f.limit)
        return sql, params

    def history_time_span(self) -> tuple[str | None, str | None]:
        """The oldest and newest time in the whole history (from the time index)."""
        row = self.db.conn.execute("SELECT min(time), max(time) FROM history").fetchone()
        return row[0], row[1]

    def history_json_chunks(
        self,
        f: HistoryFilter,
        labels: Mapping[str, str],
        *,
        offset: timedelta | None = None,
        size: int = 2000,
        language: str = "en",
    ) -> Iterator[list[bytes]]:
        """History rows, newest first, in chunks of ``size`` JSON objects built by SQLite (UTF-8).

        Members: time, store, order_no, mall_order_id, batch_id, feed_id, status, status_label
        (from ``labels``), warning (true/false), message, source, operator. ``time`` is the
        stored UTC text when ``offset`` is None, else ISO 8601 to the second at that fixed offset
        (the caller knows it holds for every row). The fast path of `history --format jsonl`.
        """
        time, params = _history_time_sql(offset)
        label, label_params = _label_sql(labels)
        params += label_params  # the parameters in the order of their places below
        message = _message_sql(language, params)
        sql = (
            f"SELECT CAST(json_object('time', {time}, "
            "'store', store, 'order_no', order_no, 'mall_order_id', mall_order_id, "
            "'batch_id', batch_id, 'feed_id', feed_id, 'status', status, "
            f"'status_label', {label}, "
            "'warning', CASE WHEN warning THEN json('true') ELSE json('false') END, "
            f"'message', {message}, 'source', source, 'operator', operator"
            ") AS BLOB) FROM history"
        )
        for rows in self._history_chunks(sql, params, f, size):
            yield [row for (row,) in rows]

    def history_csv_chunks(
        self,
        f: HistoryFilter,
        labels: Mapping[str, str],
        *,
        offset: timedelta | None = None,
        delimiter: str = ",",
        size: int = 2000,
        language: str = "en",
    ) -> Iterator[list[tuple[bytes, ...]]]:
        """History rows, newest first, as CSV (or TSV) lines built by SQLite (UTF-8), in chunks.

        Each row is ``(line,)`` when ``offset`` is given (the time at that fixed offset, as in
        ``history_json_chunks``), else ``(stored time, rest of the line)`` for the caller to make
        the time local. Fields and quoting as Python's csv writer (QUOTE_MINIMAL, "\n" line
        ends): time, store, order_no, mall_order_id, batch_id, feed_id, status, status_label,
        warning (1/0), message, source, operator; a NULL is empty; a field holding the
        delimiter, a double quote or a newline is quoted, its quotes doubled. The fast path of
        `history --format csv|tsv`.
        """
        if delimiter not in (",", "\t"):
            raise ValueError("delimiter must be ',' or a tab")
        sep = "','" if delimiter == "," else "char(9)"

        def cell(column: str) -> str:
            # %w doubles the double quotes; printf's %s gives '' for NULL
            return (
                f"CASE WHEN instr({column}, {sep}) OR instr({column}, '\"') "
                f"OR instr({column}, char(10)) THEN printf('\"%w\"', {column}) ELSE {column} END"
            )

        # a known status and its label come as one text, quoted here once, not for every row
        known = " ".join("WHEN ? THEN ?" for _ in labels)
        pairs = [
            v
            for status, text in labels.items()
            for v in (status, csv_field(status, delimiter) + delimiter + csv_field(text, delimiter))
        ]
        fields = [
            cell("store"),
            cell("order_no"),
            cell("mall_order_id"),
            "batch_id",
            cell("feed_id"),
            f"CASE status {known} ELSE {cell('status')} || {sep} END",  # status, status_label
            "CASE WHEN warning THEN 1 ELSE 0 END",
            cell("message"),
            "source",  # 'auto' or 'manual' (a CHECK says so)
            cell("operator"),
        ]
        said: list[Any] = []
        if language != "en":  # ours in the reader's language, rendered and quoted once
            fields[7] = (
                f"CASE WHEN message_key IS NULL THEN {cell('message')} "
                "ELSE crossship_csv(crossship_say(message, message_key, ?), ?) END"
            )
            said = [language, delimiter]
        # one printf a line: far cheaper than a dozen || concatenations
        line = delimiter.join(["%s"] * len(fields))
        if offset is None:
            sql = f"SELECT CAST(time AS BLOB), CAST(printf(?, {', '.join(fields)}) AS BLOB)"
            params = [line, *pairs, *said]
        elif not offset:
            # to_db's UTC text: its first 19 characters, then the offset (ISO 8601 text holds no
            # delimiter, quote or newline: never quoted)
            sql = f"SELECT CAST(printf(?, time, {', '.join(fields)}) AS BLOB)"
            params = ["%.19s+00:00" + delimiter + line, *pairs, *said]
        else:
            time, time_params = _history_time_sql(offset)
            sql = f"SELECT CAST(printf(?, {time}, {', '.join(fields)}) AS BLOB)"
            params = ["%s" + delimiter + line, *time_params, *pairs, *said]
        yield from self._history_chunks(sql + " FROM history", params, f, size)

    def _history_chunks(
        self, sql: str, params: list[Any], f: HistoryFilter, size: int
    ) -> Iterator[list[tuple]]:
        where, where_params = self._history_where(f)
        cursor = self.db.conn.execute(sql + where, params + where_params)
        while True:
            rows = cursor.fetchmany(size)
            if not rows:
                return
            yield rows

    # ----------------------------------------------------------------------------- by hand

    @contextmanager
    def immediate(self) -> Iterator[Store]:
        """One write transaction taken at once (BEGIN IMMEDIATE): what is read inside it cannot
        change before it commits (a `notify run` cannot take an order meanwhile)."""
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield self
            return
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.db.rollback()
            raise
        self.db.conn.execute("COMMIT")

    # ----------------------------------------------------------------------------- eligibility

    def eligible_orders(self, store: str) -> Iterator[dict]:
        """Orders a store's automatic run would send (SPEC §3), in order-number order, streamed.

        Category, API status, FBA and bundled children are filtered here; each order carries
        its target's destination phase as ``target_move_to``.
        """
        # CROSS JOIN keeps the target phases the outer loop, so orders_eligible (store, phase,
        # status) finds only their pending orders; SQLite would otherwise walk every order of
        # the store (or every pending order, of every mall) and filter
        yield from self.db.query(
            "SELECT o.*, t.move_to AS target_move_to FROM targets t "
            "CROSS JOIN orders o ON o.store = t.store AND o.phase = t.phase "
            "WHERE t.store = ? AND o.status = 'pending' AND o.category = 'normal' "
            "AND o.fba = 0 AND (o.bundle_parent IS NULL OR o.bundle_parent = '') "
            "ORDER BY o.order_no",
            [store],
        )

    # ----------------------------------------------------------------------------- batches

    def create_batch(
        self,
        *,
        store: str,
        encoding: str,
        content_type: str,
        feed: bytes,
        rows: Sequence[tuple[int, str, str, str]],
        now: str,
        expected: dict[str, str] | None = None,
        warnings: Mapping[str, Text] | None = None,
    ) -> dict:
        """Record a batch with its exact feed bytes and row map, and set its orders ``in_progress``.

        ``rows`` are (record_no, order_no, order_id, item_id). One transaction with the history.
        ``expected`` maps each order to the ``updated_at`` it was selected with: if an import or a
        change by hand touched one since (or it is no longer 未連携), nothing is recorded and
        ``OrdersChanged`` is raised, so a feed never carries stale data. ``warnings`` go on the
        orders' 連携中 history rows (a blank tracking number, say).
        """
        order_nos = list(dict.fromkeys(r[1] for r in rows))
        warnings = warnings or {}
        with self.immediate():
            if expected is not None:
                changed = self._changed_since_selection(order_nos, expected)
                if changed:
                    raise OrdersChanged(changed)
            cursor = self.db.execute(
                "INSERT INTO batches (store, state, created_at, updated_at, encoding, "
                "content_type, feed, row_count, order_count) "
                "VALUES (?, 'prepared', ?, ?, ?, ?, ?, ?, ?)",
                [store, now, now, encoding, content_type, feed, len(rows), len(order_nos)],
            )
            batch_id = cursor.lastrowid
            assert batch_id is not None  # an INSERT has a rowid
            self.db.conn.executemany(
                "INSERT INTO batch_rows (batch_id, record_no, order_no, order_id, item_id) "
                "VALUES (?, ?, ?, ?, ?)",
                ((batch_id, *r) for r in rows),
            )
            batch = self.get_batch(batch_id)
            self.change_statuses(
                [
                    StatusChange(o, Status.IN_PROGRESS, warnings.get(o, ""), o in warnings)
                    for o in order_nos
                ],
                now=now,
                batch=batch,
            )
        return batch

    def _changed_since_selection(self, order_nos: list[str], expected: dict[str, str]) -> list[str]:
        changed: list[str] = []
        for chunk in _chunks(order_nos):
            marks = ",".join("?" * len(chunk))
            current = {
                order_no: (status, updated_at)
                for order_no, status, updated_at in self.db.conn.execute(
                    f"SELECT order_no, status, updated_at FROM orders WHERE order_no IN ({marks})",
                    chunk,
                )
            }
            pending = Status.PENDING.value
            changed.extend(o for o in chunk if current.get(o) != (pending, expected.get(o)))
        return changed

    def get_batch(self, batch_id: int) -> dict:
        row = self._one("SELECT * FROM batches WHERE id = ?", [batch_id])
        if row is None:
            raise NotFound(_("no batch {batch_id}").format(batch_id=batch_id))
        return row

    def update_batch(self, batch_id: int, changes: dict[str, Any], now: str) -> dict:
        """Commit a batch's new state (before the next call to the mall)."""
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self.db.atomic():
            self.db.execute(
                f"UPDATE batches SET {sets}, updated_at = ? WHERE id = ?",
                [*changes.values(), now, batch_id],
            )
        return self.get_batch(batch_id)

    def batches(self, *, store: str | None = None, states: Sequence[str] = ()) -> list[dict]:
        """Batch rows without their feed and report bytes, oldest first."""
        where, params = [], []
        if store:
            where.append("store = ?")
            params.append(store)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params.extend(states)
        columns = (
            "id, store, state, created_at, updated_at, encoding, content_type, row_count, "
            "order_count, feed_document_id, submit_started_at, feed_id, submitted_at, "
            "processing_status, result_document_id, processed, successful, note, fetch_failures, "
            "last_error, finished_at, mall_id, mall_state"
        )
        sql = f"SELECT {columns} FROM batches" + (" WHERE " + " AND ".join(where) if where else "")
        return self._rows(sql + " ORDER BY id", params)

    def batch_rows(self, batch_id: int) -> list[dict]:
        return self._rows(
            "SELECT record_no, order_no, order_id, item_id FROM batch_rows WHERE batch_id = ? "
            "ORDER BY record_no",
            [batch_id],
        )

    def batch_orders(self, batch_id: int) -> list[dict]:
        """The orders still ``in_progress`` in a batch, by number: only order_no, mall_order_id
        and phase (a whole row for each of 100,000 orders would cost 120 MB)."""
        cursor = self.db.conn.execute(
            "SELECT order_no, mall_order_id, phase FROM orders "
            "WHERE batch_id = ? AND status = 'in_progress' ORDER BY order_no",
            [batch_id],
        )
        return [{"order_no": o, "mall_order_id": m, "phase": p} for o, m, p in cursor]

    def claimed_feed_ids(self) -> set[str]:
        rows = self._rows("SELECT feed_id FROM batches WHERE feed_id IS NOT NULL")
        return {r["feed_id"] for r in rows}

    def finish_batch(
        self,
        batch: dict,
        changes: Sequence[StatusChange],
        *,
        state: str,
        now: str,
        batch_changes: dict[str, Any] | None = None,
        move_to: dict[str, str] | None = None,
    ) -> dict:
        """Give a batch its end state and its orders their statuses, in one transaction."""
        with self.db.atomic():
            updated = self.update_batch(
                batch["id"], {"state": state, "finished_at": now, **(batch_changes or {})}, now
            )
            self.change_statuses(changes, now=now, batch=updated, move_to=move_to)
        return updated

    def mark_submitted(self, batch_id: int, mall_id: str, now: str) -> dict:
        """The mall accepted the batch as ``mall_id`` (Amazon's feedId, RMS's requestId): record
        it on the batch (``feed_id`` too, unless another batch holds it) and its history."""
        with self.db.atomic():
            taken = self._one(
                "SELECT 1 FROM batches WHERE feed_id = ? AND id != ?", [mall_id, batch_id]
            )
            batch = self.update_batch(
                batch_id,
                {
                    "state": "submitted",
                    "mall_id": mall_id,
                    "feed_id": None if taken else mall_id,
                    "submitted_at": now,
                    "last_error": None,
                },
                now,
            )
            self.db.execute(
                "UPDATE history SET feed_id = ? WHERE batch_id = ? AND feed_id IS NULL",
                [mall_id, batch_id],
            )
        return batch

    def claimed_mall_ids(self, mall: str) -> set[str]:
        """The mall ids that batches of ``mall``'s stores already hold."""
        cursor = self.db.conn.execute(
            "SELECT b.mall_id, b.feed_id FROM batches b JOIN stores s ON s.name = b.store "
            "WHERE (b.mall_id IS NOT NULL OR b.feed_id IS NOT NULL) AND s.mall = ?",
            [mall],
        )
        return {i for row in cursor for i in row if i is not None}

    # ----------------------------------------------------------------------------- references

    def refs_for(self, order_nos: Sequence[str]) -> dict[str, dict]:
        """The mall references kept for these orders (those that have any), by order number:
        the ``data`` JSON, plus ``completion`` and ``complete_due`` when set."""
        refs: dict[str, dict] = {}
        for chunk in _chunks(list(order_nos)):
            marks = ",".join("?" * len(chunk))
            for order_no, data, completion, due in self.db.conn.execute(
                "SELECT order_no, data, completion, complete_due FROM order_refs "
                f"WHERE order_no IN ({marks})",
                chunk,
            ):
                ref = json.loads(data or "{}")
                if completion is not None:
                    ref["completion"] = completion
                if due is not None:
                    ref["complete_due"] = due
                refs[order_no] = ref
        return refs

    def set_refs(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Merge each order's changes into its references (a None value removes a key);
        ``completion`` and ``complete_due`` are columns. One transaction."""
        if not changes:
            return
        with self.db.atomic():
            current = self.refs_for(list(changes))
            for order_no, change in changes.items():
                ref = {**current.get(order_no, {}), **change}
                completion = ref.pop("completion", None)
                due = ref.pop("complete_due", None)
                data = {k: v for k, v in ref.items() if v is not None}
                text = json.dumps(data, ensure_ascii=False, sort_keys=True)
                self.db.execute(
                    "INSERT INTO order_refs (order_no, data, completion, complete_due) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (order_no) DO UPDATE SET "
                    "data = excluded.data, completion = excluded.completion, "
                    "complete_due = excluded.complete_due",
                    [order_no, text, completion, due],
                )

    def completions_due(self, store: str, now: str) -> list[dict]:
        """Orders of ``store`` whose follow-up (Yahoo 完了) is scheduled at or before ``now``,
        each with its references as ``refs``."""
        rows = self._rows(
            "SELECT o.*, r.data AS refs_data, r.completion, r.complete_due FROM order_refs r "
            "JOIN orders o ON o.order_no = r.order_no "
            "WHERE r.completion = 'scheduled' AND r.complete_due <= ? AND o.store = ? "
            "ORDER BY r.complete_due, o.order_no",
            [now, store],
        )
        for row in rows:
            row["refs"] = {
                **json.loads(row.pop("refs_data") or "{}"),
                "completion": row["completion"],
                "complete_due": row["complete_due"],
            }
        return rows

    # ----------------------------------------------------------------------------- runs

    def last_run(self, store: str, job: str) -> str | None:
        """When the most recently recorded run started (not the latest time: a clock that moved
        back must not leave a run "in the future" as the last one for ever)."""
        row = self._one(
            "SELECT started_at AS t FROM runs WHERE store = ? AND job = ? ORDER BY id DESC LIMIT 1",
            [store, job],
        )
        return row["t"] if row else None

    def record_run(
        self,
        *,
        store: str,
        job: str,
        started_at: str,
        finished_at: str,
        outcome: str,
        summary: dict[str, Any],
    ) -> None:
        with self.db.atomic():
            self.db.table("runs").insert(
                {
                    "store": store,
                    "job": job,
                    "started_at": started_at,
                    "finished_at": finished_at,
                    "outcome": outcome,
                    "summary": json.dumps(summary, ensure_ascii=False),
                }
            )

    def iter_runs(self, store: str | None = None, job: str | None = None) -> Iterable[dict]:
        where, params = [], []
        if store:
            where.append("store = ?")
            params.append(store)
        if job:
            where.append("job = ?")
            params.append(job)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        return self._rows(sql + " ORDER BY id DESC", params)

    def latest_run(self, store: str, job: str) -> dict | None:
        """The newest recorded run of a job for a store (what `auto status` shows)."""
        return self._one(
            "SELECT * FROM runs WHERE store = ? AND job = ? ORDER BY started_at DESC, id DESC "
            "LIMIT 1",
            [store, job],
        )

    # ----------------------------------------------------------------------------- health

    def quick_check(self, limit: int = 10) -> list[str]:
        """SQLite's PRAGMA quick_check: ``["ok"]`` for a sound database, else what is wrong."""
        return [row[0] for row in self.db.execute(f"PRAGMA quick_check({int(limit)})")]

    def pending_migrations(self) -> list[str]:
        """Schema migrations this crossship has that the database lacks (read only)."""
        return [m.name for m in migrations.pending(self.db)]

    def failed_order_summary(self, store: str | None = None) -> list[dict]:
        """Per store and status, the orders now in error / notify_failed / result_failed: their
        count and the one waiting longest (``order_no``, ``since``), by store then status."""
        where, params = "", []
        if store:
            where, params = " AND store = ?", [store]
        # SQLite takes a bare column (order_no) from the row where min() found its value
        return self._rows(
            "SELECT store, status, count(*) AS count, min(updated_at) AS since, order_no "
            "FROM orders WHERE status IN ('error', 'notify_failed', 'result_failed')"
            f"{where} GROUP BY store, status ORDER BY store, status",
            params,
        )

    # ----------------------------------------------------------------------------- pruning

    def prune_history(self, before: str, limit: int) -> int:
        """Delete up to ``limit`` history rows older than ``before`` (one transaction)."""
        with self.db.atomic():
            cursor = self.db.execute(
                "DELETE FROM history WHERE id IN "
                "(SELECT id FROM history WHERE time < ? ORDER BY time LIMIT ?)",
                [before, limit],
            )
        return cursor.rowcount

    def oldest_batches(self, after_id: int, limit: int) -> list[dict]:
        """id, state and created_at of the batches after ``after_id``, by id (never the bytes:
        created_at sits before the feed in the row, so no overflow page is read)."""
        return self._rows(
            "SELECT id, state, created_at FROM batches WHERE id > ? ORDER BY id LIMIT ?",
            [after_id, limit],
        )

    def delete_finished_batches(self, batch_ids: Sequence[int]) -> int:
        """Delete these batches, their rows, feed and report, if they are finished (one
        transaction); an open or submitted batch is never deleted, whatever the caller asks."""
        if not batch_ids:
            return 0
        ends = [s for s in BATCH_STATES if s not in (*BATCH_OPEN_STATES, "submitted")]
        marks, states = ",".join("?" * len(batch_ids)), ",".join("?" * len(ends))
        with self.db.atomic():
            ids = [
                r[0]
                for r in self.db.execute(
                    f"SELECT id FROM batches WHERE id IN ({marks}) AND state IN ({states})",
                    [*batch_ids, *ends],
                )
            ]
            if not ids:
                return 0
            marks = ",".join("?" * len(ids))
            self.db.execute(f"DELETE FROM batch_rows WHERE batch_id IN ({marks})", ids)
            return self.db.execute(f"DELETE FROM batches WHERE id IN ({marks})", ids).rowcount

    def oldest_runs(self, after_id: int, limit: int) -> list[dict]:
        return self._rows(
            "SELECT id, store, job, started_at FROM runs WHERE id > ? ORDER BY id LIMIT ?",
            [after_id, limit],
        )

    def delete_runs(self, run_ids: Sequence[int]) -> int:
        if not run_ids:
            return 0
        with self.db.atomic():
            marks = ",".join("?" * len(run_ids))
            return self.db.execute(
                f"DELETE FROM runs WHERE id IN ({marks})", list(run_ids)
            ).rowcount

    def size(self) -> int:
        """Bytes the database file takes (pages in use and free)."""
        count = self.db.execute("PRAGMA page_count").fetchone()[0]
        return count * self.db.execute("PRAGMA page_size").fetchone()[0]

    def vacuum(self) -> None:
        """Rebuild the file without its free pages (needs no other writer meanwhile)."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.conn.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
