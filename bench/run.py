"""crossship against plain baselines, on a million orders (SPEC §11 "Fast").

    python bench/run.py                     # 1,000,000 orders, 100,000 eligible, 1,000,000 history
    python bench/run.py --quick             # 100,000 / 10,000 / 100,000: a check in a minute
    python bench/run.py --workdir /tmp/b --keep --profile   # keep files; pyinstrument reports

Each step is one `crossship` subprocess, timed beside its baseline in the same run:

- orders import of the generated CSV       vs `sqlite-utils insert db orders FILE --csv`
- notify run --force (against the sandbox) vs a sqlite3 script on a copy of the database as it was
  before: the same select, the same feed bytes, in_progress + history in one transaction
- results fetch --force (10% of the orders unknown to the sandbox, so ~10% Error rows)
                                           vs a script parsing the same reports, same updates
- history --format jsonl > /dev/null        vs `sqlite3 -json DB "select ... order by id desc"`
- history --format csv > /dev/null          vs `sqlite3 -csv -header DB "select ..."` (same select)

Wall time and peak RSS come from os.wait4 on each child (started by a small launcher process,
so that this one's size does not leak into the children's ru_maxrss); Amazon calls from the
sandbox (`crossship sandbox serve --no-rate-limits`, its own process) before and after each run.
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
import urllib.request
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SANDBOX_SECRETS = {  # the sandbox's own LWA credentials (SandboxOptions' defaults)
    "CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_ID": "sandbox-client",
    "CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_SECRET": "sandbox-secret",
    "CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN": "Atzr|sandbox",
}
TARGETS = {  # step -> (max ratio to its baseline, max peak MB)
    "orders import": (2.0, None),
    "notify run": (3.0, 300),
    "results fetch": (3.0, 300),
    "history --format jsonl": (2.0, 100),
    "history --format csv": (2.0, 100),
}
HISTORY_JSON_SQL = (
    "SELECT time, store, order_no, mall_order_id, batch_id, feed_id, status, "
    "CASE status WHEN 'pending' THEN '未連携' WHEN 'in_progress' THEN '連携中' "
    "WHEN 'success' THEN '正常' WHEN 'notify_failed' THEN '通知失敗' "
    "WHEN 'result_failed' THEN '通知結果取得失敗' WHEN 'error' THEN 'エラー' END AS status_label, "
    "warning, message, source, operator FROM history ORDER BY id DESC"
)


@dataclass
class Measure:
    seconds: float
    peak_mb: float
    code: int


@dataclass
class Step:
    name: str
    crossship: Measure
    baseline: Measure
    baseline_label: str
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.crossship.seconds / self.baseline.seconds


def tool(name: str) -> str:
    """A console script of this virtualenv, else the one on PATH."""
    here = BIN / name
    return str(here) if here.exists() else (shutil.which(name) or name)


# A child's ru_maxrss starts at the peak of the process it was forked from (the kernel keeps the
# old memory's high-water mark across exec), so this process, which grows, never starts the
# measured command itself: a small launcher started afresh does, and reports its child's numbers.
LAUNCHER = """
import os, subprocess, sys, time
with open(sys.argv[1], "wb") as out:
    start = time.perf_counter()
    child = subprocess.Popen(sys.argv[2:], stdout=out)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
print(seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    stdout_path: str = os.devnull,
    ok: tuple[int, ...] = (0,),
) -> Measure:
    """Run one child; its own wall time and peak RSS (ru_maxrss from wait4 in the launcher)."""
    with tempfile.TemporaryFile() as err:
        launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, stdout_path, *args]
        done = subprocess.run(launcher, stdout=subprocess.PIPE, stderr=err, env=env, check=True)
        seconds, max_kb, code = done.stdout.split()
        err.seek(0)
        talk = err.read().decode(errors="replace")
    if int(code) not in ok:
        sys.exit(f"`{' '.join(args)}` exited {code}:\n{talk[-3000:]}")
    return Measure(float(seconds), int(max_kb) / 1024, int(code))


