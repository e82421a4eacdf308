"""`crossship init`, `config store|phase|carrier|mail` and `auto start|stop|status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossship import settings
from crossship.store import Store

# every command but init needs a database: these tests start from an initialised one
pytestmark = pytest.mark.usefixtures("initialised")

SETUP_SH = Path(__file__).resolve().parent.parent / "examples" / "setup.sh"


def one_error(result) -> str:
    """The single ``Error:`` line of a failed command (and no traceback)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


# ----------------------------------------------------------------------------- init


def test_init_creates_the_database_and_is_idempotent(run, tmp_path):
    db_path = tmp_path / "fresh.db"
    first = run(["--db", str(db_path), "init"], catch=False)
    assert first.exit_code == 0
    assert first.stdout == ""
    assert f"Database created: {db_path}" in first.stderr
    assert "0001_initial" in first.stderr
    assert db_path.exists()
    again = run(["--db", str(db_path), "init"], catch=False)
    assert again.exit_code == 0
    assert "up to date" in again.stderr


def test_init_quiet_says_nothing(run):
    result = run("-q init", catch=False)
    assert result.exit_code == 0
    assert result.stdout == result.stderr == ""


def test_init_honours_db_option(run, tmp_path):
    other = tmp_path / "sub" / "other.db"
    result = run(["--db", str(other), "init"], catch=False)
    assert result.exit_code == 0
    assert other.exists()


def test_a_file_that_is_not_a_database_is_one_error(run, db_path):
    db_path.write_text("not sqlite at all, just text " * 100)
    result = run("init")
    assert result.exit_code == 1
    assert "cannot open database" in one_error(result)


# ----------------------------------------------------------------------------- stores


def test_store_add_amazon_gets_japan_defaults(run, store):
    result = run("config store add amazon-main --mall amazon --seller-id A2SELLER", catch=False)
    assert result.exit_code == 0, result.stderr
    assert "amazon-main added" in result.stderr
    assert "CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_ID" in result.stderr  # says what is still missing
    row = store.get_store("amazon-main")
    assert row["marketplace_id"] == "A1VC38T7YXB528"
    assert row["endpoint"] == "https://sellingpartnerapi-fe.amazon.com"
    assert row["token_url"] == "https://api.amazon.com/auth/o2/token"
    assert row["seller_id"] == "A2SELLER"
    assert row["started"] == 0
    assert row["interval_minutes"] == 15 and row["result_deadline_hours"] == 24


