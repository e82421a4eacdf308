"""`crossship history` (seed 5-1, SPEC §10): filters, formats, newest first, local times with the
machine's offset, and streaming: bounded memory, a closed pipe ends quietly."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import notify_helpers
import pytest
from notify_helpers import STORE, T0, Env, order

from crossship import manual
from crossship.statuses import Status
from crossship.store import HistoryFilter, StatusChange, Store
from crossship.timeutil import local_iso, to_db

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

OTHER_STORE = "amazon-second"
FIELDS = list(manual.HISTORY_FIELDS)


def record(
    env: Env,
    order_no: str,
    status: Status,
    at: datetime,
    message: str = "",
    *,
    warning: bool = False,
    source: str = "auto",
    operator: str | None = None,
) -> None:
    env.store.change_statuses(
        [StatusChange(order_no, status, message, warning)],
        now=to_db(at),
        source=source,
        operator=operator,
    )


@pytest.fixture
def events(env: Env) -> Env:
    """Five history rows over two days, two stores, with one warning and one manual change."""
    env.add_store(OTHER_STORE)
    env.add(order(1), order(2), order(3, store=OTHER_STORE))
    record(env, "A00001", Status.ERROR, T0 - timedelta(days=2), "発送日 (ship_date) is missing")
    record(
        env,
        "A00001",
        Status.PENDING,
        T0 - timedelta(days=1, hours=1),
        "manual: エラー → 未連携",
        source="manual",
        operator="yamada",
    )
    record(
        env, "A00002", Status.SUCCESS, T0 - timedelta(hours=3), "ship-method warning", warning=True
    )
    record(env, "A00003", Status.SUCCESS, T0 - timedelta(hours=1))
    record(env, "A00001", Status.NOTIFY_FAILED, T0, "Amazon rejected the feed")
    return env


def rows(env: Env, *args: str) -> list[dict]:
    result = env.cli("history", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def orders_of(found: list[dict]) -> list[tuple[str, str]]:
    return [(r["order_no"], r["status"]) for r in found]


# ------------------------------------------------------------------------------- formats


def test_json_has_exactly_the_spec_fields_newest_first(events: Env):
    found = rows(events)
    assert [list(r) for r in found] == [FIELDS] * 5
    assert orders_of(found) == [
        ("A00001", "notify_failed"),
        ("A00003", "success"),
        ("A00002", "success"),
        ("A00001", "pending"),
        ("A00001", "error"),
    ]
    newest = found[0]
    assert newest["time"] == local_iso(to_db(T0))
    assert datetime.fromisoformat(newest["time"]) == T0
    assert newest["store"] == STORE
    assert newest["mall_order_id"] == "250-0000001-0000001"
    assert newest["status_label"] == "通知失敗"
    assert newest["warning"] is False
    assert newest["message"] == "Amazon rejected the feed"
    assert newest["source"] == "auto" and newest["operator"] is None
    assert found[2]["warning"] is True
    manual_row = found[3]
    assert (manual_row["source"], manual_row["operator"]) == ("manual", "yamada")


def test_jsonl_is_one_object_a_line(events: Env):
    result = events.cli("history", "--format", "jsonl")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert [json.loads(line) for line in lines] == rows(events)


def test_csv_and_tsv_have_the_header_and_warning_as_0_1(events: Env):
    for fmt, delimiter in (("csv", ","), ("tsv", "\t")):
        result = events.cli("history", "--format", fmt)
        assert result.exit_code == 0
        table = list(csv.reader(io.StringIO(result.stdout), delimiter=delimiter))
        assert table[0] == FIELDS
        assert len(table) == 6
        warning = FIELDS.index("warning")
        assert [r[warning] for r in table[1:]] == ["0", "0", "1", "0", "0"]
        assert table[1][FIELDS.index("time")] == local_iso(to_db(T0))
        assert table[1][FIELDS.index("status_label")] == "通知失敗"


def test_table_shows_the_label(events: Env):
    result = events.cli("history")
    assert result.exit_code == 0
    header, _rule, first, *_ = result.stdout.splitlines()
    assert "status" in header and "status_label" not in header
    assert "通知失敗" in first and "notify_failed" not in first
    assert "yes" in result.stdout.splitlines()[4]  # A00002's warning


def test_empty_history(env: Env):
    assert rows(env) == []
    result = env.cli("history", "--format", "jsonl")
    assert (result.exit_code, result.stdout) == (0, "")
    result = env.cli("history")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No history rows" in result.stderr


# ------------------------------------------------------------------------------- filters


def test_store_filter(events: Env):
    assert orders_of(rows(events, "--store", OTHER_STORE)) == [("A00003", "success")]
    assert len(rows(events, "--store", STORE)) == 4


def test_order_filter(events: Env):
    found = rows(events, "--order", "A00001")
    assert [r["status"] for r in found] == ["notify_failed", "pending", "error"]


@pytest.mark.parametrize("word", ["success", "正常"])
def test_status_filter_takes_key_or_label(events: Env, word: str):
    assert orders_of(rows(events, "--status", word)) == [
        ("A00003", "success"),
        ("A00002", "success"),
    ]


def test_relative_since_uses_the_injected_clock(events: Env):
    found = rows(events, "--since", "2h")
    assert orders_of(found) == [("A00001", "notify_failed"), ("A00003", "success")]
    events.clock.advance(hours=1, minutes=1)
    assert orders_of(rows(events, "--since", "2h")) == [("A00001", "notify_failed")]
    assert len(rows(events, "--since", "7d")) == 5
    assert len(rows(events, "--since", "30m")) == 0


def test_since_and_until_with_iso_times(events: Env):
    until = (T0 - timedelta(hours=2)).isoformat()
    assert orders_of(rows(events, "--until", until)) == [
        ("A00002", "success"),
        ("A00001", "pending"),
        ("A00001", "error"),
    ]
    since = (T0 - timedelta(days=1, hours=2)).isoformat()
    found = rows(events, "--since", since, "--until", until)
    assert orders_of(found) == [("A00002", "success"), ("A00001", "pending")]


def test_since_a_local_date(events: Env):
    day = datetime.fromisoformat(local_iso(to_db(T0))).date().isoformat()
    start_of_day = datetime.fromisoformat(day).astimezone()
    expected = [r for r in rows(events) if datetime.fromisoformat(r["time"]) >= start_of_day]
    assert rows(events, "--since", day) == expected


def test_limit_keeps_the_newest(events: Env):
    assert orders_of(rows(events, "--limit", "2")) == [
        ("A00001", "notify_failed"),
        ("A00003", "success"),
    ]
    assert len(rows(events, "--order", "A00001", "--limit", "1")) == 1


def test_warnings_only(events: Env):
    assert orders_of(rows(events, "--warnings-only")) == [("A00002", "success")]


def test_filters_combine(events: Env):
    found = rows(events, "--store", STORE, "--status", "未連携", "--order", "A00001")
    assert orders_of(found) == [("A00001", "pending")]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--status", "done"], "unknown API status"),
        (["--store", "nowhere"], "no store named 'nowhere'"),
        (["--order", "Z99999"], "no order"),
        (["--since", "yesterday"], "--since"),
        (["--until", "soon"], "--until"),
        (["--since", "1h", "--until", "2d"], "after --until"),
        (["--limit", "0"], "--limit"),
        (["--format", "xml"], "--format"),
    ],
)
def test_bad_input_is_a_usage_error(events: Env, args: list[str], says: str):
    result = events.cli("history", *args)
    assert result.exit_code == 2
    assert says in result.stderr
    assert result.stdout == ""


# ------------------------------------------------------------------------------- local time


ZONES = [
    "UTC",
    "Asia/Tokyo",
    "Europe/Berlin",  # DST: the history below crosses both changes
    "America/New_York",
    "Asia/Kolkata",  # +05:30
    "America/St_Johns",  # -03:30 with DST
    "Australia/Lord_Howe",  # +10:30 / +11:00: a half-hour DST change
    "Asia/Kathmandu",  # +05:45
]


@pytest.fixture
def zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ZONES, indirect=True)
def test_times_are_local_iso_in_every_zone(tmp_path: Path, zone: str):
    """Both the cached conversion and SQLite's fixed-offset one give exactly local_iso."""
    store = Store(tmp_path / "zones.db")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # every 7 h 13 min 17.5 s for a year: every hour of the day, both DST changes, odd seconds
    stored = [to_db(start + timedelta(seconds=26_000 * i - 2.5 * i)) for i in range(1_300)]
    # and around each DST change, minute by minute
    for change in (
        datetime(2026, 3, 8, 6, tzinfo=UTC),
        datetime(2026, 3, 29, 0, tzinfo=UTC),
        datetime(2026, 4, 4, 14, tzinfo=UTC),
        datetime(2026, 10, 3, 15, tzinfo=UTC),
        datetime(2026, 10, 25, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 5, tzinfo=UTC),
    ):
        stored += [to_db(change + timedelta(minutes=m, seconds=59.999999)) for m in range(-90, 90)]
    store.db["history"].insert_all(
        {"time": t, "store": STORE, "order_no": "A1", "status": "success", "source": "auto"}
        for t in stored
    )
    expected = [local_iso(t) for t in reversed(stored)]
    local = manual.LocalTimes()
    assert [local(t) for t in reversed(stored)] == expected
    lines = [line for chunk in manual.history_json(store, HistoryFilter()) for line in chunk]
    assert [json.loads(line)["time"] for line in lines] == expected
    assert [r["time"] for r in manual.history_rows(store, HistoryFilter())] == expected
    store.close()
    # a history that holds no offset change: SQLite writes the times at the fixed offset
    short = Store(tmp_path / "short.db")
    short.db["history"].insert_all(
        {"time": t, "store": STORE, "order_no": "A1", "status": "success", "source": "auto"}
        for t in stored[:4]
    )
    assert manual.fixed_offset(stored[0], stored[3]) is not None
    lines = [line for chunk in manual.history_json(short, HistoryFilter()) for line in chunk]
    assert [json.loads(x)["time"] for x in lines] == [local_iso(t) for t in reversed(stored[:4])]
    short.close()


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Tokyo", "UTC"], indirect=True)
def test_fixed_offset_only_when_no_change_in_between(zone: str):
    winter, summer = (
        to_db(datetime(2026, 1, 10, tzinfo=UTC)),
        to_db(datetime(2026, 7, 1, tzinfo=UTC)),
    )
    offset = manual.fixed_offset(winter, summer)
    if zone == "Europe/Berlin":
        assert offset is None
        assert manual.fixed_offset(winter, winter) == timedelta(hours=1)
    else:
        assert offset == datetime(2026, 1, 10, tzinfo=UTC).astimezone().utcoffset()
    assert manual.fixed_offset(None, None) is None


