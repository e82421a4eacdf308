"""`crossship export feed` (seed 7 方法2): the bytes `notify run` would send, for an upload by hand
in Seller Central; nothing changes (seed 6)."""

from __future__ import annotations

import os
from pathlib import Path

import notify_helpers
import pytest
from notify_helpers import (
    DESTINATION,
    NO_CODE,
    OTHER_PHASE,
    SAGAWA,
    STORE,
    TARGET,
    Env,
    feed_row,
    item,
    mall_order_id,
    order,
)

from crossship.amazon.mall import AmazonSession
from crossship.manual import part_paths
from crossship.statuses import Status
from crossship.store import StatusChange
from crossship.timeutil import to_db

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

RAKUTEN = "rakuten-shop"
SJIS_STORE = "amazon-sjis"


@pytest.fixture
def ready(env: Env) -> Env:
    """Three orders `notify run` would send (one with item lines, one without tracking number),
    and one in another phase."""
    env.add(
        order(1),
        order(2, tracking_number=None),
        order(3, carrier=SAGAWA, split_from="A00001"),
        order(4, phase=OTHER_PHASE),
        items=[item("A00001", 1, "38204417562913"), item("A00001", 2, "38204417562914", 2)],
    )
    return env


def export(env: Env, *args: str):
    return env.cli("export", "feed", "--store", STORE, *args)


def snapshot(env: Env) -> tuple:
    return env.statuses(), len(env.history()), env.batches(), env.runs()


def test_the_same_bytes_as_notify_run_would_send(ready: Env):
    dry = ready.cli("notify", "run", "--dry-run", "--store", STORE)
    assert dry.exit_code == 0, dry.stderr
    by_phase = export(ready, "--phase", TARGET)
    assert by_phase.exit_code == 0, by_phase.stderr
    assert by_phase.stdout_bytes == dry.stdout_bytes
    by_number = export(ready, "A00003", "A00001", "A00002")
    assert by_number.exit_code == 0, by_number.stderr
    assert by_number.stdout_bytes == dry.stdout_bytes
    rows = feed_row(by_number.stdout_bytes)
    assert [r[0] for r in rows] == [mall_order_id(1)] * 2 + [mall_order_id(2), mall_order_id(3)]
    assert "Exported 3 order(s), 4 row(s)" in by_number.stderr
    assert "Warning: A00002: 配送番号 (tracking_number) is blank" in by_number.stderr


def test_the_same_bytes_in_shift_jis(env: Env):
    env.add_store(SJIS_STORE, encoding="cp932")
    env.add(order(7, store=SJIS_STORE, carrier=SAGAWA), order(8, store=SJIS_STORE))
    dry = env.cli("notify", "run", "--dry-run", "--store", SJIS_STORE)
    result = env.cli("export", "feed", "--store", SJIS_STORE, "A00008", "A00007")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == dry.stdout_bytes
    assert b"\r\n" in result.stdout_bytes
    assert "注文番号".encode("cp932") in result.stdout_bytes


def test_nothing_changes(ready: Env):
    ready.store.change_statuses([StatusChange("A00002", Status.SUCCESS)], now=to_db(ready.clock()))
    before = snapshot(ready)
    assert export(ready, "--phase", TARGET).exit_code == 0
    assert export(ready, "A00001", "A00004").exit_code == 0
    assert snapshot(ready) == before


