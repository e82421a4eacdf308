"""Shared fixtures: every test gets its own database and credentials file, never a real one.

- ``run(args, input=None, catch=True)``: invoke the CLI in-process; returns click's Result
  (``exit_code``, ``stdout``, ``stderr`` kept apart) and asserts nothing itself.
- ``db_path``: the test's database path (CROSSSHIP_DB).
- ``credentials``: the test's credentials path (CROSSSHIP_CREDENTIALS), not created.
- ``initialised``: ``crossship init`` run on the test's database (only init creates one).
- ``configured``: the configuration of examples/setup.sh, applied by running that script's
  ``crossship`` lines through ``run`` (phases, carriers, amazon-main and rakuten-shop, target
  phase 出荷済み → 完了, mail to 127.0.0.1:1025, amazon-main started). Returns the db path.
- ``imported``: ``configured`` plus examples/orders.csv imported. Returns the db path.
- ``store``: a ``Store`` opened on the test's database (closed afterwards).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from crossship import i18n, malls
from crossship.cli import cli
from crossship.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SETUP_SH = EXAMPLES / "setup.sh"
ORDERS_CSV = EXAMPLES / "orders.csv"

RunCli = Callable[..., Result]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees a real database, credentials file or CROSSSHIP_* variable."""
    for name in list(os.environ):
        if name.startswith("CROSSSHIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CROSSSHIP_DB", str(tmp_path / "crossship.db"))
    monkeypatch.setenv("CROSSSHIP_CREDENTIALS", str(tmp_path / "credentials.toml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    # messages in English whatever the machine's locale; the language tests choose their own
    monkeypatch.setenv("CROSSSHIP_LANG", "en")
    monkeypatch.delenv("LANGUAGE", raising=False)
    i18n.set_language("en")
    return tmp_path


@pytest.fixture(autouse=True)
def registered_malls() -> Iterator[None]:
    """A mall a test registers (crossship.malls.register) is gone after it."""
    yield
    malls.clear_registered()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "crossship.db"


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    return tmp_path / "credentials.toml"


@pytest.fixture
def run() -> RunCli:
    """Run ``crossship ARGS`` in-process; stdout and stderr stay apart (click >= 8.2)."""

    def invoke(
        args: Sequence[str] | str,
        input: str | bytes | None = None,
        catch: bool = True,
        obj: dict | None = None,
    ) -> Result:
        if isinstance(args, str):
            args = shlex.split(args)
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=catch, obj=obj)

    return invoke


def setup_commands(path: Path = SETUP_SH) -> list[list[str]]:
    """The ``crossship ...`` command lines of a shell script, as argument lists."""
    commands = []
    joined = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "crossship":
            commands.append(words[1:])
    return commands


@pytest.fixture
def initialised(run: RunCli, db_path: Path) -> Path:
    """`crossship init` on the test's database: no other command creates one."""
    result = run(["init"], catch=False)
    assert result.exit_code == 0, result.stderr
    return db_path


@pytest.fixture
def configured(run: RunCli, db_path: Path) -> Path:
    """The database configured as examples/setup.sh configures it."""
    for args in setup_commands():
        result = run(args, catch=False)
        assert result.exit_code == 0, (args, result.stderr)
    return db_path


@pytest.fixture
def imported(configured: Path, run: RunCli) -> Path:
    """``configured`` with examples/orders.csv imported."""
    result = run(["orders", "import", str(ORDERS_CSV)], catch=False)
    assert result.exit_code == 0, result.stderr
    return configured


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as opened:
        yield opened
