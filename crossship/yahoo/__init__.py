"""Yahoo!ショッピング: 注文処理実績連携 (orderShipStatusChange) and 完了 (orderStatusChange).

``MALL`` declares Yahoo to crossship (registered under the entry-point group ``crossship.malls``):
its limits, store settings, secrets, carrier fields, mail subjects and order-id shape. The session
(``crossship.yahoo.mall``) is imported only when a run or a check needs it.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossship.errors import ConfigError, UsageError
from crossship.i18n import N_, _
from crossship.malls import CarrierField, Limits, Mall, Secret, Setting
from crossship.yahoo.codes import NO_TRACKING_REASONS, SHIP_COMPANIES

if TYPE_CHECKING:
    from crossship.malls import MallSession, OfflineSession, StoreContext

ENDPOINT = "https://circus.shopping.yahooapis.jp/ShoppingWebService/V1/"
TOKEN_URL = "https://auth.login.yahoo.co.jp/yconnect/v2/token"
NOTIFY_SUBJECT = "(CROSSMALL)Yahoo!ショッピング注文処理実績連携処理(自動)のお知らせ"
COMPLETE_SUBJECT = "(CROSSMALL)Yahoo!ショッピング注文完了処理(自動)のお知らせ"
KEY_DIR = "yahoo-keys"  # beside the database: the public keys copied there


def _seller_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", value):
        raise UsageError(
            _(
                "--seller-id {value}: give the store account (ストアアカウント), the prefix of "
                "the store's order ids: letters, digits, - and _"
            ).format(value=repr(value))
        )
    return value


def _public_key(value: str) -> str:
    if not value:
        return ""
    from crossship.yahoo.keys import load_public_key

    try:
        load_public_key(Path(value))
    except ConfigError as exc:
        raise UsageError(_("--public-key: {error}").format(error=exc.message)) from None
    return value


def _version(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise UsageError(
            _("--public-key-version {value}: the key's バージョン, a number").format(
                value=repr(value)
            )
        )
    return value


def _complete_after(value: Any) -> Any:
    from crossship.yahoo.completion import parse_complete_after

    stored = parse_complete_after(value)
    return stored if stored == "never" else int(stored)


def store_saved(store_name: str, db_path: Path, mall_settings: dict[str, Any]) -> None:
    """`config store add/set`: copy a given public key beside the database (its copy is what
    runs read). Changes ``mall_settings`` in place."""
    given = mall_settings.get("public_key")
    if given:
        folder = Path(db_path).parent / KEY_DIR
        target = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', store_name)}.pem"
        if Path(given).resolve() != target.resolve():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(given, target)
        mall_settings["public_key"] = f"{KEY_DIR}/{target.name}"


def _open(context: StoreContext) -> MallSession:
    from crossship.yahoo.mall import YahooSession

    return YahooSession.open(context)


def _offline(store_row: dict) -> OfflineSession:
    from crossship.yahoo.mall import YahooSession

    return YahooSession(store_row, None, clock=datetime.now)


def _health(store_row: dict, now: datetime) -> list[tuple[str, str]]:
    from crossship.yahoo.mall import health

    return health(store_row, now)


MALL = Mall(
    key="yahoo",
    label="Yahoo!ショッピング",
    limits=Limits(
        orders_per_request=1,
        bytes_per_request=None,
        calls_per_second=1.0,
        release_after=timedelta(minutes=10),
    ),
    settings=(
        Setting(
            "seller_id",
            "--seller-id",
            N_(
                "The seller (merchant) id at the mall; Yahoo: the store account "
                "(ストアアカウント), prefix of its order ids."
            ),
            required=True,
            check=_seller_id,
        ),
        Setting(
            "token_url",
            "--token-url",
            N_(
                "Token URL (Yahoo default https://auth.login.yahoo.co.jp/yconnect/v2/token); "
                "https, or http only to loopback."
            ),
            kind="url",
            default=TOKEN_URL,
        ),
        Setting(
            "complete_after",
            "--complete-after",
            N_(
                "Days after the ship date to set the order 完了 (0: right after the shipment, "
                "default), or never."
            ),
            kind="days_or_never",
            default=0,
            check=_complete_after,
        ),
        Setting(
            "public_key",
            "--public-key",
            N_(
                "The public key (PEM) issued in ストアクリエイターPro (設定 > 暗号鍵管理); copied "
                "beside the database."
            ),
            kind="path",
            check=_public_key,
            metavar="FILE",
        ),
        Setting(
            "public_key_version",
            "--public-key-version",
            N_("The public key's バージョン (X-sws-signature-version)."),
            check=_version,
            metavar="N",
        ),
        Setting(
            "public_key_expires",
            "--public-key-expires",
            N_("When the public key's one-year validity ends (warned from 5 days before)."),
            kind="date",
            metavar="DATE",
        ),
        Setting(
            "authorized_on",
            "--authorized-on",
            N_(
                "When Yahoo! ID連携 was last authorized (it lasts 28 days; warned from 5 days "
                "before)."
            ),
            kind="date",
            metavar="DATE",
        ),
    ),
    secrets=(
        Secret("client_id", "client_id", "YAHOO_CLIENT_ID"),
        Secret("client_secret", "client_secret", "YAHOO_CLIENT_SECRET"),
        Secret("refresh_token", "refresh_token", "YAHOO_REFRESH_TOKEN"),
    ),
    carrier_fields=(
        CarrierField(
            "yahoo_ship_company",
            "--yahoo-ship-company",
            # the codes of SHIP_COMPANIES, written out for the catalog (a test compares them)
            N_(
                "Yahoo!ショッピング ship company code (配送会社): 1000 その他, 1001 ヤマト運輸, "
                "1002 佐川急便, 1003 日本郵便, 1004 西濃運輸, 1006 福山通運."
            ),
            codes=SHIP_COMPANIES,
            needed=True,
        ),
        CarrierField(
            "yahoo_no_tracking_reason",
            "--yahoo-no-tracking-reason",
            # the codes of NO_TRACKING_REASONS, written out for the catalog (a test compares them)
            N_(
                "Why this carrier's Yahoo orders may ship without a tracking number: "
                "101 メーカー直送, 102 配送不要, 103 店頭受取, 104 配送会社から直接連絡, "
                "105 追跡不可配送方法."
            ),
            codes=NO_TRACKING_REASONS,
        ),
    ),
    subjects={"notify": NOTIFY_SUBJECT, "results": COMPLETE_SUBJECT, "complete": COMPLETE_SUBJECT},
    order_id=re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*-[0-9]+"),
    order_id_hint="STOREACCOUNT-NNNNNNNN",
    synchronous=True,
    open_session=_open,
    offline_session=_offline,
    defaults={"endpoint": ENDPOINT},
    console="ストアクリエイターPro",
    unit="shipment",
    health=_health,
    store_saved=store_saved,
)
