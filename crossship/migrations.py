"""The database schema, as append-only named migrations.

Never edit or reorder a migration that has shipped: add a new one below.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("crossship")


def known() -> list[str]:
    """The names of the migrations this crossship knows, oldest first."""
    return [m.name for m in migrations._migrations]


def _run(db: Database, statements: str) -> None:
    # one statement at a time: executescript() would commit the migration's transaction
    for statement in statements.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations(name="0001_initial")
def initial(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE stores (
            name TEXT PRIMARY KEY,
            mall TEXT NOT NULL CHECK (mall IN ('amazon', 'rakuten', 'yahoo')),
            seller_id TEXT,
            marketplace_id TEXT,
            endpoint TEXT,
            token_url TEXT,
            encoding TEXT NOT NULL DEFAULT 'utf-8' CHECK (encoding IN ('utf-8', 'cp932')),
            interval_minutes INTEGER NOT NULL DEFAULT 15 CHECK (interval_minutes > 0),
            result_deadline_hours INTEGER NOT NULL DEFAULT 24 CHECK (result_deadline_hours > 0),
            template TEXT,
            started INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE TABLE phases (
            name TEXT PRIMARY KEY,
            ship_date TEXT NOT NULL DEFAULT 'required' CHECK (ship_date IN ('required', 'optional'))
        );
        CREATE TABLE targets (
            store TEXT NOT NULL REFERENCES stores(name),
            phase TEXT NOT NULL REFERENCES phases(name),
            move_to TEXT REFERENCES phases(name),
            PRIMARY KEY (store, phase)
        );
        CREATE TABLE carriers (
            name TEXT PRIMARY KEY,
            amazon_carrier_code TEXT,
            amazon_carrier_name TEXT,
            amazon_ship_method TEXT
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        CREATE TABLE orders (
            order_no TEXT PRIMARY KEY,
            store TEXT NOT NULL REFERENCES stores(name),
            mall_order_id TEXT,
            phase TEXT NOT NULL REFERENCES phases(name),
            category TEXT NOT NULL DEFAULT 'normal' CHECK (category IN ('normal', 'hold', 'cancel')),
            fba INTEGER NOT NULL DEFAULT 0,
            bundle_parent TEXT,
            split_from TEXT,
            ship_date TEXT,
            carrier TEXT,
            tracking_number TEXT,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                ('pending', 'in_progress', 'success', 'notify_failed', 'result_failed', 'error')),
            message TEXT,
            warning INTEGER NOT NULL DEFAULT 0,
            batch_id INTEGER,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX orders_eligible ON orders (store, phase, status);
        CREATE INDEX orders_status ON orders (status);
        CREATE INDEX orders_split_from ON orders (split_from) WHERE split_from IS NOT NULL;
        CREATE INDEX orders_batch ON orders (batch_id) WHERE batch_id IS NOT NULL;
        CREATE TABLE order_items (
            order_no TEXT NOT NULL REFERENCES orders(order_no),
            line INTEGER NOT NULL,
            item_id TEXT,
            sku TEXT,
            quantity INTEGER,
            PRIMARY KEY (order_no, line)
        );
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL REFERENCES stores(name),
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            encoding TEXT NOT NULL,
            content_type TEXT NOT NULL,
            feed BLOB NOT NULL,
            row_count INTEGER NOT NULL,
            order_count INTEGER NOT NULL,
            feed_document_id TEXT,
            submit_started_at TEXT,
            feed_id TEXT UNIQUE,
            submitted_at TEXT,
            processing_status TEXT,
            result_document_id TEXT,
            report BLOB,
            report_charset TEXT,
            processed INTEGER,
            successful INTEGER,
            note TEXT,
            fetch_failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            finished_at TEXT
        );
        CREATE INDEX batches_state ON batches (store, state);
        CREATE TABLE batch_rows (
            batch_id INTEGER NOT NULL REFERENCES batches(id),
            record_no INTEGER NOT NULL,
            order_no TEXT NOT NULL,
            order_id TEXT NOT NULL,
            item_id TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (batch_id, record_no)
        );
        CREATE INDEX batch_rows_order ON batch_rows (order_no);
        CREATE TABLE history (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            store TEXT NOT NULL,
            order_no TEXT NOT NULL,
            mall_order_id TEXT,
            batch_id INTEGER,
            feed_id TEXT,
            status TEXT NOT NULL,
            warning INTEGER NOT NULL DEFAULT 0,
            message TEXT,
            source TEXT NOT NULL CHECK (source IN ('auto', 'manual')),
            operator TEXT
        );
        CREATE INDEX history_order ON history (order_no);
        CREATE INDEX history_store ON history (store, id);
        CREATE INDEX history_time ON history (time);
        CREATE INDEX history_status ON history (status, id);
        CREATE INDEX history_batch ON history (batch_id) WHERE batch_id IS NOT NULL;
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            store TEXT NOT NULL,
            job TEXT NOT NULL CHECK (job IN ('notify', 'results')),
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT,
            summary TEXT
        );
        CREATE INDEX runs_last ON runs (store, job, started_at)
        """,
    )


