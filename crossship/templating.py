"""Jinja2 for the package's text templates: strict, never autoescaped, data passed in.

Mail templates speak the mail's language through Jinja's i18n extension; the feed templates never
do (a feed is data for the mall, the same in every language).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from crossship import i18n


def _environment(**extra: Any) -> Environment:
    return Environment(
        loader=PackageLoader("crossship", "templates"),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        **extra,
    )


@cache
def environment() -> Environment:
    return _environment()


@cache
def mail_environment(language: str) -> Environment:
    """The environment for mails in ``language``: ``_()`` and ``{% trans %}`` from the catalog,
    and ``| say`` showing a kept message (``i18n.Message``) in that language."""
    env = _environment(extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["say"] = lambda m: m.render(language) if isinstance(m, i18n.Message) else m
    return env


def render_text(name: str, context: dict[str, Any]) -> str:
    return environment().get_template(name).render(**context)


def render_mail(name: str, context: dict[str, Any], language: str) -> str:
    return mail_environment(i18n.normalise(language)).get_template(name).render(**context)
