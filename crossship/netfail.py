"""What a failed HTTP call tells about itself, for every mall's client: whether the request can
have reached the mall (a call that may have taken effect is never repeated blindly) and the cause
in a few words (requests' own text repeats the URL, query and signature included)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from http.client import RemoteDisconnected

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from crossship.i18n import N_, Message

# causes that mean the request never left this machine (or never reached the mall)
BEFORE_SENDING = (
    ConnectTimeoutError,  # includes urllib3's NewConnectionError and NameResolutionError
    ConnectionRefusedError,
    socket.gaierror,
    ssl.SSLCertVerificationError,
)

_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (socket.gaierror, N_("the host name could not be resolved")),
    (ConnectionRefusedError, N_("connection refused")),
    (ssl.SSLCertVerificationError, N_("the TLS certificate could not be verified")),
    (ConnectionResetError, N_("connection reset")),
    (RemoteDisconnected, N_("the server closed the connection without answering")),
    (requests.exceptions.ChunkedEncodingError, N_("the answer was cut off")),
    (requests.ConnectTimeout, N_("no connection within the connect timeout")),
    (requests.ReadTimeout, N_("no answer within the read timeout")),
    (requests.exceptions.SSLError, N_("TLS failed")),
)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (args, MaxRetryError.reason, __cause__), not __context__:
    an unrelated earlier error must not pass for a cause."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [a for a in current.args if isinstance(a, BaseException)]
        if isinstance(current, MaxRetryError) and current.reason is not None:
            wrapped.append(current.reason)
        if current.__cause__ is not None:
            wrapped.append(current.__cause__)
        pending.extend(wrapped)


def failed_before_sending(exc: requests.RequestException) -> bool:
    """Whether the request surely did not reach the mall. An unrecognised ConnectionError counts
    as sent: for a call that changes something at the mall that is the safe side."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    return any(isinstance(e, BEFORE_SENDING) for e in causes(exc))


def reason(exc: requests.RequestException) -> Message | str:
    """A short cause in words, in the reader's language."""
    found = list(causes(exc))
    for kind, words in _REASONS:
        if any(isinstance(e, kind) for e in found):
            return Message(words)
    if isinstance(exc, requests.ConnectionError):
        return Message("connection failed")
    return type(exc).__name__
