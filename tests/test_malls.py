"""crossship.malls: the registry (entry points), the declarations' effect on `config`, the pacer,
the mall errors and the store's references."""

from __future__ import annotations

import json

import pytest
from mall_fixtures import TEST_MALL

from crossship import malls
from crossship.amazon import MALL as AMAZON
from crossship.errors import AmazonError, MallError, UsageError
from crossship.malls import Pacer
from crossship.store import Store


def one_error(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ----------------------------------------------------------------------------- registry


def test_amazon_is_loaded_through_the_entry_point_group():
    from importlib.metadata import entry_points

    points = {p.name: p.value for p in entry_points(group=malls.ENTRY_POINT_GROUP)}
    assert points["amazon"] == "crossship.amazon:MALL"
    assert malls.registry()["amazon"] is AMAZON
    assert malls.get("amazon").label == "Amazon"
    assert "amazon" in malls.supported() and "amazon" in malls.SUPPORTED


def test_an_unknown_mall_names_the_known_ones():
    with pytest.raises(UsageError, match="unknown mall 'nosuch': crossship knows amazon"):
        malls.get("nosuch")


def test_a_registered_mall_joins_the_registry_in_key_order_until_cleared():
    malls.register(TEST_MALL)
    installed = [key for key in malls.registry() if key != "testmall"]
    malls.clear_registered()
    assert list(malls.registry()) == installed
    malls.register(TEST_MALL)
    assert list(malls.registry()) == sorted([*installed, "testmall"])
    malls.clear_registered()
    assert "testmall" not in malls.registry()


def test_an_offline_session_comes_from_the_stores_mall():
    session = malls.offline_session({"name": "a", "mall": "amazon", "encoding": "utf-8"})
    assert session.encode([]) == []
    with pytest.raises(malls.ConfigError, match="cannot notify"):
        malls.offline_session({"name": "m", "mall": "makeshop"})


# ----------------------------------------------------------------------------- pacer


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_spaces_calls_on_the_monotonic_clock():
    fake = FakeTime()
    pace = Pacer(2.0, monotonic=fake.monotonic, sleep=fake.sleep)
    pace.wait()  # the first call goes at once
    pace.wait()
    fake.now += 0.2
    pace.wait()
    assert fake.slept == [0.5, pytest.approx(0.3)]
    fake.now += 5  # a pause longer than the interval: no wait
    pace.wait()
    assert len(fake.slept) == 2
    assert pace.waited == pytest.approx(0.8)


def test_pacer_without_a_rate_never_sleeps():
    fake = FakeTime()
    pace = Pacer(0, monotonic=fake.monotonic, sleep=fake.sleep)
    for _ in range(5):
        pace.wait()
    assert fake.slept == []


# ----------------------------------------------------------------------------- errors


def test_mall_errors_carry_what_is_known_of_the_call():
    error = AmazonError("createFeed: timeout", outcome="unknown", operation="createFeed")
    assert isinstance(error, MallError) and error.halt is False
    halted = MallError("ES01-01", outcome="not_sent", halt=True, status=401, code="ES01-01")
    assert (halted.halt, halted.status, halted.code) == (True, 401, "ES01-01")
    with pytest.raises(ValueError):
        MallError("x", outcome="maybe")


# ----------------------------------------------------------------------------- config


def test_store_flags_come_from_every_registered_mall(run):
    malls.register(TEST_MALL)
    shown = " ".join(run("config store add --help", catch=False).stdout.split())
    assert "--license-expires" in shown and "[楽天市場, テストモール]" in shown
    assert "--marketplace-id" in shown and "--time-budget" in shown
    assert "--seller-id" in shown and "[Amazon, テストモール, Yahoo!ショッピング]" in shown


def test_a_required_setting_is_refused_without_changing_anything(run, store):
    malls.register(TEST_MALL)
    result = run("config store add t1 --mall testmall")
    assert result.exit_code == 2
    assert "needs --seller-id" in one_error(result)
    assert store.list_stores() == []


def test_mall_settings_are_stored_checked_and_shown(run, store, monkeypatch):
    malls.register(TEST_MALL)
    added = run(
        "config store add t1 --mall testmall --seller-id shop1 --license-expires 2027-02-28 "
        "--complete-after never --time-budget 3",
        catch=False,
    )
    assert added.exit_code == 0, added.stderr
    assert "テストモール credentials are not set yet" in added.stdout + added.stderr
    row = store.get_store("t1")
    assert row["mall_settings"] == {"license_expires": "2027-02-28", "complete_after": "never"}
    assert (row["seller_id"], row["time_budget_minutes"]) == ("shop1", 3)
    assert row["endpoint"] == "https://test-mall.example/api/"  # the mall's default
    bad = run("config store set t1 --license-expires 2027-02-30")
    assert bad.exit_code == 2 and "--license-expires" in one_error(bad)
    run("config store set t1 --complete-after 7", catch=False)
    assert store.get_store("t1")["mall_settings"]["complete_after"] == 7
    assert store.get_store("t1")["mall_settings"]["license_expires"] == "2027-02-28"

    monkeypatch.setenv("CROSSSHIP_T1_TEST_SERVICE_SECRET", "SECRETVALUE")
    shown = run("config store show t1 --format json", catch=False)
    record = json.loads(shown.stdout)
    assert record["service_secret"] == "set (env CROSSSHIP_T1_TEST_SERVICE_SECRET)"
    assert record["license_key"].startswith("not set (env CROSSSHIP_T1_TEST_LICENSE_KEY")
    assert record["license_expires"] == "2027-02-28"
    assert "SECRETVALUE" not in shown.stdout + shown.stderr


def test_a_setting_of_another_mall_is_a_usage_error(run, store):
    malls.register(TEST_MALL)
    run("config store add amazon-main --mall amazon", catch=False)
    before = store.get_store("amazon-main")
    result = run("config store set amazon-main --license-expires 2027-01-01 --interval 30")
    assert result.exit_code == 2
    assert one_error(result) == (
        "Error: --license-expires is a setting of 楽天市場, テストモール stores; store "
        "'amazon-main' is on Amazon: see `crossship config store add --help`"
    )
    assert store.get_store("amazon-main") == before
    wrong = run("config store add t2 --mall testmall --seller-id s --encoding cp932")
    assert wrong.exit_code == 2 and "--encoding is a setting of Amazon stores" in one_error(wrong)


def test_an_unknown_mall_is_refused(run, store):
    result = run("config store add x --mall nosuch")
    assert result.exit_code == 2
    assert "--mall 'nosuch': use one of amazon" in one_error(result)


def test_carrier_flags_and_codes_come_from_every_mall(run, store):
    malls.register(TEST_MALL)
    helped = run("config carrier add --help", catch=False).stdout
    assert "--test-company" in helped and "--amazon-carrier-code" in helped
    run(["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "宅急便"], catch=False)  # fmt: skip
    refused = run("config carrier add ヤマト運輸 --test-company 9999")
    assert refused.exit_code == 2
    assert "--test-company '9999' is not a テストモール code: use one of 1001 (ヤマト運輸)" in (
        one_error(refused)
    )
    run("config carrier add ヤマト運輸 --test-company 1001", catch=False)
    carrier = store.get_carrier("ヤマト運輸")
    assert carrier == {
        "name": "ヤマト運輸",
        "amazon_carrier_code": "Yamato Transport",  # another mall's codes stay
        "amazon_ship_method": "宅急便",
        "test_company": "1001",
    }
    run("config carrier add 佐川急便 --test-company 1002", catch=False)  # serves one mall only
    listed = json.loads(run("config carrier list --format json", catch=False).stdout)
    yahoo = {"yahoo_ship_company": None, "yahoo_no_tracking_reason": None}
    assert listed == [
        {"name": "ヤマト運輸", "amazon_carrier_code": "Yamato Transport",
         "amazon_carrier_name": None, "amazon_ship_method": "宅急便",
         "rakuten_delivery_company": None, "test_company": "1001", **yahoo},
        {"name": "佐川急便", "amazon_carrier_code": None, "amazon_carrier_name": None,
         "amazon_ship_method": None, "rakuten_delivery_company": None, "test_company": "1002",
         **yahoo},
    ]  # fmt: skip
    header = run("config carrier list --format csv", catch=False).stdout.splitlines()[0]
    assert header == (
        "name,amazon_carrier_code,amazon_carrier_name,amazon_ship_method,"
        "rakuten_delivery_company,test_company,yahoo_ship_company,yahoo_no_tracking_reason"
    )
    nothing = run("config carrier add 西濃運輸")
    assert nothing.exit_code == 2
    assert "--amazon-carrier-code, --rakuten-delivery-company, --test-company" in one_error(nothing)


# ----------------------------------------------------------------------------- references


def test_order_refs_merge_and_completion_is_kept_in_columns(store: Store):
    store.add_store("s", "amazon", {}, "2026-12-01T00:00:00+00:00")
    store.create_phase("出荷済み", "required")
    for n in (1, 2):
        store.db.table("orders").insert(
            {"order_no": f"O{n}", "store": "s", "phase": "出荷済み", "updated_at": "t"}
        )
    assert store.refs_for(["O1", "O2"]) == {}
    store.set_refs({"O1": {"basket_id": "B1"}, "O2": {"shipping": {"A": 1}}})
    store.set_refs({"O1": {"detail": "D1"}})
    store.set_refs({"O2": {"completion": "scheduled", "complete_due": "2026-12-03T00:00:00+00:00"}})
    assert store.refs_for(["O1", "O2"]) == {
        "O1": {"basket_id": "B1", "detail": "D1"},
        "O2": {
            "shipping": {"A": 1},
            "completion": "scheduled",
            "complete_due": "2026-12-03T00:00:00+00:00",
        },
    }
    assert store.completions_due("s", "2026-12-02T00:00:00+00:00") == []
    (due,) = store.completions_due("s", "2026-12-03T00:00:00+00:00")
    assert due["order_no"] == "O2" and due["refs"]["shipping"] == {"A": 1}
    store.set_refs({"O1": {"detail": None}, "O2": {"completion": "done", "complete_due": None}})
    assert store.refs_for(["O1"]) == {"O1": {"basket_id": "B1"}}
    assert store.refs_for(["O2"])["O2"]["completion"] == "done"
    assert store.completions_due("s", "2099-01-01T00:00:00+00:00") == []
