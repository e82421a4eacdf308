"""Secrets (SPEC §9, §12): each store's credentials as its mall declares them, and the SMTP
password.

They never enter the database. Environment variables win over the credentials file, which is
refused when group or others can read it (as ssh and netrc do). The file is read only when the
environment does not already give everything asked for.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from crossship.errors import ConfigError
from crossship.i18n import N_, Message, _
from crossship.malls import Secret
from crossship.paths import credentials_path

SMTP_PASSWORD_ENV = "CROSSSHIP_SMTP_PASSWORD"


def env_prefix(store_name: str) -> str:
    """``<STORE>`` of the variables: the name upper-cased, every character but A-Z and 0-9 ``_``."""
    return re.sub(r"[^A-Z0-9]", "_", store_name.upper())


def env_name(store_name: str, suffix: str) -> str:
    """``CROSSSHIP_<STORE>_<SUFFIX>``: the store name upper-cased, every other char ``_``."""
    return f"CROSSSHIP_{env_prefix(store_name)}_{suffix}"


@dataclass(frozen=True)
class StoreSecrets:
    """A store's secrets, as its mall declares them; ``sources`` says where each came from
    (never the value). Each declared secret reads as an attribute (``secrets.client_id``)."""

    store: str
    declared: tuple[Secret, ...] = ()
    values: dict[str, str] = field(default_factory=dict, repr=False)
    sources: dict[str, str] = field(default_factory=dict)
    file: Path | None = None

    def __getattr__(self, name: str) -> str | None:
        if name.startswith("_") or name in ("declared", "values"):
            raise AttributeError(name)
        if any(s.name == name for s in self.declared):
            return self.values.get(name)
        raise AttributeError(name)

    def get(self, name: str) -> str:
        """A secret that ``missing()`` said is set ("" otherwise)."""
        return self.values.get(name, "")

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{s.name}={'***' if self.values.get(s.name) else None}" for s in self.declared
        )
        return f"StoreSecrets(store={self.store!r}, {shown})"

    __str__ = __repr__

    def missing(self) -> list[str]:
        """Each secret not set, named by what to set."""
        said = (
            _("{variable} or {key} in [{section}] of {file}")
            if self.file
            else _("{variable} or {key} in [{section}]")
        )
        return [
            said.format(
                variable=env_name(self.store, s.env_suffix),
                key=s.key,
                section=f"stores.{self.store}",
                file=self.file,
            )
            for s in self.declared
            if not self.values.get(s.name)
        ]

    def hint(self) -> str:
        """One line saying where to put the missing secrets, for people."""
        names = [
            env_name(self.store, s.env_suffix) for s in self.declared if not self.values.get(s.name)
        ]
        return _("set {variables} or put them in {file} (see README: Secrets)").format(
            variables=", ".join(names), file=self.file
        )

    def describe(self, say: Callable[[str], str] = str) -> dict[str, str]:
        """For `config store show`: each secret ``set (env X)``, ``set (file F)`` or ``not set``
        (``say``: ``_`` for people, in their language; the same words for tools by default)."""
        described = {}
        for secret in self.declared:
            source = self.sources.get(secret.name)
            if source:
                described[secret.key] = say(N_("set ({source})")).format(
                    source=source_words(source, say)
                )
            else:
                var = env_name(self.store, secret.env_suffix)
                described[secret.key] = say(N_("not set (env {variable} or {file})")).format(
                    variable=var, file=self.file
                )
        return described


def store_secrets(store_name: str, db_path: Path, declared: Sequence[Secret]) -> StoreSecrets:
    """The secrets ``declared`` by the store's mall: environment first, then the file."""
    path = credentials_path(Path(db_path))
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for secret in declared:
        var = env_name(store_name, secret.env_suffix)
        if os.environ.get(var):
            values[secret.name] = os.environ[var]
            sources[secret.name] = f"env {var}"
    if len(values) < len(declared):
        section = _read_file(path).get("stores", {})
        if not isinstance(section, dict):
            raise ConfigError(
                _("credentials file {path}: [stores] must be a table of stores").format(path=path)
            )
        entry = section.get(store_name, {})
        if not isinstance(entry, dict):
            raise ConfigError(
                _("credentials file {path}: [{section}] must be a table of keys").format(
                    path=path, section=f"stores.{store_name}"
                )
            )
        for secret in declared:
            if secret.name not in values and entry.get(secret.key):
                key = f"stores.{store_name}.{secret.key}"
                values[secret.name] = _text(entry[secret.key], path, key)
                sources[secret.name] = f"file {path}"
    return StoreSecrets(
        store=store_name, declared=tuple(declared), values=values, sources=sources, file=path
    )


