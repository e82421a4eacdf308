"""Amazon Selling Partner API: the only part of crossship that talks to Amazon.

``MALL`` declares Amazon to crossship (registered under the entry-point group ``crossship.malls``):
its limits, store settings, secrets, carrier fields, mail subjects and order-id shape. The session
(``crossship.amazon.mall``) is imported only when a run or a check needs it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from crossship.errors import UsageError
from crossship.i18n import N_, _
from crossship.malls import CarrierField, Limits, Mall, Secret, Setting
from crossship.shell import word as q

if TYPE_CHECKING:
    from crossship.malls import MallSession, OfflineSession, StoreContext

JP_MARKETPLACE = "A1VC38T7YXB528"
FE_ENDPOINT = "https://sellingpartnerapi-fe.amazon.com"
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
ENCODINGS = ("utf-8", "cp932")
MAX_FEED_BYTES = 10 * 1024 * 1024
NOTIFY_SUBJECT = "(CROSSMALL)Amazon出荷通知処理(自動)のお知らせ"
RESULTS_SUBJECT = "(CROSSMALL)Amazon出荷通知結果取得処理(自動)のお知らせ"


def _marketplace(value: str) -> str:
    if not value:
        raise UsageError(_("--marketplace-id must not be empty"))
    return value


def _template(value: str) -> str:
    if not value:
        return ""  # back to the built-in template
    try:
        Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            _("--template {path} cannot be read as UTF-8 text: {error}").format(
                path=repr(value), error=exc
            )
        ) from None
    return value


def _carrier_check(name: str, values: dict[str, str | None]) -> list[str]:
    """Amazon's rules for a carrier's fields (CROSS MALL help, Q2); returns the warnings."""
    code = values.get("amazon_carrier_code")
    if not code:
        raise UsageError(_("--amazon-carrier-code must not be empty (Amazon Japan requires it)"))
    if code.lower() == "other" and not values.get("amazon_carrier_name"):
        raise UsageError(
            _(
                "--amazon-carrier-code Other needs --amazon-carrier-name: the carrier's name as "
                "Amazon should show it"
            )
        )
    return [] if values.get("amazon_ship_method") else [ship_method_warning(name)]


def ship_method_warning(carrier: str) -> str:
    return _(
        "carrier {carrier} has no Amazon ship-method: Amazon accepts its orders but warns "
        "「ship-methodの項目が記入されていないか入力内容が無効です」 (CROSS MALL help, Q2); "
        "set one with `crossship config carrier add {name} --amazon-carrier-code ... "
        "--amazon-ship-method TEXT`"
    ).format(carrier=repr(carrier), name=q(carrier))


def _open(context: StoreContext) -> MallSession:
    from crossship.amazon.mall import AmazonSession

    return AmazonSession.open(context)


def _offline(store_row: dict) -> OfflineSession:
    from crossship.amazon.mall import AmazonSession

    return AmazonSession(store_row, None, clock=lambda: None)  # type: ignore[arg-type,return-value]


MALL = Mall(
    key="amazon",
    label="Amazon",
    limits=Limits(
        orders_per_request=None,
        bytes_per_request=MAX_FEED_BYTES,
        calls_per_second=0,  # Amazon's per-operation limits are kept inside its client
        release_after=timedelta(minutes=10),
    ),
    settings=(
        Setting("seller_id", "--seller-id", N_("The seller (merchant) id at the mall.")),
        Setting(
            "marketplace_id",
            "--marketplace-id",
            N_("Amazon marketplace (default A1VC38T7YXB528, Amazon.co.jp)."),
            default=JP_MARKETPLACE,
            check=_marketplace,
        ),
        Setting(
            "token_url",
            "--token-url",
            N_(
                "Token URL (Amazon default https://api.amazon.com/auth/o2/token); https, or http "
                "only to loopback."
            ),
            kind="url",
            default=LWA_TOKEN_URL,
        ),
        Setting(
            "encoding",
            "--encoding",
            N_("Feed encoding: utf-8 (default) or cp932 (sent as Shift_JIS)."),
            kind="choice",
            choices=ENCODINGS,
        ),
        Setting(
            "template",
            "--template",
            N_('Jinja2 feed template overriding the built-in one ("" resets it).'),
            kind="path",
            check=_template,
            metavar="FILE",
        ),
    ),
    secrets=(
        Secret("client_id", "lwa_client_id", "LWA_CLIENT_ID"),
        Secret("client_secret", "lwa_client_secret", "LWA_CLIENT_SECRET"),
        Secret("refresh_token", "refresh_token", "REFRESH_TOKEN"),
    ),
    carrier_fields=(
        CarrierField(
            "amazon_carrier_code",
            "--amazon-carrier-code",
            N_(
                "Amazon carrier-code, e.g. 'Yamato Transport', 'Sagawa Express', 'Japan Post', "
                "Other."
            ),
            needed=True,
        ),
        CarrierField(
            "amazon_carrier_name",
            "--amazon-carrier-name",
            N_("Carrier name (needed with Other)."),
            metavar="TEXT",
        ),
        CarrierField(
            "amazon_ship_method",
            "--amazon-ship-method",
            N_(
                "Amazon ship-method (Amazon配送方法), e.g. 宅急便; without it Amazon warns "
                "(CROSS MALL help, Q2)."
            ),
            metavar="TEXT",
        ),
    ),
    subjects={"notify": NOTIFY_SUBJECT, "results": RESULTS_SUBJECT},
    order_id=re.compile(r"[0-9]{3}-[0-9]{7}-[0-9]{7}"),
    order_id_hint="NNN-NNNNNNN-NNNNNNN",
    synchronous=False,
    open_session=_open,
    offline_session=_offline,
    defaults={"endpoint": FE_ENDPOINT},
    fba=True,
    console="Seller Central",
    carrier_check=_carrier_check,
    manual_file=True,
    unit="feed",
    lost_lookup="getFeeds",
)
