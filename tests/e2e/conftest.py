"""End-to-end fixtures: the real ``crossship`` executable in subprocesses, talking over real
sockets on 127.0.0.1 to the Amazon sandbox and to an aiosmtpd SMTP server.

- ``sandbox``: a ``SandboxServer`` in this process on a free port (faults, feeds, calls in process).
- ``serve_sandbox``: starts ``crossship sandbox serve --port 0 [options]`` in another process and
  returns a ``RemoteSandbox`` driven through the ``/_sandbox/`` control endpoints.
- ``smtp``: an aiosmtpd ``Controller`` on 127.0.0.1 (one per session, emptied for each test),
  collecting every message; AUTH is accepted over plain SMTP and checked against
  ``smtp.password`` when a test sets it.
- ``cx(*args, env=..., timeout=...)``: runs ``crossship ARGS`` in a subprocess with the test's
  database, credentials file and the sandbox's LWA credentials; returns ``CompletedProcess`` (text)
  and asserts that stderr never holds a Python traceback. ``cx.popen`` for runs to kill.
- ``configured_db``: a database configured through the CLI (phases, carriers ヤマト運輸,
  佐川急便 and 日本郵便 without ship method, ``amazon-main`` with target phase 出荷済み → 完了,
  mail to the aiosmtpd port, auto start) with ``ORDER_COUNT`` generated orders imported, and
  the store's ``--endpoint`` / ``--token-url`` set to this test's sandbox. Returns an ``E2E``.
  The configuration commands run once per session into a template database (``templates``);
  each test copies it and runs ``config store set`` itself, which keeps the suite fast.
"""

from __future__ import annotations

import base64
import csv
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from crossship.sandbox import SandboxOptions, SandboxServer
from crossship.secrets import env_name

STORE = "amazon-main"
ORDER_COUNT = 12
SHIP_DATE = "2026-11-24"
CARRIERS = ("ヤマト運輸", "佐川急便", "日本郵便")  # 日本郵便 has no ship method on purpose
ADMIN = "admin@example.jp"
NOTIFY = ("shipping@example.jp", "ops@example.jp")
SENDER = "crossship@example.jp"
NOTIFY_SUBJECT = "(CROSSMALL)Amazon出荷通知処理(自動)のお知らせ"
RESULTS_SUBJECT = "(CROSSMALL)Amazon出荷通知結果取得処理(自動)のお知らせ"
CSV_COLUMNS = (
    "order_no",
    "store",
    "mall_order_id",
    "phase",
    "category",
    "fba",
    "ship_date",
    "carrier",
    "tracking_number",
    "item_id",
    "sku",
    "quantity",
)


def crossship_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m crossship``."""
    beside = Path(sys.executable).with_name("crossship")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crossship")
    return [found] if found else [sys.executable, "-m", "crossship"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------------------------------------ orders


def make_orders(count: int = ORDER_COUNT, start: int = 1) -> list[dict[str, str]]:
    """CSV rows for ``count`` shippable orders numbered from ``start``; every fourth has two
    item lines with ids."""
    rows = []
    for n in range(start, start + count):
        base = {
            "order_no": f"E{n:04d}",
            "store": STORE,
            "mall_order_id": f"503-{n:07d}-{(n * 7919) % 10**7:07d}",
            "phase": "出荷済み",
            "category": "normal",
            "fba": "0",
            "ship_date": SHIP_DATE,
            "carrier": CARRIERS[(n - 1) % len(CARRIERS)],
            "tracking_number": f"4012{n:08d}",
            "item_id": "",
            "sku": "",
            "quantity": "",
        }
        if n % 4 == 0:
            for line in (1, 2):
                rows.append(
                    base | {"item_id": f"7{n:06d}{line:07d}", "sku": f"SKU-{line}", "quantity": "1"}
                )
        else:
            rows.append(base)
    return rows


def write_orders_csv(path: Path, rows: Sequence[dict[str, str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------ sandbox


def feed_rows(feed: dict[str, Any]) -> list[list[str]]:
    """The data rows (after the three header rows) of a feed's uploaded document."""
    charset = re.search(r"charset=([^;\s]+)", feed["contentType"], re.IGNORECASE)
    codec = "cp932" if charset and charset.group(1).lower() == "shift_jis" else "utf-8"
    text = (feed["document"] or b"").decode(codec)
    return [line.split("\t") for line in text.splitlines()[3:] if line.strip()]


