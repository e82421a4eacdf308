"""No internal names reach a user or a later maintainer (SPEC §15): every command's --help, the
mail templates, the package's sources, the examples and the README name CROSS MALL's help page
sections or screens, never an internal document name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from crossship.cli import cli

ROOT = Path(__file__).resolve().parent.parent
INTERNAL = re.compile(r"seed", re.IGNORECASE)


def command_paths(group: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group under ``group``, found by walking click's own tree, so a command
    added later is covered without touching this test."""
    yield path
    if isinstance(group, click.Group):
        for name, sub in sorted(group.commands.items()):
            yield from command_paths(sub, (*path, name))


ALL_COMMANDS = list(command_paths(cli))


def test_the_walk_finds_groups_and_subcommands():
    names = {" ".join(p) for p in ALL_COMMANDS}
    # a sample of the §10 contract: groups and leaves at every depth
    assert {"", "notify", "notify run", "config", "config phase", "config phase add"} <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "crossship")
def test_help_names_no_internal_document(run, path):
    result = run([*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert not INTERNAL.search(result.stdout), result.stdout


def shipped_texts() -> Iterator[Path]:
    yield ROOT / "README.md"
    for base in (ROOT / "crossship", ROOT / "examples"):
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix not in {".pyc", ".db"}:
                yield path


def test_mail_templates_exist_and_name_no_internal_document():
    templates = sorted((ROOT / "crossship" / "templates").glob("mail_*.j2"))
    assert templates, "the mail templates moved: point this test at them"
    for path in templates:
        assert not INTERNAL.search(path.read_text(encoding="utf-8")), path


def test_sources_examples_and_readme_name_no_internal_document():
    found = []
    for path in shipped_texts():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if INTERNAL.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
