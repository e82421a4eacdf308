"""The Rakuten session behind the mall interface, against the RMS sandbox on a real socket."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from crossship import malls
from crossship.errors import ConfigError
from crossship.malls import Prepared, Row, StoreContext
from crossship.rakuten import MALL
from crossship.rakuten.client import RakutenError
from crossship.rakuten.mall import RakutenSession
from crossship.sandbox import SandboxServer
from crossship.timeutil import to_db

N1, N2, N3 = (f"338271-20261124-00123456{i:02d}" for i in (1, 2, 3))
YAMATO = {"name": "ヤマト運輸", "rakuten_delivery_company": "1001"}


class FakeTime:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)

    def clock(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def server(fake: FakeTime):
    with SandboxServer(clock=fake.clock, now=fake.now) as running:
        running.sandbox.rakuten.set_options({"enforce_rate_limit": False})
        yield running


@pytest.fixture
def rms(server):
    return server.sandbox.rakuten


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("CROSSSHIP_RAKUTEN_SHOP_RMS_SERVICE_SECRET", "sandbox-service-secret")
    monkeypatch.setenv("CROSSSHIP_RAKUTEN_SHOP_RMS_LICENSE_KEY", "sandbox-license-key")


def store_row(server, **settings) -> dict:
    return {
        "name": "rakuten-shop",
        "mall": "rakuten",
        "endpoint": server.url + "/es/2.0/order/",
        "result_deadline_hours": 24,
        "mall_settings": settings,
    }


@pytest.fixture
def session(server, fake, keys, tmp_path) -> RakutenSession:
    context = StoreContext(store_row(server), tmp_path / "db", fake.now, malls.Pacer(0))
    return RakutenSession.from_context(context)


def order(order_no: str, number: str, tracking: str = "400000000001", **changes) -> dict:
    return {
        "order_no": order_no,
        "mall_order_id": number,
        "ship_date": "2026-11-30",
        "carrier": "ヤマト運輸",
        "tracking_number": tracking,
        **changes,
    }


def prepared(orders: list[dict], refs: dict[str, dict]) -> list[Prepared]:
    return [Prepared(o, [], YAMATO, refs.get(o["order_no"], {}), []) for o in orders]


def batch_for(request, fake: FakeTime, **extra) -> dict:
    return {"id": 1, "feed": request.body, "created_at": to_db(fake.now()), **extra}


def send(session, orders, refs, fake):
    (request,) = session.encode(prepared(orders, refs))
    commits: list[dict] = []
    batch = batch_for(request, fake)
    accepted = session.submit(batch, request, lambda c: commits.append(c) or batch)
    batch.update(mall_id=accepted.mall_id, submitted_at=to_db(fake.now()), **commits[-1])
    return batch, request, commits


def test_the_declaration():
    assert MALL.key == "rakuten" and MALL.label == "楽天市場"
    assert MALL.limits.orders_per_request == 100 and MALL.limits.calls_per_second == 1.0
    assert MALL.limits.release_after == timedelta(minutes=10)
    assert MALL.defaults["endpoint"] == "https://api.rms.rakuten.co.jp/es/2.0/order/"
    assert [s.env_suffix for s in MALL.secrets] == ["RMS_SERVICE_SECRET", "RMS_LICENSE_KEY"]
    (field,) = MALL.carrier_fields
    assert field.option == "--rakuten-delivery-company" and field.needed
    assert field.codes and field.codes["1028"] == "Rakuten EXPRESS"
    assert MALL.subjects == {
        "notify": "(CROSSMALL)楽天市場発送情報登録処理(自動)のお知らせ",
        "results": "(CROSSMALL)楽天市場発送情報登録結果取得処理(自動)のお知らせ",
    }
    assert MALL.order_id and MALL.order_id.fullmatch(N1)
    assert malls.get("rakuten") is MALL


def test_without_keys_the_session_says_which_to_set(server, fake, tmp_path):
    context = StoreContext(store_row(server), tmp_path / "db", fake.now, malls.Pacer(0))
    with pytest.raises(ConfigError, match="CROSSSHIP_RAKUTEN_SHOP_RMS_LICENSE_KEY"):
        RakutenSession.from_context(context)


def test_resolve_looks_up_missing_basket_ids_100_a_call(session, rms):
    numbers = [f"338271-20261124-{i:010d}" for i in range(150)]
    for number in numbers:
        rms.add_order(number)
    orders = [order(f"O{i}", n) for i, n in enumerate(numbers)]
    orders.append(order("O0-split", numbers[0]))
    refs = {"O1": {"basket_id": "42"}}
    found = session.resolve(orders, refs)
    assert "O1" not in found and len(found) == 150
    assert found["O0"] == found["O0-split"]
    assert session.calls == {"getOrder": 2}


def test_a_run_checks_that_rms_knows_the_order(session):
    check = session.check(order("A", N1), [], YAMATO, is_split_parent=False, refs={})
    assert check.errors and "getOrder does not know this order" in str(check.errors[0])
    offline = RakutenSession.offline({"name": "rakuten-shop"})
    assert offline.check(order("A", N1), [], YAMATO, is_split_parent=False, refs={}).errors == []


def test_notify_then_results(session, rms, fake):
    rms.set_options({"processing_seconds": 60, "cancelled_orders": {N3}})
    orders = [order("A", N1), order("B", N2, "400000000002"), order("C", N3, "3")]
    refs = session.resolve(orders, {})
    batch, request, commits = send(session, orders, refs, fake)
    assert commits == [{"state": "submitting", "submit_started_at": to_db(fake.now())}]
    assert [r.record_no for r in request.rows] == [1, 2, 3]
    poll = session.poll(batch)
    assert poll.state == "waiting" and poll.processing_status == "INFO_101"
    fake.advance(60)
    poll = session.poll(batch)
    assert poll.state == "done"
    result = session.read_result(batch, poll, request.rows)
    assert set(result.outcomes) == {"A", "B", "C"}
    assert result.outcomes["A"].status == "success"
    assert result.outcomes["A"].refs["shipping_detail_id"]
    assert result.outcomes["C"].status == "error" and "ERROR_102" in result.outcomes["C"].message
    assert (result.processed, result.successful) == (3, 2)
    assert session.calls == {
        "getOrder": 1,
        "updateOrderShippingAsync": 1,
        "getResultUpdateOrderShippingAsync": 2,
    }


def test_re_notification_updates_the_same_row(session, rms, fake):
    refs = session.resolve([order("A", N1)], {})
    batch, request, _ = send(session, [order("A", N1)], refs, fake)
    result = session.read_result(batch, session.poll(batch), request.rows)
    refs["A"].update(result.outcomes["A"].refs)
    batch, request, _ = send(session, [order("A", N1, "999")], refs, fake)
    again = session.read_result(batch, session.poll(batch), request.rows)
    assert again.outcomes["A"].refs == result.outcomes["A"].refs
    (row,) = rms.orders()[N1]["PackageModelList"][0]["ShippingModelList"]
    assert row["shippingNumber"] == "999"


def test_a_split_is_two_rows_of_one_basket(session, rms, fake):
    orders = [order("P", N1, "111"), order("P-2", N1, "222", split_from="P")]
    refs = session.resolve(orders, {})
    batch, request, _ = send(session, orders, refs, fake)
    result = session.read_result(batch, session.poll(batch), request.rows)
    assert {o.status for o in result.outcomes.values()} == {"success"}
    rows = rms.orders()[N1]["PackageModelList"][0]["ShippingModelList"]
    assert [r["shippingNumber"] for r in rows] == ["111", "222"]


def test_a_lost_answer_waits_10_minutes_then_get_order_decides(session, rms, fake):
    orders = [order("A", N1), order("B", N2, "2")]
    refs = session.resolve(orders, {})
    (request,) = session.encode(prepared(orders[:1], refs))
    (other,) = session.encode(prepared(orders[1:], refs))
    rms.add_fault("updateOrderShippingAsync", "lose_answer")
    batch = batch_for(request, fake)
    with pytest.raises(RakutenError) as caught:
        session.submit(batch, request, lambda c: batch.update(c) or batch)
    assert caught.value.outcome == "unknown"
    # the second order is in the same batch's rows but never reached RMS
    both = batch_for(request, fake, submit_started_at=batch["submit_started_at"])
    both["feed"] = json.dumps(
        {
            "OrderShippingModelList": json.loads(request.body)["OrderShippingModelList"]
            + json.loads(other.body)["OrderShippingModelList"]
        }
    ).encode()
    rows = [Row(1, "A", N1), Row(2, "B", N2)]
    fake.advance(9 * 60)
    assert session.reconcile(both, rows, set()).kind == "wait"
    fake.advance(60)
    found = session.reconcile(both, rows, set())
    assert found.kind == "verdicts"
    verdicts = {o.order_no: o for o in found.outcomes}
    assert verdicts["A"].status == "success" and verdicts["A"].refs["shipping_detail_id"]
    assert verdicts["B"].status == "pending"


def test_past_the_deadline_get_order_decides_the_rest_result_failed(session, rms, fake):
    rms.set_options({"processing_seconds": 10 * 24 * 3600})
    orders = [order("A", N1)]
    refs = session.resolve(orders, {})
    batch, request, _ = send(session, orders, refs, fake)
    fake.advance(24 * 3600)
    poll = session.poll(batch)
    assert poll.state == "done"
    result = session.read_result(batch, poll, request.rows)
    assert result.outcomes["A"].status == "result_failed"
    assert "RMS (受注管理 > 受注一覧)" in str(result.outcomes["A"].message)


def test_an_expired_key_makes_no_call(server, fake, keys, tmp_path, rms):
    row = store_row(server, license_expires="2026-11-30")
    context = StoreContext(row, tmp_path / "db", fake.now, malls.Pacer(0))
    session = RakutenSession.from_context(context)
    with pytest.raises(RakutenError) as caught:
        session.resolve([order("A", N1)], {})
    assert caught.value.halt and caught.value.outcome == "not_sent"
    assert "expired on 2026-11-30" in caught.value.message
    assert rms.calls == {}


def test_the_license_warning(server, fake, keys, tmp_path):
    row = store_row(server, license_expires="2026-12-10")
    session = RakutenSession.from_context(
        StoreContext(row, tmp_path / "db", fake.now, malls.Pacer(0))
    )
    (notice,) = session.notices()
    assert "expires in 9 days (2026-12-10)" in str(notice)


def test_a_refused_key_halts(server, fake, tmp_path, monkeypatch, rms):
    monkeypatch.setenv("CROSSSHIP_RAKUTEN_SHOP_RMS_SERVICE_SECRET", "sandbox-service-secret")
    monkeypatch.setenv("CROSSSHIP_RAKUTEN_SHOP_RMS_LICENSE_KEY", "an-old-key")
    session = RakutenSession.from_context(
        StoreContext(store_row(server), tmp_path / "db", fake.now, malls.Pacer(0))
    )
    with pytest.raises(RakutenError) as caught:
        session.resolve([order("A", N1)], {})
    assert caught.value.halt and "licenseKey" in caught.value.message
    assert "an-old-key" not in caught.value.message