def test_store_add_all_options(run, store, tmp_path):
    template = tmp_path / "feed.tsv.j2"
    template.write_text("{{ rows }}", encoding="utf-8")
    result = run(
        [
            "config", "store", "add", "amz2", "--mall", "amazon",
            "--marketplace-id", "A1VC38T7YXB528", "--endpoint", "http://127.0.0.1:8765",
            "--token-url", "http://localhost:8765/auth/o2/token", "--encoding", "cp932",
            "--interval", "30", "--result-deadline", "48", "--template", str(template),
        ],
        catch=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    row = store.get_store("amz2")
    assert row["endpoint"] == "http://127.0.0.1:8765"
    assert row["encoding"] == "cp932"
    assert (row["interval_minutes"], row["result_deadline_hours"]) == (30, 48)
    assert row["template"] == str(template.resolve())


@pytest.mark.parametrize(
    "url",
    [
        "http://sellingpartnerapi-fe.amazon.com",
        "http://10.0.0.5:8000",
        "ftp://127.0.0.1/",
        "not a url",
        "http://127.0.0.1:99999",
    ],
)
def test_store_add_refuses_unsafe_endpoints_before_storing(run, store, url):
    result = run(["config", "store", "add", "amz", "--mall", "amazon", "--endpoint", url])
    assert result.exit_code == 2
    assert "--endpoint" in one_error(result)
    assert store.list_stores() == []


@pytest.mark.parametrize(
    "url", ["https://example.com", "http://127.0.0.1:8000", "http://[::1]:80/x", "http://localhost"]
)
def test_check_url_accepts_https_and_loopback(url):
    assert settings.check_url(url, "--endpoint") == url


def test_store_add_twice_and_bad_values(run):
    assert run("config store add s1 --mall amazon").exit_code == 0
    again = run("config store add s1 --mall amazon")
    assert again.exit_code == 2
    assert "already exists" in one_error(again)
    bad_mall = run("config store add s2 --mall ebay")
    assert bad_mall.exit_code == 2
    assert "Traceback" not in bad_mall.stderr
    missing_mall = run("config store add s2")
    assert missing_mall.exit_code == 2
    assert run("config store add s3 --mall amazon --interval 0").exit_code == 2
    no_template = run("config store add s4 --mall amazon --template /nonexistent.j2")
    assert no_template.exit_code == 2
    assert "no such file" in one_error(no_template)


def test_store_set_list_show(run, store):
    run("config store add amazon-main --mall amazon", catch=False)
    run("config store add rakuten-shop --mall rakuten", catch=False)
    changed = run("config store set amazon-main --interval 30 --encoding cp932", catch=False)
    assert changed.exit_code == 0
    assert store.get_store("amazon-main")["interval_minutes"] == 30
    nothing = run("config store set amazon-main")
    assert nothing.exit_code == 2
    assert "nothing to change" in one_error(nothing)
    unknown = run("config store set nosuch --interval 5")
    assert unknown.exit_code == 2
    assert "no store named 'nosuch'" in one_error(unknown)
    refused = run("config store set amazon-main --endpoint http://example.com")
    assert refused.exit_code == 2
    assert store.get_store("amazon-main")["endpoint"].startswith("https://")

    listed = run("config store list --format json", catch=False)
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["amazon-main", "rakuten-shop"]
    assert rows[0]["interval_minutes"] == 30 and rows[0]["automatic"] == "stopped"
    table = run("config store list", catch=False)
    assert "amazon-main" in table.stdout and "rakuten-shop" in table.stdout

    shown = run("config store show amazon-main --format json", catch=False)
    record = json.loads(shown.stdout)
    assert record["encoding"] == "cp932"
    assert record["lwa_client_id"].startswith("not set")
    assert run("config store show nosuch").exit_code == 2


def test_store_show_tells_where_secrets_come_from_never_their_value(run, credentials, monkeypatch):
    run("config store add amazon-main --mall amazon", catch=False)
    credentials.write_text(
        '[stores.amazon-main]\nlwa_client_id = "amzn1.application-oa2-client.FILEVALUE"\n'
        'lwa_client_secret = "FILESECRET"\n',
        encoding="utf-8",
    )
    credentials.chmod(0o600)
    monkeypatch.setenv("CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_SECRET", "ENVSECRET")
    result = run("config store show amazon-main", catch=False)
    assert result.exit_code == 0
    out = result.stdout + result.stderr
    for secret in ("FILEVALUE", "FILESECRET", "ENVSECRET"):
        assert secret not in out
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert f"set (file {credentials})" in lines["lwa_client_id"]
    assert "set (env CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_SECRET)" in lines["lwa_client_secret"]
    assert "not set" in lines["refresh_token"]


def test_store_show_refuses_a_credentials_file_others_can_read(run, credentials):
    run("config store add amazon-main --mall amazon", catch=False)
    credentials.write_text('[stores.amazon-main]\nrefresh_token = "Atzr|x"\n')
    credentials.chmod(0o644)
    result = run("config store show amazon-main")
    assert result.exit_code == 1
    assert f"run chmod 600 {credentials}" in one_error(result)


# ----------------------------------------------------------------------------- phases


def test_phase_create_update_list(run, store):
    assert run("config phase create 出荷済み", catch=False).exit_code == 0
    assert store.get_phase("出荷済み")["ship_date"] == "required"  # default
    assert run("config phase create 完了 --ship-date optional", catch=False).exit_code == 0
    again = run("config phase create 完了")
    assert again.exit_code == 2
    assert "already exists" in one_error(again)
    assert run("config phase create X --ship-date sometimes").exit_code == 2
    assert run("config phase update 完了 --ship-date required", catch=False).exit_code == 0
    assert store.get_phase("完了")["ship_date"] == "required"
    unknown = run("config phase update nosuch --ship-date required")
    assert unknown.exit_code == 2
    assert "no phase named 'nosuch'" in one_error(unknown)
    assert run("config phase update 完了").exit_code == 2  # --ship-date is required
    listed = json.loads(run("config phase list --format json", catch=False).stdout)
    assert [(p["name"], p["ship_date"], p["ship_date_label"]) for p in listed] == [
        ("出荷済み", "required", "必須"),
        ("完了", "required", "必須"),
    ]


def test_phase_add_optional_warns_and_starts_nothing(run, store):
    run("config store add amazon-main --mall amazon", catch=False)
    run("config phase create 出荷待ち --ship-date optional", catch=False)
    result = run("config phase add amazon-main 出荷待ち", catch=False)
    assert result.exit_code == 0
    assert "Warning: " in result.stderr
    assert settings.optional_phase_warning("出荷待ち") in result.stderr
    assert "crossship auto start amazon-main" in result.stderr
    assert store.get_store("amazon-main")["started"] == 0
    assert store.list_targets("amazon-main")[0]["phase"] == "出荷待ち"


def test_phase_add_required_does_not_warn(run):
    run("config store add amazon-main --mall amazon", catch=False)
    run("config phase create 出荷済み", catch=False)
    run("config phase create 完了 --ship-date optional", catch=False)
    result = run("config phase add amazon-main 出荷済み --move-to 完了", catch=False)
    assert result.exit_code == 0
    assert "Warning" not in result.stderr
    assert "moving to 完了" in result.stderr


def test_phase_update_to_optional_warns_when_it_is_a_target(run, configured):
    result = run("config phase update 出荷済み --ship-date optional", catch=False)
    assert result.exit_code == 0
    assert "Warning: phase '出荷済み' has ship-date setting optional" in result.stderr


def test_phase_add_errors(run, configured):
    for args, text in [
        ("config phase add nosuch 出荷済み", "no store named"),
        ("config phase add amazon-main nosuch", "no phase named"),
        ("config phase add amazon-main 出荷済み --move-to nosuch", "no phase named"),
        ("config phase add amazon-main 出荷済み --move-to 出荷済み", "another phase"),
    ]:
        result = run(args)
        assert result.exit_code == 2, args
        assert text in one_error(result)


def test_phase_remove_and_list_targets(run, configured, store):
    targets = json.loads(run("config phase list --targets --format json", catch=False).stdout)
    assert targets == [
        {"store": "amazon-main", "phase": "出荷済み", "move_to": "完了", "ship_date": "required"}
    ]
    listed = json.loads(run("config phase list --format json", catch=False).stdout)
    assert {p["name"]: p["target_of"] for p in listed}["出荷済み"] == "amazon-main → 完了"
    assert run("config phase remove amazon-main 出荷済み", catch=False).exit_code == 0
    assert store.list_targets() == []
    again = run("config phase remove amazon-main 出荷済み")
    assert again.exit_code == 2
    assert "not a target phase" in one_error(again)


# ----------------------------------------------------------------------------- carriers


def test_carrier_add_is_an_upsert(run, store):
    result = run(
        ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "宅急便"],
        catch=False,
    )  # fmt: skip
    assert result.exit_code == 0
    assert "Warning" not in result.stderr
    again = run(
        ["config", "carrier", "add", "ヤマト運輸", "--amazon-carrier-code", "Yamato Transport",
         "--amazon-ship-method", "ネコポス"],
        catch=False,
    )  # fmt: skip
    assert "updated" in again.stderr
    assert store.get_carrier("ヤマト運輸")["amazon_ship_method"] == "ネコポス"
    assert len(store.list_carriers()) == 1


