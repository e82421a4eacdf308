"""Every message of ours a person reads comes from the catalogs (SPEC §15): no error of crossship's
hierarchy, no click usage error, no line said to the user and no note kept on a run is built from
a bare English string. A plain string there would reach a Japanese reader in English.

The check reads the package's source: a message argument must be ``_()``/``ngettext()`` text,
a ``Message``, or something computed (a variable, another call): never a string literal, an
f-string or a literal's ``.format()``. A mall's own words reach these calls as variables (an
answer's text), so they pass untouched. Programmer errors (ValueError, TypeError, ...) are
English on purpose and not looked at.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import click

import crossship
from crossship import errors

PACKAGE = Path(crossship.__file__).parent

# the exceptions whose message a person reads, and where that message is among the arguments
ERRORS = {
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.CrossshipError)
} | {"UsageError", "BadParameter", "ClickException", "FileError", "BadOptionUsage"}
# methods that say something to the user now, or keep it for a mail, the history or a run record
SAID = {"say": 0, "warn": 0, "fail": 0}
KEPT_LISTS = {"notes", "problems", "said", "warnings", "notices"}
# the mall clients' error builders: (op, outcome, message, ...)
CLIENT_ERRORS = {"_error": 2, "_malformed": 2, "_Failure": 1}
WORDS = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}")  # an English phrase, not a code or a name


def _bare(node: ast.expr) -> bool:
    """Whether ``node`` builds English text without the catalogs."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(WORDS.search(node.value))
    if isinstance(node, ast.JoinedStr):
        literal = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
        return bool(WORDS.search(literal))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _bare(node.left) or _bare(node.right)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    ):
        return _bare(node.func.value)
    if isinstance(node, ast.IfExp):
        return _bare(node.body) or _bare(node.orelse)
    return False


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _message_argument(call: ast.Call) -> ast.expr | None:
    name = _name(call.func)
    if name in ERRORS:
        if call.args:
            return call.args[0]
        return next((k.value for k in call.keywords if k.arg == "message"), None)
    if name in SAID and isinstance(call.func, ast.Attribute):
        return call.args[SAID[name]] if len(call.args) > SAID[name] else None
    if name in CLIENT_ERRORS:
        index = CLIENT_ERRORS[name]
        return call.args[index] if len(call.args) > index else None
    if (
        name == "append"
        and isinstance(call.func, ast.Attribute)
        and _name(call.func.value) in KEPT_LISTS
        and call.args
    ):
        return call.args[0]
    # a status change's or an outcome's message, whoever builds it
    return next((k.value for k in call.keywords if k.arg in ("message", "note")), None)


def bare_messages() -> Iterator[str]:
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                argument = _message_argument(node)
                if argument is not None and _bare(argument):
                    where = path.relative_to(PACKAGE.parent)
                    yield f"{where}:{node.lineno}: {ast.unparse(argument)[:80]}"


def test_no_message_of_ours_is_a_bare_english_string() -> None:
    found = list(bare_messages())
    assert not found, "wrap these in _() or Message():\n" + "\n".join(found)


def test_the_check_finds_a_bare_message() -> None:
    """The scan itself: each kind of bare message is caught, the translated forms are not."""
    source = """
raise ConfigError(f"store {name} is not known")
raise click.UsageError("give a store name")
app.say("Nothing to do here".format())
run.notes.append("the mall said " + text)
raise self._error(op, "not_sent", f"could not reach {host}")
changes.append(StatusChange(order, Status.ERROR, message=f"order {no} is not known"))
raise ConfigError(_("store {name} is not known").format(name=name))
raise MallError(Message("could not reach {host}", {"host": host}))
raise ValueError("max_attempts must be at least 1")
run.notes.append(answer_text)
"""
    tree = ast.parse(source)
    flagged = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (argument := _message_argument(node)) is not None
        and _bare(argument)
    ]
    assert sorted(flagged) == [2, 3, 4, 5, 6, 7]


def test_click_s_usage_error_is_named_as_click_spells_it() -> None:
    for name in ("UsageError", "BadParameter", "ClickException", "FileError", "BadOptionUsage"):
        assert hasattr(click, name) or hasattr(click.exceptions, name)
