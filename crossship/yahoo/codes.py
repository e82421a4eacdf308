"""Yahoo!ショッピング's code lists: ship companies (配送会社) and reasons for no tracking number."""

from __future__ import annotations

# ShipCompanyCode of orderShipStatusChange (the order-detail API page lists them)
SHIP_COMPANIES: dict[str, str] = {
    "1000": "その他",
    "1001": "ヤマト運輸",
    "1002": "佐川急便",
    "1003": "日本郵便",
    "1004": "西濃運輸",
    "1006": "福山通運",
}

# ShipInvoiceNumberEmptyReason: why an order ships without a tracking number
NO_TRACKING_REASONS: dict[str, str] = {
    "101": "メーカー直送",
    "102": "配送不要",
    "103": "店頭受取",
    "104": "配送会社から直接連絡",
    "105": "追跡不可配送方法",
}

# orderShipStatusChange ShipStatus and orderStatusChange OrderStatus values crossship sends
SHIPPED = "3"  # 出荷済み
COMPLETED = "5"  # 完了

MAX_TRACKING_NUMBERS = 2  # ShipInvoiceNumber1, ShipInvoiceNumber2