@migrations(name="0002_selection_indexes")
def selection_indexes(db: Database) -> None:
    # Every status change rewrote orders_status, yet orders are looked up by status alone only
    # when 連携中 (an import refuses those): a partial index holds just them. A notify run finds
    # its orders through orders_eligible (store, phase, status), target phases first; history
    # --warnings-only reads the few rows with a warning instead of the whole history.
    _run(
        db,
        """
        DROP INDEX orders_status;
        CREATE INDEX orders_in_progress ON orders (order_no) WHERE status = 'in_progress';
        CREATE INDEX history_warning ON history (id) WHERE warning = 1
        """,
    )


@migrations(name="0003_mall_interface")
def mall_interface(db: Database) -> None:
    # Three malls behind one interface (SPEC §12): the mall of a store is checked by the mall
    # registry, not by a CHECK listing them (the table is rebuilt without it, and gains its
    # per-mall settings and the run's time budget); carrier codes per mall in their own table
    # (the amazon_* columns carried over, the carriers keeping their order); a batch keeps its
    # mall's id and state; an order keeps its mall references (Rakuten basketId and
    # shippingDetailIds, Yahoo's 完了). Store opens the database with foreign keys off while
    # migrating (SQLite's table rebuild procedure) and checks them here before committing.
    _run(
        db,
        """
        CREATE TABLE stores_new (
            name TEXT PRIMARY KEY,
            mall TEXT NOT NULL,
            seller_id TEXT,
            marketplace_id TEXT,
            endpoint TEXT,
            token_url TEXT,
            encoding TEXT NOT NULL DEFAULT 'utf-8' CHECK (encoding IN ('utf-8', 'cp932')),
            interval_minutes INTEGER NOT NULL DEFAULT 15 CHECK (interval_minutes > 0),
            result_deadline_hours INTEGER NOT NULL DEFAULT 24 CHECK (result_deadline_hours > 0),
            template TEXT,
            started INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            time_budget_minutes INTEGER NOT NULL DEFAULT 10 CHECK (time_budget_minutes > 0),
            mall_settings TEXT NOT NULL DEFAULT '{}'
        );
        INSERT INTO stores_new (rowid, name, mall, seller_id, marketplace_id, endpoint, token_url,
            encoding, interval_minutes, result_deadline_hours, template, started, created_at)
        SELECT rowid, name, mall, seller_id, marketplace_id, endpoint, token_url, encoding,
            interval_minutes, result_deadline_hours, template, started, created_at FROM stores;
        DROP TABLE stores;
        ALTER TABLE stores_new RENAME TO stores;
        CREATE TABLE carriers_new (
            name TEXT PRIMARY KEY
        );
        INSERT INTO carriers_new (rowid, name) SELECT rowid, name FROM carriers;
        CREATE TABLE carrier_codes (
            carrier TEXT NOT NULL REFERENCES carriers(name),
            field TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (carrier, field)
        );
        INSERT INTO carrier_codes (carrier, field, value)
        SELECT name, 'amazon_carrier_code', amazon_carrier_code FROM carriers
            WHERE amazon_carrier_code IS NOT NULL
        UNION ALL SELECT name, 'amazon_carrier_name', amazon_carrier_name FROM carriers
            WHERE amazon_carrier_name IS NOT NULL
        UNION ALL SELECT name, 'amazon_ship_method', amazon_ship_method FROM carriers
            WHERE amazon_ship_method IS NOT NULL;
        DROP TABLE carriers;
        ALTER TABLE carriers_new RENAME TO carriers;
        ALTER TABLE batches ADD COLUMN mall_id TEXT;
        ALTER TABLE batches ADD COLUMN mall_state TEXT NOT NULL DEFAULT '{}';
        UPDATE batches SET mall_id = feed_id WHERE feed_id IS NOT NULL;
        CREATE INDEX batches_mall_id ON batches (mall_id) WHERE mall_id IS NOT NULL;
        CREATE TABLE order_refs (
            order_no TEXT PRIMARY KEY REFERENCES orders(order_no),
            data TEXT NOT NULL DEFAULT '{}',
            completion TEXT CHECK (completion IN ('scheduled', 'done', 'failed')),
            complete_due TEXT
        );
        CREATE INDEX order_refs_due ON order_refs (complete_due) WHERE completion = 'scheduled'
        """,
    )
    broken = db.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise ValueError(f"0003_mall_interface would break foreign keys: {broken[:5]}")


@migrations(name="0004_message_keys")
def message_keys(db: Database) -> None:
    # our messages on orders and in the history keep their keys and arguments (JSON), so each
    # shows in the language of whoever reads it; `message` keeps the English text as before
    _run(
        db,
        """
        ALTER TABLE orders ADD COLUMN message_key TEXT;
        ALTER TABLE history ADD COLUMN message_key TEXT
        """,
    )
