"""How long work tells how far it is (SPEC §15): a sink the core reports to, the CLI draws.

The core never draws: it says how much work there is (``add``, which may be called again as more
is found, by several threads) and how much is done (``advance``). The CLI hands in a bar on a
terminal (click's progressbar on stderr, without -q) and ``NO_PROGRESS`` everywhere else, so
output that is not a terminal never changes.

Who reports: `orders import` (bytes of the file checked and written), `notify run` and `results
fetch` over several stores (stores done), and a one-store `notify run` (requests sent: one feed
for Amazon, one order per request for a synchronous mall such as Yahoo!ショッピング).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def add(self, total: int) -> None:
        """There are ``total`` more units of work."""

    def advance(self, done: int = 1) -> None:
        """``done`` more units are finished."""


class _NoProgress:
    def add(self, total: int) -> None:
        pass

    def advance(self, done: int = 1) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()
