"""A small mall for tests of what the declarations drive (flags, secrets, carrier codes).

It is registered with ``crossship.malls.register`` (cleared after each test by conftest), never
installed; its sessions are never opened by the tests that use it.
"""

from __future__ import annotations

import re
from datetime import timedelta

from crossship.errors import ConfigError
from crossship.malls import CarrierField, Limits, Mall, Secret, Setting


def _no_session(_context: object) -> object:
    raise ConfigError("the test mall has no session")


TEST_MALL = Mall(
    key="testmall",
    label="テストモール",
    limits=Limits(
        orders_per_request=100,
        bytes_per_request=None,
        calls_per_second=1.0,
        release_after=timedelta(minutes=10),
    ),
    settings=(
        Setting("seller_id", "--seller-id", "The store account.", required=True),
        Setting("license_expires", "--license-expires", "When the key expires.", kind="date"),
        Setting("complete_after", "--complete-after", "Days, or never.", kind="days_or_never"),
    ),
    secrets=(
        Secret("service_secret", "service_secret", "TEST_SERVICE_SECRET"),
        Secret("license_key", "license_key", "TEST_LICENSE_KEY"),
    ),
    carrier_fields=(
        CarrierField(
            "test_company",
            "--test-company",
            "The test mall's company code.",
            codes={"1001": "ヤマト運輸", "1002": "佐川急便"},
            needed=True,
        ),
    ),
    subjects={"notify": "(CROSSMALL)テスト通知", "results": "(CROSSMALL)テスト結果"},
    order_id=re.compile(r"T-[0-9]+"),
    order_id_hint="T-NNNN",
    synchronous=False,
    open_session=_no_session,  # type: ignore[arg-type]
    offline_session=_no_session,  # type: ignore[arg-type]
    defaults={"endpoint": "https://test-mall.example/api/"},
)
