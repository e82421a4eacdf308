#!/usr/bin/env bash
# Configure crossship for the example orders (examples/orders.csv): phases, carriers, the two
# stores, the target phase and the result mails. Uses only the public command line, so it is
# also a worked example of `crossship config`.
#
#   CROSSSHIP_DB=/tmp/crossship-example.db bash examples/setup.sh
#   crossship orders import examples/orders.csv
#
# The database is the one in CROSSSHIP_DB (or --db's default, ~/.local/share/crossship/).
# Secrets (LWA credentials, SMTP password) are not set here: see README.md, "Secrets".
set -euo pipefail

if crossship config store show amazon-main >/dev/null 2>&1; then
    echo "amazon-main is already configured in this database: nothing to do" >&2
    exit 0
fi

crossship init

# Phases (処理フェーズ, as 【システム設定>処理フェーズ】). Only 出荷済み is a target phase, so it requires a ship date.
crossship config phase create 新規受付 --ship-date optional
crossship config phase create 出荷待ち --ship-date optional
crossship config phase create 出荷済み --ship-date required
crossship config phase create 完了 --ship-date optional

# Carriers (配送便, as 【マスタ登録>配送便】). 日本郵便 has no ship-method on purpose: Amazon accepts its orders
# with the ship-method warning of CROSS MALL help: Amazon自動出荷通知, Q2.
crossship config carrier add ヤマト運輸 --amazon-carrier-code "Yamato Transport" --amazon-ship-method 宅急便
crossship config carrier add 佐川急便 --amazon-carrier-code "Sagawa Express" --amazon-ship-method 飛脚宅配便
crossship config carrier add 日本郵便 --amazon-carrier-code "Japan Post"

# Stores (店舗): an Amazon store and a Rakuten one whose orders share the phases (CROSS MALL help: Amazon自動出荷通知, Q3).
crossship config store add amazon-main --mall amazon
crossship config store add rakuten-shop --mall rakuten

# Target phase (as 【自動注文連携>自動注文連携店舗一覧】): amazon-main notifies its orders in 出荷済み and moves them to 完了.
crossship config phase add amazon-main 出荷済み --move-to 完了

# Result mails (処理結果メール): a local SMTP server, e.g. `python -m aiosmtpd -n -l 127.0.0.1:1025`.
crossship config mail set --smtp-host 127.0.0.1 --smtp-port 1025 --no-starttls --from crossship@example.jp --admin admin@example.jp --notify shipping@example.jp

# Adding a target phase starts nothing (CROSS MALL help: Amazon自動出荷通知, 3-2); starting the store is the last, deliberate
# step (as 【自動注文連携>自動処理 開始/停止】). From here on cron's `crossship notify run` sends amazon-main's orders in 出荷済み.
crossship auto start amazon-main
