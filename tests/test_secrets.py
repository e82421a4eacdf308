"""crossship.secrets: environment first, then a credentials file only its owner can read."""

from __future__ import annotations

import os

import pytest

from crossship.amazon import MALL
from crossship.errors import ConfigError
from crossship.secrets import env_name, smtp_password, store_secrets

FILE = """\
[stores.amazon-main]
lwa_client_id = "amzn1.application-oa2-client.file"
lwa_client_secret = "file-secret"
refresh_token = "Atzr|file-token"

[smtp]
password = "file-smtp"
"""


@pytest.fixture
def secrets_file(credentials):
    credentials.write_text(FILE, encoding="utf-8")
    credentials.chmod(0o600)
    return credentials


def test_env_names():
    assert env_name("amazon-main", "LWA_CLIENT_ID") == "CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_ID"
    assert env_name("shop.jp 2", "REFRESH_TOKEN") == "CROSSSHIP_SHOP_JP_2_REFRESH_TOKEN"
    assert env_name("店舗", "REFRESH_TOKEN") == "CROSSSHIP____REFRESH_TOKEN"


def test_nothing_set(db_path):
    found = store_secrets("amazon-main", db_path, MALL.secrets)
    assert (found.client_id, found.client_secret, found.refresh_token) == (None, None, None)
    missing = found.missing()
    assert len(missing) == 3
    assert missing[0].startswith("CROSSSHIP_AMAZON_MAIN_LWA_CLIENT_ID or lwa_client_id")
    assert smtp_password(db_path) is None


def test_file_0600_is_read(secrets_file, db_path):
    found = store_secrets("amazon-main", db_path, MALL.secrets)
    assert found.client_id == "amzn1.application-oa2-client.file"
    assert found.client_secret == "file-secret"
    assert found.refresh_token == "Atzr|file-token"
    assert found.missing() == []
    assert found.sources["client_id"] == f"file {secrets_file}"
    assert smtp_password(db_path) == "file-smtp"


def test_file_beside_the_database_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CROSSSHIP_CREDENTIALS")
    db = tmp_path / "data" / "crossship.db"
    db.parent.mkdir()
    path = db.parent / "credentials.toml"
    path.write_text(FILE)
    path.chmod(0o600)
    assert store_secrets("amazon-main", db, MALL.secrets).refresh_token == "Atzr|file-token"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_file_readable_by_others_is_refused(secrets_file, db_path, mode):
    secrets_file.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        store_secrets("amazon-main", db_path, MALL.secrets)
    assert caught.value.message == (
        f"credentials file {secrets_file} is readable by others: run chmod 600 {secrets_file}"
    )
    with pytest.raises(ConfigError):
        smtp_password(db_path)


def test_env_wins_over_the_file(secrets_file, db_path, monkeypatch):
    monkeypatch.setenv("CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN", "Atzr|env-token")
    monkeypatch.setenv("CROSSSHIP_SMTP_PASSWORD", "env-smtp")
    found = store_secrets("amazon-main", db_path, MALL.secrets)
    assert found.refresh_token == "Atzr|env-token"
    assert found.sources["refresh_token"] == "env CROSSSHIP_AMAZON_MAIN_REFRESH_TOKEN"
    assert found.client_id == "amzn1.application-oa2-client.file"
    assert smtp_password(db_path) == "env-smtp"


def test_env_alone_never_reads_the_file(secrets_file, db_path, monkeypatch):
    secrets_file.chmod(0o644)  # would be refused if it were read
    for suffix, value in (
        ("LWA_CLIENT_ID", "a"),
        ("LWA_CLIENT_SECRET", "b"),
        ("REFRESH_TOKEN", "c"),
    ):
        monkeypatch.setenv(f"CROSSSHIP_AMAZON_MAIN_{suffix}", value)
    monkeypatch.setenv("CROSSSHIP_SMTP_PASSWORD", "d")
    assert store_secrets("amazon-main", db_path, MALL.secrets).missing() == []
    assert smtp_password(db_path) == "d"


