"""The root command, the shared context object and the shared options."""

from __future__ import annotations

import errno
import functools
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from crossship import __version__, i18n
from crossship.cli.help import TranslatedCommand, TranslatedHelp
from crossship.errors import CrossshipError, ExitCode
from crossship.i18n import _
from crossship.output import FORMATS
from crossship.paths import default_db_path
from crossship.store import Store
from crossship.timeutil import Clock, utcnow


@dataclass
class App:
    """What every command gets: the database path, verbosity, the clock, the store."""

    db_path: Path
    quiet: bool = False
    verbose: int = 0
    clock: Clock = utcnow
    failed: bool = False  # "done, but something failed": exit 1 at the end
    mail_transport: Callable[..., None] | None = None  # the demo collects mails instead of SMTP
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        """The database; only `init` creates one (a mistyped path must not start empty)."""
        if self._store is None:
            self._store = Store(self.db_path, create=False)
        return self._store

    def create_store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db_path, create=True)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def say(self, message: str) -> None:
        """Talk on stderr, silenced by -q."""
        if not self.quiet:
            click.echo(message, err=True)

    def warn(self, message: str) -> None:
        if not self.quiet:
            click.echo(_("Warning: {message}").format(message=message), err=True)

    def fail(self, message: str) -> None:
        """Something failed but the command goes on: always printed, exit 1 at the end."""
        self.failed = True
        click.echo(message, err=True)


pass_app = click.make_pass_decorator(App)


class CrossshipGroup(TranslatedHelp, click.Group):
    """Turns crossship errors into one ``Error:`` line and their exit code, and ends quietly
    when stdout is a closed pipe (``| head``); its commands show their help translated."""

    command_class = TranslatedCommand
    group_class = type  # subgroups are CrossshipGroups too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
            return result
        except CrossshipError as exc:
            click.echo(_("Error: {message}").format(message=exc.message), err=True)
            for line in exc.details:
                click.echo(f"  {line}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(ExitCode.OK)
        except OSError as exc:
            if exc.errno not in (errno.EBADF, errno.ENOSPC, errno.EIO, errno.EFBIG):
                raise
            # stdout closed (>&-) or full (> /dev/full): what was done stays done, said once
            _silence_stdout()
            text = _("cannot write the output: {error}").format(error=exc.strerror)
            click.echo(_("Error: {message}").format(message=text), err=True)
            ctx.exit(ExitCode.FAILED)
        except KeyboardInterrupt:
            click.echo(_("Error: {message}").format(message=_("interrupted")), err=True)
            ctx.exit(130)
        except sqlite3.OperationalError as exc:
            # every change is one transaction: a busy or failing database changed nothing
            app = ctx.obj if isinstance(ctx.obj, App) else None
            where = f" {app.db_path}" if app else ""
            hint = (
                _(": another crossship command is writing to it; try again when it is done")
                if "locked" in str(exc) or "busy" in str(exc)
                else ""
            )
            text = _("database{where}: {error}").format(where=where, error=exc) + hint
            click.echo(_("Error: {message}").format(message=text), err=True)
            ctx.exit(ExitCode.FAILED)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail again
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@click.group(cls=CrossshipGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crossship")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CROSSSHIP_DB",
    help="SQLite database (env CROSSSHIP_DB; default ~/.local/share/crossship/crossship.db).",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Print nothing unless something failed (for cron)."
)
@click.option("-v", "--verbose", count=True, help="Say more on stderr; -vv shows each HTTP call.")
@click.option(
    "--lang",
    type=click.Choice(i18n.LANGUAGES),
    help="Language of messages and help: ja or en (default: CROSSSHIP_LANG, then the locale).",
)
@click.pass_context
def cli(
    ctx: click.Context, db_path: Path | None, quiet: bool, verbose: int, lang: str | None
) -> None:
    """crossship: automatic shipment notification (自動出荷通知) to Amazon from cron.

    Orders that reach a target phase (処理フェーズ) are sent to Amazon as one flat-file feed per
    store every 15 minutes; their API status (出荷通知APIステータス) follows each batch to the end.
    """
    i18n.set_language(i18n.resolve(lang))
    preset = ctx.obj if isinstance(ctx.obj, dict) else {}
    app = App(
        db_path=db_path or default_db_path(),
        quiet=quiet,
        verbose=0 if quiet else verbose,
        clock=preset.get("clock", utcnow),
        mail_transport=preset.get("mail_transport"),
    )
    ctx.obj = app
    ctx.call_on_close(app.close)
    level = (
        logging.WARNING if app.verbose == 0 else logging.INFO if app.verbose == 1 else logging.DEBUG
    )
    logging.basicConfig(level=level, format="%(name)s: %(message)s", stream=sys.stderr, force=True)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def finish(app: App) -> None:
    """End a command that went on after a failure with exit 1."""
    if app.failed:
        click.get_current_context().exit(ExitCode.FAILED)


def output_options(command: Callable) -> Callable:
    """The one ``--format`` every listing shares."""

    @click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; csv, tsv, json (one array) or jsonl (one object a line) for tools.",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(*args, **kwargs)

    return wrapper
