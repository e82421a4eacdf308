"""The command line: a thin click layer over the click-free core.

Each command parses its options, calls one core function and renders the result. Errors from the
core (``CrossshipError``) are translated here, once, into ``Error: ...`` and their exit code.
"""

from __future__ import annotations

import sys

# importing a command module registers its commands on `cli`
from crossship.cli import check as _check  # noqa: F401,E402
from crossship.cli import config as _config  # noqa: F401,E402
from crossship.cli import operator as _operator  # noqa: F401,E402
from crossship.cli import orders as _orders  # noqa: F401,E402
from crossship.cli import runs as _runs  # noqa: F401,E402
from crossship.cli import sandbox as _sandbox  # noqa: F401,E402
from crossship.cli.app import cli
from crossship.i18n import resolve, set_language

__all__ = ["cli", "main"]


def main() -> None:
    # help and usage errors are shown while the options are parsed: the language comes first
    set_language(resolve(_lang_option(sys.argv[1:])))
    cli.main(prog_name="crossship")


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
