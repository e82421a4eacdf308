"""Time: one clock for the whole run, UTC in the database, the machine's zone on output."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from crossship.errors import UsageError
from crossship.i18n import N_, _

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db(moment: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order in SQL."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text)


def local_iso(text: str | None) -> str:
    """A stored UTC time as ISO 8601 in the machine's time zone, with its offset."""
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone().isoformat(timespec="seconds")


_RELATIVE = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, *, now: datetime, option: str = "--since") -> datetime:
    """A date (2026-11-27), an ISO time (2026-11-27T09:00+09:00) or a relative age (2h, 7d)."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        try:
            return now - timedelta(**{_UNITS[unit]: amount})
        except (OverflowError, ValueError):
            raise UsageError(
                _(
                    "{option}: {text!r} reaches before the year 1: give a shorter age or a date"
                ).format(option=option, text=text)
            ) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            _(
                "{option}: {text!r} is not a time: use a date (2026-11-27), an ISO time "
                "(2026-11-27T09:00) or an age like 30m, 2h, 7d"
            ).format(option=option, text=text)
        ) from None
    if moment.tzinfo is None:  # a bare date or time means the machine's local time
        moment = moment.astimezone()
    return moment


def parse_date(text: str, *, what: str = N_("ship date")) -> str:
    """A calendar date written YYYY-MM-DD, returned unchanged."""
    text = text.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise UsageError(
            _("{what} {text!r} is not a date: write it as YYYY-MM-DD").format(
                what=_(what), text=text
            )
        )
    try:
        date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            _("{what} {text!r} is not a real date: check the month and day").format(
                what=_(what), text=text
            )
        ) from None
    return text
