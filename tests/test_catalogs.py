"""The message catalogs match the code: every message has its Japanese, none is stale, and the
compiled catalogs that ship in the package are those of the .po files (tools/catalogs.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _catalogs():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("catalogs", ROOT / "tools" / "catalogs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_message_has_its_japanese_and_no_catalog_is_stale() -> None:
    problems = _catalogs().check()
    assert problems == [], "run tools/catalogs.py update / translate / compile:\n" + "\n".join(
        problems[:40]
    )


def test_the_check_finds_a_missing_translation(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    catalogs = _catalogs()
    source = catalogs.template()
    source.add("A message nobody translated {x}")
    monkeypatch.setattr(catalogs, "template", lambda: source)
    problems = catalogs.check()
    assert any("A message nobody translated" in p for p in problems)


def test_the_compiled_japanese_catalog_is_found_where_crossship_runs_from() -> None:
    from crossship import i18n

    assert i18n.translations("ja").gettext("Usage:") == "使い方:"
    assert i18n.translations("en").gettext("Usage:") == "Usage:"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"locale/*/LC_MESSAGES/*.mo"' in pyproject  # shipped in the wheel


def test_every_installed_mall_s_words_have_their_japanese() -> None:
    """A mall's word for one request (Mall.unit) reaches messages as an argument, so the
    extraction cannot see where it is used: each installed mall's must be in the catalog."""
    from crossship import malls
    from crossship.i18n import Message

    for mall in malls.registry().values():
        japanese = Message(mall.unit).render("ja")
        assert japanese != mall.unit, f"{mall.key}: no Japanese for {mall.unit!r}"