def test_carrier_without_ship_method_warns_seed_q2(run):
    result = run(["config", "carrier", "add", "日本郵便", "--amazon-carrier-code", "Japan Post"])
    assert result.exit_code == 0
    assert "Warning: carrier '日本郵便' has no Amazon ship-method" in result.stderr


def test_carrier_other_needs_a_name(run, store):
    result = run("config carrier add 西濃運輸 --amazon-carrier-code Other")
    assert result.exit_code == 2
    assert "--amazon-carrier-name" in one_error(result)
    assert store.list_carriers() == []
    ok = run(
        ["config", "carrier", "add", "西濃運輸", "--amazon-carrier-code", "Other",
         "--amazon-carrier-name", "西濃運輸", "--amazon-ship-method", "カンガルー便"]
    )  # fmt: skip
    assert ok.exit_code == 0
    assert run("config carrier add X").exit_code == 2  # --amazon-carrier-code is required


def test_carrier_list_formats(run, configured):
    rows = json.loads(run("config carrier list --format json", catch=False).stdout)
    assert [r["name"] for r in rows] == ["ヤマト運輸", "佐川急便", "日本郵便"]
    assert rows[2]["amazon_ship_method"] is None
    csv_out = run("config carrier list --format csv", catch=False).stdout.splitlines()
    # every installed mall's code columns follow Amazon's, in the registry's order
    assert csv_out[0] == (
        "name,amazon_carrier_code,amazon_carrier_name,amazon_ship_method,"
        "rakuten_delivery_company,yahoo_ship_company,yahoo_no_tracking_reason"
    )
    assert csv_out[1] == "ヤマト運輸,Yamato Transport,,宅急便,,,"


