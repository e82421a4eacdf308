"""Only `init` creates a database; a database from a newer crossship and an SQLite file that is
not crossship's are refused by every command, unchanged (issue 10 items 6 and 7)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

COMMANDS = [
    ["orders", "list"],
    ["-q", "notify", "run"],
    ["-q", "results", "fetch"],
    ["config", "store", "list"],
    ["config", "store", "add", "amazon-main", "--mall", "amazon"],
    ["config", "mail", "show"],
    ["history"],
    ["auto", "status"],
    ["batches", "list"],
]
# `check` answers like a monitoring plugin: CRITICAL on stdout, exit 2
CHECK = ["check"]


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def one_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_missing_database_is_never_created_but_by_init(run, tmp_path: Path, args) -> None:
    missing = tmp_path / "mistyped" / "crossship.db"

    result = run(["--db", str(missing), *args])

    assert result.exit_code == 1
    error = one_error(result.stderr)
    assert str(missing) in error and "crossship init" in error
    assert not missing.parent.exists()  # neither the database nor a lock file beside it


def test_a_missing_database_named_by_the_environment_is_refused(run, db_path: Path) -> None:
    result = run(["-q", "notify", "run"])
    assert result.exit_code == 1
    assert str(db_path) in one_error(result.stderr)
    assert not db_path.exists()


def test_init_creates_it_and_then_the_commands_work(run, tmp_path: Path) -> None:
    path = tmp_path / "new" / "crossship.db"
    assert run(["--db", str(path), "init"]).exit_code == 0
    assert run(["--db", str(path), "orders", "list"]).exit_code == 0


def test_an_empty_file_needs_init(run, db_path: Path) -> None:
    db_path.touch()
    result = run(["orders", "list"])
    assert result.exit_code == 1
    assert "crossship init" in one_error(result.stderr)
    assert db_path.read_bytes() == b""
    assert run(["init"]).exit_code == 0
    assert run(["orders", "list"]).exit_code == 0


@pytest.mark.parametrize("args", [["init"], *COMMANDS], ids=" ".join)
def test_a_database_from_a_newer_crossship_is_refused_unchanged(
    run, initialised: Path, args
) -> None:
    conn = sqlite3.connect(initialised)
    with conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('crossship', '0042_from_the_future', '2027-01-01 00:00:00+00:00')"
        )
    conn.close()
    before = dump(initialised)

    result = run(args)

    assert result.exit_code == 1
    error = one_error(result.stderr)
    assert "0042_from_the_future" in error and "newer crossship" in error
    assert dump(initialised) == before


@pytest.mark.parametrize("args", [["init"], *COMMANDS], ids=" ".join)
def test_an_sqlite_file_that_is_not_crossships_is_refused_unchanged(
    run, db_path: Path, args
) -> None:
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('山田')")
    conn.close()
    before = dump(db_path)
    mode = sqlite3.connect(db_path).execute("PRAGMA journal_mode").fetchone()[0]

    result = run(args)

    assert result.exit_code == 1
    error = one_error(result.stderr)
    assert "not crossship's" in error and "customers" in error
    assert dump(db_path) == before
    assert sqlite3.connect(db_path).execute("PRAGMA journal_mode").fetchone()[0] == mode


def test_check_says_critical_for_a_missing_newer_or_foreign_database(run, tmp_path: Path) -> None:
    missing = tmp_path / "none" / "crossship.db"
    result = run(["--db", str(missing), "check"])
    assert result.exit_code == 2 and result.stdout.startswith("CRITICAL: ")
    assert not missing.parent.exists()

    newer = tmp_path / "newer.db"
    assert run(["--db", str(newer), "init"]).exit_code == 0
    conn = sqlite3.connect(newer)
    with conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('crossship', '0042_from_the_future', '2027-01-01')"
        )
    conn.close()
    result = run(["--db", str(newer), "check"])
    assert result.exit_code == 2 and "0042_from_the_future" in result.stdout

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    with conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.close()
    before = dump(foreign)
    result = run(["--db", str(foreign), "check"])
    assert result.exit_code == 2 and "not crossship's" in result.stdout
    assert dump(foreign) == before
