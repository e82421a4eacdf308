"""`history --format csv|tsv` goes through SQLite like jsonl (SPEC §16), and its bytes are exactly
what the csv writer made of the Python rows before: the header, QUOTE_MINIMAL quoting (a field
with the delimiter, a double quote or a newline), status_label, warning 1/0, empty NULLs and the
local time with its offset, in zones with and without offset changes."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from crossship import i18n, manual
from crossship.cli import cli
from crossship.i18n import Message, keep
from crossship.output import csv_field, write_rows
from crossship.store import HistoryFilter, Store
from crossship.timeutil import to_db

STORE = "amazon-main"
TRICKY = [
    None,
    "",
    "plain",
    "a,b",
    'say "hi"',
    '"',
    '""',
    ",",
    "line\nbreak",
    "carriage\rreturn",  # the csv writer does not quote a lone \r: neither may SQLite
    "crlf\r\nend",
    "tab\there",
    " leading and trailing ",
    "日本語のメッセージ、全角，カンマ",
    '18028: 注文番号が見つかりません。, "Amazon"\n2行目',
    "\u2028separator",
    "'single'",
    "emoji 📦",
]
STATUSES = [
    "pending",
    "in_progress",
    "success",
    "notify_failed",
    "result_failed",
    "error",
    "odd",
    'odd,"one"\n',
]


def old_path(store: Store, f: HistoryFilter, fmt: str) -> bytes:
    """What `history --format csv|tsv` wrote before: Python's csv writer over history_rows."""
    out = io.StringIO(newline="")
    write_rows(manual.history_rows(store, f), manual.HISTORY_FIELDS, fmt, out)
    return out.getvalue().encode("utf-8")


def cli_output(db: Path, *args: str, lang: str = "en") -> bytes:
    command = ["--lang", lang, "--db", str(db), "history", *args]
    result = CliRunner().invoke(cli, command, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def kept(i: int) -> dict[str, str | None]:
    """A message of ours, kept with its key to be shown in the reader's language, with tricky
    arguments and a mall's own words after it."""
    ours = Message("Warning: {message}", {"message": TRICKY[i % len(TRICKY)] or "x"})
    text, key = keep([ours, f'18028: Amazon\'s own, "words" {i}'])
    return {"message": text, "message_key": key}


def fill(db: Path, start: datetime, count: int, step: timedelta) -> None:
    """History rows whose every text column takes each tricky value in turn."""
    store = Store(db)
    n = len(TRICKY)
    store.db["history"].insert_all(
        {
            "time": to_db(start + step * i),
            "store": (TRICKY[i % n] or STORE) if i % 3 == 0 else STORE,
            "order_no": TRICKY[(i + 1) % n] or f"A{i}",
            "mall_order_id": TRICKY[(i + 2) % n],
            "batch_id": None if i % 4 == 0 else i * 37,
            "feed_id": TRICKY[(i + 3) % n],
            "status": STATUSES[i % len(STATUSES)],
            "warning": i % 5 == 0,
            **(kept(i) if i % 6 == 1 else {"message": TRICKY[(i + 5) % n]}),
            "source": "manual" if i % 2 else "auto",
            "operator": TRICKY[(i + 7) % n],
        }
        for i in range(count)
    )
    store.close()


@pytest.fixture
def zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    "zone", ["UTC", "Asia/Tokyo", "Asia/Kolkata", "Europe/Berlin"], indirect=True
)
@pytest.mark.parametrize("span", ["hours", "a year"])
@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_bytes_are_the_old_paths(tmp_path: Path, zone: str, span: str, fmt: str) -> None:
    """A short span has one offset (SQLite writes the time); a year in Berlin does not (each
    time is made local in Python): both give the old bytes."""
    db = tmp_path / "crossship.db"
    step = timedelta(minutes=7, seconds=13) if span == "hours" else timedelta(hours=17, seconds=3)
    fill(db, datetime(2026, 1, 1, tzinfo=UTC), 520, step)
    store = Store(db)
    first, last = store.history_time_span()
    one_offset = manual.fixed_offset(first, last) is not None
    assert one_offset == (span == "hours" or zone != "Europe/Berlin")  # both paths are covered

    expected = old_path(store, HistoryFilter(), fmt)
    assert cli_output(db, "--format", fmt) == expected
    assert expected.count(b"\n") > 520  # quoted newlines: more lines than rows
    store.close()