def feeds_per_order(feeds: Sequence[dict[str, Any]]) -> Counter[str]:
    """How many feeds at the sandbox hold each Amazon order id (item lines count once)."""
    counts: Counter[str] = Counter()
    for feed in feeds:
        counts.update({row[0] for row in feed_rows(feed)})
    return counts


class RemoteSandbox:
    """A sandbox in another process (``crossship sandbox serve``), driven over ``/_sandbox/``."""

    def __init__(self, process: subprocess.Popen, url: str):
        self.process = process
        self.url = url
        self.token_url = url + "/auth/o2/token"
        self.options = SandboxOptions()  # serve uses the default LWA credentials
        self.http = requests.Session()

    def _post(self, path: str, body: Any = None) -> None:
        answer = self.http.post(self.url + "/_sandbox/" + path, json=body or {}, timeout=10)
        assert answer.status_code == 200, answer.text

    def add_fault(self, operation: str, mode: str, **params: Any) -> None:
        self._post("faults", {"operation": operation, "mode": mode, **params})

    def release_hangs(self) -> None:
        self._post("release")

    def set_options(self, **changes: Any) -> None:
        self._post("options", changes)

    def known_orders(self, order_ids: Sequence[str] | None) -> None:
        self._post("known-orders", {"order_ids": None if order_ids is None else list(order_ids)})

    @property
    def calls(self) -> Counter[str]:
        return Counter(self.http.get(self.url + "/_sandbox/calls", timeout=10).json())

    def feeds(self) -> list[dict[str, Any]]:
        feeds = self.http.get(self.url + "/_sandbox/feeds", timeout=10).json()
        for feed in feeds:
            encoded = feed.pop("documentBase64")
            feed["document"] = base64.b64decode(encoded) if encoded is not None else None
        return feeds

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer("127.0.0.1", 0, SandboxOptions()) as server:
        yield server


