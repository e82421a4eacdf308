"""When 完了 (orderStatusChange 5) is due, and which answers mean it is done.

`--complete-after 0` (the default): right after a successful shipment, in the same run;
`N`: from 00:00 Japan time N days after the ship date, by `results fetch`; `never`: not by
crossship (the seller completes the order in ストアクリエイターPro).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

from crossship.errors import UsageError
from crossship.i18n import Message

JST = timezone(timedelta(hours=9), "JST")
NEVER = "never"
MAX_DAYS = 60
# an answer saying the order already is 完了: a resent 完了 after a crash is then harmless
_ALREADY = re.compile(r"(既に|すでに).*完了|完了済|already\s+(been\s+)?complete", re.IGNORECASE)


def parse_complete_after(text: str | int | None) -> str:
    """``"0"``.. ``"60"`` or ``"never"``, as stored; a UsageError names the choices."""
    value = "0" if text is None else str(text).strip().lower()
    if value == NEVER:
        return NEVER
    if not value.isdigit() or int(value) > MAX_DAYS:
        raise UsageError(
            Message(
                "--complete-after {value}: give a number of days 0..{most} after the ship date "
                "(0: right after the shipment) or `never`",
                {"value": repr(text), "most": MAX_DAYS},
            )
        )
    return str(int(value))


def due_time(ship_date: str, days: int) -> datetime:
    """00:00 Japan time ``days`` after the ship date, as an aware UTC time."""
    start = datetime.combine(date.fromisoformat(ship_date), time(0), JST)
    return (start + timedelta(days=days)).astimezone(UTC)


def already_completed(text: str) -> bool:
    """Does Yahoo's message (a warning or an od… error) say the order is 完了 already?"""
    return bool(_ALREADY.search(text or ""))
