"""`crossship init`, `config store|phase|carrier|mail` and `auto start|stop|status`
(CROSS MALL help: Amazon自動出荷通知, 3 and 4)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import click

from crossship import settings
from crossship.cli.app import App, cli, output_options, pass_app
from crossship.errors import UsageError
from crossship.output import write_record, write_rows
from crossship.paths import credentials_path
from crossship.secrets import smtp_password_source, store_secrets
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
CARRIER_FIELDS = ("name", "amazon_carrier_code", "amazon_carrier_name", "amazon_ship_method")
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
    app.say(f"Database {'up to date' if existed else 'created'}: {app.db_path}")
    app.say(f"Schema migrations applied: {', '.join(applied)}")
    app.say(
        f"Secrets go in {credentials_path(app.db_path)} (chmod 600) or in CROSSSHIP_* "
        "environment variables; never in the database"
    )


# ----------------------------------------------------------------------------- config


@cli.group()
def config() -> None:
    """Configure stores, phases, carriers and mail (CROSS MALL's 3.設定を行う)."""


@config.group("store")
def store_group() -> None:
    """Stores (店舗): one shop on one mall, with its own settings and credentials."""


def _store_options(command):  # type: ignore[no-untyped-def]
    """The options `config store add` and `config store set` share."""
    for decorator in reversed(
        [
            click.option("--seller-id", help="The seller (merchant) id at the mall."),
            click.option(
                "--marketplace-id",
                help=f"Amazon marketplace (default for amazon: {settings.AMAZON_JP_MARKETPLACE}).",
            ),
            click.option(
                "--endpoint",
                help=f"SP-API endpoint (default {settings.AMAZON_FE_ENDPOINT}); https, or "
                "http only to a loopback address (a local sandbox).",
            ),
            click.option(
                "--token-url",
                help=f"LWA token URL (default {settings.LWA_TOKEN_URL}); https, or http only to "
                "loopback.",
            ),
            click.option(
                "--encoding",
                type=click.Choice(settings.ENCODINGS),
                help="Feed encoding: utf-8 (default) or cp932 (sent as Shift_JIS).",
            ),
            click.option(
                "--interval",
                type=int,
                metavar="MINUTES",
                help="Minutes between two runs of each job for this store (default 15).",
            ),
            click.option(
                "--result-deadline",
                type=int,
                metavar="HOURS",
                help="Hours to wait for Amazon's result before 通知結果取得失敗 (default 24).",
            ),
            click.option(
                "--template",
                metavar="FILE",
                help='Jinja2 feed template overriding the built-in one ("" resets it).',
            ),
        ]
    ):
        command = decorator(command)
    return command


@store_group.command("add")
@click.argument("name")
@click.option(
    "--mall",
    type=click.Choice(settings.MALLS),
    required=True,
    help="The mall this store is on.",
)
@_store_options
@pass_app
def store_add(app: App, name: str, mall: str, **options: object) -> None:
    """Add a store; it starts stopped.

    \b
    Example:
      crossship config store add amazon-main --mall amazon --seller-id A2EXAMPLE
      crossship config store add rakuten-shop --mall rakuten
    """
    values = settings.store_values(**options)  # type: ignore[arg-type]
    row = settings.add_store(app.store, name, mall, values, _now(app))
    app.say(f"Store {row['name']} added ({mall}, automatic processing stopped).")
    if mall == "amazon":
        secrets = store_secrets(row["name"], app.db_path)
        if secrets.missing():
            app.say(f"Its Amazon credentials are not set yet: {secrets.hint()}")
        app.say(
            f"Next: `crossship config phase add {row['name']} PHASE`, then "
            f"`crossship auto start {row['name']}`."
        )


@store_group.command("set")
@click.argument("name")
@_store_options
@pass_app
def store_set(app: App, name: str, **options: object) -> None:
    """Change a store's settings (only the options given).

    \b
    Example:
      crossship config store set amazon-main --encoding cp932 --interval 30
      crossship config store set amazon-main --endpoint http://127.0.0.1:8765 \\
          --token-url http://127.0.0.1:8765/auth/o2/token
    """
    values = settings.store_values(**options)  # type: ignore[arg-type]
    if not values:
        raise UsageError("nothing to change: give at least one option (see --help)")
    app.store.update_store(name, values)
    app.say(f"Store {name} changed: " + ", ".join(f"{k}={v}" for k, v in values.items()))


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
    if row["mall"] == "amazon":
        record.update(store_secrets(row["name"], app.db_path).describe())
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
        f"Phase {name} created (ship date {ship_date}, {settings.SHIP_DATE_LABELS[ship_date]})."
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
    app.say(f"Phase {name}: ship date {ship_date} ({settings.SHIP_DATE_LABELS[ship_date]}).")
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
    move = f", moving to {move_to} on success" if move_to else ""
    app.say(f"Phase {phase} is a target phase of store {store}{move}.")
    for warning in added.warnings:
        app.warn(warning)
    if added.started:
        app.say(f"Store {store} is started: its orders in {phase} are sent on the next run.")
    else:
        app.say(f"Nothing is sent yet: start it with `crossship auto start {store}`.")


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
    app.say(f"Phase {phase} is no longer a target phase of store {store}.")


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
    if targets:
        write_rows(iter(app.store.list_targets()), TARGET_FIELDS, fmt, sys.stdout)
    else:
        write_rows(iter(settings.phases_with_targets(app.store)), PHASE_FIELDS, fmt, sys.stdout)


# ----------------------------------------------------------------------------- carriers


@config.group("carrier")
def carrier_group() -> None:
    """Carriers (配送便, as 【マスタ登録>配送便】): their Amazon carrier-code and ship-method."""


@carrier_group.command("add")
@click.argument("name")
@click.option(
    "--amazon-carrier-code",
    required=True,
    metavar="CODE",
    help="Amazon carrier-code, e.g. 'Yamato Transport', 'Sagawa Express', 'Japan Post', Other.",
)
@click.option("--amazon-carrier-name", metavar="TEXT", help="Carrier name (needed with Other).")
@click.option(
    "--amazon-ship-method",
    metavar="TEXT",
    help=(
        "Amazon ship-method (Amazon配送方法), e.g. 宅急便; "
        "without it Amazon warns (CROSS MALL help, Q2)."
    ),
)
@pass_app
def carrier_add(
    app: App,
    name: str,
    amazon_carrier_code: str,
    amazon_carrier_name: str | None,
    amazon_ship_method: str | None,
) -> None:
    """Add a carrier, or replace all its Amazon fields if it exists.

    \b
    Example:
      crossship config carrier add ヤマト運輸 --amazon-carrier-code "Yamato Transport" \\
          --amazon-ship-method 宅急便
    """
    name = settings.check_name(name, "carrier")
    values = settings.carrier_values(amazon_carrier_code, amazon_carrier_name, amazon_ship_method)
    existed = app.store.get_carrier(name) is not None
    app.store.save_carrier(name, values)
    app.say(
        f"Carrier {name} {'updated' if existed else 'added'} ({values['amazon_carrier_code']})."
    )
    if not values["amazon_ship_method"]:
        app.warn(settings.ship_method_warning(name))


@carrier_group.command("list")
@output_options
@pass_app
def carrier_list(app: App, fmt: str) -> None:
    """List the carriers.

    \b
    Example:
      crossship config carrier list --format csv
    """
    write_rows(iter(app.store.list_carriers()), CARRIER_FIELDS, fmt, sys.stdout)


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
        raise UsageError("give --notify or --clear-notify, not both")
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
        raise UsageError("nothing to change: give at least one option (see --help)")
    app.store.set_settings(settings.MAIL_PREFIX, changes)
    app.say("Mail settings changed: " + ", ".join(sorted(changes)))
    current = settings.mail_settings(app.store)
    if (
        not current["smtp_host"]
        or not current["from"]
        or not (current["admin"] or current["notify"])
    ):
        app.warn("no result mail is sent until --smtp-host, --from and --admin or --notify are set")


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
    record["smtp_password"] = (
        f"set ({source})"
        if source
        else f"not set (env CROSSSHIP_SMTP_PASSWORD or [smtp] password in "
        f"{credentials_path(app.db_path)})"
    )
    write_record(record, fmt, sys.stdout)


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
        f"Automatic processing of {store} started: every {row['interval_minutes']} minutes "
        f"its orders in {phases or '(no target phase)'} are sent."
    )
    if not targets:
        app.warn(f"store {store} has no target phase: add one with `crossship config phase add`")
    for target in targets:
        if target["ship_date"] == "optional":
            app.warn(settings.optional_phase_warning(target["phase"]))
    if row["mall"] != "amazon":
        app.warn(f"store {store} is on {row['mall']}: crossship notifies Amazon only for now")
    else:
        secrets = store_secrets(store, app.db_path)
        if secrets.missing():
            app.warn(f"its Amazon credentials are not set yet: {secrets.hint()}")


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
    app.say(f"Automatic processing of {store} stopped.")


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
