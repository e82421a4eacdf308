"""`sandbox serve` (a local stand-in for Amazon) and `demo` (the whole cycle against it)."""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import click
from click.core import ParameterSource

from crossship import i18n
from crossship.amazon import MALL as AMAZON
from crossship.cli.app import App, cli, pass_app
from crossship.errors import CrossshipError, ExitCode
from crossship.i18n import DEFAULT_MAIL_LANGUAGE, _
from crossship.mail import Mail, MailSettings
from crossship.sandbox import SandboxOptions, SandboxServer
from crossship.secrets import env_name


@cli.group()
def sandbox() -> None:
    """A local stand-in for Amazon (LWA + Feeds API) for rehearsals and tests."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0: any free one).")
@click.option(
    "--report-language",
    type=click.Choice(["en", "ja"]),
    default="en",
    show_default=True,
    help="Processing reports in English or Japanese.",
)
@click.option(
    "--report-encoding",
    type=click.Choice(["utf-8", "cp932"]),
    default="utf-8",
    show_default=True,
    help="cp932 answers as charset=windows-31j, as Amazon Japan does.",
)
@click.option("--gzip", "gzip_reports", is_flag=True, help="Gzip the processing reports.")
@click.option(
    "--processing-seconds",
    type=float,
    default=0.0,
    show_default=True,
    help="How long a feed stays IN_QUEUE / IN_PROGRESS before DONE.",
)
@click.option(
    "--no-rate-limits", is_flag=True, help="Do not answer 429 (QuotaExceeded; Yahoo: bursts)."
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Delay every answer this long, as a network would; answers overlap.",
)
@click.option(
    "--yahoo-public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Yahoo part's public key (PEM) to FILE, for `config store set "
    "--public-key FILE` (otherwise it is printed).",
)
@pass_app
def sandbox_serve(
    app: App,
    host: str,
    port: int,
    report_language: str,
    report_encoding: str,
    gzip_reports: bool,
    processing_seconds: float,
    no_rate_limits: bool,
    latency_ms: int,
    yahoo_public_key: Path | None,
) -> None:
    """Serve LWA, the Feeds API and presigned uploads, and Yahoo!ショッピング's token endpoint and
    order APIs, on HOST:PORT until Ctrl-C.

    Point a store at it with `crossship config store set NAME --endpoint URL
    --token-url URL/auth/o2/token` (Yahoo: URL/ShoppingWebService/V1/ and URL/yconnect/v2/token)
    and the sandbox credentials it prints. Faults are injected through POST /_sandbox/faults
    (Yahoo: /_sandbox/yahoo/faults; see the README).
    """
    options = SandboxOptions(
        report_language=report_language,
        report_encoding=report_encoding,
        gzip_reports=gzip_reports,
        processing_seconds=processing_seconds,
        enforce_rate_limits=not no_rate_limits,
        latency_ms=latency_ms,
    )
    try:
        server = SandboxServer(host, port, options, verbose=app.verbose > 0)
    except OSError as exc:
        raise CrossshipError(
            _("cannot listen on {host}:{port}: {error}").format(
                host=host, port=port, error=exc.strerror
            )
        ) from None
    # Yahoo's about-one-call-a-second is answered with 429 too, unless rate limits are off
    server.sandbox.yahoo.set_options({"enforce_rate_limits": not no_rate_limits})
    if yahoo_public_key is not None:
        try:
            server.yahoo_key_file = server.sandbox.yahoo.write_public_key(yahoo_public_key)
        except OSError as exc:
            server.stop()
            raise CrossshipError(
                _("cannot write the Yahoo public key to {path}: {error}").format(
                    path=yahoo_public_key, error=exc.strerror
                )
            ) from None
    server.serve_forever()


# ------------------------------------------------------------------------------- demo

DEMO_STORE = "amazon-main"
# the demo's Amazon does not know this order, so the cycle also shows an エラー (Amazon's 18028)
DEMO_UNKNOWN_ORDER = "10015"


def demo_data() -> Path:
    """The example orders shipped inside the package (same file as examples/orders.csv)."""
    return Path(str(resources.files("crossship").joinpath("data", "demo_orders.csv")))


RAKUTEN_STORE = "rakuten-shop"
# the demo's RMS holds this order as cancelled: its result is ERROR_102 (an エラー)
RAKUTEN_CANCELLED = "338271-20261126-0012345612"


def demo_rakuten_data() -> Path:
    """More orders of the Rakuten store: a cancelled one, a split, a blank tracking number."""
    return Path(str(resources.files("crossship").joinpath("data", "demo_rakuten_orders.csv")))


def demo_rakuten_steps(url: str, today: date) -> list[list[str]]:
    """The Rakuten store's part of the demo: its carrier codes, its store (a licenseKey ending in
    10 days, so the warning shows), and after the first cycle a corrected tracking number sent
    again, which updates the row RMS registered (the same shippingDetailId)."""
    expires = (today + timedelta(days=10)).isoformat()
    return [
        ["config", "carrier", "add", "ヤマト運輸", "--rakuten-delivery-company", "1001"],
        ["config", "carrier", "add", "佐川急便", "--rakuten-delivery-company", "1002"],
        ["config", "carrier", "add", "日本郵便", "--rakuten-delivery-company", "1003"],
        ["config", "store", "set", RAKUTEN_STORE, "--endpoint", url + "/es/2.0/order/",
         "--license-expires", expires],
        ["config", "phase", "add", RAKUTEN_STORE, "出荷済み", "--move-to", "完了"],
        ["auto", "start", RAKUTEN_STORE],
        ["orders", "import", str(demo_rakuten_data())],
    ]  # fmt: skip


def demo_renotify_steps() -> list[list[str]]:
    return [
        ["orders", "update", "20001", "--tracking-number", "401234567951"],
        ["status", "set", "20001", "--to", "pending", "--move-to", "出荷済み",
         "--reason", "配送番号の訂正"],
        ["notify", "run", "--store", RAKUTEN_STORE, "--force"],
        ["results", "fetch", "--store", RAKUTEN_STORE, "--force"],
        ["history", "--order", "20001"],
    ]  # fmt: skip


DEMO_YAHOO_STORE = "yahoo-shop"
# the demo's Yahoo does not know this order, so its cycle shows Yahoo's od83000003 エラー too
DEMO_YAHOO_UNKNOWN = "sandbox-store-10000005"


def demo_yahoo_data() -> Path:
    """The Yahoo!ショッピング store's example orders (a split shipped as one, a blank number)."""
    return Path(str(resources.files("crossship").joinpath("data", "demo_yahoo_orders.csv")))


