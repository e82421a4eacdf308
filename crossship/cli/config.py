"""`crossship init`, `config store|phase|carrier|mail` and `auto start|stop|status`
(CROSS MALL help: Amazon自動出荷通知, 3 and 4)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from crossship import malls, prune, settings
from crossship.cli.app import App, cli, output_options, pass_app
from crossship.errors import UsageError
from crossship.i18n import N_, _, ngettext
from crossship.output import headings, pgettext, write_record, write_rows
from crossship.paths import credentials_path
from crossship.secrets import smtp_password_source, source_words, store_secrets
from crossship.shell import word as q
from crossship.statuses import Status
from crossship.store import BATCH_OPEN_STATES
from crossship.timeutil import local_iso, to_db

STORE_LIST_FIELDS = (
    "name",
    "mall",
    "automatic",
    "seller_id",
    "marketplace_id",
    "encoding",
    "interval_minutes",
    "result_deadline_hours",
    "target_phases",
)
PHASE_FIELDS = ("name", "ship_date", "ship_date_label", "target_of")
TARGET_FIELDS = ("store", "phase", "move_to", "ship_date")
STATUS_FIELDS = (
    "store",
    "mall",
    "automatic",
    "target_phases",
    "last_notify",
    "last_notify_outcome",
    "last_results",
    "last_results_outcome",
    "batches_in_flight",
    *(s.value for s in Status),
)
# batches that Amazon has not finished: still being sent, or sent and waiting for the result
IN_FLIGHT_STATES = (*BATCH_OPEN_STATES, "submitted")


METAVARS = {
    "text": "TEXT",
    "int": "N",
    "date": "YYYY-MM-DD",
    "url": "URL",
    "choice": "CHOICE",
    "path": "FILE",
    "days_or_never": "DAYS|never",
}


def _now(app: App) -> str:
    return to_db(app.clock())


# ----------------------------------------------------------------------------- init


@cli.command()
@pass_app
def init(app: App) -> None:
    """Create the database (or bring its schema up to date) and say where it is.

    Safe to run again: it only applies migrations that are missing.

    \b
    Example:
      crossship init
      CROSSSHIP_DB=/var/lib/crossship/crossship.db crossship init
    """
    existed = app.db_path.exists()
    applied = app.create_store().applied_migrations()
    said = _("Database up to date: {path}") if existed else _("Database created: {path}")
    app.say(said.format(path=app.db_path))
    app.say(_("Schema migrations applied: {migrations}").format(migrations=", ".join(applied)))
    app.say(
        _(
            "Secrets go in {path} (chmod 600) or in CROSSSHIP_* "
            "environment variables; never in the database"
        ).format(path=credentials_path(app.db_path))
    )


# ----------------------------------------------------------------------------- config


@cli.group()
def config() -> None:
    """Configure stores, phases, carriers and mail (CROSS MALL's 3.設定を行う)."""


@config.group("store")
def store_group() -> None:
    """Stores (店舗): one shop on one mall, with its own settings and credentials."""


class MallChoice(click.Option):
    """``--mall``: its help names the installed malls, in the reader's language."""

    HELP = N_("The mall this store is on: {malls}.")

    @property  # type: ignore[override]
    def help(self) -> str:
        return _(self.HELP).format(malls=", ".join(settings.store_malls()))

    @help.setter
    def help(self, value: str | None) -> None:
        pass  # always the text above, translated when it is shown


class MallOptions(click.Command):
    """A command whose flags come from the installed malls' declarations at each use (so a mall
    installed, or registered by a test, brings its flags without touching this module)."""

    def __init__(self, *args: Any, extra: Callable[[], list[click.Parameter]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.extra = extra

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        help_option = self.get_help_option(ctx)
        rest = [p for p in params if p is not help_option]
        return rest + self.extra() + ([help_option] if help_option is not None else [])


def _store_flags() -> list[click.Parameter]:
    flags: list[click.Parameter] = []
    for option in settings.store_options():
        setting = option.first
        kind: Any = None
        choices = {s.choices for s in [*option.by_mall.values(), setting] if s.kind == "choice"}
        if setting.kind == "choice" and len(choices) == 1:
            kind = click.Choice(setting.choices)
        flags.append(
            click.Option(
                [option.option, option.param],
                type=kind,
                metavar=setting.metavar or (None if kind else METAVARS[setting.kind]),
                help=option.help(),
            )
        )
    return flags


def _carrier_flags() -> list[click.Parameter]:
    return [
        click.Option(
            [f.option, settings.param_name(f.option)],
            metavar=f.metavar,
            help=f"{_(f.help)} [{mall.label}]",
        )
        for mall, f in settings.carrier_options()
    ]


@store_group.command(
    "add", cls=MallOptions, extra=_store_flags, context_settings={"ignore_unknown_options": False}
)
@click.argument("name")
@click.option(
    "--mall",
    cls=MallChoice,
    required=True,
    metavar="MALL",
)
@pass_app
def store_add(app: App, name: str, mall: str, **options: Any) -> None:
    """Add a store; it starts stopped. Each mall's own settings are marked [mall]; giving one
    for a store of another mall is refused.

    \b
    Example:
      crossship config store add amazon-main --mall amazon --seller-id A2EXAMPLE
      crossship config store add rakuten-shop --mall rakuten
    """
    row = settings.add_store(app.store, name, mall, options, _now(app))
    found = malls.find(mall)
    label = found.label if found else mall
    app.say(
        _("Store {name} added ({mall}, automatic processing stopped).").format(
            name=row["name"], mall=mall
        )
    )
    if found is not None:
        secrets = store_secrets(row["name"], app.db_path, found.secrets)
        if secrets.missing():
            app.say(
                _("Its {mall} credentials are not set yet: {hint}").format(
                    mall=label, hint=secrets.hint()
                )
            )
        app.say(
            _("Next: `{first}`, then `{then}`.").format(
                first=f"crossship config phase add {q(row['name'])} PHASE",
                then=f"crossship auto start {q(row['name'])}",
            )
        )
        _health_warnings(app, row["name"])


@store_group.command("set", cls=MallOptions, extra=_store_flags)
@click.argument("name")
@pass_app
def store_set(app: App, name: str, **options: Any) -> None:
    """Change a store's settings (only the options given). Each mall's own settings are marked
    [mall]; giving one for a store of another mall is refused.

    \b
    Example:
      crossship config store set amazon-main --encoding cp932 --interval 30
      crossship config store set amazon-main --endpoint http://127.0.0.1:8765 \\
          --token-url http://127.0.0.1:8765/auth/o2/token
    """
    changed = settings.update_store(app.store, name, options)
    names = headings()  # the setting's name as `config store show` heads it
    shown = ", ".join(f"{names.get(k, k)}={v}" for k, v in changed.items())
    app.say(_("Store {name} changed: {changes}").format(name=name, changes=shown))
    _health_warnings(app, name)


def _health_warnings(app: App, name: str) -> None:
    """The mall's own warnings on the store's keys and authorizations (Yahoo: no public key)."""
    row = app.store.get_store(name)
    found = malls.find(row["mall"])
    if found is not None and found.health is not None:
        for _level, text in found.health(row, app.clock()):
            app.warn(text)


@store_group.command("list")
@output_options
@pass_app
def store_list(app: App, fmt: str) -> None:
    """List the stores.

    \b
    Example:
      crossship config store list
    """
    rows = (settings.store_record(app.store, row) for row in app.store.list_stores())
    write_rows(rows, STORE_LIST_FIELDS, fmt, sys.stdout)


@store_group.command("show")
@click.argument("name")
@output_options
@pass_app
def store_show(app: App, name: str, fmt: str) -> None:
    """Show a store, and for each secret whether it is set and where (never its value).

    \b
    Example:
      crossship config store show amazon-main
    """
    row = app.store.get_store(name)
    record = settings.store_record(app.store, row)
    mall = malls.find(row["mall"])
    if mall is not None:
        secrets = store_secrets(row["name"], app.db_path, mall.secrets)
        record.update(secrets.describe(_ if fmt == "table" else str))
    write_record(record, fmt, sys.stdout)


# ----------------------------------------------------------------------------- phases


@config.group("phase")
def phase_group() -> None:
    """Phases (処理フェーズ) and each store's target phases (対象処理フェーズ)."""


SHIP_DATE_CHOICE = click.Choice(settings.SHIP_DATE_SETTINGS)


@phase_group.command("create")
@click.argument("name")
@click.option(
    "--ship-date",
    type=SHIP_DATE_CHOICE,
    default="required",
    show_default=True,
    help="Ship-date setting (発送日設定): required (必須) or optional (任意).",
)
@pass_app
def phase_create(app: App, name: str, ship_date: str) -> None:
    """Create a phase with its ship-date setting (as 【システム設定>処理フェーズ】).

    \b
    Example:
      crossship config phase create 出荷済み --ship-date required
    """
    name = settings.check_name(name, "phase")
    app.store.create_phase(name, ship_date)
    app.say(
        _("Phase {name} created (ship date {ship_date}, {label}).").format(
            name=name, ship_date=ship_date, label=settings.SHIP_DATE_LABELS[ship_date]
        )
    )


@phase_group.command("update")
@click.argument("name")
@click.option(
    "--ship-date",
    type=SHIP_DATE_CHOICE,
    required=True,
    help="Ship-date setting (発送日設定): required (必須) or optional (任意).",
)
@pass_app
def phase_update(app: App, name: str, ship_date: str) -> None:
    """Change a phase's ship-date setting.

    \b
    Example:
      crossship config phase update 出荷済み --ship-date required
    """
    app.store.update_phase(name, ship_date)
    app.say(
        _("Phase {name}: ship date {ship_date} ({label}).").format(
            name=name, ship_date=ship_date, label=settings.SHIP_DATE_LABELS[ship_date]
        )
    )
    if ship_date == "optional" and any(t["phase"] == name for t in app.store.list_targets()):
        app.warn(settings.optional_phase_warning(name))


@phase_group.command("add")
@click.argument("store")
@click.argument("phase")
@click.option(
    "--move-to", metavar="PHASE", help="Destination phase (移動先処理フェーズ) on success."
)
@pass_app
def phase_add(app: App, store: str, phase: str, move_to: str | None) -> None:
    """Make PHASE a target phase of STORE (as 【自動注文連携>自動注文連携店舗一覧】).

    Orders of STORE in PHASE are sent by `notify run`, once automatic processing is started;
    on success they move to --move-to. Adding the phase starts nothing.

    \b
    Example:
      crossship config phase add amazon-main 出荷済み --move-to 完了
    """
    added = settings.add_target(app.store, store, phase, move_to)
    said = (
        _("Phase {phase} is a target phase of store {store}, moving to {move_to} on success.")
        if move_to
        else _("Phase {phase} is a target phase of store {store}.")
    )
    app.say(said.format(phase=phase, store=store, move_to=move_to))
    for warning in added.warnings:
        app.warn(warning)
    if added.started:
        app.say(
            _("Store {store} is started: its orders in {phase} are sent on the next run.").format(
                store=store, phase=phase
            )
        )
    else:
        app.say(
            _("Nothing is sent yet: start it with `{command}`.").format(
                command=f"crossship auto start {q(store)}"
            )
        )


@phase_group.command("remove")
@click.argument("store")
@click.argument("phase")
@pass_app
def phase_remove(app: App, store: str, phase: str) -> None:
    """Stop notifying STORE's orders in PHASE (the phase itself stays).

    \b
    Example:
      crossship config phase remove amazon-main 出荷済み
    """
    app.store.get_store(store)
    app.store.remove_target(store, phase)
    app.say(
        _("Phase {phase} is no longer a target phase of store {store}.").format(
            phase=phase, store=store
        )
    )


@phase_group.command("list")
@click.option("--targets", is_flag=True, help="List the target phases per store instead.")
@output_options
@pass_app
def phase_list(app: App, targets: bool, fmt: str) -> None:
    """List the phases with their ship-date setting and the stores they are a target of.

    \b
    Example:
      crossship config phase list
      crossship config phase list --targets --format json
    """
    # a phase's ship_date is its ship-date setting (発送日設定), not a date
    headers = {"ship_date": pgettext("phase heading", "ship_date")}
    if targets:
        rows = iter(app.store.list_targets())
        write_rows(rows, TARGET_FIELDS, fmt, sys.stdout, headers=headers)
    else:
        rows = iter(settings.phases_with_targets(app.store))
        write_rows(rows, PHASE_FIELDS, fmt, sys.stdout, headers=headers)


# ----------------------------------------------------------------------------- carriers


@config.group("carrier")
def carrier_group() -> None:
    """Carriers (配送便, as 【マスタ登録>配送便】): each mall's carrier codes (Amazon carrier-code
    and ship-method, ...)."""


@carrier_group.command("add", cls=MallOptions, extra=_carrier_flags)
@click.argument("name")
@pass_app
def carrier_add(app: App, name: str, **codes: Any) -> None:
    """Add a carrier, or change it: the fields of each mall given are replaced together, the
    other malls' codes stay. Each mall's codes are checked against its list.

    \b
    Example:
      crossship config carrier add ヤマト運輸 --amazon-carrier-code "Yamato Transport" \\
          --amazon-ship-method 宅急便
    """
    name = settings.check_name(name, "carrier")
    change = settings.carrier_changes(name, codes)
    existed = app.store.get_carrier(name) is not None
    app.store.save_carrier(name, change.values, change.replace)
    shown = ", ".join(v for v in change.values.values() if v)
    said = (
        _("Carrier {name} updated ({codes}).") if existed else _("Carrier {name} added ({codes}).")
    )
    app.say(said.format(name=name, codes=shown))
    for warning in change.warnings:
        app.warn(warning)


@carrier_group.command("list")
@output_options
@pass_app
def carrier_list(app: App, fmt: str) -> None:
    """List the carriers with every mall's code columns.

    \b
    Example:
      crossship config carrier list --format csv
    """
    fields = settings.carrier_fields()
    write_rows(iter(app.store.list_carriers(fields)), ("name", *fields), fmt, sys.stdout)


# ----------------------------------------------------------------------------- mail


@config.group("mail")
def mail_group() -> None:
    """Result mails (処理結果メール): SMTP server, sender, administrator and notify addresses."""


@mail_group.command("set")
@click.option("--smtp-host", metavar="H", help='SMTP server ("" clears).')
@click.option("--smtp-port", type=int, metavar="N", help="SMTP port (default 25).")
@click.option("--smtp-user", metavar="U", help='SMTP login ("" clears); password: see README.')
@click.option("--starttls/--no-starttls", default=None, help="Use STARTTLS.")
@click.option("--from", "sender", metavar="ADDR", help="Sender address.")
@click.option("--admin", metavar="ADDR", help="Administrator address (管理者).")
@click.option(
    "--notify",
    multiple=True,
    metavar="ADDR",
    help="Notification address (通知先メールアドレス); repeat for several; replaces the list.",
)
@click.option("--clear-notify", is_flag=True, help="Remove every notification address.")
@click.option(
    "--language",
    type=click.Choice(("ja", "en")),
    help="Language of the result mails (default ja: shop staff read them).",
)
@pass_app
def mail_set(
    app: App,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_user: str | None,
    starttls: bool | None,
    sender: str | None,
    admin: str | None,
    notify: tuple[str, ...],
    clear_notify: bool,
    language: str | None,
) -> None:
    """Change the mail settings (only the options given).

    \b
    Example:
      crossship config mail set --smtp-host 127.0.0.1 --smtp-port 1025 \\
          --from crossship@example.com --admin admin@example.com --notify shipping@example.com
    """
    if notify and clear_notify:
        raise UsageError(_("give --notify or --clear-notify, not both"))
    changes = settings.mail_changes(
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_user=smtp_user,
        starttls=starttls,
        sender=sender,
        admin=admin,
        notify=[] if clear_notify else (list(notify) if notify else None),
        language=language,
    )
    if not changes:
        raise UsageError(_("nothing to change: give at least one option (see --help)"))
    app.store.set_settings(settings.MAIL_PREFIX, changes)
    names = headings()  # as `config mail show` heads them
    app.say(
        _("Mail settings changed: {names}").format(
            names=", ".join(names.get(name, name) for name in sorted(changes))
        )
    )
    current = settings.mail_settings(app.store)
    if (
        not current["smtp_host"]
        or not current["from"]
        or not (current["admin"] or current["notify"])
    ):
        app.warn(
            _("no result mail is sent until --smtp-host, --from and --admin or --notify are set")
        )


@mail_group.command("show")
@output_options
@pass_app
def mail_show(app: App, fmt: str) -> None:
    """Show the mail settings; the SMTP password only as set or not set.

    \b
    Example:
      crossship config mail show
    """
    record = dict(settings.mail_settings(app.store))
    _password, source = smtp_password_source(app.db_path)
    # for people in their language; the same words in every language for tools
    say = _ if fmt == "table" else str
    record["smtp_password"] = (
        say(N_("set ({source})")).format(source=source_words(source, say))
        if source
        else say(N_("not set (env CROSSSHIP_SMTP_PASSWORD or [smtp] password in {path})")).format(
            path=credentials_path(app.db_path)
        )
    )
    write_record(record, fmt, sys.stdout)


# ----------------------------------------------------------------------------- history


@config.group("history")
def history_group() -> None:
    """How long history, finished batches and run records are kept (all stores)."""


@history_group.command("set")
@click.option(
    "--keep-days",
    type=click.IntRange(min=0),
    required=True,
    metavar="N",
    help="Keep N days: each `results fetch` deletes what is older. 0 keeps everything.",
)
@pass_app
def history_set(app: App, keep_days: int) -> None:
    """Set how many days of history every `results fetch` keeps (0: keep everything).

    What goes is what `crossship history prune --before Nd` deletes: history rows, finished
    batches with their feeds and reports, and old run records; never an order or an open batch.
    A results fetch deletes at most 200,000 rows of each kind and leaves the rest for the next.

    \b
    Example:
      crossship config history set --keep-days 180
    """
    prune.set_keep_days(app.store, keep_days)
    if keep_days:
        app.say(
            ngettext(
                "History is kept {days} day: each `results fetch` deletes what is older.",
                "History is kept {days} days: each `results fetch` deletes what is older.",
                keep_days,
            ).format(days=keep_days)
        )
    else:
        app.say(_("History is kept for ever (`crossship history prune` deletes by hand)."))


@history_group.command("show")
@output_options
@pass_app
def history_show(app: App, fmt: str) -> None:
    """Show how long history is kept.

    \b
    Example:
      crossship config history show
    """
    write_record({"keep_days": prune.keep_days(app.store) or 0}, fmt, sys.stdout)


# ----------------------------------------------------------------------------- auto


@cli.group()
def auto() -> None:
    """Start and stop automatic processing per store, and see where it stands.

    As CROSS MALL's 【自動注文連携>自動処理 開始/停止】.
    """


@auto.command("start")
@click.argument("store")
@pass_app
def auto_start(app: App, store: str) -> None:
    """Start automatic processing of STORE: cron's `notify run` sends its orders from now on.

    \b
    Example:
      crossship auto start amazon-main
    """
    row = app.store.get_store(store)
    app.store.set_started(store, True)
    targets = app.store.list_targets(store)
    phases = ", ".join(settings.target_text(t) for t in targets)
    app.say(
        _(
            "Automatic processing of {store} started: every {minutes} minutes "
            "its orders in {phases} are sent."
        ).format(
            store=store, minutes=row["interval_minutes"], phases=phases or _("(no target phase)")
        )
    )
    if not targets:
        app.warn(
            _("store {store} has no target phase: add one with `{command}`").format(
                store=store, command="crossship config phase add"
            )
        )
    for target in targets:
        if target["ship_date"] == "optional":
            app.warn(settings.optional_phase_warning(target["phase"]))
    mall = malls.find(row["mall"])
    if mall is None:
        app.warn(
            _(
                "store {store} is on {mall}, which this crossship cannot notify yet "
                "(installed: {installed})"
            ).format(store=store, mall=row["mall"], installed=", ".join(malls.registry()))
        )
    else:
        secrets = store_secrets(store, app.db_path, mall.secrets)
        if secrets.missing():
            app.warn(
                _("its {mall} credentials are not set yet: {hint}").format(
                    mall=mall.label, hint=secrets.hint()
                )
            )


@auto.command("stop")
@click.argument("store")
@pass_app
def auto_stop(app: App, store: str) -> None:
    """Stop automatic processing of STORE: nothing is sent; batches already sent still finish
    with `results fetch`.

    \b
    Example:
      crossship auto stop amazon-main
    """
    app.store.set_started(store, False)
    app.say(_("Automatic processing of {store} stopped.").format(store=store))


@auto.command("status")
@click.option("--store", "store_name", metavar="S", help="Only this store.")
@output_options
@pass_app
def auto_status(app: App, store_name: str | None, fmt: str) -> None:
    """Per store: started or stopped, target phases, last runs, batches in flight and orders per
    API status.

    \b
    Example:
      crossship auto status
      crossship auto status --format json
    """
    stores = [app.store.get_store(store_name)] if store_name else app.store.list_stores()
    headers = {s.value: s.label for s in Status} if fmt == "table" else None
    write_rows(_status_rows(app, stores), STATUS_FIELDS, fmt, sys.stdout, headers=headers)
    for row in stores:  # keys and authorizations near their end (Yahoo), on stderr
        found = malls.find(row["mall"])
        if found is not None and found.health is not None:
            for _level, text in found.health(row, app.clock()):
                app.warn(_("store {store}: {text}").format(store=row["name"], text=text))


def _status_rows(app: App, stores: list[dict]) -> Iterator[dict]:
    for row in stores:
        name = row["name"]
        record: dict[str, object] = {
            "store": name,
            "mall": row["mall"],
            "automatic": "started" if row["started"] else "stopped",
            "target_phases": ", ".join(
                settings.target_text(t) for t in app.store.list_targets(name)
            ),
            "batches_in_flight": len(app.store.batches(store=name, states=IN_FLIGHT_STATES)),
        }
        for job, key in (("notify", "last_notify"), ("results", "last_results")):
            run = app.store.latest_run(name, job)
            record[key] = local_iso(run["started_at"]) if run else ""
            record[f"{key}_outcome"] = (run["outcome"] or "") if run else ""
        counts = app.store.status_counts(name)
        for status in Status:
            record[status.value] = counts.get(status.value, 0)
        yield record
