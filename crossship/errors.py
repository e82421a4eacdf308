"""One error hierarchy for crossship.

Every error the core raises is a ``CrossshipError``; it carries the process exit code so the CLI
translates it exactly once into ``Error: ...`` on stderr. Nothing below the CLI prints or exits.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # failed, or done but something failed (a refused order, a failed mail)
    USAGE = 2
    LOCKED = 75  # EX_TEMPFAIL: another run holds the lock


class CrossshipError(Exception):
    """Base class: a message that says what to fix, and an exit code."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, *, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        # extra lines (for example every bad row of an import), printed after the message
        self.details = list(details or [])


class UsageError(CrossshipError):
    """Bad input from the command line: an unknown name, a malformed value."""

    exit_code = ExitCode.USAGE


class NotFound(UsageError):
    """A named thing (store, phase, carrier, order, batch) does not exist."""


class ConfigError(CrossshipError):
    """The stored configuration or the credentials cannot be used as they are."""


class ImportFileError(CrossshipError):
    """An order import file was refused; ``details`` lists every bad row."""


class LockHeld(CrossshipError):
    """Another crossship run holds the lock."""

    exit_code = ExitCode.LOCKED


class StoreError(CrossshipError):
    """The SQLite database cannot be opened or is not a crossship database."""


class OrdersChanged(CrossshipError):
    """Orders changed (by an import or by hand) between a run's selection and its batch."""

    def __init__(self, order_nos: list[str]):
        shown = ", ".join(order_nos[:5]) + (" ..." if len(order_nos) > 5 else "")
        super().__init__(f"{len(order_nos)} orders changed while the feed was prepared: {shown}")
        self.order_nos = order_nos


class MailError(CrossshipError):
    """A result mail could not be sent (statuses are never undone for it)."""


class ReportParseError(CrossshipError):
    """An Amazon processing report could not be parsed."""


class AmazonError(CrossshipError):
    """An Amazon call failed.

    ``outcome`` says what is known about the effect of the call at Amazon:
    - ``"not_sent"``: the request definitely did not take effect (connection refused, 429 after
      retries, token failure): safe to retry later.
    - ``"rejected"``: Amazon answered with a definite refusal (4xx other than 429).
    - ``"unknown"``: the request may have taken effect (timeout after sending, connection reset,
      5xx): never repeat blindly.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome: str = "unknown",
        status: int | None = None,
        code: str | None = None,
        operation: str | None = None,
    ):
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.code = code
        self.operation = operation


class YahooError(CrossshipError):
    """A Yahoo!ショッピング call failed.

    ``outcome`` as for ``AmazonError`` (``not_sent``, ``rejected``, ``unknown``); ``halt`` means
    this store's run must stop now (authentication failure, an expired key or authorization, a
    ``px-…`` platform error): the order in flight and the rest stay ``pending``.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome: str = "unknown",
        halt: bool = False,
        status: int | None = None,
        code: str | None = None,
        operation: str | None = None,
    ):
        super().__init__(message)
        self.outcome = outcome
        self.halt = halt
        self.status = status
        self.code = code
        self.operation = operation
