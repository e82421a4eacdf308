"""The licenseKey's 90 days: warnings from 14 days before its end, no call after it."""

from __future__ import annotations

import datetime as dt

from crossship.rakuten.codes import RMS_API_SCREEN

WARN_DAYS = 14


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