@pytest.fixture(params=["en", "ja"])
def language(request: pytest.FixtureRequest) -> Iterator[str]:
    """The reader's language, for the old path in this process and --lang for the command."""
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language("en")


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_kept_messages_in_the_readers_language_give_the_old_bytes(
    tmp_path: Path, language: str, fmt: str
) -> None:
    db = tmp_path / "crossship.db"
    fill(db, datetime(2026, 1, 1, tzinfo=UTC), 120, timedelta(minutes=3))
    store = Store(db)
    expected = old_path(store, HistoryFilter(), fmt)
    assert cli_output(db, "--format", fmt, lang=language) == expected
    said = "警告: " if language == "ja" else "Warning: "
    assert expected.count(said.encode()) == 20  # the kept messages, in the reader's language
    store.close()


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_rows_are_the_python_rows_in_the_readers_language(
    tmp_path: Path, language: str, fmt: str
) -> None:
    db = tmp_path / "crossship.db"
    fill(db, datetime(2026, 1, 1, tzinfo=UTC), 120, timedelta(minutes=3))
    store = Store(db)
    expected = list(manual.history_rows(store, HistoryFilter()))
    out = cli_output(db, "--format", fmt, lang=language).decode()
    found = json.loads(out) if fmt == "json" else [json.loads(x) for x in out.split("\n") if x]
    assert found == expected
    assert {r["status_label"] for r in found} >= {"正常", "エラー", ""}
    store.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--limit", "7"],
        ["--store", STORE],
        ["--status", "エラー"],
        ["--warnings-only"],
        ["--since", "2026-01-01T03:00", "--until", "2026-01-01T09:00"],
    ],
)
def test_filters_give_the_old_bytes(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "crossship.db"
    fill(db, datetime(2026, 1, 1, tzinfo=UTC), 200, timedelta(minutes=5))
    Store(db).add_store(STORE, "amazon", {}, to_db(datetime(2026, 1, 1, tzinfo=UTC)))
    store = Store(db)
    f = manual.history_filter(
        store,
        store_name=STORE if "--store" in args else None,
        status="エラー" if "--status" in args else None,
        since="2026-01-01T03:00" if "--since" in args else None,
        until="2026-01-01T09:00" if "--until" in args else None,
        limit=7 if "--limit" in args else None,
        warnings_only="--warnings-only" in args,
        now=datetime(2026, 1, 2, tzinfo=UTC),
    )
    expected = old_path(store, f, "csv")
    assert cli_output(db, "--format", "csv", *args) == expected
    assert expected.count(b"\n") > 1  # something matched
    store.close()


def test_an_empty_history_is_the_header_alone(tmp_path: Path) -> None:
    db = tmp_path / "crossship.db"
    Store(db).close()
    assert cli_output(db, "--format", "csv") == (",".join(manual.HISTORY_FIELDS) + "\n").encode()
    assert cli_output(db, "--format", "tsv") == ("\t".join(manual.HISTORY_FIELDS) + "\n").encode()


@pytest.mark.parametrize("value", [v for v in TRICKY if v is not None])
@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_one_field_quoted_as_the_csv_writer_quotes_it(value: str, delimiter: str) -> None:
    out = io.StringIO()
    fmt = "csv" if delimiter == "," else "tsv"
    write_rows([{"a": value, "b": "x"}], ["a", "b"], fmt, out)
    assert out.getvalue().split("\n", 1)[1] == csv_field(value, delimiter) + delimiter + "x\n"
