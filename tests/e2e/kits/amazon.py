"""Amazon's contract kit (see tests/e2e/kits/__init__.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from crossship.secrets import env_name
from tests.e2e.conftest import SHIP_DATE, feeds_per_order

HOLD = 300.0  # seconds a held call waits for release: far beyond any test


class AmazonKit:
    key = "amazon"
    store = "amazon-contract"
    notify_calls = ("token", "createFeedDocument", "upload", "createFeed")
    results_calls = ("getFeed", "getFeedDocument", "download")
    submit_call = "createFeed"

    def commands(self, sandbox: Any) -> list[list[str]]:
        return [
            ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code",
             "Yamato Transport", "--amazon-ship-method", "宅急便"],
            ["config", "store", "add", self.store, "--mall", "amazon", "--endpoint", sandbox.url,
             "--token-url", sandbox.token_url],
            ["config", "phase", "add", self.store, "出荷済み", "--move-to", "完了"],
            ["auto", "start", self.store],
        ]  # fmt: skip

    def environment(self, sandbox: Any) -> dict[str, str]:
        options = sandbox.options
        return {
            env_name(self.store, "LWA_CLIENT_ID"): options.client_id,
            env_name(self.store, "LWA_CLIENT_SECRET"): options.client_secret,
            env_name(self.store, "REFRESH_TOKEN"): options.refresh_token,
        }

    def orders(self, count: int) -> list[dict[str, str]]:
        return [
            {
                "order_no": f"C{n:04d}",
                "store": self.store,
                "mall_order_id": f"249-{n:07d}-{(n * 7919) % 10**7:07d}",
                "phase": "出荷済み",
                "category": "normal",
                "fba": "0",
                "ship_date": SHIP_DATE,
                "carrier": "ヤマト運輸",
                "tracking_number": f"4019{n:08d}",
            }
            for n in range(1, count + 1)
        ]

    def hold(self, sandbox: Any, call: str) -> None:
        sandbox.add_fault(call, "hang", seconds=HOLD)

    def release(self, sandbox: Any) -> None:
        sandbox.release_hangs()

    def lose_answer(self, sandbox: Any, call: str) -> None:
        sandbox.add_fault(call, "lose_answer")

    def calls(self, sandbox: Any) -> Counter[str]:
        return Counter(sandbox.calls)

    def registered(self, sandbox: Any) -> Counter[str]:
        return feeds_per_order(sandbox.feeds())


KIT = AmazonKit()
