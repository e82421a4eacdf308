"""API status (出荷通知APIステータス): keys, Japanese labels, parsing of either."""

from __future__ import annotations

from enum import StrEnum

from crossship.errors import UsageError
from crossship.i18n import _


class Status(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    NOTIFY_FAILED = "notify_failed"
    RESULT_FAILED = "result_failed"
    ERROR = "error"

    @property
    def label(self) -> str:
        return LABELS[self]

    def __str__(self) -> str:
        return self.value


LABELS: dict[Status, str] = {
    Status.PENDING: "未連携",
    Status.IN_PROGRESS: "連携中",
    Status.SUCCESS: "正常",
    Status.NOTIFY_FAILED: "通知失敗",
    Status.RESULT_FAILED: "通知結果取得失敗",
    Status.ERROR: "エラー",
}

_BY_TEXT = {s.value: s for s in Status} | {label: s for s, label in LABELS.items()}


def label_of(key: str | None) -> str:
    """The Japanese label of a status key (empty for none)."""
    if not key:
        return ""
    return LABELS[Status(key)]


def parse_status(text: str, *, allowed: tuple[Status, ...] | None = None) -> Status:
    """Accept a key (``pending``) or a Japanese label (``未連携``)."""
    status = _BY_TEXT.get(text.strip()) or _BY_TEXT.get(text.strip().lower())
    choices = allowed or tuple(Status)
    if status is None or status not in choices:
        names = ", ".join(f"{s.value} ({s.label})" for s in choices)
        raise UsageError(
            _("unknown API status {text!r}: use one of {names}").format(text=text, names=names)
        )
    return status
