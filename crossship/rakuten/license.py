"""The licenseKey's 90 days: warnings from 14 days before its end, no call after it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from crossship.i18n import N_, Message
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


def days_left(expires: str | None, today: dt.date) -> int | None:
    """Days until the recorded end of the license key (0: it ends today), or None if unknown."""
    if not expires:
        return None
    return (dt.date.fromisoformat(expires) - today).days


def health(store_row: Mapping[str, Any], now: dt.datetime) -> list[tuple[str, str]]:
    """For `crossship check` and `auto status`: a warning from 14 days before the licenseKey's
    recorded end, critical after it (runs make no call then).
    The callers name the store before each text (as for every mall), so these do not."""
    name, expires, day = str(store_row["name"]), expires_of(store_row), today(now)
    gone = expired(name, expires, day, named=False)
    if gone:
        return [("critical", str(gone))]
    near = warning(name, expires, day, named=False)
    return [("warning", str(near))] if near else []


def warning(
    store: str, expires: str | None, today: dt.date, *, named: bool = True
) -> Message | None:
    """The reminder mails, `auto status` and `check` show, from 14 days before the end;
    ``named``: the text says which store (a run's lines and mails), else its reader knows."""
    left = days_left(expires, today)
    if left is None or left > WARN_DAYS or left < 0:
        return None
    args = {"store": store, "expires": expires, "days": left, "screen": RMS_API_SCREEN}
    if left == 0 and named:
        key = N_(
            "the RMS licenseKey of store {store} expires today ({expires}): issue a new one in "
            "{screen} and run `crossship config store set {store} --license-expires YYYY-MM-DD`"
        )
    elif left == 0:
        key = N_(
            "the RMS licenseKey expires today ({expires}): issue a new one in {screen} and run "
            "`crossship config store set {store} --license-expires YYYY-MM-DD`"
        )
    elif named:
        key = N_(
            "the RMS licenseKey of store {store} expires in {days} days ({expires}): issue a new "
            "one in {screen} and run `crossship config store set {store} --license-expires "
            "YYYY-MM-DD`"
        )
    else:
        key = N_(
            "the RMS licenseKey expires in {days} days ({expires}): issue a new one in {screen} "
            "and run `crossship config store set {store} --license-expires YYYY-MM-DD`"
        )
    return Message(key, args)


def expired(
    store: str, expires: str | None, today: dt.date, *, named: bool = True
) -> Message | None:
    """Why no RMS call may be made, once the recorded end has passed; else None."""
    left = days_left(expires, today)
    if left is None or left >= 0:
        return None
    args = {"store": store, "expires": expires, "screen": RMS_API_SCREEN}
    if not named:
        return Message(
            "the RMS licenseKey expired on {expires}: no call is made to RMS; issue a new key in "
            "{screen}, set it as the store's license_key and run "
            "`crossship config store set {store} --license-expires YYYY-MM-DD`",
            args,
        )
    return Message(
        "the RMS licenseKey of store {store} expired on {expires}: no call was made to RMS; "
        "issue a new key in {screen}, set it as the store's license_key and run "
        "`crossship config store set {store} --license-expires YYYY-MM-DD`",
        args,
    )
