"""Yahoo!ショッピング behind the mall interface: the declaration, configuration, and the session's
submit / 完了 / follow_up against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossship import malls
from crossship.errors import ConfigError, YahooError
from crossship.i18n import render
from crossship.malls import Finished, Prepared, StoreContext
from crossship.sandbox import SandboxServer
from crossship.statuses import Status
from crossship.yahoo import MALL
from crossship.yahoo.codes import NO_TRACKING_REASONS, SHIP_COMPANIES
from crossship.yahoo.mall import health

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
SELLER = "sandbox-store"
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


class NoPace:
    def wait(self) -> None:
        pass


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer() as running:
        running.sandbox.yahoo.set_options({"enforce_rate_limits": False})
        yield running


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_ID", "sandbox-yahoo-client")
    monkeypatch.setenv("CROSSSHIP_YAHOO_SHOP_YAHOO_CLIENT_SECRET", "sandbox-yahoo-secret")
    monkeypatch.setenv("CROSSSHIP_YAHOO_SHOP_YAHOO_REFRESH_TOKEN", "sandbox-yahoo-refresh")


def store_row(server: SandboxServer, key_file: Path | None = None, **settings) -> dict:
    mall_settings = {"complete_after": 0, **settings}
    if key_file is not None:
        mall_settings.update(public_key=str(key_file), public_key_version="1")
    return {
        "name": "yahoo-shop",
        "mall": "yahoo",
        "seller_id": SELLER,
        "endpoint": server.url + "/ShoppingWebService/V1/",
        "token_url": server.url + "/yconnect/v2/token",
        "mall_settings": mall_settings,
    }


def session(server: SandboxServer, tmp_path: Path, signed: bool = True, **settings):
    key = server.sandbox.yahoo.write_public_key(tmp_path / "key.pem") if signed else None
    row = store_row(server, key, **settings)
    context = StoreContext(row, tmp_path / "crossship.db", lambda: NOW, NoPace())
    return MALL.open_session(context)


YAMATO = {"name": "ヤマト運輸", "yahoo_ship_company": "1001"}


def order(order_no: str, number: str = "123456789012", **changes) -> dict:
    row = {
        "order_no": order_no,
        "store": "yahoo-shop",
        "mall_order_id": f"{SELLER}-{order_no}",
        "ship_date": "2026-11-27",
        "carrier": "ヤマト運輸",
        "tracking_number": number,
        "split_from": None,
    }
    row.update(changes)
    return row


def send(yahoo, *orders: dict) -> list:
    requests = yahoo.encode([Prepared(o, [], YAMATO, {}, []) for o in orders])
    outcomes = []
    for request in requests:
        finished = yahoo.submit({}, request, lambda changes: changes)
        assert isinstance(finished, Finished)
        outcomes.extend(finished.outcomes)
    return outcomes


def test_the_declaration() -> None:
    assert malls.get("yahoo") is MALL
    assert MALL.label == "Yahoo!ショッピング" and MALL.synchronous
    assert MALL.limits.orders_per_request == 1 and MALL.limits.calls_per_second == 1.0
    subjects = MALL.subjects
    assert subjects["notify"] == "(CROSSMALL)Yahoo!ショッピング注文処理実績連携処理(自動)のお知らせ"
    assert subjects["complete"] == "(CROSSMALL)Yahoo!ショッピング注文完了処理(自動)のお知らせ"
    assert [s.env_suffix for s in MALL.secrets] == [
        "YAHOO_CLIENT_ID",
        "YAHOO_CLIENT_SECRET",
        "YAHOO_REFRESH_TOKEN",
    ]


def test_the_carrier_flags_help_names_every_code(run) -> None:
    """The help texts write the code lists out (a catalog needs a fixed text): they must stay
    the lists Yahoo takes, in either language."""
    fields = {f.name: f for f in MALL.carrier_fields}
    for name, codes in (
        ("yahoo_ship_company", SHIP_COMPANIES),
        ("yahoo_no_tracking_reason", NO_TRACKING_REASONS),
    ):
        written = fields[name].help
        assert [f"{code} {label}" in written for code, label in codes.items()] == [True] * len(
            codes
        )
        assert written.count(", ") == len(codes) - 1, name
    shown = run(["--lang", "ja", "config", "carrier", "add", "--help"]).stdout
    assert "Yahoo!ショッピングの配送会社コード: 1000 その他、1001 ヤマト運輸" in shown
    assert "ship company code" not in shown


def test_shipment_then_completion_at_once(server, tmp_path, secrets) -> None:
    yahoo = session(server, tmp_path)
    (outcome,) = send(yahoo, order("1001"))
    assert outcome.status == Status.SUCCESS and outcome.refs["completion"] == "done"
    state = server.sandbox.yahoo.orders()[f"{SELLER}-1001"]
    assert state["history"] == ["orderShipStatusChange", "orderStatusChange"]
    assert yahoo.calls["orderShipStatusChange"] == 1 and yahoo.calls["orderStatusChange"] == 1
    assert server.sandbox.yahoo.calls["unsigned"] == 0


def test_completion_n_days_later_is_scheduled(server, tmp_path, secrets) -> None:
    yahoo = session(server, tmp_path, complete_after=3)
    (outcome,) = send(yahoo, order("1002"))
    due = "2026-11-29T15:00:00.000000+00:00"  # 00:00 JST on 11-30, three days after 11-27
    assert outcome.refs == {"completion": "scheduled", "complete_due": due}
    assert yahoo.calls["orderStatusChange"] == 0
    (done,) = yahoo.follow_up([{"order_no": "1002", "mall_order_id": f"{SELLER}-1002"}])
    assert done.refs["completion"] == "done" and done.status == Status.SUCCESS


def test_never_completes(server, tmp_path, secrets) -> None:
    yahoo = session(server, tmp_path, complete_after="never")
    (outcome,) = send(yahoo, order("1003"))
    assert outcome.status == Status.SUCCESS and outcome.refs == {}
    assert yahoo.calls["orderStatusChange"] == 0


def test_already_completed_counts_as_done(server, tmp_path, secrets) -> None:
    server.sandbox.yahoo.set_order(f"{SELLER}-1004", "5")
    (outcome,) = send(session(server, tmp_path), order("1004"))
    assert outcome.status == Status.SUCCESS and outcome.refs["completion"] == "done"


def test_refused_completion_is_an_error_with_yahoos_words(server, tmp_path, secrets) -> None:
    yahoo = session(server, tmp_path, complete_after=1)
    server.sandbox.yahoo.set_order(f"{SELLER}-1005", "3")  # 保留: cannot become 完了
    (failed,) = yahoo.follow_up([{"order_no": "1005", "mall_order_id": f"{SELLER}-1005"}])
    assert failed.status == Status.ERROR and failed.refs == {"completion": "failed"}
    assert "od83000025" in str(failed.message) and "保留" in str(failed.message)


def test_od_error_is_the_orders_error(server, tmp_path, secrets) -> None:
    server.sandbox.yahoo.set_options({"known_order_ids": [f"{SELLER}-1"]})
    (outcome,) = send(session(server, tmp_path), order("1006"))
    assert outcome.status == Status.ERROR
    assert outcome.message == "od83000003: 注文IDが存在しません。"


def test_a_split_goes_as_one_shipment(server, tmp_path, secrets) -> None:
    yahoo = session(server, tmp_path)
    parent = order("2001", "111", mall_order_id=f"{SELLER}-2000")
    child = order("2002", "222", mall_order_id=f"{SELLER}-2000", split_from="2001")
    third = order("2003", "333", mall_order_id=f"{SELLER}-2000", split_from="2001")
    (request,) = yahoo.encode([Prepared(o, [], YAMATO, {}, []) for o in (child, third, parent)])
    assert [(r.record_no, r.order_no) for r in request.rows] == [
        (1, "2001"),
        (2, "2002"),
        (3, "2003"),
    ]
    outcomes = {o.order_no: o for o in send(yahoo, child, third, parent)}
    assert set(outcomes) == {"2001", "2002", "2003"}
    assert all(o.status == Status.SUCCESS for o in outcomes.values())
    assert "'333' is not sent" in str(outcomes["2003"].warnings[0])
    ship = server.sandbox.yahoo.orders()[f"{SELLER}-2000"]["ship"]
    assert (ship["ShipInvoiceNumber1"], ship["ShipInvoiceNumber2"]) == ("111", "222")
    assert yahoo.calls["orderShipStatusChange"] == 1


def test_unsigned_after_12_hours_halts(server, tmp_path, secrets) -> None:
    server.sandbox.yahoo.advance(12)
    with pytest.raises(YahooError) as caught:
        send(session(server, tmp_path, signed=False), order("1007"))
    assert caught.value.halt and "px-04102" in caught.value.message


def test_three_network_failures_in_a_row_stop_the_store(server, tmp_path, secrets) -> None:
    yahoo = session(server, tmp_path)
    server.sandbox.yahoo.add_fault("orderShipStatusChange", "fail", status=503, count=3)
    halts = []
    for n in range(3):
        with pytest.raises(YahooError) as caught:
            send(yahoo, order(f"30{n}"))
        halts.append(caught.value.halt)
    assert halts == [False, False, True]
    # the stop is said in the message kept for the mail and the history, in either language
    stopped = caught.value
    assert "3 calls in a row failed" in stopped.message
    assert "Yahoo answered 503" in render(stopped.kept, "en")
    assert "(3 回続けて失敗しました: この店舗の残りの注文は次回の実行まで待機します)" in render(
        stopped.kept, "ja"
    )
    assert "Yahoo が 503 を返しました" in render(stopped.kept, "ja")


def test_health_levels() -> None:
    row = {"mall_settings": {"public_key": "k.pem", "authorized_on": "2026-11-01"}}
    assert health(row, NOW) == [("warning", health(row, NOW)[0][1])]
    assert "ends on 2026-11-29 (days left: 1)" in health(row, NOW)[0][1]
    assert health({"mall_settings": {}}, NOW)[0][0] == "warning"  # no key


def test_a_halt_at_completion_keeps_the_shipment_and_stops_before_the_next(
    server, tmp_path, secrets
) -> None:
    yahoo = session(server, tmp_path)
    server.sandbox.yahoo.add_fault("orderStatusChange", "throttle")
    (outcome,) = send(yahoo, order("4001"))
    assert outcome.status == Status.SUCCESS and outcome.refs["completion"] == "scheduled"
    assert "results fetch retries" in str(outcome.message)
    with pytest.raises(YahooError) as caught:
        send(yahoo, order("4002"))
    assert caught.value.halt
    assert f"{SELLER}-4002" not in server.sandbox.yahoo.orders()  # never called


def test_network_failure_at_completion_leaves_it_due(server, tmp_path, secrets) -> None:
    yahoo = session(server, tmp_path)
    server.sandbox.yahoo.add_fault("orderStatusChange", "fail", status=500)
    (outcome,) = send(yahoo, order("4003"))
    assert outcome.status == Status.SUCCESS and outcome.refs["completion"] == "scheduled"
    assert outcome.refs["complete_due"] == "2026-11-28T03:00:00.000000+00:00"  # now: due at once
    assert send(yahoo, order("4004"))[0].refs["completion"] == "done"  # the run goes on


def test_notices_for_the_runs_mail(server, tmp_path, secrets) -> None:
    assert session(server, tmp_path).notices() == []
    near = session(server, tmp_path, authorized_on="2026-11-01", public_key_expires="2027-01-01")
    (notice,) = near.notices()
    assert "authorization ends on 2026-11-29 (days left: 1)" in str(notice)
    assert "残り 1 日" in notice.render("ja")  # kept as a Message: the mail shows its language
    assert "no public key" in str(session(server, tmp_path, signed=False).notices()[0])


def test_shorter_pacing_only_for_a_local_sandbox(server, tmp_path, secrets, monkeypatch) -> None:
    monkeypatch.setenv("CROSSSHIP_YAHOO_PACE_MS", "5")
    yahoo = session(server, tmp_path)
    assert yahoo.client.pace.interval == pytest.approx(0.005)
    row = store_row(server)
    row["endpoint"] = "https://circus.shopping.yahooapis.jp/ShoppingWebService/V1/"
    context = StoreContext(row, tmp_path / "crossship.db", lambda: NOW, NoPace())
    with pytest.raises(ConfigError, match="loopback"):
        MALL.open_session(context)