def test_repr_hides_values(secrets_file, db_path):
    found = store_secrets("amazon-main", db_path, MALL.secrets)
    for text in (repr(found), str(found), f"{found}"):
        assert "file-secret" not in text and "Atzr" not in text and "oa2-client" not in text
        assert "***" in text
    described = found.describe()
    assert all(v.startswith("set (file ") for v in described.values())


def test_malformed_toml_names_the_line(credentials, db_path):
    credentials.write_text('[stores.amazon-main]\nrefresh_token = "Atzr|secret\n')
    credentials.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        store_secrets("amazon-main", db_path, MALL.secrets)
    assert "is not valid TOML" in caught.value.message
    assert "line 2" in caught.value.message
    assert "Atzr" not in caught.value.message


def test_values_must_be_strings(credentials, db_path):
    credentials.write_text("[stores.amazon-main]\nrefresh_token = 42\n")
    credentials.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        store_secrets("amazon-main", db_path, MALL.secrets)
    assert "must be a quoted string" in caught.value.message


def test_other_stores_are_separate(secrets_file, db_path):
    other = store_secrets("amazon-second", db_path, MALL.secrets)
    assert other.refresh_token is None
    assert len(other.missing()) == 3


def test_secrets_never_reach_the_database(secrets_file, run, configured, db_path):
    run("config store show amazon-main", catch=False)
    run("config mail show", catch=False)
    raw = db_path.read_bytes()
    for wal in db_path.parent.glob("*.db-wal"):
        raw += wal.read_bytes()
    for secret in (b"file-secret", b"Atzr|file-token", b"file-smtp"):
        assert secret not in raw


def test_a_changed_file_is_read_again_and_its_mode_checked_every_time(secrets_file, db_path):
    """The parsed file is kept for the many stores of a run, never past a change."""
    assert store_secrets("amazon-main", db_path, MALL.secrets).refresh_token == "Atzr|file-token"
    secrets_file.write_text(FILE.replace("Atzr|file-token", "Atzr|renewed"), encoding="utf-8")
    assert store_secrets("amazon-main", db_path, MALL.secrets).refresh_token == "Atzr|renewed"
    store_secrets(
        "amazon-main", db_path, MALL.secrets
    )  # read again, so the next change follows a read
    size = secrets_file.stat().st_size
    secrets_file.write_text(FILE.replace("Atzr|file-token", "Atzr|again01"), encoding="utf-8")
    assert secrets_file.stat().st_size == size  # a change of the same size...
    os.utime(secrets_file, ns=(0, secrets_file.stat().st_mtime_ns + 10**9))  # ...a moment later
    assert store_secrets("amazon-main", db_path, MALL.secrets).refresh_token == "Atzr|again01"
    secrets_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        store_secrets("amazon-main", db_path, MALL.secrets)
    secrets_file.chmod(0o600)
    secrets_file.unlink()
    assert store_secrets("amazon-main", db_path, MALL.secrets).refresh_token is None


def test_many_threads_read_one_file(secrets_file, db_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        tokens = set(
            pool.map(
                lambda _: store_secrets("amazon-main", db_path, MALL.secrets).refresh_token,
                range(64),
            )
        )
    assert tokens == {"Atzr|file-token"}


def test_scrub_blanks_secrets_in_text_and_in_a_message_however_deep() -> None:
    from crossship.i18n import Message
    from crossship.secrets import scrub

    secrets = ["s3cr3t-token", "abc", ""]  # under 4 characters: too common to blank
    assert scrub("RMS said s3cr3t-token: abc", secrets) == "RMS said ***: abc"
    nested = Message(
        "{op}: {message}",
        {"op": "token", "message": Message("echoed {value}", {"value": "x s3cr3t-token", "n": 3})},
    )
    cleaned = scrub(nested, secrets)
    assert "s3cr3t-token" not in cleaned.to_json()
    assert cleaned.render("en") == "token: echoed x ***"
    assert cleaned.args["message"].args["n"] == 3