# ------------------------------------------------------------------------------- streaming

BIG = 300_000


@pytest.fixture(scope="module")
def big_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A database with BIG history rows, generated once for the streaming tests."""
    path = tmp_path_factory.mktemp("big") / "crossship.db"
    store = Store(path)
    newest = datetime(2026, 11, 27, tzinfo=UTC)
    rows = (
        {
            "time": to_db(newest - timedelta(seconds=7 * (BIG - 1 - i))),
            "store": STORE,
            "order_no": f"A{i % 5000:05d}",
            "mall_order_id": f"250-{i % 5000:07d}-{i % 5000:07d}",
            "batch_id": i // 1000,
            "feed_id": str(50_000 + i // 1000),
            "status": "success",
            "warning": i % 7 == 0,
            "message": "配送番号 (tracking_number) is blank" if i % 7 == 0 else None,
            "source": "auto",
        }
        for i in range(BIG)
    )
    with store.atomic():
        store.db["history"].insert_all(rows, batch_size=2000)
    store.close()
    yield path


def crossship(*args: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "crossship", "--db", str(db), *args]


def test_the_core_streams_in_bounded_memory(big_db: Path):
    store = Store(big_db)
    tracemalloc.start()
    try:
        count = 0
        for chunk in manual.history_json(store, HistoryFilter()):
            count += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.close()
    assert count == BIG
    assert peak < 20 * 1024 * 1024, f"peak {peak} bytes"


# ru_maxrss of a child counts the RSS its parent had when it forked (Linux keeps it across exec):
# a child of this big pytest process would look big. A small launcher started afresh reads the
# child's output through a pipe and reports the child's own numbers.
PIPE_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
first = child.stdout.readline()
count = 1
for _line in child.stdout:
    count += 1
stderr = child.stderr.read()
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"first": first.decode(), "count": count, "maxrss_kib": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status), "stderr": stderr.decode()}))
"""


def test_jsonl_of_300k_rows_through_a_pipe_in_bounded_memory(big_db: Path):
    """The whole output goes through a pipe while the process stays small (RSS, not time)."""
    launcher = [sys.executable, "-I", "-S", "-c", PIPE_LAUNCHER]
    done = subprocess.run(
        launcher + crossship("history", "--format", "jsonl", db=big_db),
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(done.stdout)
    assert seen["code"] == 0, seen["stderr"]
    assert seen["count"] == BIG
    first = json.loads(seen["first"])
    assert first["time"] == local_iso(to_db(datetime(2026, 11, 27, tzinfo=UTC)))
    assert seen["maxrss_kib"] < 150 * 1024, f"the child peaked at {seen['maxrss_kib']} KiB"


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_head_ends_quietly(big_db: Path, fmt: str):
    command = " ".join(crossship("history", "--format", fmt, db=big_db))
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} | head -1"],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert len(result.stdout.splitlines()) == 1
