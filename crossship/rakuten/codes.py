"""RMS's fixed vocabulary: delivery company codes, the order number's shape, message codes."""

from __future__ import annotations

import re

# 配送会社 codes of updateOrderShippingAsync (deliveryCompany): a name instead of a code is
# RMS's ERROR_011 (書式不正), so a carrier carries the code
DELIVERY_COMPANIES: dict[str, str] = {
    "1000": "その他",
    "1001": "ヤマト運輸",
    "1002": "佐川急便",
    "1003": "日本郵便",
    "1004": "西濃運輸",
    "1005": "セイノースーパーエクスプレス",
    "1006": "福山通運",
    "1007": "名鉄運輸",
    "1008": "トナミ運輸",
    "1009": "第一貨物",
    "1010": "新潟運輸",
    "1011": "中越運送",
    "1012": "岡山県貨物運送",
    "1013": "久留米運送",
    "1014": "山陽自動車運送",
    "1015": "NXトランスポート",
    "1016": "エコ配",
    "1017": "EMS",
    "1018": "DHL",
    "1019": "FedEx",
    "1020": "UPS",
    "1021": "日本通運",
    "1022": "TNT",
    "1023": "OCS",
    "1024": "USPS",
    "1025": "SFエクスプレス",
    "1026": "Aramex",
    "1027": "SGHグローバル・ジャパン",
    "1028": "Rakuten EXPRESS",
}

# 受注番号: shop number, order date, sequence
ORDER_NUMBER = re.compile(r"\d{6}-\d{8}-\d{10}")
ORDER_NUMBER_HINT = "NNNNNN-YYYYMMDD-NNNNNNNNNN"

DEFAULT_ENDPOINT = "https://api.rms.rakuten.co.jp/es/2.0/order/"
MAX_ORDERS_PER_REQUEST = 100  # updateOrderShippingAsync and getOrder
MAX_ROWS_PER_BASKET = 20  # ShippingModelList of one 送付先 (basket)
MAX_VALUE_CHARS = 120  # shippingNumber
GET_ORDER_VERSION = 7  # the first version that gives shippingDetailId

# "処理結果は存在しませんでした": still processing, or an unknown or expired requestId
NO_RESULT_SUFFIX = "_INFO_101"
NO_RESULT_TEXT = "処理結果は存在しませんでした"

# where a seller finds the keys and the API functions, in RMS's own words
RMS_API_SCREEN = "RMS > 店舗様向け情報・サービス > WEB APIサービス"


def api_function(operation: str) -> str:
    """The RMS WEB API function name that must be enabled for ``operation``."""
    return f"rpay.order.{operation}"


def describe_code(code: str) -> str:
    """``1001 ヤマト運輸`` for messages."""
    name = DELIVERY_COMPANIES.get(code)
    return f"{code} {name}" if name else code