def demo_steps(
    url: str,
    token_url: str,
    orders: Path,
    language: str = DEFAULT_MAIL_LANGUAGE,
    yahoo_key: Path | None = None,
) -> list[list[str]]:
    """The commands a new user would type, in order: configuration, import, the two cron jobs.
    The mails are set to ``language``: the demo shows them in its reader's language. With
    ``yahoo_key`` (the sandbox's public key) a Yahoo!ショッピング store runs too."""
    yahoo = _yahoo_steps(url, yahoo_key) if yahoo_key is not None else ([], [])
    return [
        ["init"],
        ["config", "phase", "create", "新規受付", "--ship-date", "optional"],
        ["config", "phase", "create", "出荷待ち", "--ship-date", "optional"],
        ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
        ["config", "phase", "create", "完了", "--ship-date", "optional"],
        ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "宅急便"],
        ["config", "carrier", "add", "佐川急便", "--amazon-carrier-code", "Sagawa Express",
         "--amazon-ship-method", "飛脚宅配便"],
        ["config", "carrier", "add", "日本郵便", "--amazon-carrier-code", "Japan Post"],
        ["config", "store", "add", DEMO_STORE, "--mall", AMAZON.key, "--endpoint", url,
         "--token-url", token_url],
        ["config", "store", "add", "rakuten-shop", "--mall", "rakuten"],
        ["config", "phase", "add", DEMO_STORE, "出荷済み", "--move-to", "完了"],
        *yahoo[0],
        ["config", "mail", "set", "--smtp-host", "127.0.0.1", "--smtp-port", "1025",
         "--from", "crossship@example.jp", "--admin", "admin@example.jp",
         "--notify", "shipping@example.jp", "--language", language],
        ["auto", "start", DEMO_STORE],
        ["orders", "import", str(orders)],
        ["orders", "list", "--store", DEMO_STORE, "--api-status", "未連携"],
        *yahoo[1],
        ["notify", "run"],
        ["results", "fetch"],
        ["auto", "status"],
        ["history"],
    ]  # fmt: skip


