"""The command line: a thin click layer over the click-free core.

Each command parses its options, calls one core function and renders the result. Errors from the
core (``CrossshipError``) are translated here, once, into ``Error: ...`` and their exit code.
"""

from __future__ import annotations

import errno
import io
import os
import sys

# importing a command module registers its commands on `cli`
from crossship.cli import check as _check  # noqa: F401,E402
from crossship.cli import config as _config  # noqa: F401,E402
from crossship.cli import operator as _operator  # noqa: F401,E402
from crossship.cli import orders as _orders  # noqa: F401,E402
from crossship.cli import runs as _runs  # noqa: F401,E402
from crossship.cli import sandbox as _sandbox  # noqa: F401,E402
from crossship.cli.app import cli
from crossship.i18n import _, resolve, set_language

__all__ = ["cli", "main"]


def main() -> None:
    _usable_streams()
    # help and usage errors are shown while the options are parsed: the language comes first
    set_language(resolve(_lang_option(sys.argv[1:])))
    cli.main(prog_name="crossship")


def _usable_streams() -> None:
    """Streams a hostile environment cannot break into a traceback: a closed stdin reads as
    empty, a closed stdout or stderr is an error on the first write (one line, exit 1), and a
    terminal whose locale cannot show a character gets a replacement instead of a crash."""
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = _Closed()
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        encoding = (getattr(stream, "encoding", None) or "").replace("_", "-").lower()
        if reconfigure is not None and encoding not in ("utf-8", "utf8"):
            reconfigure(errors="replace")


class _Closed(io.TextIOBase):
    """stdout when the process was started with it closed (``>&-``)."""

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, _("stdout is closed"))


def _lang_option(args: list[str]) -> str | None:
    """The value of a global ``--lang`` given before the command, if any."""
    for index, arg in enumerate(args):
        if arg == "--lang" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
        if not arg.startswith("-"):
            return None  # the command's name: what follows is its own
    return None


if __name__ == "__main__":  # pragma: no cover
    main()
