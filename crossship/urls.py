"""Which URLs crossship may send secrets to, and how to show a URL without its secrets."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from crossship.errors import ConfigError, CrossshipError
from crossship.i18n import _


def display_url(url: str) -> str:
    """The URL without user info and query: presigned URLs carry their signature in the query."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return _("<unparsable URL>")
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else url.split("?")[0]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name could resolve anywhere


def check_url(url: str, what: str, error: type[CrossshipError] = ConfigError) -> str:
    """``url`` (trimmed) if crossship may talk to it: https anywhere, plain http only to loopback.

    ``error`` is the class raised: a usage error for a flag, a configuration error at run time.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError as exc:
        raise error(
            _("{what} {url!r} is not a valid URL ({error})").format(
                what=what, url=display_url(url), error=exc
            )
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise error(
            _("{what} {url!r} is not a URL: write it as https://host[:port][/path]").format(
                what=what, url=display_url(url)
            )
        )
    if scheme == "http" and not is_loopback(host):
        raise error(
            _(
                "{what} {url!r} is refused: use https://; plain http:// is allowed "
                "only to a loopback address (127.0.0.0/8, ::1, localhost)"
            ).format(what=what, url=display_url(url))
        )
    return url
