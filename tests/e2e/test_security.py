"""Secrets stay secret, endpoints stay on https or loopback, and order values are data: never SQL,
never template code, never a broken feed row (SPEC §7, §9)."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    E2E,
    STORE,
    Cx,
    configure,
    feed_rows,
    make_orders,
    write_orders_csv,
)

pytestmark = pytest.mark.e2e

CLIENT_ID = "amzn1.application-oa2-client.CLIENTID-5e1d0c"
CLIENT_SECRET = "CLIENTSECRET-7f3a9"
REFRESH_TOKEN = "Atzr|REFRESH-91b2"
SMTP_USER = "crossship-mailer"
SMTP_PASSWORD = "SMTPPASS-c4d8e"
SECRETS = (CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, SMTP_PASSWORD)
NO_LWA_ENV: dict[str, str | None] = {
    "CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_ID": None,
    "CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_SECRET": None,
    "CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN": None,
}


def write_credentials(path: Path, mode: int) -> Path:
    path.write_text(
        f'[stores.{STORE}]\nlwa_client_id = "{CLIENT_ID}"\n'
        f'lwa_client_secret = "{CLIENT_SECRET}"\nrefresh_token = "{REFRESH_TOKEN}"\n',
        encoding="utf-8",
    )
    path.chmod(mode)
    return path


@pytest.fixture
def secret_setup(tmp_path: Path, templates, cx: Cx, sandbox, smtp) -> E2E:
    """The LWA credentials only in a 0600 credentials file, the SMTP password only in the
    environment; the sandbox and the SMTP server accept nothing else."""
    sandbox.set_options(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN
    )
    smtp.password = SMTP_PASSWORD
    secret_cx = cx.derive({"CROSSSHIP_SMTP_PASSWORD": SMTP_PASSWORD, **NO_LWA_ENV})
    write_credentials(Path(cx.env["CROSSSHIP_CREDENTIALS"]), 0o600)
    e = configure(tmp_path, templates, secret_cx, sandbox, smtp)
    e.cx.ok("config", "mail", "set", "--smtp-user", SMTP_USER)
    return e


def test_secrets_never_leave_their_place(secret_setup: E2E) -> None:
    e = secret_setup
    # a reader kept open stops the last crossship process from checkpointing the WAL away, so the
    # -wal and -shm files are there to be read
    reader = sqlite3.connect(e.db)
    reader.execute("SELECT count(*) FROM orders").fetchone()
    try:
        assert e.cx("-vv", "notify", "run").returncode == 0
        assert e.cx("-vv", "results", "fetch").returncode == 0
        for args in (
            ("history",),
            ("history", "--format", "jsonl"),
            ("orders", "list", "--format", "json"),
            ("orders", "show", "E0003"),
            ("batches", "list"),
            ("batches", "show", "1"),
            ("config", "store", "show", STORE),
            ("config", "mail", "show"),
            ("auto", "status"),
        ):
            assert e.cx("-vv", *args).returncode == 0, args
        files = {
            suffix: e.db.with_name(e.db.name + suffix).read_bytes()
            for suffix in ("", "-wal", "-shm", ".lock")
        }
    finally:
        reader.close()

    assert set(e.statuses().values()) == {"success"}  # the secrets were used, and worked
    assert e.smtp.logins == [(SMTP_USER, SMTP_PASSWORD)] * 2
    assert len(e.smtp.messages) == 2
    assert files["-wal"], "the WAL should hold the run's writes"
    # the access tokens the sandbox handed out are secrets too
    access_tokens = tuple(e.sandbox.sandbox._tokens)
    assert access_tokens
    for secret in (*SECRETS, *access_tokens):
        needle = secret.encode()
        for suffix, data in files.items():
            assert needle not in data, f"{secret!r} in the database file {suffix!r}"
        for done in e.cx.calls:
            assert secret not in done.stdout and secret not in done.stderr, (secret, done.args)
        for mail in e.smtp.messages:
            assert needle not in mail.raw, secret
        for feed in e.sandbox.feeds():
            assert needle not in feed["document"]
    # -vv did show each HTTP call (so the checks above looked at a talkative run), but never a
    # presigned URL's query: its signature lets anyone read or replace the document for 5 minutes
    (notify_log,) = [c.stderr for c in e.cx.calls if c.args[-2:] == ["notify", "run"]]
    assert "createFeedDocument POST" in notify_log and "PUT /_s3/upload/" in notify_log
    for done in e.cx.calls:
        assert "X-Amz-Signature" not in done.stderr + done.stdout, done.args


def test_credentials_file_readable_by_others_is_refused(configured_db: E2E) -> None:
    e = configured_db
    path = write_credentials(Path(e.cx.env["CROSSSHIP_CREDENTIALS"]), 0o644)
    e.sandbox.set_options(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN
    )
    refused = e.cx("notify", "run", env=NO_LWA_ENV)
    assert refused.returncode == 1
    assert f"chmod 600 {path}" in refused.stderr
    assert CLIENT_SECRET not in refused.stderr
    assert e.sandbox.calls["token"] == 0  # nothing was asked of Amazon
    assert set(e.statuses().values()) == {"pending"}

    path.chmod(0o600)
    accepted = e.cx("notify", "run", "--force", env=NO_LWA_ENV)
    assert accepted.returncode == 0, accepted.stderr
    assert f"sent {len(e.order_nos)} orders" in accepted.stderr


class Tripwire:
    """A listening socket standing in for every HTTP proxy: any connection attempt shows here."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.close()


def proxied(wire: Tripwire) -> dict[str, str]:
    return {
        name: wire.url
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY")
    } | {"NO_PROXY": "", "no_proxy": ""}


