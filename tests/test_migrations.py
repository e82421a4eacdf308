"""The schema as append-only named migrations: from blank, idempotent, and across an upgrade."""

from __future__ import annotations

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
