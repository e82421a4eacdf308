"""Help in the reader's language: click's help texts are plain English strings (the ``help=`` of
each option, each command's docstring); these classes look each one up in the catalog at the
moment the help is shown. click's own headings and usage errors it translates itself, through
the gettext domain that ``crossship.i18n.set_language`` sets."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from crossship.i18n import _


def translate_help(text: str | None) -> str | None:
    if not text:
        return text
    cleaned = inspect.cleandoc(text)
    body, marker, rest = cleaned.partition("\f")
    translated = _(body)
    return translated + marker + rest if translated != body else text


@contextmanager
def _translated(*objects: Any) -> Iterator[None]:
    saved = [(o, o.help) for o in objects if getattr(o, "help", None)]
    for o, text in saved:
        o.help = translate_help(text)
    try:
        yield
    finally:
        for o, text in saved:
            o.help = text


class TranslatedHelp:
    """Mixin for click commands and groups: help, option help and short help translated."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _translated(self):
            super().format_help_text(ctx, formatter)  # type: ignore[misc]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _translated(*self.get_params(ctx)):  # type: ignore[attr-defined]
            super().format_options(ctx, formatter)  # type: ignore[misc]

    def get_short_help_str(self, limit: int = 45) -> str:
        with _translated(self):
            return super().get_short_help_str(limit)  # type: ignore[misc]


class TranslatedCommand(TranslatedHelp, click.Command):
    pass
