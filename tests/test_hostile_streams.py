"""A hostile terminal (issue 10, minor): a locale that cannot show Japanese, a closed or full
stdout, a closed stdin. Listings never crash; machine formats stay UTF-8; a write that cannot
happen is one line and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CROSSSHIP = [sys.executable, "-m", "crossship"]


def shell(command: str, **env: str) -> subprocess.CompletedProcess:
    words = " ".join(CROSSSHIP)
    return subprocess.run(
        ["bash", "-c", command.replace("crossship", words, 1)],
        capture_output=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_locale_without_japanese_replaces_on_the_terminal_and_keeps_machine_formats_utf8(
    imported: Path, encoding: str
) -> None:
    table = shell("crossship orders list", PYTHONIOENCODING=encoding)
    assert table.returncode == 0, table.stderr.decode()
    assert b"Traceback" not in table.stderr
    assert b"amazon-main" in table.stdout and b"?" in table.stdout

    for fmt in ("csv", "jsonl", "json"):
        data = shell(f"crossship orders list --format {fmt}", PYTHONIOENCODING=encoding)
        assert data.returncode == 0, data.stderr.decode()
        assert "出荷済み" in data.stdout.decode("utf-8")
    record = shell("crossship orders show 10001 --format json", PYTHONIOENCODING=encoding)
    assert "出荷済み" in record.stdout.decode("utf-8")


def test_a_message_with_japanese_on_an_ascii_terminal_is_one_line(imported: Path) -> None:
    result = shell("crossship orders move 99999 --to 出荷済み", PYTHONIOENCODING="ascii")
    assert result.returncode in (1, 2)
    assert b"Traceback" not in result.stderr
    assert len(result.stderr.decode("ascii").strip().splitlines()) == 1


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_full_stdout_is_one_line_and_exit_1(imported: Path) -> None:
    result = shell("crossship orders list --format jsonl > /dev/full")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        "Error: cannot write the output: No space left on device"
    ]


def test_a_closed_stdout_is_one_line_and_exit_1(imported: Path) -> None:
    result = shell("crossship config phase list >&-")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        "Error: cannot write the output: stdout is closed"
    ]
    result = shell("crossship --lang ja config phase list >&-")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        "エラー: 出力を書き込めません: 標準出力が閉じられています"
    ]


def test_a_job_with_stdout_closed_still_runs(imported: Path) -> None:
    result = shell("crossship -q results fetch >&-")
    assert result.returncode == 0, result.stderr.decode()


def test_a_closed_stdin_is_an_empty_file(imported: Path) -> None:
    result = shell("crossship orders import - <&-")
    assert result.returncode in (1, 2)
    assert b"Traceback" not in result.stderr
    assert b"empty" in result.stderr