def test_plain_http_endpoint_is_refused_before_any_connection(
    configured_db: E2E, tripwire: Tripwire
) -> None:
    e = configured_db
    env = proxied(tripwire)
    added = e.cx("config", "store", "add", "x", "--mall", "amazon",
                 "--endpoint", "http://example.com", env=env)  # fmt: skip
    assert added.returncode == 2
    assert "Error: --endpoint 'http://example.com' is refused" in added.stderr
    assert "https://" in added.stderr and "loopback" in added.stderr
    token_url = e.cx("config", "store", "set", STORE,
                     "--token-url", "http://example.com/auth/o2/token", env=env)  # fmt: skip
    assert token_url.returncode == 2 and "refused" in token_url.stderr
    stores = [s["name"] for s in e.cx.jsonl("config", "store", "list")]
    assert "x" not in stores

    loopback = e.cx("config", "store", "add", "x", "--mall", "amazon",
                    "--endpoint", "http://127.0.0.1:9", env=env)  # fmt: skip
    assert loopback.returncode == 0, loopback.stderr

    # a database edited behind crossship's back is refused at run time, still before connecting
    with sqlite3.connect(e.db) as conn:
        conn.execute("UPDATE stores SET endpoint = 'http://example.com' WHERE name = ?", (STORE,))
    conn.close()
    run = e.cx("notify", "run", env=env)
    assert run.returncode == 1
    assert "http://example.com" in run.stderr and "refused" in run.stderr
    assert tripwire.connections == 0
    assert e.sandbox.calls == {}
    assert set(e.statuses().values()) == {"pending"}


INJECTIONS = {
    "Q0001": "\"quoted\" 'single' `back`",
    "Q0002": "{{ 7*7 }}",
    "Q0003": "{% raw %}",
    "'; DROP TABLE orders; --": "'; DROP TABLE orders; --",
    "Q0005": "{{ config }}{# c #}${HOME}",
}
TEMPLATE_CARRIER_NAME = '{{ 7*7 }} "名" {% if true %}x{% endif %}'


def test_order_values_are_stored_and_sent_literally(
    tmp_path: Path, templates, cx: Cx, sandbox, smtp
) -> None:
    rows = []
    for n, (order_no, tracking) in enumerate(INJECTIONS.items(), start=1):
        row = make_orders(1, start=n)[0] | {"item_id": "", "sku": "", "quantity": ""}
        rows.append(row | {"order_no": order_no, "tracking_number": tracking})
    rows[-1]["carrier"] = "テンプレ便"
    e = configure(tmp_path, templates, cx, sandbox, smtp, orders=[])
    e.cx.ok("config", "carrier", "add", "テンプレ便", "--amazon-carrier-code", "Other",
            "--amazon-carrier-name", TEMPLATE_CARRIER_NAME,
            "--amazon-ship-method", "{% raw %}")  # fmt: skip
    e.cx.ok("orders", "import", write_orders_csv(tmp_path / "injections.csv", rows))
    e.orders = rows

    stored = e.order_rows()
    assert {no: o["tracking_number"] for no, o in stored.items()} == INJECTIONS

    assert e.cx("notify", "run").returncode == 0
    (feed,) = e.sandbox.feeds()
    for tracking in INJECTIONS.values():
        assert tracking.encode("utf-8") in feed["document"]  # byte for byte
    by_order_id = {r[0]: r for r in feed_rows(feed)}
    for row in rows:
        sent = by_order_id[row["mall_order_id"]]
        assert sent[6] == row["tracking_number"]
    last = by_order_id[rows[-1]["mall_order_id"]]
    assert (last[4], last[5], last[7]) == ("Other", TEMPLATE_CARRIER_NAME, "{% raw %}")

    assert e.cx("results", "fetch").returncode == 0
    assert set(e.statuses().values()) == {"success"}
    history = e.history("--order", "'; DROP TABLE orders; --")
    assert [h["status"] for h in history] == ["success", "in_progress"]
    assert e.query("SELECT count(*) FROM orders")[0][0] == len(rows)
    assert e.integrity() == "ok"


def test_tabs_and_newlines_in_a_quoted_field_are_refused_before_sending(
    tmp_path: Path, templates, cx: Cx, sandbox, smtp
) -> None:
    """The CSV import keeps a quoted field as written; the check before sending refuses it, so
    no feed row is ever broken (found: the refusal happens at `notify run`, not at import)."""
    values = {"B0001": "1234\t5678", "B0002": "1234\n5678", "B0003": "1234\r\n5678"}
    rows = [
        make_orders(1, start=n)[0] | {"order_no": no, "tracking_number": value, "item_id": ""}
        for n, (no, value) in enumerate(values.items(), start=1)
    ]
    rows.append(make_orders(1, start=9)[0])  # a clean order in the same run is sent
    e = configure(tmp_path, templates, cx, sandbox, smtp, orders=rows)
    stored = e.order_rows()
    assert {no: stored[no]["tracking_number"] for no in values} == values

    done = e.cx("-v", "notify", "run")
    assert done.returncode == 0, done.stderr
    assert "sent 1 order," in done.stderr and "エラー 3" in done.stderr
    rows_by_no = e.order_rows()
    for order_no, what in (("B0001", "a tab"), ("B0002", "a line feed (LF)"),
                           ("B0003", "a carriage return (CR)")):  # fmt: skip
        order = rows_by_no[order_no]
        assert order["status"] == "error"
        assert f"配送番号 (tracking_number) contains {what}" in order["message"]
        assert f"crossship orders update {order_no} --tracking-number" in order["message"]
    (feed,) = e.sandbox.feeds()
    assert [r[0] for r in feed_rows(feed)] == [rows[-1]["mall_order_id"]]
    assert all(len(r) == 9 for r in feed_rows(feed))