def source_words(source: str, say: Callable[[str], str] = str) -> str:
    """Where a secret came from (``env X`` / ``file F``, as ``sources`` keeps it) in the words
    of ``say`` (``_`` for people; the same words for tools by default)."""
    kind, _sep, where = source.partition(" ")
    if kind == "env":
        return say(N_("env {variable}")).format(variable=where)
    if kind == "file":
        return say(N_("file {path}")).format(path=where)
    return source


def smtp_password(db_path: Path) -> str | None:
    """The SMTP password from CROSSSHIP_SMTP_PASSWORD, else ``[smtp] password`` in the file."""
    return smtp_password_source(db_path)[0]


def smtp_password_source(db_path: Path) -> tuple[str | None, str | None]:
    """The SMTP password and where it came from (``env ...`` / ``file ...``), or (None, None)."""
    if os.environ.get(SMTP_PASSWORD_ENV):
        return os.environ[SMTP_PASSWORD_ENV], f"env {SMTP_PASSWORD_ENV}"
    path = credentials_path(Path(db_path))
    smtp = _read_file(path).get("smtp", {})
    if not isinstance(smtp, dict):
        raise ConfigError(_("credentials file {path}: [smtp] must be a table").format(path=path))
    if smtp.get("password"):
        return _text(smtp["password"], path, "smtp.password"), f"file {path}"
    return None, None


# path -> (the file's version, its parsed content): a run reads one file for each of hundreds of
# stores (and for each mail); parsing it again each time was most of a store's own work
_PARSED: dict[Path, tuple[tuple[int, ...], dict[str, Any]]] = {}
_PARSED_LOCK = threading.Lock()


def _read_file(path: Path) -> dict[str, Any]:
    """The credentials file's content (shared: never changed by the caller), or {} without one.
    The mode is checked at every read; the file is parsed again whenever it changed."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(
            _("cannot read credentials file {path}: {error}").format(path=path, error=exc.strerror)
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            _(
                "credentials file {path} is not a regular file (a directory?): point "
                "CROSSSHIP_CREDENTIALS at the TOML file itself, or unset it to use "
                "credentials.toml beside the database"
            ).format(path=path)
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigError(
            _("credentials file {path} is readable by others: run {command}").format(
                path=path, command=f"chmod 600 {path}"
            )
        )
    version = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    with _PARSED_LOCK:
        known = _PARSED.get(path)
    if known is not None and known[0] == version:
        return known[1]
    content = _parse(path)
    with _PARSED_LOCK:
        _PARSED[path] = (version, content)
    return content


def _parse(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        # the message names the line and column, never the file's content
        raise ConfigError(
            _("credentials file {path} is not valid TOML: {error}").format(path=path, error=exc)
        ) from None
    except OSError as exc:
        raise ConfigError(
            _("cannot read credentials file {path}: {error}").format(path=path, error=exc.strerror)
        ) from None


def _text(value: Any, path: Path, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            _("credentials file {path}: {key} must be a quoted string").format(path=path, key=key)
        )
    return value


@dataclass(frozen=True)
class RefreshCredentials:
    """An OAuth refresh-token grant's credentials (Amazon's LWA, Yahoo! ID連携). All three are
    secrets: never shown, logged or stored."""

    client_id: str
    client_secret: str
    refresh_token: str

    def __repr__(self) -> str:
        return "Credentials(client_id=***, client_secret=***, refresh_token=***)"

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        return (self.client_id, self.client_secret, self.refresh_token)


Scrubbable = TypeVar("Scrubbable", str, Message)


def scrub(text: Scrubbable, secrets: Iterable[str]) -> Scrubbable:
    """``text`` with every secret (of 4 characters or more) blanked out as ``***``: a plain text,
    or a Message and its arguments however deep. A mall's answer may echo a secret back; what
    the clients keep of it (errors, history, mails) must not."""
    hidden = [secret for secret in secrets if len(secret) >= 4]
    return _scrubbed(text, hidden)


def _scrubbed(text: Any, hidden: list[str]) -> Any:
    if isinstance(text, Message):
        return Message(text.key, {k: _scrubbed(v, hidden) for k, v in text.args.items()})
    if isinstance(text, str):
        for secret in hidden:
            text = text.replace(secret, "***")
    return text
