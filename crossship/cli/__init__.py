"""The command line: a thin click layer over the click-free core.

Each command parses its options, calls one core function and renders the result. Errors from the
core (``CrossshipError``) are translated here, once, into ``Error: ...`` and their exit code.
"""

from __future__ import annotations

# importing a command module registers its commands on `cli`
from crossship.cli import check as _check  # noqa: F401,E402
from crossship.cli import config as _config  # noqa: F401,E402
from crossship.cli import operator as _operator  # noqa: F401,E402
from crossship.cli import orders as _orders  # noqa: F401,E402
from crossship.cli import runs as _runs  # noqa: F401,E402
from crossship.cli import sandbox as _sandbox  # noqa: F401,E402
from crossship.cli.app import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli.main(prog_name="crossship")


if __name__ == "__main__":  # pragma: no cover
    main()