@pytest.fixture
def serve_sandbox(tmp_path: Path) -> Iterator[Callable[..., RemoteSandbox]]:
    started: list[RemoteSandbox] = []

    def serve(*options: str) -> RemoteSandbox:
        process = subprocess.Popen(
            [*crossship_command(), "sandbox", "serve", "--port", "0", *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=os.environ | {"CROSSSHIP_DB": str(tmp_path / "serve.db")},
        )
        assert process.stderr is not None
        banner = process.stderr.readline()
        found = re.search(r"listening on (http://\S+)", banner)
        assert found, f"no banner from sandbox serve: {banner!r}"
        remote = RemoteSandbox(process, found.group(1))
        started.append(remote)
        return remote

    yield serve
    for remote in started:
        remote.stop()


# ------------------------------------------------------------------------------ SMTP


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


class SmtpSink:
    """Collects what crossship delivers; ``logins`` holds the (user, password) pairs tried."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.logins: list[tuple[str, str]] = []
        self.password: str | None = None  # None: any password is accepted
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, message))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((user, password))
        return AuthResult(success=self.password is None or password == self.password)

    def subjects(self) -> list[str]:
        return [m.subject for m in self.messages]

    def with_subject(self, subject: str) -> list[Received]:
        return [m for m in self.messages if m.subject == subject]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpSink]:
    """One SMTP server for the session, so its port can sit in the configuration template."""
    sink = SmtpSink()
    sink.port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        authenticator=sink.authenticate,
        auth_require_tls=False,
        ready_timeout=10,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp(smtp_server: SmtpSink) -> SmtpSink:
    """The session's SMTP server, emptied for this test."""
    smtp_server.messages.clear()
    smtp_server.logins.clear()
    smtp_server.password = None
    return smtp_server


# ------------------------------------------------------------------------------ the CLI


@dataclass
class Cx:
    """Runs the real ``crossship`` in a subprocess with the test's environment."""

    env: dict[str, str]
    calls: list[subprocess.CompletedProcess] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def derive(self, env: dict[str, str | None]) -> Cx:
        """Another runner with ``env`` changed (None removes), reaped with this one."""
        return Cx(self.environment(env), processes=self.processes)

    def command(self, args: Sequence[str]) -> list[str]:
        return [*crossship_command(), *map(str, args)]

    def environment(self, env: dict[str, str | None] | None) -> dict[str, str]:
        merged = dict(self.env)
        for name, value in (env or {}).items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        return merged

    def __call__(
        self,
        *args: Any,
        env: dict[str, str | None] | None = None,
        timeout: float = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.command(args),
            env=self.environment(env),
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        self.calls.append(done)
        assert "Traceback" not in done.stderr, f"crossship {args}: {done.stderr}"
        return done

    def ok(self, *args: Any, **kwargs: Any) -> subprocess.CompletedProcess:
        done = self(*args, **kwargs)
        assert done.returncode == 0, f"crossship {args} -> {done.returncode}: {done.stderr}"
        return done

    def jsonl(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        done = self.ok(*args, "--format", "jsonl", **kwargs)
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def popen(self, *args: Any, env: dict[str, str | None] | None = None) -> subprocess.Popen:
        process = subprocess.Popen(
            self.command(args),
            env=self.environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.processes.append(process)
        return process

    def reap(self) -> None:
        """Kill what a failed test left running (only the processes this helper started)."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate()


def sandbox_credentials(options: SandboxOptions, store: str = STORE) -> dict[str, str]:
    return {
        env_name(store, "LWA_CLIENT_ID"): options.client_id,
        env_name(store, "LWA_CLIENT_SECRET"): options.client_secret,
        env_name(store, "REFRESH_TOKEN"): options.refresh_token,
    }


@pytest.fixture
def cx_env(tmp_path: Path) -> dict[str, str]:
    """The environment of every crossship subprocess: this test's files, no CROSSSHIP_* leaks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSSHIP_")}
    env.update(
        CROSSSHIP_DB=str(tmp_path / "crossship.db"),
        CROSSSHIP_CREDENTIALS=str(tmp_path / "credentials.toml"),
        XDG_DATA_HOME=str(tmp_path),
        PYTHONIOENCODING="utf-8",
    )
    return env


@pytest.fixture
def cx(cx_env: dict[str, str], sandbox: SandboxServer) -> Iterator[Cx]:
    runner = Cx(cx_env | sandbox_credentials(sandbox.options))
    yield runner
    runner.reap()


# ------------------------------------------------------------------------------ configuration


def configuration_commands(endpoint: str, token_url: str, smtp_port: int) -> list[list[str]]:
    """What a new user types to configure crossship for amazon-main (SPEC §4, §10)."""
    return [
        ["init"],
        ["config", "phase", "create", "出荷待ち", "--ship-date", "optional"],
        ["config", "phase", "create", "出荷済み", "--ship-date", "required"],
        ["config", "phase", "create", "完了", "--ship-date", "optional"],
        ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "宅急便"],
        ["config", "carrier", "add", "佐川急便", "--amazon-carrier-code", "Sagawa Express",
         "--amazon-ship-method", "飛脚宅配便"],
        ["config", "carrier", "add", "日本郵便", "--amazon-carrier-code", "Japan Post"],
        ["config", "store", "add", STORE, "--mall", "amazon", "--endpoint", endpoint,
         "--token-url", token_url],
        ["config", "phase", "add", STORE, "出荷済み", "--move-to", "完了"],
        ["config", "mail", "set", "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_port),
         "--no-starttls", "--from", SENDER, "--admin", ADMIN,
         *(arg for address in NOTIFY for arg in ("--notify", address))],
        ["auto", "start", STORE],
    ]  # fmt: skip


@dataclass(frozen=True)
class Templates:
    configured: Path  # configuration only
    imported: Path  # configuration and make_orders() imported


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory, smtp_server: SmtpSink) -> Templates:
    """The configuration typed once per session through the CLI, with the store's endpoints at
    the discard port; each test copies a template and points the store at its own sandbox."""
    where = tmp_path_factory.mktemp("template")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSSHIP_")}
    env |= {"XDG_DATA_HOME": str(where), "CROSSSHIP_CREDENTIALS": str(where / "credentials.toml")}
    configured, imported = where / "configured.db", where / "imported.db"
    runner = Cx(env | {"CROSSSHIP_DB": str(configured)})
    placeholder = "http://127.0.0.1:9"
    for args in configuration_commands(
        placeholder, placeholder + "/auth/o2/token", smtp_server.port
    ):
        runner.ok(*args)
    shutil.copyfile(configured, imported)  # every process has ended: no -wal is left
    csv_path = write_orders_csv(where / "orders.csv", make_orders())
    Cx(env | {"CROSSSHIP_DB": str(imported)}).ok("orders", "import", csv_path)
    return Templates(configured, imported)


@dataclass
class E2E:
    """One configured end-to-end setup."""

    db: Path
    cx: Cx
    sandbox: Any  # SandboxServer or RemoteSandbox
    smtp: SmtpSink
    orders: list[dict[str, str]]
    csv_path: Path

    @property
    def order_nos(self) -> list[str]:
        return sorted({row["order_no"] for row in self.orders})

    @property
    def mall_order_ids(self) -> dict[str, str]:
        return {row["order_no"]: row["mall_order_id"] for row in self.orders}

    def order_rows(self) -> dict[str, dict[str, Any]]:
        return {o["order_no"]: o for o in self.cx.jsonl("orders", "list", "--store", STORE)}

    def history(self, *args: str) -> list[dict[str, Any]]:
        return self.cx.jsonl("history", *args)

    # reads straight from the database: assertions between runs without another process each
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def statuses(self) -> dict[str, str]:
        return dict(self.query("SELECT order_no, status FROM orders WHERE store = ?", (STORE,)))

    def batch_states(self) -> list[str]:
        return [state for (state,) in self.query("SELECT state FROM batches ORDER BY id")]

    def integrity(self) -> str:
        return self.query("PRAGMA integrity_check")[0][0]


def point_at(cx: Cx, sandbox: Any, *store_options: str) -> None:
    cx.ok(
        "config", "store", "set", STORE, "--endpoint", sandbox.url,
        "--token-url", sandbox.token_url, *store_options,
    )  # fmt: skip


def configure(
    tmp_path: Path,
    templates: Templates,
    cx: Cx,
    sandbox: Any,
    smtp: SmtpSink,
    orders: Sequence[dict[str, str]] | None = None,
    store_options: Sequence[str] = (),
) -> E2E:
    """A configured database pointed at ``sandbox``, with ``orders`` (default make_orders())."""
    db = Path(cx.env["CROSSSHIP_DB"])
    template = templates.imported if orders is None else templates.configured
    for suffix in ("", "-wal", "-shm"):
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, db.with_name(db.name + suffix))
    point_at(cx, sandbox, *store_options)
    rows = list(make_orders() if orders is None else orders)
    csv_path = write_orders_csv(tmp_path / "orders.csv", rows)
    if orders:
        cx.ok("orders", "import", csv_path)
    return E2E(db, cx, sandbox, smtp, rows, csv_path)


@pytest.fixture
def configured_db(
    tmp_path: Path, templates: Templates, cx: Cx, sandbox: SandboxServer, smtp: SmtpSink
) -> E2E:
    return configure(tmp_path, templates, cx, sandbox, smtp)
