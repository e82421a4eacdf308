"""When 完了 is due, and which of Yahoo's answers mean it is done already."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crossship.errors import UsageError
from crossship.yahoo.completion import already_completed, due_time, parse_complete_after


@pytest.mark.parametrize(
    ("given", "stored"), [(None, "0"), ("0", "0"), ("07", "7"), (3, "3"), ("NEVER", "never")]
)
def test_complete_after_values(given, stored) -> None:
    assert parse_complete_after(given) == stored


@pytest.mark.parametrize("given", ["-1", "61", "soon", "1.5", ""])
def test_complete_after_refuses_the_rest(given) -> None:
    with pytest.raises(UsageError, match="never"):
        parse_complete_after(given)


def test_due_is_midnight_japan_time_n_days_after_the_ship_date() -> None:
    assert due_time("2026-11-27", 3) == datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
    assert due_time("2026-12-31", 1) == datetime(2026, 12, 31, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "done"),
    [
        ("既に完了済みの注文です。", True),
        ("すでに完了しています", True),
        ("The order has already been completed.", True),
        ("注文IDが存在しません。", False),
        ("完了に変更できません", False),
        ("", False),
    ],
)
def test_already_completed(text: str, done: bool) -> None:
    assert already_completed(text) is done