class Sandbox:
    """`crossship sandbox serve OPTIONS` (default `--no-rate-limits`) on a free port, in its own
    process."""

    def __init__(
        self,
        crossship: list[str],
        env: dict[str, str],
        options: tuple[str, ...] = ("--no-rate-limits",),
    ):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*crossship, "sandbox", "serve", *options, "--port", str(self.port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                self.calls()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the sandbox did not start")

    def _call(self, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST" if data else "GET"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=600) as answer:
            return json.loads(answer.read())

    def calls(self) -> dict[str, int]:
        return dict(self._call("/_sandbox/calls"))  # type: ignore[arg-type]

    def know(self, order_ids: list[str]) -> None:
        self._call("/_sandbox/known-orders", {"order_ids": order_ids})

    def feeds(self) -> list[dict]:
        """Every feed with its report (asking processes them, as Amazon does on its own time)."""
        return list(self._call("/_sandbox/feeds"))  # type: ignore[arg-type]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    changed = {k: after[k] - before.get(k, 0) for k in after}
    return {k: n for k, n in changed.items() if n}


def connect(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def copy_db(source: Path, target: Path) -> None:
    """A consistent copy (the WAL folded in first)."""
    with connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)


def configure(crossship: list[str], env: dict[str, str], sandbox: Sandbox) -> None:
    """The database set up the way a user does it: through the CLI."""
    steps = [["init"]]
    for phase, ship_date in generate.PHASES.items():
        steps.append(["config", "phase", "create", phase, "--ship-date", ship_date])
    for name, (code, method) in generate.CARRIERS.items():
        steps.append(
            ["config", "carrier", "add", name, "--amazon-carrier-code", code,
             "--amazon-ship-method", method]
        )  # fmt: skip
    steps.append(
        ["config", "store", "add", generate.STORE, "--mall", "amazon", "--endpoint", sandbox.url,
         "--token-url", sandbox.url + "/auth/o2/token"]
    )  # fmt: skip
    for name, mall in generate.OTHER_STORES.items():
        needed = ["--seller-id", "benchshop"] if mall == "yahoo" else []  # a required setting
        steps.append(["config", "store", "add", name, "--mall", mall, *needed])
    steps.append(["config", "phase", "add", generate.STORE, generate.TARGET, "--move-to",
                  generate.MOVE_TO])  # fmt: skip
    steps.append(["auto", "start", generate.STORE])
    for step in steps:
        subprocess.run([*crossship, *step], env=env, check=True, capture_output=True)


def top_up_history(db: Path, rows: int) -> int:
    """Add history rows (copies of order events, older than the runs' own) up to ``rows``."""
    with connect(db) as conn:
        have = conn.execute("SELECT count(*) FROM history").fetchone()[0]
        need = rows - have
        while need > 0:
            conn.execute(
                "INSERT INTO history (time, store, order_no, mall_order_id, batch_id, feed_id, "
                "status, warning, message, source, operator) "
                "SELECT strftime('%Y-%m-%dT%H:%M:%S', '2026-05-01', (rowid % 15000000) || "
                "' seconds') || '.000000+00:00', store, order_no, mall_order_id, NULL, NULL, "
                "CASE rowid % 4 WHEN 0 THEN 'in_progress' WHEN 1 THEN 'success' WHEN 2 THEN "
                "'pending' ELSE 'error' END, rowid % 50 = 0, CASE rowid % 4 WHEN 3 THEN "
                "'18028: Your order cannot be found' END, CASE rowid % 10 WHEN 0 THEN 'manual' "
                "ELSE 'auto' END, CASE rowid % 10 WHEN 0 THEN 'yamada' END FROM orders LIMIT ?",
                [need],
            )
            need = rows - conn.execute("SELECT count(*) FROM history").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return conn.execute("SELECT count(*) FROM history").fetchone()[0]


def feed_data_rows(db: Path) -> list[bytes]:
    with connect(db) as conn:
        feeds = [f for (f,) in conn.execute("SELECT feed FROM batches ORDER BY id")]
    return [line for f in feeds for line in f.split(b"\n")[3:] if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--eligible", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=1_000_000, help="history rows to list")
    parser.add_argument("--quick", action="store_true", help="100k orders, 10k eligible")
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the workdir's databases")
    parser.add_argument(
        "--profile", action="store_true", help="run crossship under pyinstrument (slower)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.eligible, args.history = 100_000, 10_000, 100_000
    work = args.workdir or Path(tempfile.mkdtemp(prefix="crossship-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731

    csv_path = work / f"orders-{args.orders}-{args.eligible}.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        rows = generate.write(csv_path, args.orders, args.eligible)
        say(f"generated {csv_path} ({rows} rows) in {time.perf_counter() - started:.1f}s")

    db = work / "crossship.db"
    for name in ("crossship.db", "baseline-import.db", "before-notify.db", "before-results.db"):
        for suffix in ("", "-wal", "-shm", ".lock"):
            (work / (name + suffix)).unlink(missing_ok=True)
    env = {**os.environ, **SANDBOX_SECRETS, "CROSSSHIP_CREDENTIALS": str(work / "none.toml")}
    env.pop("CROSSSHIP_DB", None)
    crossship = [tool("crossship"), "--db", str(db)]

    def run(step: str, *words: str, ok: tuple[int, ...] = (0,)) -> Measure:
        """One crossship command, timed (under pyinstrument with --profile)."""
        if not args.profile:
            return measure([*crossship, *words], env=env, ok=ok)
        report = str(work / f"profile-{step}.txt")
        profiler = [sys.executable, "-m", "pyinstrument", "-r", "text", "--show-all", "-o", report]
        return measure([*profiler, "-m", "crossship", "--db", str(db), *words], env=env, ok=ok)

    sandbox = Sandbox([tool("crossship")], env)
    steps: list[Step] = []
    try:
        configure(crossship, env, sandbox)
        sandbox.know(generate.known_order_ids(args.orders, args.eligible))

        say("orders import ...")
        ours = run("import", "-q", "orders", "import", str(csv_path))
        base = measure(
            [tool("sqlite-utils"), "insert", str(work / "baseline-import.db"), "orders",
             str(csv_path), "--csv"]
        )  # fmt: skip
        steps.append(Step("orders import", ours, base, "sqlite-utils insert --csv"))

        say("notify run ...")
        copy_db(db, work / "before-notify.db")
        before = sandbox.calls()
        ours = run("notify", "-q", "notify", "run", "--force")
        calls = delta(before, sandbox.calls())
        feed = work / "baseline-feed.tsv"
        base = measure(
            [sys.executable, str(BENCH / "baseline.py"), "notify", str(work / "before-notify.db"),
             str(feed)]
        )  # fmt: skip
        steps.append(Step("notify run", ours, base, "sqlite3 script: select, TSV, update", calls))
        sent = feed_data_rows(db)
        expected = [line for line in feed.read_bytes().split(b"\n")[3:] if line]
        if sent != expected:
            sys.exit(f"the feeds differ from the baseline's: {len(sent)} vs {len(expected)} rows")

        say("results fetch ...")
        reports = []
        with connect(db) as conn:
            batch_of = dict(conn.execute("SELECT feed_id, id FROM batches"))
        for feed_info in sandbox.feeds():  # processed now, as Amazon would before we ask
            path = work / f"report-{feed_info['feedId']}.txt"
            path.write_text(feed_info["report"], encoding="utf-8")
            reports.append(f"{batch_of[feed_info['feedId']]}={path}")
        copy_db(db, work / "before-results.db")
        before = sandbox.calls()
        # exit 1: the orders Amazon did not know end エラー, and need someone (as they should)
        ours = run("results", "-q", "results", "fetch", "--force", ok=(0, 1))
        calls = delta(before, sandbox.calls())
        base = measure(
            [sys.executable, str(BENCH / "baseline.py"), "results",
             str(work / "before-results.db"), *reports]
        )  # fmt: skip
        steps.append(Step("results fetch", ours, base, "sqlite3 script: parse, update", calls))
        with connect(db) as conn:
            statuses = dict(conn.execute("SELECT status, count(*) FROM orders GROUP BY status"))
        say(f"statuses after results: {statuses}")

        say("history ...")
        rows = top_up_history(db, args.history)
        ours = run("history", "history", "--format", "jsonl")
        if shutil.which("sqlite3"):
            base = measure(["sqlite3", "-json", str(db), HISTORY_JSON_SQL])
            label = "sqlite3 -json"
        else:
            base = measure([sys.executable, str(BENCH / "baseline.py"), "history", str(db)])
            label = "python sqlite3 + json (no sqlite3 CLI)"
        steps.append(Step("history --format jsonl", ours, base, f"{label} ({rows} rows)"))
        ours = run("history-csv", "history", "--format", "csv")
        if shutil.which("sqlite3"):
            base = measure(["sqlite3", "-csv", "-header", str(db), HISTORY_JSON_SQL])
            label = "sqlite3 -csv -header"
        else:
            base = measure([sys.executable, str(BENCH / "baseline.py"), "history-csv", str(db)])
            label = "python sqlite3 + csv (no sqlite3 CLI)"
        steps.append(Step("history --format csv", ours, base, f"{label} ({rows} rows)"))
    finally:
        sandbox.stop()

    table = []
    for s in steps:
        limit, max_mb = TARGETS[s.name]
        met = s.ratio <= limit and (max_mb is None or s.crossship.peak_mb < max_mb)
        table.append(
            [
                s.name,
                f"{s.crossship.seconds:.2f}",
                f"{s.baseline.seconds:.2f}",
                f"{s.ratio:.2f}",
                f"{s.crossship.peak_mb:.0f}",
                f"{s.baseline.peak_mb:.0f}",
                sum(s.calls.values()),
                f"≤{limit:g}x" + (f", <{max_mb} MB" if max_mb else ""),
                "yes" if met else "NO",
            ]
        )
    print(
        f"{args.orders:,} orders ({args.eligible:,} eligible), {args.history:,} history rows; "
        f"{os.cpu_count()} cores; Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
        + (" (profiled: times are not representative)" if args.profile else "")
    )
    print(
        tabulate(
            table,
            headers=[
                "step",
                "crossship s",
                "baseline s",
                "ratio",
                "crossship peak MB",
                "baseline peak MB",
                "calls",
                "target",
                "met",
            ],
            tablefmt="github",
        )  # fmt: skip
    )
    for s in steps:
        calls = ", ".join(f"{k} {v}" for k, v in sorted(s.calls.items())) or "none"
        print(f"- {s.name}: baseline {s.baseline_label}; Amazon calls: {calls}")
    if args.json:
        args.json.write_text(json.dumps([asdict(s) | {"ratio": s.ratio} for s in steps], indent=1))
    if args.profile:
        print(f"profiles: {work}/profile-*.txt")
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
