"""楽天市場's contract kit (see tests/e2e/kits/__init__.py).

A first notify run looks the baskets up (getOrder) and sends one updateOrderShippingAsync;
results fetch asks getResultUpdateOrderShippingAsync once. RMS registers one shipment row per
package: ``registered`` counts the rows each order holds at the sandbox's RMS, so a resend that
added a second row shows as 2.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from crossship.secrets import env_name

HOLD = 300.0  # seconds a held call waits for release: far beyond any test


class RakutenKit:
    key = "rakuten"
    store = "rakuten-contract"
    notify_calls = ("getOrder", "updateOrderShippingAsync")
    results_calls = ("getResultUpdateOrderShippingAsync",)
    submit_call = "updateOrderShippingAsync"

    def _rms(self, sandbox: Any) -> Any:
        return sandbox.sandbox.rakuten

    def commands(self, sandbox: Any) -> list[list[str]]:
        self._rms(sandbox).set_options({"enforce_rate_limit": False})
        return [
            ["config", "carrier", "add", "ヤマト運輸", "--rakuten-delivery-company", "1001"],
            ["config", "store", "add", self.store, "--mall", "rakuten",
             "--endpoint", sandbox.url + "/es/2.0/order/"],
            ["config", "phase", "add", self.store, "出荷済み", "--move-to", "完了"],
            ["auto", "start", self.store],
        ]  # fmt: skip

    def environment(self, sandbox: Any) -> dict[str, str]:
        options = self._rms(sandbox).options
        return {
            env_name(self.store, "RMS_SERVICE_SECRET"): options.service_secret,
            env_name(self.store, "RMS_LICENSE_KEY"): options.license_key,
        }

    def orders(self, count: int) -> list[dict[str, str]]:
        return [
            {
                "order_no": f"R{n:04d}",
                "store": self.store,
                "mall_order_id": f"338271-20261124-{n:010d}",
                "phase": "出荷済み",
                "category": "normal",
                "fba": "0",
                "ship_date": "2026-11-24",
                "carrier": "ヤマト運輸",
                "tracking_number": f"4019{n:08d}",
            }
            for n in range(1, count + 1)
        ]

    def hold(self, sandbox: Any, call: str) -> None:
        self._rms(sandbox).add_fault(call, "hang", seconds=HOLD)

    def release(self, sandbox: Any) -> None:
        self._rms(sandbox).release_hangs()

    def lose_answer(self, sandbox: Any, call: str) -> None:
        self._rms(sandbox).add_fault(call, "lose_answer")

    def calls(self, sandbox: Any) -> Counter[str]:
        return Counter(self._rms(sandbox).calls)

    def registered(self, sandbox: Any) -> Counter[str]:
        rows = Counter()
        for number, order in self._rms(sandbox).orders().items():
            held = sum(len(p["ShippingModelList"]) for p in order["PackageModelList"])
            if held:
                rows[number] = held
        return rows


KIT = RakutenKit()
