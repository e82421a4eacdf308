"""One cron cycle for many stores (SPEC §16): 500 started Amazon stores × 10 orders.

    python bench/many_stores.py                        # 500 stores × 10 orders, 200 ms a call
    python bench/many_stores.py --stores 50 --no-serial  # a check in a few seconds

Each store is its own seller at the sandbox (refresh token `Atzr|sandbox-NAME`, its own feeds and
rate limits) with its own section in credentials.toml. The sandbox (`crossship sandbox serve
--latency-ms 200`, rate limits on, its own process) makes every answer wait 200 ms, a real
network's order of magnitude. Mail is configured and delivered to an SMTP sink in this process
(aiosmtpd), so each store's result mail is part of the cost.

From the same configured database, copied before each round, it runs the cycle as cron does
(`crossship -q notify run`, then `crossship -q results fetch`, both due: the stores never ran)
with crossship's default `--jobs`, then with `--jobs 1` (one store after another). Each command
is one `crossship` process; its wall time and peak RSS come from os.wait4 in a small launcher
process (bench/run.py's `measure`: this process's size must not leak into the child's
ru_maxrss), its Amazon calls from the sandbox's counters before and after, and every order must
end `success`. The load average is printed with each step: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Measure, Sandbox, copy_db, delta, measure, tool  # noqa: E402

from crossship.store import Store  # noqa: E402
from crossship.timeutil import to_db  # noqa: E402

TARGET_SECONDS = 60.0
TARGET_MB = 300
PHASE, MOVE_TO, CARRIER = "出荷済み", "完了", "ヤマト運輸"
SANDBOX_REFRESH_TOKEN = "Atzr|sandbox"  # SandboxOptions' default; a suffix makes a seller
CSV_HEADING = "管理番号,店舗,注文番号,処理フェーズ,管理区分,FBA,発送日,配送便,配送番号\n"


@dataclass
class Step:
    job: str
    jobs: str
    measure: Measure
    calls: dict[str, int]
    statuses: dict[str, int]
    mails: int
    load: float  # 1-minute load average when the step started
    notes: list[str] = field(default_factory=list)


def store_name(n: int) -> str:
    return f"shop-{n:03d}"


def write_orders(path: Path, stores: int, per_store: int) -> int:
    """The orders CSV (Japanese headings, as CROSS MALL's export): ``per_store`` shippable orders
    for each store, each with its own Amazon order id."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(CSV_HEADING)
        for s in range(stores):
            for k in range(per_store):
                n = s * per_store + k + 1
                mall_id = f"503-{n:07d}-{(n * 7919) % 10**7:07d}"
                out.write(
                    f"B{n:07d},{store_name(s)},{mall_id},{PHASE},通常,0,2026-11-30,{CARRIER},"
                    f"4014{n:08d}\n"
                )
                rows += 1
    return rows


def configure(
    crossship: list[str], env: dict[str, str], db: Path, sandbox: Sandbox, smtp_port: int | None
) -> None:
    """Phases, carrier and mail through the CLI; the stores through the Store class (500
    `config store add` processes would make the set-up the slow part); credentials per store."""
    steps = [
        ["init"],
        ["config", "phase", "create", PHASE, "--ship-date", "required"],
        ["config", "phase", "create", MOVE_TO, "--ship-date", "optional"],
        ["config", "carrier", "add", CARRIER, "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "宅急便"],
    ]  # fmt: skip
    if smtp_port:
        steps.append(
            ["config", "mail", "set", "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_port),
             "--no-starttls", "--from", "crossship@example.jp", "--admin", "admin@example.jp"]
        )  # fmt: skip
    for step in steps:
        subprocess.run([*crossship, *step], env=env, check=True, capture_output=True)


def add_stores(db: Path, credentials: Path, stores: int, sandbox: Sandbox) -> None:
    now = to_db(datetime.now(UTC))
    sections = []
    with Store(db) as store, store.atomic():
        for s in range(stores):
            name = store_name(s)
            values = {"endpoint": sandbox.url, "token_url": sandbox.url + "/auth/o2/token"}
            store.add_store(name, "amazon", values, now)
            store.add_target(name, PHASE, MOVE_TO)
            store.set_started(name, True)
            sections.append(
                f'[stores."{name}"]\nlwa_client_id = "sandbox-client"\n'
                f'lwa_client_secret = "sandbox-secret"\n'
                f'refresh_token = "{SANDBOX_REFRESH_TOKEN}-{name}"\n'
            )
    credentials.write_text("\n".join(sections), encoding="utf-8")
    credentials.chmod(0o600)


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        found = dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY status"))
    conn.close()
    return found


class SmtpSink:
    """aiosmtpd on a free port in this process, counting the mails delivered."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        handler = self

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                handler.count += 1
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd cannot listen on port 0
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=10
        )
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--orders-per-store", type=int, default=10)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument(
        "--jobs", type=int, help="the concurrent round's --jobs (default: none given)"
    )
    parser.add_argument("--no-serial", action="store_true", help="skip the --jobs 1 round")
    parser.add_argument("--no-mail", action="store_true", help="no mail configured")
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--profile", action="store_true", help="pyinstrument reports (slower)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crossship-many-"))
    work.mkdir(parents=True, exist_ok=True)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

    db, fresh, credentials = (
        work / "crossship.db",
        work / "configured.db",
        work / "credentials.toml",
    )
    for path in (db, fresh):
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSSHIP_")}
    env["CROSSSHIP_CREDENTIALS"] = str(credentials)
    crossship = [tool("crossship"), "--db", str(db)]
    smtp = None if args.no_mail else SmtpSink()
    sandbox = Sandbox([tool("crossship")], env, ("--latency-ms", str(args.latency_ms)))
    steps: list[Step] = []
    try:
        started = time.perf_counter()
        configure(crossship, env, db, sandbox, smtp.port if smtp else None)
        add_stores(db, credentials, args.stores, sandbox)
        orders_csv = work / "orders.csv"
        orders = write_orders(orders_csv, args.stores, args.orders_per_store)
        subprocess.run([*crossship, "-q", "orders", "import", str(orders_csv)], env=env, check=True)
        copy_db(db, fresh)
        say(
            f"{args.stores} stores, {orders} orders configured in "
            f"{time.perf_counter() - started:.1f}s ({work})"
        )

        rounds = [["--jobs", str(args.jobs)] if args.jobs else []]
        if not args.no_serial:
            rounds.append(["--jobs", "1"])
        for jobs in rounds:
            label = jobs[1] if jobs else "default (8)"
            copy_db(fresh, db)
            for job, words in (
                ("notify run", ["notify", "run"]),
                ("results fetch", ["results", "fetch"]),
            ):
                say(f"{job} --jobs {label} ...")
                load = os.getloadavg()[0]
                before, mailed = sandbox.calls(), smtp.count if smtp else 0
                command = [*crossship, "-q", *words, *jobs]
                if args.profile:
                    report = work / f"profile-{words[0]}-{jobs[1] if jobs else 'default'}.txt"
                    command = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o",
                               str(report), "-m", "crossship", *command[1:]]  # fmt: skip
                took = measure(command, env=env)
                steps.append(
                    Step(
                        job=job,
                        jobs=label,
                        measure=took,
                        calls=delta(before, sandbox.calls()),
                        statuses=statuses(db),
                        mails=(smtp.count - mailed) if smtp else 0,
                        load=load,
                    )
                )
                say(f"  {took.seconds:.1f}s, {took.peak_mb:.0f} MB, {steps[-1].statuses}")
    finally:
        sandbox.stop()
        if smtp:
            smtp.stop()

    table = []
    for s in steps:
        calls = sum(s.calls.values())
        every = s.job == "notify run" or s.statuses == {"success": orders}
        met = s.measure.seconds < TARGET_SECONDS and s.measure.peak_mb < TARGET_MB and every
        table.append(
            [
                s.job,
                s.jobs,
                f"{s.measure.seconds:.1f}",
                f"{s.measure.peak_mb:.0f}",
                calls,
                s.mails,
                ", ".join(f"{k} {v}" for k, v in sorted(s.statuses.items())),
                f"{s.load:.1f}",
                "yes" if met else "no",
            ]
        )
    print(
        f"{args.stores} stores × {args.orders_per_store} orders, {args.latency_ms} ms a call; "
        f"{os.cpu_count()} cores; Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
        + (" (profiled: times are not representative)" if args.profile else "")
    )
    print(
        tabulate(
            table,
            headers=[
                "job",
                "--jobs",
                "wall s",
                "peak MB",
                "Amazon calls",
                "mails",
                "order statuses after",
                "load",
                f"< {TARGET_SECONDS:g} s, < {TARGET_MB} MB",
            ],
            tablefmt="github",
        )  # fmt: skip
    )
    for s in steps:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(s.calls.items())) or "none"
        print(f"- {s.job} --jobs {s.jobs}: Amazon calls: {calls}")
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in steps], indent=1, ensure_ascii=False))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
