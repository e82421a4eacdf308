"""楽天市場 RMS: the only part of crossship that talks to Rakuten.

``MALL`` declares Rakuten to crossship (registered under the entry-point group ``crossship.malls``):
its limits, store settings, secrets, carrier field, mail subjects and order-number shape. The
session (``crossship.rakuten.mall``) is imported only when a run or a check needs it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from crossship.i18n import N_
from crossship.malls import CarrierField, Limits, Mall, Secret, Setting
from crossship.rakuten import license
from crossship.rakuten.codes import (
    DEFAULT_ENDPOINT,
    DELIVERY_COMPANIES,
    MAX_ORDERS_PER_REQUEST,
    ORDER_NUMBER,
    ORDER_NUMBER_HINT,
)

if TYPE_CHECKING:
    from crossship.malls import MallSession, OfflineSession, StoreContext

NOTIFY_SUBJECT = "(CROSSMALL)楽天市場発送情報登録処理(自動)のお知らせ"
RESULTS_SUBJECT = "(CROSSMALL)楽天市場発送情報登録結果取得処理(自動)のお知らせ"


def _open(context: StoreContext) -> MallSession:
    from crossship.rakuten.mall import RakutenSession

    return RakutenSession.from_context(context)


def _offline(store_row: dict) -> OfflineSession:
    from crossship.rakuten.mall import RakutenSession

    return RakutenSession.offline(store_row)


MALL = Mall(
    key="rakuten",
    label="楽天市場",
    limits=Limits(
        orders_per_request=MAX_ORDERS_PER_REQUEST,
        bytes_per_request=None,
        calls_per_second=1.0,
        release_after=timedelta(minutes=10),
    ),
    settings=(
        Setting(
            "license_expires",
            "--license-expires",
            N_(
                "When the RMS licenseKey ends (YYYY-MM-DD; it lasts 90 days): warnings from 14 "
                "days before, no call after it."
            ),
            kind="date",
            metavar="YYYY-MM-DD",
        ),
    ),
    secrets=(
        Secret("service_secret", "service_secret", "RMS_SERVICE_SECRET"),
        Secret("license_key", "license_key", "RMS_LICENSE_KEY"),
    ),
    carrier_fields=(
        CarrierField(
            "rakuten_delivery_company",
            "--rakuten-delivery-company",
            N_(
                "楽天市場 配送会社 code, 1000-1028 (1001 ヤマト運輸, 1002 佐川急便, "
                "1003 日本郵便...)."
            ),
            codes=DELIVERY_COMPANIES,
            needed=True,
        ),
    ),
    subjects={"notify": NOTIFY_SUBJECT, "results": RESULTS_SUBJECT},
    order_id=ORDER_NUMBER,
    order_id_hint=ORDER_NUMBER_HINT,
    synchronous=False,
    open_session=_open,
    offline_session=_offline,
    defaults={"endpoint": DEFAULT_ENDPOINT},
    console="RMS (受注管理)",
    health=license.health,
)