def test_output_file_is_written_atomically(ready: Env, tmp_path: Path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "shipconfirm.txt"
    target.write_bytes(b"an older export")
    result = export(ready, "--phase", TARGET, "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == b""
    assert f"to {target}" in result.stderr
    assert sorted(os.listdir(folder)) == ["shipconfirm.txt"]  # no temp file left
    assert target.read_bytes() == export(ready, "--phase", TARGET).stdout_bytes
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_output_to_a_directory_is_refused(ready: Env, tmp_path: Path):
    result = export(ready, "--phase", TARGET, "-o", str(tmp_path))
    assert result.exit_code == 2


def test_a_feed_over_the_limit_is_split_into_files(
    ready: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def small(self: AmazonSession, lines: list) -> list:
        return self.renderer.split(lines, max_bytes=600)

    monkeypatch.setattr(AmazonSession, "render", small)
    result = export(ready, "--phase", TARGET)
    assert result.exit_code == 2
    assert "-o FILE" in result.stderr
    assert result.stdout_bytes == b""
    folder = tmp_path / "out"
    folder.mkdir()
    result = export(ready, "--phase", TARGET, "-o", str(folder / "feed.txt"))
    assert result.exit_code == 0, result.stderr
    count = len(list(folder.iterdir()))
    assert count >= 2
    paths = part_paths(folder / "feed.txt", count)
    assert sorted(folder.iterdir()) == sorted(paths)
    assert paths[1].name == "feed-2.txt"
    sent = [r[0] for path in paths for r in feed_row(path.read_bytes())]
    assert sent == [mall_order_id(1)] * 2 + [mall_order_id(2), mall_order_id(3)]


# ------------------------------------------------------------------------------- which orders


def test_phase_takes_every_status_but_leaves_out_fba_and_bundled_children(env: Env):
    env.add(
        order(1),
        order(2),
        order(3),
        order(4, fba=1),
        order(5, bundle_parent="A00001"),
        order(6, category="cancel"),
    )
    now = to_db(env.clock())
    env.store.change_statuses(
        [StatusChange("A00002", Status.SUCCESS), StatusChange("A00003", Status.ERROR, "x")],
        now=now,
    )
    result = export(env, "--phase", TARGET)
    assert result.exit_code == 0, result.stderr
    assert [r[0] for r in feed_row(result.stdout_bytes)] == [mall_order_id(n) for n in (1, 2, 3)]
    assert "Left out 1 FBA orders." in result.stderr
    assert "Left out 1 bundled children (同梱子注文)." in result.stderr
    assert "Left out 1 cancel orders (管理区分)." in result.stderr


def test_refusals_are_listed_and_the_rest_exported(ready: Env):
    ready.add_store(RAKUTEN, mall="rakuten")
    ready.add(
        order(11, store=RAKUTEN),
        order(12, carrier=NO_CODE),
        order(13, fba=1),
        order(14, bundle_parent="A00001"),
    )
    result = export(ready, "A00001", "A00011", "A00012", "A00013", "A00014", "Z99999")
    assert result.exit_code == 1
    err = result.stderr
    assert "Left out A00011: an order of store 'rakuten-shop', not of 'amazon-main'" in err
    assert "Left out A00012: 配送便 (carrier) '自社便' has no Amazon carrier-code" in err
    assert "Left out A00013: an FBA order" in err
    assert "Left out A00014: bundled into A00001" in err
    assert "Left out Z99999: no such order" in err
    assert [r[0] for r in feed_row(result.stdout_bytes)] == [mall_order_id(1)] * 2
    assert "Exported 1 order(s), 2 row(s)" in err


def test_every_order_failing_writes_nothing(ready: Env, tmp_path: Path):
    ready.add(order(12, carrier=NO_CODE), order(15, ship_date=None))
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "feed.txt"
    result = export(ready, "A00012", "A00015", "-o", str(target))
    assert result.exit_code == 1
    assert "Left out A00012" in result.stderr
    assert "Left out A00015: 発送日 (ship_date) is missing" in result.stderr
    assert "nothing written" in result.stderr
    assert list(folder.iterdir()) == []


def test_an_empty_phase(ready: Env):
    result = export(ready, "--phase", DESTINATION)
    assert result.exit_code == 1
    assert f"no orders of store {STORE!r} in phase {DESTINATION!r}" in result.stderr
    assert result.stdout_bytes == b""


def test_order_numbers_from_stdin(ready: Env):
    from click.testing import CliRunner

    from crossship.cli import cli

    result = CliRunner().invoke(
        cli, ["export", "feed", "--store", STORE, "-"], input="A00002\nA00001\n"
    )
    assert result.exit_code == 0, result.stderr
    assert [r[0] for r in feed_row(result.stdout_bytes)] == [mall_order_id(1)] * 2 + [
        mall_order_id(2)
    ]


@pytest.mark.parametrize(
    "args, says",
    [
        (["--store", STORE, "--phase", TARGET, "A00001"], "not both"),
        (["--store", STORE], "either --phase"),
        (["--store", "nowhere", "--phase", TARGET], "no store named 'nowhere'"),
        (["--store", STORE, "--phase", "どこか"], "no phase named 'どこか'"),
        (["A00001"], "--store"),
    ],
)
def test_usage_errors(ready: Env, args: list[str], says: str):
    result = ready.cli("export", "feed", *args)
    assert result.exit_code == 2
    assert says in result.stderr


def test_a_store_of_another_mall_is_refused(env: Env):
    env.add_store(RAKUTEN, mall="rakuten")
    env.add(order(11, store=RAKUTEN))
    result = env.cli("export", "feed", "--store", RAKUTEN, "--phase", TARGET)
    assert result.exit_code == 1
    assert "rakuten store" in result.stderr