def _yahoo_steps(url: str, key: Path) -> tuple[list[list[str]], list[list[str]]]:
    """A Yahoo!ショッピング store on the same sandbox: (configuration, import) steps."""
    store = DEMO_YAHOO_STORE
    configure = [
        ["config", "carrier", "add", "ヤマト運輸", "--yahoo-ship-company", "1001"],
        ["config", "carrier", "add", "佐川急便", "--yahoo-ship-company", "1002"],
        ["config", "carrier", "add", "日本郵便", "--yahoo-ship-company", "1003"],
        ["config", "store", "add", store, "--mall", "yahoo", "--seller-id", "sandbox-store",
         "--endpoint", f"{url}/ShoppingWebService/V1/", "--token-url", f"{url}/yconnect/v2/token",
         "--public-key", str(key), "--public-key-version", "1", "--complete-after", "0"],
        ["config", "phase", "add", store, "出荷済み", "--move-to", "完了"],
        ["auto", "start", store],
    ]  # fmt: skip
    load = [
        ["orders", "import", str(demo_yahoo_data())],
        ["orders", "list", "--store", store, "--api-status", "未連携"],
    ]
    return configure, load


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the temporary database and print where it is.")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """The whole cycle on example data: sandbox, notify run, results fetch, history, mails.

    Always on its own temporary database and its own local sandbox: --db and CROSSSHIP_DB are
    ignored, no mail is sent (they are printed) and no endpoint but that sandbox is called.
    """
    app: App = ctx.obj
    root = ctx.find_root()
    given = root.params.get("db_path")
    if given is not None:
        how = (
            "--db"
            if root.get_parameter_source("db_path") is ParameterSource.COMMANDLINE
            else "CROSSSHIP_DB"
        )
        click.echo(
            _(
                "Note: the demo ignores {how} ({given}): it runs on its own temporary database "
                "and its own sandbox, and changes nothing else."
            ).format(how=how, given=given),
            err=True,
        )
    workdir = tempfile.mkdtemp(prefix="crossship-demo-")
    app.db_path = Path(workdir) / "crossship.db"
    mails: list[Mail] = []
    known = _known_order_ids(demo_data())
    options = SandboxOptions(enforce_rate_limits=False, known_order_ids=known)
    saved = {
        name: os.environ.get(name)
        for name in (*_DEMO_ENV, *_DEMO_YAHOO_ENV, *_RAKUTEN_ENV, "CROSSSHIP_CREDENTIALS")
    }
    try:
        # the user's credentials file is not read either: the sandbox's come from the environment
        os.environ["CROSSSHIP_CREDENTIALS"] = str(Path(workdir) / "credentials.toml")
        with SandboxServer(options=options) as server:
            _sandbox_credentials(server)
            yahoo = server.sandbox.yahoo
            yahoo.set_options(
                {
                    "enforce_rate_limits": False,
                    "known_order_ids": _yahoo_order_ids(demo_yahoo_data()) - {DEMO_YAHOO_UNKNOWN},
                }
            )
            key = yahoo.write_public_key(Path(workdir) / "sandbox-yahoo-public-key.pem")
            steps = demo_steps(server.url, server.token_url, demo_data(), i18n.current(), key)
            _rakuten_sandbox(server)
            # the Rakuten store joins before the orders are imported, and re-notifies at the end
            at = steps.index(["orders", "import", str(demo_data())])
            steps[at:at] = demo_rakuten_steps(server.url, app.clock().date())
            steps[-1:-1] = demo_renotify_steps()
            for step in steps:
                code = _invoke(ctx, app, step, mails.append)
                if code not in (ExitCode.OK, ExitCode.FAILED):
                    raise CrossshipError(
                        _("demo step `crossship {step}` ended with {code}").format(
                            step=shlex.join(step), code=code
                        )
                    )
                for mail in mails:  # the mail a step would send, right after it
                    heading = _("===== mail: {subject}").format(subject=mail.subject)
                    click.echo(f"\n{heading}\n{mail.body}")
                mails.clear()
    finally:
        for name, value in saved.items():  # the sandbox's credentials leave with it
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if keep:
        where = shlex.quote(str(app.db_path))
        click.echo(
            "\n"
            + _("The demo database is {path}: try `crossship --db {path} history`.").format(
                path=where
            )
        )
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def _known_order_ids(orders: Path) -> set[str]:
    """Amazon order ids of the demo file, but DEMO_UNKNOWN_ORDER's."""
    with orders.open(encoding="utf-8-sig", newline="") as f:
        return {
            row["注文番号"]
            for row in csv.DictReader(f)
            if row["注文番号"] and row["管理番号"] != DEMO_UNKNOWN_ORDER
        }


