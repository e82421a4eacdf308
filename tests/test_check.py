"""`crossship check` (SPEC §15): one line per problem, exit 0 ok / 1 warning / 2 critical, read
only and stateless: a healthy cycle, a stuck batch, a late job, failed orders, a failing database,
a long-held lock, a mall's expiry warnings, and the json shape."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import notify_helpers
import pytest
from notify_helpers import FEED_ID, NO_CODE, STORE, T0, Env, order, report_en

from crossship import check as check_module
from crossship import malls
from crossship.check import check
from crossship.lock import RunLock, holder
from crossship.paths import lock_path

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock


def healthy_cycle(env: Env) -> None:
    """One order sent and confirmed: both jobs ran at T0 + 15 min."""
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.result(report_en(1, 1))
    env.fetch()
    env.notify()
    assert env.status("A00001") == "success"


def checked(env: Env, *args: str):
    result = env.cli("check", *args)
    return result, result.stdout.splitlines()


def test_a_healthy_cycle_is_ok_exit_0(env: Env) -> None:
    healthy_cycle(env)
    env.clock.advance(minutes=10)

    result, lines = checked(env)

    assert result.exit_code == 0, result.output
    assert lines == ["OK: no problems (1 store checked)"]
    assert result.stderr == ""


def test_a_batch_waiting_past_half_its_deadline_is_critical_exit_2(env: Env) -> None:
    env.add(order(1), order(2))
    env.amazon.send_ok()
    env.notify()
    (batch,) = env.batches("submitted")
    # the jobs keep running every 15 minutes; Amazon keeps the feed IN_PROGRESS
    env.amazon.token()
    env.amazon.get_feed(processing_status="IN_PROGRESS", result_document_id=None)
    env.clock.now = T0 + timedelta(hours=11, minutes=59)
    env.fetch()
    env.notify()
    result, lines = checked(env)
    assert result.exit_code == 0, lines  # 11 h 59 m of 24 h: not yet

    env.clock.now = T0 + timedelta(hours=12, minutes=1)
    env.fetch()
    env.notify()
    result, lines = checked(env)

    assert result.exit_code == 2
    (line,) = lines
    assert line.startswith(f"CRITICAL: {STORE}: batch {batch['id']} ({FEED_ID}) has waited 12h 1m")
    assert "24h result deadline" in line and "2 orders 連携中" in line


def test_a_shorter_deadline_is_halved_too(env: Env) -> None:
    assert env.cli("config", "store", "set", STORE, "--result-deadline", "2").exit_code == 0
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()
    env.clock.advance(minutes=30)
    assert checked(env)[0].exit_code == 0
    env.clock.advance(minutes=31)  # the jobs last ran 61 minutes ago: late too

    result, lines = checked(env)

    assert result.exit_code == 2
    assert any(
        "has waited 1h 1m for its result, past half its 2h result deadline" in line
        for line in lines
    )


def test_json_shape(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()
    env.notify()
    env.clock.advance(hours=13)

    result = env.cli("check", "--format", "json")

    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert set(report) == {"status", "exit_code", "checked_at", "stores", "problems"}
    assert (report["status"], report["exit_code"], report["stores"]) == ("critical", 2, 1)
    kinds = {p["kind"]: p for p in report["problems"]}
    assert set(kinds) == {"batch_waiting", "job_late", "job_never_ran"}
    batch = kinds["batch_waiting"]
    assert set(batch) == {"level", "kind", "text", "store", "details"}
    assert batch["level"] == "critical" and batch["store"] == STORE
    assert batch["details"]["mall_id"] == FEED_ID
    assert batch["details"]["batch_id"] == env.batches()[0]["id"]
    assert batch["details"]["orders"] == 1
    assert kinds["job_late"]["details"]["job"] in ("notify", "results")


def test_a_job_that_has_not_run_for_3_intervals_is_critical(env: Env) -> None:
    healthy_cycle(env)  # both jobs last ran at T0 + 15 min
    env.clock.now = T0 + timedelta(minutes=15 + 45)
    assert checked(env)[0].exit_code == 0

    env.clock.now = T0 + timedelta(minutes=15 + 46)
    result, lines = checked(env)

    assert result.exit_code == 2
    assert len(lines) == 2
    assert all(line.startswith(f"CRITICAL: {STORE}: `crossship ") for line in lines)
    assert "`crossship notify run` last ran 46m ago" in lines[0]
    assert "`crossship results fetch` last ran 46m ago" in lines[1]
    assert "3 intervals of 15 min" in lines[0]


def test_a_stopped_store_is_not_expected_to_run(env: Env) -> None:
    healthy_cycle(env)
    assert env.cli("auto", "stop", STORE).exit_code == 0
    env.clock.advance(days=3)

    assert checked(env)[0].exit_code == 0


def test_a_longer_interval_waits_longer(env: Env) -> None:
    assert env.cli("config", "store", "set", STORE, "--interval", "60").exit_code == 0
    healthy_cycle(env)  # notify ran at T0 only: its next run is not due for an hour
    env.clock.now = T0 + timedelta(hours=2, minutes=59)
    assert checked(env)[0].exit_code == 0

    env.clock.now = T0 + timedelta(hours=3, minutes=1)
    lines = checked(env)[1]
    assert len(lines) == 1 and "3 intervals of 1h" in lines[0]


def test_a_started_store_that_never_ran_warns_once_3_intervals_old(env: Env) -> None:
    env.clock.now = T0 + timedelta(minutes=45)
    assert checked(env)[0].exit_code == 0

    env.clock.now = T0 + timedelta(minutes=46)
    result, lines = checked(env)

    assert result.exit_code == 1
    assert lines == [
        f"WARNING: {STORE}: started, but `crossship notify run` has never run for it: is the "
        "crontab or the systemd timer installed?",
        f"WARNING: {STORE}: started, but `crossship results fetch` has never run for it: is the "
        "crontab or the systemd timer installed?",
    ]


def test_orders_in_error_are_a_warning_with_count_and_oldest(env: Env) -> None:
    env.add(order(1, carrier=NO_CODE), order(2, carrier=NO_CODE))
    env.notify()  # both fail their check: エラー, nothing sent
    env.clock.advance(minutes=15)
    env.add(order(3, carrier=NO_CODE))
    env.notify(force=True)
    env.fetch(force=True)

    result, lines = checked(env)

    assert result.exit_code == 1
    (line,) = lines
    assert line.startswith(f"WARNING: {STORE}: 3 orders エラー (error), the oldest A00001 since ")
    assert f"crossship orders list --store {STORE} --api-status error" in line


def test_a_failed_last_run_is_a_warning(env: Env) -> None:
    env.add(order(1))
    env.amazon.token(status=400)
    env.notify()
    env.fetch()

    result, lines = checked(env)

    assert result.exit_code == 1
    (line,) = lines
    assert line.startswith(f"WARNING: {STORE}: the last `crossship notify run` (")
    assert "failed: " in line


def test_store_option_limits_the_store_problems(env: Env) -> None:
    env.add_store("amazon-sub")
    env.add(order(1, store="amazon-sub", carrier=NO_CODE))
    env.notify()
    env.fetch()

    assert checked(env, "--store", STORE)[0].exit_code == 0
    result, lines = checked(env, "--store", "amazon-sub")
    assert result.exit_code == 1 and lines[0].startswith("WARNING: amazon-sub: 1 order エラー")

    unknown = env.cli("check", "--store", "nope")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("Error: no store named 'nope'")


# ---------------------------------------------------------------------------------- database


def test_a_missing_database_is_critical_and_is_not_created(run, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "crossship.db"

    result = run(["--db", str(missing), "check"])

    assert result.exit_code == 2
    assert result.stdout.startswith(f"CRITICAL: no database at {missing}")
    assert not missing.parent.exists()


def test_a_database_failing_quick_check_is_critical(env: Env) -> None:
    env.add(*(order(n, tracking_number=f"{n:040d}") for n in range(1, 400)))
    (root,) = env.store.db.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'orders_eligible'"
    ).fetchone()
    page = env.store.db.execute("PRAGMA page_size").fetchone()[0]
    env.store.close()
    data = bytearray(env.db_path.read_bytes())
    data[(root - 1) * page] = 0xA5  # an index page whose type byte is no b-tree type
    env.db_path.write_bytes(bytes(data))

    result = env.cli("check")

    assert result.exit_code == 2
    assert result.stdout.startswith(f"CRITICAL: database {env.db_path} fails PRAGMA quick_check")


def test_check_changes_nothing_not_even_a_pending_migration(env: Env) -> None:
    healthy_cycle(env)
    last = env.store.applied_migrations()[-1]
    env.store.db.execute("DELETE FROM _sqlite_migrations WHERE name = ?", [last])
    env.store.db.conn.commit()
    env.store.close()
    before = env.db_path.read_bytes()

    first = env.cli("check", "--format", "json")
    second = env.cli("check", "--format", "json")

    assert first.exit_code == 1
    assert first.stdout == second.stdout  # the same database, the same answer
    (problem,) = json.loads(first.stdout)["problems"]
    assert problem["kind"] == "schema" and last in problem["text"]
    assert env.db_path.read_bytes() == before
    assert not lock_path(env.db_path).exists()  # no run lock taken


# ---------------------------------------------------------------------------------- the lock


def test_a_lock_held_longer_than_2_intervals_is_critical(env: Env) -> None:
    healthy_cycle(env)
    with RunLock(env.db_path, now=env.clock() - timedelta(minutes=29)):
        assert checked(env)[0].exit_code == 0
    with RunLock(env.db_path, now=env.clock() - timedelta(minutes=31)):
        result, lines = checked(env)

    assert result.exit_code == 2
    (line,) = lines
    assert line.startswith(f"CRITICAL: the run lock has been held for 31m by process {os.getpid()}")
    assert checked(env)[0].exit_code == 0  # released: the holder line is cleared


def test_a_run_records_its_start_in_the_lock_file_and_clears_it(env: Env) -> None:
    path = lock_path(env.db_path)
    with RunLock(env.db_path, now=T0):
        found = holder(env.db_path)
        assert found is not None and found.pid == os.getpid()
        assert found.since.startswith("2026-11-27T04:45:00")
    assert path.exists() and path.read_text() == ""
    assert holder(env.db_path) is None


def test_a_holder_line_left_by_a_killed_run_is_not_a_held_lock(env: Env) -> None:
    healthy_cycle(env)
    code = (
        "import sys, os, datetime; from pathlib import Path; from crossship.lock import RunLock\n"
        "old = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)\n"
        "lock = RunLock(Path(sys.argv[1]), now=old)\n"
        "lock.acquire(); os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(env.db_path)], check=False)
    assert "2026-01-01" in lock_path(env.db_path).read_text()  # the line stays

    assert holder(env.db_path) is None
    assert checked(env)[0].exit_code == 0


# ---------------------------------------------------------------------------------- malls


def test_a_mall_contributes_its_expiry_warnings(env: Env) -> None:
    healthy_cycle(env)
    seen = []

    def health(row: dict, now) -> list[tuple[str, str]]:
        seen.append((row["name"], now))
        return [("warning", "the key expires in 3 days"), ("critical", "the token expired")]

    report = check(env.db_path, env.clock(), hooks={"amazon": health})

    assert seen == [(STORE, env.clock())]
    assert [p.line() for p in report.problems] == [
        f"WARNING: {STORE}: the key expires in 3 days",
        f"CRITICAL: {STORE}: the token expired",
    ]
    assert {p.kind for p in report.problems} == {"credentials"}
    assert report.exit_code == 2


def test_a_stopped_store_is_not_asked_about_its_keys(env: Env) -> None:
    env.store.set_started(STORE, False)
    report = check(env.db_path, env.clock(), hooks={"amazon": pytest.fail})
    assert report.exit_code == 0


def test_a_registered_mall_health_shows_in_the_command(env: Env) -> None:
    healthy_cycle(env)  # 27 November, 05:00 UTC
    ends = datetime(2026, 12, 1, tzinfo=UTC)

    def health(row: dict, now: datetime) -> list[tuple[str, str]]:
        left = (ends - now).days
        return [("warning", f"the licence ends in {left} days")] if left <= 2 else []

    malls.register(dataclasses.replace(malls.get("amazon"), health=health))
    assert "amazon" in check_module.mall_hooks()
    assert checked(env)[0].exit_code == 0  # 3 days left

    env.clock.now = datetime(2026, 11, 29, 6, tzinfo=UTC)
    lines = checked(env)[1]

    assert f"WARNING: {STORE}: the licence ends in 1 days" in lines


def test_a_failed_run_s_reason_shows_in_the_reader_s_language(env: Env) -> None:
    """The run record keeps its problems as keys: `check` shows them in the reader's language,
    while the record itself (read by machines) stays English."""
    env.add(order(1))
    env.amazon.token(status=400)
    env.notify()
    env.fetch()

    japanese = env.cli("--lang", "ja", "check")
    english, lines_en = checked(env)
    lines_ja = japanese.stdout.splitlines()

    assert japanese.exit_code == english.exit_code == 1
    (line_ja,) = lines_ja
    assert "前回の `crossship notify run`" in line_ja
    assert "リフレッシュトークンを確認してください" in line_ja
    assert "check the LWA client id" not in line_ja
    (line_en,) = lines_en
    assert "check the LWA client id, client secret and refresh token" in line_en
    summary = json.loads(env.runs("notify")[0]["summary"])
    assert "check the LWA client id" in summary["problems"][0]


def test_a_run_record_from_before_kept_problems_shows_as_recorded(env: Env) -> None:
    env.add(order(1))
    env.amazon.token(status=400)
    env.notify()
    with env.store.db.atomic():
        env.store.db.execute(
            "UPDATE runs SET summary = json_remove(summary, '$.problems_kept', '$.mail_error_kept')"
        )
    env.fetch()

    result = env.cli("--lang", "ja", "check")
    lines = result.stdout.splitlines()

    assert result.exit_code == 1
    assert "check the LWA client id" in lines[0]  # the English recorded at the time
