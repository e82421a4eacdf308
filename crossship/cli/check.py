"""`crossship check`: one line per problem and a monitoring plugin's exit code."""

from __future__ import annotations

import json

import click

from crossship.check import check
from crossship.cli.app import App, cli, pass_app
from crossship.i18n import ngettext


@cli.command("check")
@click.option("--store", "store_name", metavar="NAME", help="Only this store's problems.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line per problem; json: one object for machines.",
)
@pass_app
def check_command(app: App, store_name: str | None, fmt: str) -> None:
    """Is shipment notification healthy? For monitoring (Nagios, Icinga, Zabbix, cron).

    Prints one line per problem on stdout and exits 0 (OK), 1 (WARNING) or 2 (CRITICAL), like a
    monitoring plugin. It reads the database without changing it and takes no run lock.

    \b
    CRITICAL: the database is missing or fails PRAGMA quick_check; a started store's
      job has not run for 3 of its intervals; a batch has waited past half its
      result deadline; the run lock is held for longer than 2 intervals;
      a mall's credentials or keys have expired.
    WARNING: orders in エラー / 通知失敗 / 通知結果取得失敗 (count, oldest);
      a started store that never ran or whose last run failed; credentials or
      keys near their end; a database schema the next run will migrate.
    """
    report = check(app.db_path, app.clock(), store_name=store_name)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for problem in report.problems:
            click.echo(problem.line())
        if not report.problems:
            click.echo(
                ngettext(
                    "OK: no problems ({count} store checked)",
                    "OK: no problems ({count} stores checked)",
                    report.stores,
                ).format(count=report.stores)
            )
    click.get_current_context().exit(report.exit_code)