def _yahoo_order_ids(orders: Path) -> set[str]:
    with orders.open(encoding="utf-8-sig", newline="") as f:
        return {row["注文番号"] for row in csv.DictReader(f) if row["注文番号"]}


_DEMO_ENV = tuple(
    env_name(DEMO_STORE, suffix)
    for suffix in ("LWA_CLIENT_ID", "LWA_CLIENT_SECRET", "REFRESH_TOKEN")
)
_DEMO_YAHOO_ENV = tuple(
    env_name(DEMO_YAHOO_STORE, suffix)
    for suffix in ("YAHOO_CLIENT_ID", "YAHOO_CLIENT_SECRET", "YAHOO_REFRESH_TOKEN")
)
_RAKUTEN_ENV = tuple(
    env_name(RAKUTEN_STORE, suffix) for suffix in ("RMS_SERVICE_SECRET", "RMS_LICENSE_KEY")
)


def _rakuten_sandbox(server: SandboxServer) -> None:
    """The sandbox RMS's keys for the demo's Rakuten store (this process only), and its
    cancelled order."""
    rms = server.sandbox.rakuten
    rms.set_options({"cancelled_orders": {RAKUTEN_CANCELLED}})
    values = (rms.options.service_secret, rms.options.license_key)
    for name, value in zip(_RAKUTEN_ENV, values, strict=True):
        os.environ[name] = value


def _sandbox_credentials(server: SandboxServer) -> None:
    """The sandbox's own LWA credentials, for this process only (never written anywhere)."""
    options = server.options
    values = (options.client_id, options.client_secret, options.refresh_token)
    for name, value in zip(_DEMO_ENV, values, strict=True):
        os.environ[name] = value
    yahoo = server.sandbox.yahoo.options
    values = (yahoo.client_id, yahoo.client_secret, yahoo.refresh_token)
    for name, value in zip(_DEMO_YAHOO_ENV, values, strict=True):
        os.environ[name] = value


def _invoke(ctx: click.Context, app: App, step: list[str], collect: Callable[[Mail], None]) -> int:
    """Run one crossship command in this process, echoing it like a shell session."""
    click.echo(f"\n$ crossship {shlex.join(step)}")

    def transport(settings: MailSettings, password: str | None, mail: Mail) -> None:
        collect(mail)

    preset = {"clock": app.clock, "mail_transport": transport}
    args = ["--db", str(app.db_path), *(["-v"] if app.verbose else []), *step]
    try:
        # outside standalone mode click returns the exit code of ctx.exit() instead of exiting
        code = cli.main(args=args, prog_name="crossship", standalone_mode=False, obj=preset)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return code if isinstance(code, int) else ExitCode.OK
