"""Maintain crossship's message catalogs with Babel.

    python tools/catalogs.py update    # extract the messages, update ja/en .po (new ones empty)
    python tools/catalogs.py compile   # .po -> .mo (the compiled catalogs ship in the wheel)
    python tools/catalogs.py check     # what is stale or untranslated; exit 1 if anything
    python tools/catalogs.py translate FILE.json   # set Japanese texts: {"msgid": "日本語", ...}
                                                   # ("context\\u0004msgid" for a pgettext one)

A message is marked in Python with ``_()``, ``ngettext()``, ``N_()`` or ``Message()`` (from
crossship.i18n) and in the mail templates with ``{{ _("...") }}`` / ``{% trans %}``. Its English
text is its id; the Japanese goes into crossship/locale/ja/LC_MESSAGES/crossship.po.
"""

from __future__ import annotations

import ast
import inspect
import io
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_python
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "crossship"
LOCALES = PACKAGE / "locale"
DOMAIN = "crossship"
LANGUAGES = ("en", "ja")

# click's help texts are plain strings (help=, docstrings), shown translated by crossship.cli.help


def extract_click(fileobj, keywords, comment_tags, options) -> Iterator[tuple]:  # noqa: ANN001
    """Babel extraction for the command modules: the ``_()`` calls, plus every ``help=`` of a
    click option, argument or command and every command's docstring (its help)."""
    yield from extract_python(fileobj, keywords, comment_tags, options)
    fileobj.seek(0)
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("help", "short_help", "epilog") and isinstance(
                    keyword.value, ast.Constant
                ):
                    if isinstance(keyword.value.value, str) and keyword.value.value:
                        yield node.lineno, None, inspect.cleandoc(keyword.value.value), []
        elif isinstance(node, ast.FunctionDef) and any(
            isinstance(d, ast.Call)
            and isinstance(d.func, ast.Attribute)
            and d.func.attr in ("command", "group")
            for d in node.decorator_list
        ):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield node.lineno, None, doc.partition("\f")[0], []


METHODS = [
    ("cli/**.py", extract_click),
    ("**.py", "python"),
    ("templates/mail_*.j2", "jinja2.ext:babel_extract"),
]
OPTIONS = {
    "templates/mail_*.j2": {
        "extensions": "jinja2.ext.i18n",
        "trim_blocks": "True",
        "lstrip_blocks": "True",
    }
}
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "NP_": (1, 2), "Message": (1,)}


def template() -> Catalog:
    """Every message marked in the package, as Babel extracts it."""
    catalog = Catalog(project="crossship", domain=DOMAIN)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(PACKAGE), METHODS, OPTIONS, KEYWORDS, strip_comment_tags=True
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(language: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, domain=DOMAIN, project="crossship")
    with path.open("rb") as f:
        return read_po(f, locale=language, domain=DOMAIN)


def write(language: str, catalog: Catalog) -> None:
    path = po_path(language)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    # no file:line locations: moving code must not make the catalogs stale
    write_po(buffer, catalog, width=100, no_location=True, omit_header=False, sort_output=True)
    path.write_bytes(buffer.getvalue())


def update() -> None:
    source = template()
    for language in LANGUAGES:
        catalog = read(language)
        catalog.update(source, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        write(language, catalog)


def compile_all() -> None:
    for language in LANGUAGES:
        buffer = io.BytesIO()
        write_mo(buffer, read(language), use_fuzzy=False)
        po_path(language).with_suffix(".mo").write_bytes(buffer.getvalue())


def _ids(catalog: Catalog) -> set:
    return {m.id for m in catalog if m.id}


def _mo_entries(data: bytes) -> dict:
    def key(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {(m.context, key(m.id)): key(m.string) for m in read_mo(io.BytesIO(data)) if m.id}


def check() -> list[str]:
    """Why the shipped catalogs do not match the code (empty when they do)."""
    problems: list[str] = []
    source = _ids(template())
    for language in LANGUAGES:
        catalog = read(language)
        ids = _ids(catalog)
        for missing in sorted(map(str, source - ids)):
            problems.append(f"{language}: not in the catalog (run update): {missing!r}")
        for stale in sorted(map(str, ids - source)):
            problems.append(f"{language}: no longer in the code (run update): {stale!r}")
        if language == "ja":
            for message in catalog:
                if not message.id:
                    continue
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                if message.fuzzy or not all(strings):
                    problems.append(f"ja: no Japanese translation for {message.id!r}")
        mo = po_path(language).with_suffix(".mo")
        compiled = io.BytesIO()
        write_mo(compiled, catalog, use_fuzzy=False)
        if not mo.exists() or _mo_entries(mo.read_bytes()) != _mo_entries(compiled.getvalue()):
            problems.append(f"{language}: {mo.relative_to(ROOT)} is stale (run compile)")
    return problems


def translate(path: Path) -> list[str]:
    """Set Japanese translations from a JSON object (msgid → text, or a list for plurals)."""
    import json

    texts = json.loads(path.read_text(encoding="utf-8"))
    catalog = read("ja")
    unknown = []
    for msgid, text in texts.items():
        # "context\x04msgid" (gettext's separator) for a message with a context (pgettext)
        context, _sep, bare = msgid.rpartition("\x04")
        message = catalog.get(bare, context=context or None)
        if message is None:
            unknown.append(msgid)
            continue
        message.string = tuple(text) if isinstance(text, list) else text
        message.flags.discard("fuzzy")
    write("ja", catalog)
    return unknown


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "update":
        update()
    elif command == "translate":
        for msgid in translate(Path(argv[2])):
            print(f"not in the catalog: {msgid!r}")
    elif command == "compile":
        compile_all()
    elif command == "check":
        problems = check()
        for line in problems:
            print(line)
        return 1 if problems else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
