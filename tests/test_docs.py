"""Every command has help text and is shown in README.md (sqlite-utils' tests/test_docs.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from crossship.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def command_paths(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple]:
    """Every command and group under ``cli``, as paths like ("config", "store", "add")."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from command_paths(command, path)


PATHS = list(command_paths())


def test_the_tree_is_walked():
    names = {" ".join(p) for p, _ in PATHS}
    assert {"init", "config store add", "orders import", "auto status"} <= names


@pytest.mark.parametrize("path, command", PATHS, ids=[" ".join(p) for p, _ in PATHS])
def test_every_command_has_help(path, command):
    assert command.help and command.help.strip(), f"crossship {' '.join(path)} has no help"
    assert command.get_short_help_str().strip()


@pytest.mark.parametrize("path, command", PATHS, ids=[" ".join(p) for p, _ in PATHS])
def test_every_command_is_in_the_readme(path, command):
    text = README.read_text(encoding="utf-8")
    words = r"\s+".join(re.escape(w) for w in ("crossship", *path))
    # the path must end there: `crossship orders` must not be satisfied by `crossship ordersx`
    assert re.search(words + r"(?![\w-])", text), (
        f"README.md never shows `crossship {' '.join(path)}`"
    )
