"""One error hierarchy for crossship.

Every error the core raises is a ``CrossshipError``; it carries the process exit code so the CLI
translates it exactly once into ``Error: ...`` on stderr. Nothing below the CLI prints or exits.
"""

from __future__ import annotations

from enum import IntEnum

from crossship.i18n import Message, _


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # failed, or done but something failed (a refused order, a failed mail)
    USAGE = 2
    LOCKED = 75  # EX_TEMPFAIL: another run holds the lock


class CrossshipError(Exception):
    """Base class: a message that says what to fix, and an exit code."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str | Message, *, details: list[str] | None = None):
        text = message.render() if isinstance(message, Message) else message
        super().__init__(text)
        # ``message``: the text in the command line's language; ``kept``: the message as given, a
        # Message keeping its key (for a mail in its own language, a history row)
        self.message = text
        self.kept: str | Message = message
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
        super().__init__(
            _("{count} orders changed while the feed was prepared: {orders}").format(
                count=len(order_nos), orders=shown
            )
        )
        self.order_nos = order_nos


class MailError(CrossshipError):
    """A result mail could not be sent (statuses are never undone for it)."""


class ReportParseError(CrossshipError):
    """An Amazon processing report could not be parsed."""


class MallError(CrossshipError):
    """A call to a mall failed.

    ``outcome`` says what is known about the call's effect at the mall:
    - ``"not_sent"``: the request definitely did not take effect (connection refused, 429 after
      retries, token failure): safe to retry later.
    - ``"rejected"``: the mall answered with a definite refusal of the whole request.
    - ``"unknown"``: the request may have taken effect (timeout after sending, connection reset,
      5xx): never repeat blindly, reconcile.
    ``halt``: stop this store's run now (authentication failure, expired key, a platform error):
    what is not sent stays 未連携 and the run exits 1.
    """

    def __init__(
        self,
        message: str | Message,
        *,
        outcome: str = "unknown",
        halt: bool = False,
        status: int | None = None,
        code: str | None = None,
        operation: str | None = None,
    ):
        if outcome not in MALL_OUTCOMES:
            raise ValueError(f"MallError outcome {outcome!r}: one of {', '.join(MALL_OUTCOMES)}")
        super().__init__(message)
        self.outcome = outcome
        self.halt = halt
        self.status = status
        self.code = code
        self.operation = operation


MALL_OUTCOMES = ("not_sent", "rejected", "unknown")


class AmazonError(MallError):
    """An Amazon call failed (see ``MallError`` for ``outcome``)."""


class YahooError(MallError):
    """A Yahoo!ショッピング call failed (see ``MallError``): ``halt`` for an authentication failure,
    an expired key or authorization, or a ``px-…`` platform error."""
