"""Progress on long work (SPEC §15): click's progressbar on stderr when it is a terminal (a real
pseudo-terminal here) and -q is not given; not a byte of it otherwise. The core reports to a
sink: stores done over several stores, requests sent for one store, bytes read by an import."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import notify_helpers
import pytest
from conftest import ORDERS_CSV
from notify_helpers import STORE, Env, order, report_en

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock

ROW = (
    "{n},amazon-main,503-{n:07d}-{n:07d},出荷済み,通常,0,,,2026-11-24,ヤマト運輸,"
    "4012{n:08d},3820{n:010d},MUG,1"
)
DONE = "Imported 20000 orders (20000 new, 0 updated), 20000 item lines (utf-8)."


def big_csv(path: Path, orders: int = 20_000) -> Path:
    header = ORDERS_CSV.read_text(encoding="utf-8").splitlines()[0]
    rows = "\n".join(ROW.format(n=n) for n in range(100_000, 100_000 + orders))
    path.write_text(f"{header}\n{rows}\n", encoding="utf-8")
    return path


def on_pty(*args: str) -> tuple[int, bytes, bytes]:
    """``crossship ARGS`` with stderr on a pseudo-terminal: (exit code, stdout, the terminal)."""
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "crossship", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = child.stdout.read() if child.stdout else b""
    os.close(master)
    return child.wait(timeout=120), out, seen


# ---------------------------------------------------------------------------------- import


def test_an_import_on_a_terminal_draws_a_bar(configured: Path, tmp_path: Path) -> None:
    csv = big_csv(tmp_path / "orders.csv")

    code, out, tty = on_pty("orders", "import", str(csv))

    assert code == 0, tty
    assert out == b""
    text = tty.decode()
    assert "importing orders.csv  [" in text
    assert "100%" in text
    assert text.count("\r") > 3  # redrawn as it goes
    assert text.rstrip().endswith(DONE)


def test_the_import_bar_speaks_the_readers_language(configured: Path, tmp_path: Path) -> None:
    csv = big_csv(tmp_path / "orders.csv", orders=5_000)

    code, _out, tty = on_pty("--lang", "ja", "orders", "import", str(csv))

    assert code == 0, tty
    text = tty.decode()
    assert "orders.csv を取り込み中  [" in text
    assert "importing" not in text


def test_an_import_with_q_on_a_terminal_draws_nothing(configured: Path, tmp_path: Path) -> None:
    csv = big_csv(tmp_path / "orders.csv")

    code, out, tty = on_pty("-q", "orders", "import", str(csv))

    assert (code, out, tty) == (0, b"", b"")


def test_an_import_off_a_terminal_is_unchanged(configured: Path, tmp_path: Path, run) -> None:
    csv = big_csv(tmp_path / "orders.csv")

    result = run(["orders", "import", str(csv)])

    assert result.exit_code == 0
    assert result.stderr == DONE + "\n"
    assert result.stdout == ""


def test_a_refused_import_on_a_terminal_ends_the_bar_before_the_error(
    configured: Path, tmp_path: Path
) -> None:
    csv = big_csv(tmp_path / "orders.csv", orders=3000)
    csv.write_text(csv.read_text(encoding="utf-8") + "9,nowhere,,出荷済み,,,,,,,,,,\n", "utf-8")

    code, _out, tty = on_pty("orders", "import", str(csv))

    assert code == 1
    lines = tty.decode().split("\r\n")
    error = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    assert "importing orders.csv" in lines[error - 1]  # the bar's line, ended
    assert "unknown store 'nowhere'" in tty.decode()


# ---------------------------------------------------------------------------------- runs


def start_second_store(run) -> None:
    for args in (
        ["config", "store", "add", "amazon-sub", "--mall", "amazon"],
        ["config", "phase", "add", "amazon-sub", "出荷済み", "--move-to", "完了"],
        ["auto", "start", "amazon-sub"],
    ):
        result = run(args)
        assert result.exit_code == 0, result.stderr


def test_a_run_over_several_stores_on_a_terminal_draws_a_bar(imported: Path, run) -> None:
    start_second_store(run)

    code, out, tty = on_pty("notify", "run", "--dry-run")

    assert code == 0, tty
    assert out.startswith(b"TemplateType=OrderFulfillment")  # the feeds on stdout, as ever
    text = tty.decode()
    assert "notify run  [" in text and "100%" in text


def test_a_run_off_a_terminal_is_unchanged(imported: Path, run) -> None:
    start_second_store(run)

    result = run(["notify", "run", "--dry-run"])

    assert result.exit_code == 0
    assert "\r" not in result.stderr and "notify run  [" not in result.stderr
    assert result.stderr.startswith("amazon-main: would send")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def add(self, total: int) -> None:
        self.events.append(("add", total))

    def advance(self, done: int = 1) -> None:
        self.events.append(("advance", done))


def test_the_core_counts_stores_when_there_are_several(env: Env) -> None:
    env.add_store("amazon-sub")
    env.add_store("amazon-third")
    recorder = Recorder()

    result = env.notify(progress=recorder)  # nothing eligible: each store still counts

    assert len(result.runs) == 3
    assert recorder.events == [("add", 3), ("advance", 1), ("advance", 1), ("advance", 1)]


def test_the_core_counts_requests_for_one_store(env: Env) -> None:
    env.add(order(1), order(2))
    env.amazon.send_ok()
    recorder = Recorder()

    env.notify(progress=recorder)

    assert recorder.events == [("add", 1), ("advance", 1)]  # one feed for both orders


def test_results_fetch_counts_stores(env: Env) -> None:
    env.add_store("amazon-sub")
    env.add(order(1))
    env.amazon.send_ok()
    env.notify(store=STORE)
    env.clock.advance(minutes=15)
    env.amazon.token()
    env.amazon.result(report_en(1, 1))
    recorder = Recorder()

    env.fetch(progress=recorder)

    assert recorder.events == [("add", 2), ("advance", 1), ("advance", 1)]


@pytest.mark.parametrize("quiet", [True, False])
def test_the_cli_hands_the_core_no_bar_off_a_terminal(monkeypatch, quiet: bool) -> None:
    from crossship.cli.app import App
    from crossship.cli.progress import progress
    from crossship.progress import NO_PROGRESS

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe or a file: no terminal
    app = App(db_path=Path("unused.db"), quiet=quiet)
    with progress(app, "x") as bar:
        assert bar is NO_PROGRESS
    assert sys.stderr.getvalue() == ""
