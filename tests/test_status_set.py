"""`crossship status set` (seed 6) and re-notification (seed 7 方法1) end to end."""

from __future__ import annotations

import json

import notify_helpers
import pytest
from notify_helpers import (
    DESTINATION,
    FEED_ID,
    OTHER_PHASE,
    STORE,
    TARGET,
    Env,
    feed_row,
    mall_order_id,
    order,
)

from crossship.statuses import Status
from crossship.store import StatusChange
from crossship.timeutil import to_db

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

OTHER = "makeshop-shop"  # a store of a mall crossship cannot notify


def give(env: Env, order_no: str, status: Status, message: str = "") -> None:
    env.store.change_statuses([StatusChange(order_no, status, message)], now=to_db(env.clock()))


def last_history(env: Env, order_no: str) -> dict:
    return env.history(order_no)[-1]


@pytest.fixture
def failed(env: Env) -> Env:
    """A00001 通知失敗 and A00002 通知結果取得失敗, both in the destination phase."""
    env.add(order(1, phase=DESTINATION), order(2, phase=DESTINATION))
    give(env, "A00001", Status.NOTIFY_FAILED, "Amazon rejected the feed")
    give(env, "A00002", Status.RESULT_FAILED, "no result after 24 h")
    return env


def test_sets_pending_with_an_audit_row(failed: Env):
    failed.clock.advance(minutes=5)
    result = failed.cli(
        "status", "set", "A00001", "--to", "pending", "--operator", "yamada", "--reason", "再送"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "A00001: 通知失敗 → 未連携" in result.stderr
    assert "Set 1 order(s) to 未連携 (pending)" in result.stderr
    order_row = failed.get("A00001")
    assert order_row["status"] == "pending"
    assert order_row["phase"] == DESTINATION
    row = last_history(failed, "A00001")
    assert row["status"] == "pending"  # the new status is the row's status
    assert row["source"] == "manual"
    assert row["operator"] == "yamada"
    assert row["message"] == "manual: 通知失敗 → 未連携 (再送)"
    assert row["time"] == to_db(failed.clock())
    assert failed.status("A00002") == "result_failed"  # untouched


def test_success_by_label_for_several_orders(failed: Env):
    result = failed.cli("status", "set", "A00001", "A00002", "--to", "正常", "--operator", "sato")
    assert result.exit_code == 0, result.stderr
    assert failed.statuses() == {"A00001": "success", "A00002": "success"}
    assert last_history(failed, "A00002")["message"] == "manual: 通知結果取得失敗 → 正常"
    assert last_history(failed, "A00002")["operator"] == "sato"


def test_pending_by_label(failed: Env):
    result = failed.cli("status", "set", "A00001", "--to", "未連携")
    assert result.exit_code == 0, result.stderr
    assert failed.status("A00001") == "pending"


@pytest.mark.parametrize("to", ["error", "エラー", "in_progress", "連携中", "done"])
def test_only_pending_and_success_can_be_set(failed: Env, to: str):
    result = failed.cli("status", "set", "A00001", "--to", to)
    assert result.exit_code == 2
    assert "pending (未連携), success (正常)" in result.stderr
    assert failed.status("A00001") == "notify_failed"


def test_operator_defaults_to_the_login_name(failed: Env, monkeypatch: pytest.MonkeyPatch):
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER", "tanaka")
    result = failed.cli("status", "set", "A00001", "--to", "pending")
    assert result.exit_code == 0, result.stderr
    assert last_history(failed, "A00001")["operator"] == "tanaka"


def test_order_numbers_from_stdin(failed: Env):
    from click.testing import CliRunner

    from crossship.cli import cli

    result = CliRunner().invoke(
        cli,
        ["status", "set", "-", "--to", "success", "--operator", "ops"],
        input="A00001\n  A00002\tA00001 \n\n",
        obj={"clock": failed.clock},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    assert failed.statuses() == {"A00001": "success", "A00002": "success"}
    assert len([h for h in failed.history("A00001") if h["source"] == "manual"]) == 1


def test_no_order_numbers_is_a_usage_error(failed: Env):
    from click.testing import CliRunner

    from crossship.cli import cli

    result = CliRunner().invoke(cli, ["status", "set", "-", "--to", "success"], input="\n")
    assert result.exit_code == 2
    assert "at least one order number" in result.stderr
    assert failed.cli("status", "set", "--to", "success").exit_code == 2


# ------------------------------------------------------------------------------- refusals


@pytest.fixture
def mixed(env: Env) -> Env:
    """One order of each kind status set refuses, and two it changes."""
    env.add_store(OTHER, mall="makeshop")
    env.add(
        order(1, phase=DESTINATION),
        order(2, phase=DESTINATION),
        order(3, store=OTHER),
        order(4, fba=1),
        order(5),
    )
    give(env, "A00001", Status.ERROR, "carrier missing")
    give(env, "A00002", Status.NOTIFY_FAILED)
    give(env, "A00003", Status.ERROR)
    give(env, "A00004", Status.ERROR)
    env.store.create_batch(
        store=STORE,
        encoding="utf-8",
        content_type="text/tab-separated-values; charset=UTF-8",
        feed=b"feed",
        rows=[(1, "A00005", mall_order_id(5), "")],
        now=to_db(env.clock()),
    )
    return env


def test_each_refusal_has_its_reason_and_the_others_change(mixed: Env):
    result = mixed.cli(
        "status", "set", "A00001", "A00003", "A00004", "A00005", "Z99999", "A00002",
        "--to", "pending", "--operator", "ops",
    )  # fmt: skip
    assert result.exit_code == 1
    err = result.stderr
    assert "Refused A00003: an order of 'makeshop-shop', a makeshop store" in err
    assert "Refused A00004: an FBA order" in err
    assert "Refused A00005: 連携中 (in_progress) in batch 1" in err
    assert "Refused Z99999: no such order" in err
    assert "Set 2 order(s) to 未連携 (pending); refused 4." in err
    assert mixed.statuses() == {
        "A00001": "pending",
        "A00002": "pending",
        "A00003": "error",
        "A00004": "error",
        "A00005": "in_progress",
    }
    assert [h["source"] for h in mixed.history("A00003")] == ["auto"]
    assert [h["source"] for h in mixed.history("A00005")] == ["auto"]


def test_refusals_are_said_even_with_q(mixed: Env):
    result = mixed.cli("-q", "status", "set", "A00001", "A00004", "--to", "pending")
    assert result.exit_code == 1
    assert "Refused A00004" in result.stderr
    assert "A00001: エラー → 未連携" not in result.stderr  # -q: only what failed
    assert mixed.status("A00001") == "pending"


def test_quiet_success_prints_nothing(failed: Env):
    result = failed.cli("-q", "status", "set", "A00001", "--to", "pending")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_all_refused_changes_nothing(mixed: Env):
    result = mixed.cli("status", "set", "A00003", "A00004", "--to", "success")
    assert result.exit_code == 1
    assert "Set 0 order(s)" in result.stderr
    assert mixed.status("A00003") == "error"


# ------------------------------------------------------------------------------- --move-to


def test_move_to_moves_in_the_same_change(failed: Env):
    result = failed.cli(
        "status", "set", "A00001", "--to", "pending", "--move-to", TARGET, "--reason", "fixed"
    )
    assert result.exit_code == 0, result.stderr
    assert f"A00001: 通知失敗 → 未連携, moved {DESTINATION} → {TARGET}" in result.stderr
    assert f"moved 1 to {TARGET}" in result.stderr
    row = failed.get("A00001")
    assert (row["status"], row["phase"]) == ("pending", TARGET)
    message = last_history(failed, "A00001")["message"]
    assert message == f"manual: 通知失敗 → 未連携, 処理フェーズ {DESTINATION} → {TARGET} (fixed)"


def test_move_to_a_required_phase_refuses_orders_without_ship_date(failed: Env):
    failed.add(order(3, phase=OTHER_PHASE, ship_date=None))
    give(failed, "A00003", Status.ERROR, "発送日 (ship_date) is missing")
    result = failed.cli("status", "set", "A00001", "A00003", "--to", "pending", "--move-to", TARGET)
    assert result.exit_code == 1
    assert "Refused A00003: no ship date (発送日)" in result.stderr
    assert "requires one (発送日設定=必須)" in result.stderr
    assert "crossship orders update A00003 --ship-date" in result.stderr
    assert failed.get("A00003")["phase"] == OTHER_PHASE
    assert failed.status("A00003") == "error"
    assert failed.get("A00001")["phase"] == TARGET


def test_move_to_an_optional_phase_takes_orders_without_ship_date(failed: Env):
    failed.add(order(3, phase=DESTINATION, ship_date=None))
    give(failed, "A00003", Status.ERROR)
    result = failed.cli("status", "set", "A00003", "--to", "pending", "--move-to", OTHER_PHASE)
    assert result.exit_code == 0, result.stderr
    assert failed.get("A00003")["phase"] == OTHER_PHASE
    # 梱包中 is no target phase: the operator is told it will not be sent
    assert "is not a target phase" in result.stderr


def test_move_to_an_unknown_phase_changes_nothing(failed: Env):
    result = failed.cli("status", "set", "A00001", "--to", "pending", "--move-to", "どこか")
    assert result.exit_code == 2
    assert "no phase named 'どこか'" in result.stderr
    assert failed.status("A00001") == "notify_failed"


def test_pending_outside_a_target_phase_is_pointed_out(failed: Env):
    result = failed.cli("status", "set", "A00001", "--to", "pending")
    assert result.exit_code == 0
    assert f"phase {DESTINATION!r} is not a target phase" in result.stderr


def test_orders_list_finds_them_by_label(mixed: Env):
    result = mixed.cli("orders", "list", "--api-status", "エラー", "--format", "json")
    assert result.exit_code == 0, result.stderr
    found = {o["order_no"]: o["status_label"] for o in json.loads(result.stdout)}
    assert found == {"A00001": "エラー", "A00003": "エラー", "A00004": "エラー"}


# ------------------------------------------------------------------------------- seed 7 方法1


def test_renotification_end_to_end(env: Env):
    """An order 通知失敗 → status set --to pending --move-to TARGET → the next run sends it."""
    env.add(
        order(1, phase=DESTINATION),  # the one to send again
        order(2, phase=DESTINATION),  # 正常 already: stays where it is
        order(3, phase=OTHER_PHASE),  # 未連携 but outside a target phase
    )
    give(env, "A00001", Status.NOTIFY_FAILED, "Amazon rejected the feed")
    give(env, "A00002", Status.SUCCESS)

    result = env.cli("status", "set", "A00001", "--to", "pending", "--move-to", TARGET)
    assert result.exit_code == 0, result.stderr

    env.amazon.send_ok()
    env.clock.advance(minutes=1)
    result = env.cli("notify", "run", "--force")
    assert result.exit_code == 0, result.stderr
    assert env.amazon.ops() == ["token", "createFeedDocument", "upload", "createFeed"]
    (uploaded,) = env.amazon.uploaded()
    rows = feed_row(uploaded)
    assert [r[0] for r in rows] == [mall_order_id(1)]
    assert env.statuses() == {"A00001": "in_progress", "A00002": "success", "A00003": "pending"}
    sent = last_history(env, "A00001")
    assert (sent["status"], sent["feed_id"], sent["source"]) == ("in_progress", FEED_ID, "auto")
    assert [h["source"] for h in env.history("A00001")] == ["auto", "manual", "auto"]