# ----------------------------------------------------------------------------- mail


def test_mail_set_and_show(run, store, credentials):
    result = run(
        "config mail set --smtp-host mail.example.jp --smtp-port 587 --smtp-user crossship "
        "--starttls --from crossship@example.jp --admin admin@example.jp "
        "--notify a@example.jp --notify b@example.jp",
        catch=False,
    )
    assert result.exit_code == 0, result.stderr
    assert store.get_settings("mail") == {
        "smtp_host": "mail.example.jp",
        "smtp_port": 587,
        "smtp_user": "crossship",
        "starttls": True,
        "from": "crossship@example.jp",
        "admin": "admin@example.jp",
        "notify": ["a@example.jp", "b@example.jp"],
    }
    shown = json.loads(run("config mail show --format json", catch=False).stdout)
    assert shown["smtp_password"].startswith("not set")
    credentials.write_text('[smtp]\npassword = "hunter2-secret"\n')
    credentials.chmod(0o600)
    shown = run("config mail show", catch=False)
    assert "hunter2-secret" not in shown.stdout + shown.stderr
    assert f"set (file {credentials})" in shown.stdout
    # only what is given changes
    run("config mail set --no-starttls --clear-notify", catch=False)
    values = store.get_settings("mail")
    assert values["starttls"] is False and values["notify"] == []
    assert values["smtp_host"] == "mail.example.jp"


def test_mail_set_checks_addresses_and_needs_an_option(run, store):
    for args in (
        "config mail set --admin not-an-address",
        "config mail set --from 'two words'",
        "config mail set --notify ok@example.jp --notify nope",
        "config mail set --smtp-port 70000",
        "config mail set",
    ):
        result = run(args)
        assert result.exit_code == 2, args
        one_error(result)
    assert store.get_settings("mail") == {}


def test_mail_set_warns_when_incomplete(run):
    result = run("config mail set --admin admin@example.jp", catch=False)
    assert result.exit_code == 0
    assert "Warning: no result mail is sent" in result.stderr


