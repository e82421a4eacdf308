"""The licenseKey's 90 days: warnings from 14 days before its end, no call after it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from crossship.rakuten.codes import RMS_API_SCREEN

WARN_DAYS = 14
JST = dt.timezone(dt.timedelta(hours=9), "JST")  # the key's days are RMS's days


def today(now: dt.datetime) -> dt.date:
    """The calendar day in Japan at ``now`` (aware)."""
    return now.astimezone(JST).date()


def expires_of(store_row: Mapping[str, Any]) -> str | None:
    """The store's recorded ``--license-expires`` (from its row or its mall settings)."""
    value = store_row.get("license_expires")
    if value is None:
        settings = store_row.get("mall_settings") or {}
        if isinstance(settings, str):
            try:
                settings = json.loads(settings or "{}")
            except ValueError:
                settings = {}
        value = settings.get("license_expires") if isinstance(settings, Mapping) else None
    return str(value) if value else None


def health(store_row: Mapping[str, Any], now: dt.datetime) -> list[tuple[str, str]]:
    """For `crossship check` and `auto status`: a warning from 14 days before the licenseKey's
    recorded end, critical after it (runs make no call then)."""
    name, expires, day = str(store_row["name"]), expires_of(store_row), today(now)
    ended = expired(name, expires, day)
    if ended:
        return [("critical", ended.replace("no call was made to RMS", "runs make no RMS call"))]
    near = warning(name, expires, day)
    return [("warning", near)] if near else []


def days_left(expires: str | None, today: dt.date) -> int | None:
    """Days until the recorded end of the license key (0: it ends today), or None if unknown."""
    if not expires:
        return None
    return (dt.date.fromisoformat(expires) - today).days


def warning(store: str, expires: str | None, today: dt.date) -> str | None:
    """The reminder mails, `auto status` and `check` show, from 14 days before the end."""
    left = days_left(expires, today)
    if left is None or left > WARN_DAYS or left < 0:
        return None
    when = "today" if left == 0 else f"in {left} day{'s' if left != 1 else ''}"
    return (
        f"the RMS licenseKey of store {store} expires {when} ({expires}): issue a new one in "
        f"{RMS_API_SCREEN} and run `crossship config store set {store} --license-expires "
        "YYYY-MM-DD`"
    )


def expired(store: str, expires: str | None, today: dt.date) -> str | None:
    """Why no RMS call may be made, once the recorded end has passed; else None."""
    left = days_left(expires, today)
    if left is None or left >= 0:
        return None
    return (
        f"the RMS licenseKey of store {store} expired on {expires}: no call was made to RMS; "
        f"issue a new key in {RMS_API_SCREEN}, set it as the store's license_key and run "
        f"`crossship config store set {store} --license-expires YYYY-MM-DD`"
    )
