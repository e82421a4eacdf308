"""Two languages for every message a person reads: gettext catalogs (``ja``, ``en``) compiled
with Babel and shipped in the package (``crossship/locale``).

The command line speaks the reader's language (``--lang``, then ``CROSSSHIP_LANG``, then the
locale), mails speak the mail setting's language (Japanese by default: shop staff read them).
A message that is kept (in the history, on an order) is kept as its key and arguments
(``Message``), so it shows in the language of whoever reads it later. The malls' own words are
never translated.
"""

from __future__ import annotations

import gettext as _gettext
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DOMAIN = "crossship"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "ja")
DEFAULT_MAIL_LANGUAGE = "ja"

# the command line's language: one per process (worker threads of a run read it too)
_state = {"language": "en"}


def resolve(flag: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The command line's language: ``--lang``, ``CROSSSHIP_LANG``, the locale, else English."""
    env = os.environ if environ is None else environ
    for chosen in (flag, env.get("CROSSSHIP_LANG")):
        if chosen:
            return normalise(chosen)
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:  # the first one set decides, as the C library does
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


def normalise(language: str) -> str:
    """``ja``, ``ja_JP.UTF-8``, ``JA`` → ``ja``; anything but Japanese → ``en``."""
    return "ja" if language.strip().lower().startswith("ja") else "en"


@cache
def translations(language: str) -> _gettext.NullTranslations:
    if language == "en":
        # English is the source language: the msgids are the English text
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def current() -> str:
    return _state["language"]


def set_language(language: str) -> None:
    """Make ``language`` the command line's language, click's own texts included."""
    language = normalise(language)
    _state["language"] = language
    # click looks its texts up through the gettext module's global domain and language
    _gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    _gettext.textdomain(DOMAIN)
    os.environ["LANGUAGE"] = language


def _(message: str) -> str:
    """``message`` (an English msgid) in the current language."""
    return translations(_state["language"]).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_state["language"]).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now (it is kept, shown later)."""
    return message


@dataclass(frozen=True)
class Message:
    """A message kept for later: its key (the English msgid) and arguments, shown in the
    language of whoever reads it."""

    key: str
    args: dict[str, Any] = field(default_factory=dict)

    def render(self, language: str | None = None) -> str:
        chosen = normalise(language) if language else _state["language"]
        text = translations(chosen).gettext(self.key)
        # an argument may itself be a Message (a field's name, a fix): shown in the same language
        args = {
            name: value.render(chosen) if isinstance(value, Message) else value
            for name, value in self.args.items()
        }
        try:
            return text.format(**args)
        except (KeyError, IndexError, ValueError):  # a translation that does not fit its args
            return self.key.format(**args)

    __str__ = render

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "args": {k: _dump(v) for k, v in self.args.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        args = data.get("args") or {}
        return cls(data["key"], {k: _load(v) for k, v in args.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Message:
        return cls.from_dict(json.loads(text))


def _dump(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Message) else value


def _load(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("key"), str):
        return Message.from_dict(value)
    return value


# What a status change's message may be: a plain text (a mall's own words, kept as written), one
# of our messages, or several parts joined with "; " (our message and the mall's words, warnings)
Part = str | Message
Text = Part | Sequence[Part]


def _parts(text: Text | None) -> list[str | Message]:
    if text is None or text == "":
        return []
    if isinstance(text, str | Message):
        return [text]
    return [part for part in text if part]


def render(text: Text | None, language: str | None = None) -> str:
    """``text`` for a reader of ``language`` (default: the command line's)."""
    return "; ".join(
        part.render(language) if isinstance(part, Message) else part for part in _parts(text)
    )


def keep(text: Text | None) -> tuple[str, str | None]:
    """What the database keeps of a message: its English text (what every reader of the
    database sees, and the machine output in English) and, when any part of it is ours, its
    parts as JSON (keys and arguments) to show it in the reader's language later."""
    parts = _parts(text)
    english = render(parts, "en")
    if not any(isinstance(part, Message) for part in parts):
        return english, None
    stored = [part.to_dict() if isinstance(part, Message) else part for part in parts]
    return english, json.dumps(stored, ensure_ascii=False)


def render_stored(message: str | None, key: str | None, language: str | None = None) -> str:
    """A stored message in the reader's language: from its parts when it has them (ours), else
    as it was written (a mall's own words, or a row from before keys were kept)."""
    if key:
        try:
            data = json.loads(key)
            if isinstance(data, dict):
                data = [data]
            return "; ".join(
                Message.from_dict(part).render(language) if isinstance(part, dict) else str(part)
                for part in data
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            pass  # parts this version cannot show: the text written at the time
    return message or ""
