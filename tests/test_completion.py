"""Shell completion (SPEC §15, README "Shell completion"): click's own scripts for bash, zsh and
fish, under the variable the README names, completing crossship's real commands."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from crossship.cli import cli

SCRIPTS = {
    "bash": "_crossship_completion",
    "zsh": "#compdef crossship",
    "fish": "complete --no-files --command crossship",
}


def test_the_installed_command_prints_the_bash_script() -> None:
    env = {**os.environ, "_CROSSSHIP_COMPLETE": "bash_source"}
    done = subprocess.run(
        [sys.executable, "-m", "crossship"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "_crossship_completion" in done.stdout
    assert "complete -o nosort -F _crossship_completion crossship" in done.stdout


@pytest.mark.parametrize("shell", SCRIPTS)
def test_each_shell_gets_its_script(shell: str) -> None:
    result = CliRunner().invoke(
        cli, [], env={"_CROSSSHIP_COMPLETE": f"{shell}_source"}, prog_name="crossship"
    )
    assert result.exit_code == 0
    assert SCRIPTS[shell] in result.stdout


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("crossship hi", 1, ["history"]),
        ("crossship history pr", 2, ["prune"]),
        ("crossship ch", 1, ["check"]),
        ("crossship check --format ", 3, ["text", "json"]),
    ],
)
def test_bash_completes_commands_and_choices(words: str, cword: int, expected: list[str]) -> None:
    result = CliRunner().invoke(
        cli,
        [],
        env={"_CROSSSHIP_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
        prog_name="crossship",
    )
    assert result.exit_code == 0
    assert [line.split(",", 1)[1] for line in result.stdout.splitlines()] == expected
