"""The import file's 送付先ID (basket_id) column: kept as the order's mall reference."""

from __future__ import annotations

from pathlib import Path

from crossship.store import Store

HEADER = "管理番号,店舗,注文番号,処理フェーズ,発送日,配送便,配送番号,送付先ID\n"
NUMBER = "338271-20261124-0012345601"


def setup(run) -> None:
    for args in (
        ["init"],
        ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
        ["config", "store", "add", "rakuten-shop", "--mall", "rakuten"],
    ):
        assert run(args).exit_code == 0


def write(tmp_path: Path, *rows: str) -> str:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_basket_ids_are_kept_and_a_new_one_forgets_the_old_row(run, tmp_path, db_path):
    setup(run)
    first = f"R1,rakuten-shop,{NUMBER},出荷済み,2026-11-30,,,7001"
    second = f"R2,rakuten-shop,{NUMBER},出荷済み,2026-11-30,,,"
    result = run(["orders", "import", write(tmp_path, first, second)])
    assert result.exit_code == 0, result.stderr
    with Store(db_path) as store:
        assert store.refs_for(["R1", "R2"]) == {"R1": {"basket_id": "7001"}}
        store.set_refs({"R1": {"shipping_detail_id": "15"}})
    run(
        [
            "orders",
            "import",
            write(tmp_path, f"R1,rakuten-shop,{NUMBER},出荷済み,2026-11-30,,,7001"),
        ]
    )
    with Store(db_path) as store:
        assert store.refs_for(["R1"])["R1"] == {"basket_id": "7001", "shipping_detail_id": "15"}
    run(
        [
            "orders",
            "import",
            write(tmp_path, f"R1,rakuten-shop,{NUMBER},出荷済み,2026-11-30,,,7002"),
        ]
    )
    with Store(db_path) as store:
        assert store.refs_for(["R1"])["R1"] == {"basket_id": "7002"}


def test_a_basket_id_that_is_not_a_number_is_refused(run, tmp_path, db_path):
    setup(run)
    result = run(
        ["orders", "import", write(tmp_path, f"R1,rakuten-shop,{NUMBER},出荷済み,2026-11-30,,,x7")]
    )
    assert result.exit_code == 1
    assert "送付先ID (basket_id) 'x7' is not a number" in result.stderr
    assert "Traceback" not in result.stderr
    with Store(db_path) as store:
        assert store.refs_for(["R1"]) == {}
