"""Hostile input (issue 10, minor items): each a clear one-line error, exit 1 or 2, nothing
stored, no traceback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

HEADER = "管理番号,店舗,注文番号,処理フェーズ,発送日,配送便,配送番号,注文商品番号,数量\n"


def one_error(result) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture
def shop(run, initialised: Path) -> Path:
    for args in (
        ["config", "phase", "create", "出荷済み"],
        ["config", "store", "add", "amazon-main", "--mall", "amazon"],
    ):
        assert run(args).exit_code == 0
    return initialised


@pytest.mark.parametrize(
    ("row", "what"),
    [
        (
            "A1,amazon-main,250-0000001-0000001,出荷済み,2026-11-27,,4012,1,99999999999999999999",
            "too large",
        ),
        ("A1,amazon-main,250-0000001-0000001,出荷済み,2026-11-27,,40\x0012,1,1", "control"),
        ("A1,amazon-main,250-0000001-0000001\x07,出荷済み,2026-11-27,,4012,1,1", "control"),
        ("A1,amazon-main,250-0000001-0000001,出荷済み,2026-11-27,,40\x1b[2J12,1,1", "control"),
        ("A\x001,amazon-main,250-0000001-0000001,出荷済み,2026-11-27,,4012,1,1", "control"),
    ],
    ids=["quantity-10^20", "nul-in-tracking", "bell-in-order-id", "escape-in-cell", "nul-in-no"],
)
def test_a_bad_row_is_refused_with_its_line_number(run, shop: Path, tmp_path, row, what) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes((HEADER + "A0,amazon-main,250-0000009-0000009,出荷済み,2026-11-27,,1,1,1\n"
                      + row + "\n").encode())  # fmt: skip
    before = dump(shop)

    result = run(["orders", "import", str(path)])

    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.stderr
    assert "line 3" in result.stderr and what in result.stderr, result.stderr
    assert dump(shop) == before


@pytest.mark.parametrize(
    "args",
    [
        ["history", "--since", "99999999999d"],
        ["history", "--until", "99999999999w"],
        ["config", "store", "set", "amazon-main", "--interval", "1000000000000"],
        ["config", "store", "set", "amazon-main", "--result-deadline", "1000000000000"],
        ["config", "store", "add", "other", "--mall", "amazon", "--interval", "1000000000000"],
    ],
    ids=["since", "until", "interval", "deadline", "add-interval"],
)
def test_out_of_range_numbers_are_one_error(run, shop: Path, args) -> None:
    before = dump(shop)
    result = run(args)
    assert result.exit_code == 2
    one_error(result)
    assert dump(shop) == before


def test_a_huge_interval_stored_earlier_does_not_crash_the_runs(run, shop: Path) -> None:
    conn = sqlite3.connect(shop)
    with conn:
        conn.execute(
            "UPDATE stores SET interval_minutes = 1000000000000, "
            "result_deadline_hours = 1000000000000, started = 1"
        )
        conn.execute(
            "INSERT INTO runs (store, job, started_at, finished_at, outcome, summary) VALUES "
            "('amazon-main', 'notify', '2026-11-27T00:00:00+00:00', "
            "'2026-11-27T00:00:00+00:00', 'ok', '{}')"
        )
    conn.close()
    result = run(["notify", "run"])
    assert "Traceback" not in result.stderr
    assert result.exit_code in (0, 1)


@pytest.mark.parametrize(
    "show", [["config", "store", "show", "amazon-main"], ["config", "mail", "show"]]
)
@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_show_commands_honour_every_format(run, shop: Path, show, fmt) -> None:
    import csv
    import io

    result = run([*show, "--format", fmt])

    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter="," if fmt == "csv" else "\t"))
    assert len(rows) == 1
    assert ("name" in rows[0]) if show[1] == "store" else ("smtp_port" in rows[0])


def test_credentials_pointing_to_a_directory_says_so(
    run, shop: Path, tmp_path, monkeypatch
) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o755)
    monkeypatch.setenv("CROSSSHIP_CREDENTIALS", str(folder))

    result = run(["config", "store", "show", "amazon-main"])

    assert result.exit_code in (1, 2)
    error = one_error(result)
    assert "not a regular file" in error and "chmod" not in error
