"""Yahoo!ショッピング: 注文処理実績連携 (orderShipStatusChange) and 完了 (orderStatusChange)."""
