"""Yahoo!ショッピング's contract kit (see tests/e2e/kits/__init__.py).

The store sends 完了 right after each shipment (--complete-after 0), so a notify run makes
token → orderShipStatusChange → orderStatusChange → ..., and results fetch has nothing to call.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from crossship.secrets import env_name

HOLD = 300.0


class YahooKit:
    key = "yahoo"
    store = "yahoo-contract"
    notify_calls = ("token", "orderShipStatusChange", "orderStatusChange")
    results_calls: tuple[str, ...] = ()
    submit_call = "orderShipStatusChange"

    def _yahoo(self, sandbox: Any) -> Any:
        return sandbox.sandbox.yahoo

    def commands(self, sandbox: Any) -> list[list[str]]:
        yahoo = self._yahoo(sandbox)
        yahoo.set_options({"enforce_rate_limits": False})
        return [
            ["config", "carrier", "add", "ヤマト運輸", "--yahoo-ship-company", "1001"],
            ["config", "store", "add", self.store, "--mall", "yahoo",
             "--seller-id", yahoo.options.seller_id,
             "--endpoint", sandbox.url + "/ShoppingWebService/V1/",
             "--token-url", sandbox.url + "/yconnect/v2/token", "--complete-after", "0"],
            ["config", "phase", "add", self.store, "出荷済み", "--move-to", "完了"],
            ["auto", "start", self.store],
        ]  # fmt: skip

    def environment(self, sandbox: Any) -> dict[str, str]:
        options = self._yahoo(sandbox).options
        return {
            env_name(self.store, "YAHOO_CLIENT_ID"): options.client_id,
            env_name(self.store, "YAHOO_CLIENT_SECRET"): options.client_secret,
            env_name(self.store, "YAHOO_REFRESH_TOKEN"): options.refresh_token,
        }

    def orders(self, count: int) -> list[dict[str, str]]:
        return [
            {
                "order_no": f"Y{n:04d}",
                "store": self.store,
                "mall_order_id": f"sandbox-store-{10000 + n}",
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
        self._yahoo(sandbox).add_fault(call, "hang", seconds=HOLD)

    def release(self, sandbox: Any) -> None:
        self._yahoo(sandbox).release_hangs()

    def lose_answer(self, sandbox: Any, call: str) -> None:
        self._yahoo(sandbox).add_fault(call, "lose_answer")

    def calls(self, sandbox: Any) -> Counter[str]:
        return Counter(self._yahoo(sandbox).calls)

    def registered(self, sandbox: Any) -> Counter[str]:
        # setting the same shipment again is harmless and counts once; 出荷済み (3) is the proof
        return Counter(
            order_id
            for order_id, order in self._yahoo(sandbox).orders().items()
            if order["ship"].get("ShipStatus") == "3"
        )


KIT = YahooKit()
