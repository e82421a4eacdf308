"""Configuring a Yahoo!ショッピング store and carrier: flags from the declaration, the public key
copied beside the database, warnings and refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
KEY = FIXTURES / "test_public.pem"


@pytest.fixture
def initialised(run) -> None:
    assert run("init").exit_code == 0


def show(run, name: str) -> dict:
    result = run(["config", "store", "show", name, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    return shown[0] if isinstance(shown, list) else shown


def test_add_with_a_key_copies_it_beside_the_database(run, initialised, db_path, tmp_path) -> None:
    key = tmp_path / "elsewhere" / "key.pem"
    key.parent.mkdir()
    key.write_bytes(KEY.read_bytes())
    result = run(
        f"config store add yahoo-shop --mall yahoo --seller-id mystore --public-key {key} "
        "--public-key-version 2 --public-key-expires 2027-11-30 --authorized-on 2026-12-01 "
        "--complete-after 3"
    )
    assert result.exit_code == 0, result.stderr
    assert "public key" not in result.stderr
    copied = db_path.parent / "yahoo-keys" / "yahoo-shop.pem"
    assert copied.read_bytes() == KEY.read_bytes()
    key.unlink()  # runs read the copy
    shown = show(run, "yahoo-shop")
    assert shown["public_key"] == "yahoo-keys/yahoo-shop.pem"
    assert shown["public_key_version"] == "2" and shown["complete_after"] == 3
    assert shown["seller_id"] == "mystore"
    assert shown["endpoint"] == "https://circus.shopping.yahooapis.jp/ShoppingWebService/V1/"
    assert shown["token_url"] == "https://auth.login.yahoo.co.jp/yconnect/v2/token"
    with open(db_path, "rb") as database:
        assert b"BEGIN PUBLIC KEY" not in database.read()


def test_without_a_key_it_warns(run, initialised) -> None:
    result = run("config store add y --mall yahoo --seller-id mystore")
    assert result.exit_code == 0
    assert "no public key" in result.stderr and "px-04102" in result.stderr
    assert show(run, "y")["complete_after"] == 0
    result = run(f"config store set y --public-key {KEY} --public-key-version 1")
    assert result.exit_code == 0 and "no public key" not in result.stderr


def test_authorization_near_its_end_is_warned(run, initialised, db_path) -> None:
    now = "2026-12-01T00:00:00+00:00"
    from datetime import datetime

    clock = {"clock": lambda: datetime.fromisoformat(now)}
    result = run(
        f"config store add y --mall yahoo --seller-id s --public-key {KEY} "
        "--public-key-version 1 --authorized-on 2026-11-05",
        obj=clock,
    )
    assert result.exit_code == 0
    assert "authorization ends on 2026-12-03 (days left: 2)" in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ("--seller-id mystore --public-key {fixtures}/not_pem.txt", "is not PEM"),
        ("--seller-id mystore --public-key {fixtures}/test_private.pem", "private key"),
        ("--seller-id mystore --public-key {fixtures}/missing.pem", "no such file"),
        ("", "needs --seller-id"),
        ("--seller-id 'my store'", "store account"),
        ("--seller-id s --complete-after soon", "--complete-after"),
        ("--seller-id s --complete-after 61", "never"),
        ("--seller-id s --public-key-version v1", "バージョン"),
        ("--seller-id s --authorized-on 2026-13-01", "--authorized-on"),
        ("--seller-id s --encoding cp932", "--encoding"),
    ],
)
def test_bad_values_are_refused_in_one_line(run, initialised, args: str, said: str) -> None:
    result = run("config store add y --mall yahoo " + args.format(fixtures=FIXTURES))
    assert result.exit_code == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert run("config store show y").exit_code != 0  # nothing was added


def test_carrier_codes(run, initialised) -> None:
    ok = run("config carrier add 直送 --yahoo-ship-company 1000 --yahoo-no-tracking-reason 101")
    assert ok.exit_code == 0, ok.stderr
    listed = run("config carrier list --format json")
    (carrier,) = json.loads(listed.stdout)
    assert carrier["yahoo_ship_company"] == "1000"
    assert carrier["yahoo_no_tracking_reason"] == "101"
    bad = run("config carrier add x --yahoo-ship-company 9999")
    assert bad.exit_code == 2 and "1001" in bad.stderr
    reason = run("config carrier add x --yahoo-ship-company 1001 --yahoo-no-tracking-reason 106")
    assert reason.exit_code == 2


def test_auto_status_warns_about_the_key_and_authorization(run, initialised) -> None:
    from datetime import datetime

    clock = {"clock": lambda: datetime.fromisoformat("2026-12-01T00:00:00+00:00")}
    added = run(
        f"config store add y --mall yahoo --seller-id s --public-key {KEY} "
        "--public-key-version 1 --public-key-expires 2026-11-30",
        obj=clock,
    )
    assert added.exit_code == 0
    result = run("auto status --format json", obj=clock)
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["store"] == "y"  # data on stdout, the warning on stderr
    assert "store y: the public key expired on 2026-11-30" in result.stderr


def test_check_reports_the_key_and_authorization(run, initialised) -> None:
    from datetime import datetime

    clock = {"clock": lambda: datetime.fromisoformat("2026-12-01T00:00:00+00:00")}
    added = run(
        f"config store add y --mall yahoo --seller-id s --public-key {KEY} "
        "--public-key-version 1 --public-key-expires 2026-11-30 --authorized-on 2026-11-06",
        obj=clock,
    )
    assert added.exit_code == 0
    assert run("auto start y").exit_code == 0
    result = run("check --store y", obj=clock)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "the public key expired on 2026-11-30" in result.stdout
    assert "authorization ends on 2026-12-04 (days left: 3)" in result.stdout
