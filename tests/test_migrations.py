"""The schema as append-only named migrations: from blank, idempotent, and across an upgrade."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database

from crossship.migrations import migrations
from crossship.store import Store


def all_names() -> list[str]:
    return [m.name for m in migrations.pending(Database(memory=True))]


def tables(path) -> set[str]:
    db = Database(path)
    try:
        return set(db.table_names())
    finally:
        db.close()


def test_blank_database_gets_every_migration(db_path):
    with Store(db_path) as store:
        assert store.applied_migrations() == all_names()
    assert all_names()[0] == "0001_initial"
    assert {"stores", "phases", "targets", "carriers", "orders", "order_items", "batches",
            "batch_rows", "history", "runs", "settings"} <= tables(db_path)  # fmt: skip


def test_opening_twice_is_idempotent(db_path):
    Store(db_path).close()
    db = Database(db_path)
    first = [(r["name"], r["applied_at"]) for r in db["_sqlite_migrations"].rows]
    db.close()
    Store(db_path).close()
    db = Database(db_path)
    again = [(r["name"], r["applied_at"]) for r in db["_sqlite_migrations"].rows]
    db.close()
    assert first == again
    assert [name for name, _ in again] == all_names()


def test_upgrade_from_before_the_last_migration(db_path):
    names = all_names()
    last = names[-1]
    db = Database(db_path)
    migrations.apply(db, stop_before=last)
    assert [m.name for m in migrations.applied(db)] == names[:-1]
    if len(names) == 1:  # only the initial migration: stopping before it leaves no schema
        assert "orders" not in db.table_names()
    db.close()
    with Store(db_path) as store:
        assert store.applied_migrations() == names
        store.create_phase("出荷済み", "required")  # the upgraded schema works
        assert store.get_phase("出荷済み")["ship_date"] == "required"


# every table's columns after the last migration, in order: a migration that changes one says so
COLUMNS = {
    "stores": [
        "name", "mall", "seller_id", "marketplace_id", "endpoint", "token_url", "encoding",
        "interval_minutes", "result_deadline_hours", "template", "started", "created_at",
        "time_budget_minutes", "mall_settings",
    ],
    "phases": ["name", "ship_date"],
    "targets": ["store", "phase", "move_to"],
    "carriers": ["name"],
    "carrier_codes": ["carrier", "field", "value"],
    "settings": ["key", "value"],
    "orders": [
        "order_no", "store", "mall_order_id", "phase", "category", "fba", "bundle_parent",
        "split_from", "ship_date", "carrier", "tracking_number", "status", "message", "warning",
        "batch_id", "updated_at", "message_key",
    ],
    "order_items": ["order_no", "line", "item_id", "sku", "quantity"],
    "order_refs": ["order_no", "data", "completion", "complete_due"],
    "batches": [
        "id", "store", "state", "created_at", "updated_at", "encoding", "content_type", "feed",
        "row_count", "order_count", "feed_document_id", "submit_started_at", "feed_id",
        "submitted_at", "processing_status", "result_document_id", "report", "report_charset",
        "processed", "successful", "note", "fetch_failures", "last_error", "finished_at",
        "mall_id", "mall_state",
    ],
    "batch_rows": ["batch_id", "record_no", "order_no", "order_id", "item_id"],
    "history": [
        "id", "time", "store", "order_no", "mall_order_id", "batch_id", "feed_id", "status",
        "warning", "message", "source", "operator", "message_key",
    ],
    "runs": ["id", "store", "job", "started_at", "finished_at", "outcome", "summary"],
}  # fmt: skip


def test_every_table_has_exactly_its_columns(db_path):
    Store(db_path).close()
    db = Database(db_path)
    try:
        found = {
            name: [c.name for c in db.table(name).columns]
            for name in db.table_names()
            if not name.startswith("_")
        }
    finally:
        db.close()
    assert found == COLUMNS


T0 = "2026-11-30T01:00:00+00:00"
T1 = "2026-11-30T01:05:00+00:00"


def _fill_0002(db: Database) -> None:
    """A 0002 database in use: two stores, carriers, orders with items, a batch, history, runs."""
    ex = db.execute
    ex("INSERT INTO stores (name, mall, seller_id, marketplace_id, endpoint, token_url, encoding, "
       "interval_minutes, result_deadline_hours, template, started, created_at) VALUES "
       "('amazon-main', 'amazon', 'A2SELLER', 'A1VC38T7YXB528', 'https://sp.example', "
       "'https://lwa.example/token', 'cp932', 30, 12, '/etc/t.j2', 1, ?), "
       "('rakuten-shop', 'rakuten', NULL, NULL, NULL, NULL, 'utf-8', 15, 24, NULL, 0, ?)",
       [T0, T0])  # fmt: skip
    ex("INSERT INTO phases VALUES ('出荷済み', 'required'), ('完了', 'optional')")
    ex("INSERT INTO targets VALUES ('amazon-main', '出荷済み', '完了')")
    ex("INSERT INTO carriers VALUES ('ヤマト運輸', 'Yamato Transport', NULL, '宅急便'), "
       "('西濃運輸', 'Other', '西濃運輸', NULL), "
       "('日本郵便', 'Japan Post', NULL, NULL)")  # fmt: skip
    ex("INSERT INTO settings VALUES ('mail.smtp_host', '\"127.0.0.1\"')")
    ex("INSERT INTO orders (order_no, store, mall_order_id, phase, carrier, tracking_number, "
       "status, batch_id, updated_at) VALUES "
       "('10001', 'amazon-main', '503-2841736-5092218', '出荷済み', 'ヤマト運輸', '4012', "
       "'in_progress', 1, ?), ('20001', 'rakuten-shop', NULL, '完了', NULL, NULL, 'pending', "
       "NULL, ?)", [T0, T0])  # fmt: skip
    ex("INSERT INTO order_items VALUES ('10001', 1, '3820', 'MUG', 2)")
    ex("INSERT INTO batches (id, store, state, created_at, updated_at, encoding, content_type, "
       "feed, row_count, order_count, feed_id, submitted_at) VALUES (1, 'amazon-main', "
       "'submitted', ?, ?, 'cp932', 'text/tab-separated-values; charset=Shift_JIS', x'6162', 1, "
       "1, '50001', ?)", [T0, T1, T1])  # fmt: skip
    ex("INSERT INTO batch_rows VALUES (1, 1, '10001', '503-2841736-5092218', '3820')")
    ex("INSERT INTO history (time, store, order_no, batch_id, feed_id, status, source) VALUES "
       "(?, 'amazon-main', '10001', 1, '50001', 'in_progress', 'auto')", [T1])  # fmt: skip
    ex("INSERT INTO runs (store, job, started_at, outcome, summary) VALUES "
       "('amazon-main', 'notify', ?, 'ok', '{}')", [T1])  # fmt: skip


def _snapshot(db: Database, skip: dict[str, set[str]]) -> dict[str, list[dict]]:
    return {
        name: [
            {k: v for k, v in row.items() if k not in skip.get(name, set())}
            for row in db.query(f"SELECT * FROM [{name}] ORDER BY rowid")
        ]
        for name in ("stores", "phases", "targets", "settings", "orders", "order_items",
                     "batches", "batch_rows", "history", "runs")
    }  # fmt: skip


def test_upgrade_to_the_mall_interface_keeps_every_row(db_path):
    db = Database(db_path)
    migrations.apply(db, stop_before="0003_mall_interface")
    _fill_0002(db)
    db.conn.commit()
    before = _snapshot(db, {})
    db.close()

    with Store(db_path) as store:
        assert store.applied_migrations()[-1] == "0004_message_keys"
        after = _snapshot(
            store.db,
            {"stores": {"time_budget_minutes", "mall_settings"},
             "batches": {"mall_id", "mall_state"},
             "orders": {"message_key"}, "history": {"message_key"}},
        )  # fmt: skip
        assert after == before  # nothing lost, nothing changed
        row = store.get_store("amazon-main")
        assert (row["time_budget_minutes"], row["mall_settings"]) == (10, {})
        assert store.get_batch(1)["mall_id"] == "50001"  # Amazon's feed id is the batch's mall id
        assert store.list_carriers(["amazon_carrier_code", "amazon_ship_method"]) == [
            {"name": "ヤマト運輸", "amazon_carrier_code": "Yamato Transport",
             "amazon_ship_method": "宅急便"},
            {"name": "西濃運輸", "amazon_carrier_code": "Other", "amazon_ship_method": None,
             "amazon_carrier_name": "西濃運輸"},
            {"name": "日本郵便", "amazon_carrier_code": "Japan Post", "amazon_ship_method": None},
        ]  # fmt: skip
        # the mall is the registry's to check now, and foreign keys hold after the rebuild
        store.add_store("third", "othermall", {}, T1)
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("INSERT INTO targets VALUES ('no-such-store', '出荷済み', NULL)")