def test_mail_show_defaults(run):
    shown = json.loads(run("config mail show --format json", catch=False).stdout)
    assert shown["smtp_port"] == 25 and shown["notify"] == [] and shown["smtp_host"] is None


# ----------------------------------------------------------------------------- auto


def test_auto_start_stop(run, store):
    run("config store add amazon-main --mall amazon", catch=False)
    started = run("auto start amazon-main", catch=False)
    assert started.exit_code == 0
    assert "Warning: store amazon-main has no target phase" in started.stderr
    assert store.get_store("amazon-main")["started"] == 1
    stopped = run("auto stop amazon-main", catch=False)
    assert stopped.exit_code == 0
    assert store.get_store("amazon-main")["started"] == 0
    for args in ("auto start nosuch", "auto stop nosuch", "auto start"):
        result = run(args)
        assert result.exit_code == 2
        assert "Traceback" not in result.stderr


def test_auto_status(run, imported, store):
    now = "2026-11-27T00:00:00.000000+00:00"
    store.record_run(
        store="amazon-main", job="notify", started_at=now, finished_at=now, outcome="ok",
        summary={},
    )  # fmt: skip
    result = run("auto status --format json", catch=False)
    rows = {r["store"]: r for r in json.loads(result.stdout)}
    main = rows["amazon-main"]
    assert main["automatic"] == "started"
    assert main["target_phases"] == "出荷済み → 完了"
    assert main["last_notify"].startswith("2026-11-27") and main["last_notify_outcome"] == "ok"
    assert main["last_results"] == ""
    assert main["batches_in_flight"] == 0
    assert main["pending"] == 16 and main["error"] == 0
    assert rows["rakuten-shop"]["automatic"] == "stopped"
    table = run("auto status", catch=False).stdout
    assert "未連携" in table and "amazon-main" in table
    one = json.loads(run("auto status --store rakuten-shop --format json", catch=False).stdout)
    assert [r["store"] for r in one] == ["rakuten-shop"]


# ----------------------------------------------------------------------------- setup.sh


def test_configured_fixture_matches_setup_sh(configured, store):
    assert [p["name"] for p in store.list_phases()] == ["新規受付", "出荷待ち", "出荷済み", "完了"]
    assert [c["name"] for c in store.list_carriers()] == ["ヤマト運輸", "佐川急便", "日本郵便"]
    assert [(s["name"], s["mall"], s["started"]) for s in store.list_stores()] == [
        ("amazon-main", "amazon", 1),
        ("rakuten-shop", "rakuten", 0),
    ]
    assert store.get_settings("mail")["smtp_port"] == 1025


def test_setup_sh_runs_in_bash_and_again(tmp_path):
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if subprocess.run(["which", "crossship"], env=env, capture_output=True).returncode:
        pytest.skip("the crossship script is not installed beside this Python")
    for _ in range(2):
        done = subprocess.run(["bash", str(SETUP_SH)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert "already configured" in done.stderr
    with Store(tmp_path / "crossship.db") as opened:
        assert opened.get_store("amazon-main")["started"] == 1


def test_a_database_held_by_another_writer_is_one_error_line_not_a_traceback(tmp_path):
    """Another process keeps the write lock past the busy timeout: one Error line, exit 1."""
    import sqlite3 as sqlite

    db = tmp_path / "busy.db"
    Store(db).close()
    holder = sqlite.connect(str(db))
    holder.execute("BEGIN IMMEDIATE")
    try:
        env = dict(os.environ, CROSSSHIP_DB=str(db))
        # a short busy timeout so the test does not wait the default 30 s
        code = (
            "import crossship.store as s; s.BUSY_TIMEOUT_MS = 200; "
            "from crossship.cli import main; main()"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, "config", "phase", "create", "x"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: database ")
    assert "another crossship command is writing" in done.stderr
