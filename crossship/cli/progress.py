"""Progress bars for long work: click's own progressbar on stderr, on a terminal, without -q."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from crossship.cli.app import App
from crossship.progress import NO_PROGRESS, Progress


class TerminalProgress:
    """A ``Progress`` drawn by click.progressbar; the bar appears with the first news of work,
    its length grows when more work is found, and several threads may report at once."""

    def __init__(self, label: str):
        self.label = label
        self._bar: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        if self._bar is None:
            self._bar = click.progressbar(length=0, label=self.label, file=sys.stderr, width=30)
            self._bar.__enter__()
        return self._bar

    def add(self, total: int) -> None:
        if total <= 0:
            return
        with self._lock:
            bar = self._open()
            bar.length += total
            bar.finished = bar.pos >= bar.length
            bar.render_progress()

    def advance(self, done: int = 1) -> None:
        if done <= 0:
            return
        with self._lock:
            self._open().update(done)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.__exit__(None, None, None)
                self._bar = None


def on_terminal(app: App) -> bool:
    """Bars only for a person watching: stderr is a terminal and -q is not given."""
    try:
        return not app.quiet and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stderr
        return False


@contextmanager
def progress(app: App, label: str) -> Iterator[Progress]:
    """A bar labelled ``label`` while the block runs, or NO_PROGRESS when nobody watches."""
    if not on_terminal(app):
        yield NO_PROGRESS
        return
    bar = TerminalProgress(label)
    try:
        yield bar
    finally:
        bar.close()
