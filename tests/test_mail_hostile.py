"""Hostile mail settings and mass failures (issue 10 items 4 and 9): addresses with line breaks
are refused; a mail that fails for any reason is one line and exit 1, never a traceback, never
skipping another store; the result mail stays well under 1 MB however many orders fail."""

from __future__ import annotations

import notify_helpers
import pytest
from notify_helpers import STORE, Env, Mailbox, order

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock
smtp = notify_helpers.smtp

FORGED = "admin@example.jp\r\nBcc: everyone@evil.example"


@pytest.mark.parametrize(
    "option",
    [
        ["--admin", FORGED],
        ["--from", FORGED],
        ["--notify", "ok@example.jp", "--notify", FORGED],
        ["--notify", "a@example.jp, b@example.jp"],
        ["--admin", "admin@example.jp\x00"],
        ["--smtp-user", "user\nname"],
        ["--smtp-host", "smtp.example.jp\r\nX"],
    ],
    ids=["admin", "from", "notify", "two-in-one", "nul", "smtp-user", "smtp-host"],
)
def test_control_characters_and_lists_in_mail_settings_are_refused(env: Env, option) -> None:
    before = env.store.get_settings("mail")

    result = env.cli("config", "mail", "set", *option)

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert env.store.get_settings("mail") == before


def test_a_broken_stored_address_fails_the_mail_in_one_line_and_no_store_is_skipped(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    # an address an older crossship stored with a line break in it
    env.mail(port=port, admin=FORGED)
    env.add_store("amazon-second")
    env.add(order(1), order(2, store="amazon-second", mall_order_id="250-0000009-0000009"))
    env.amazon.send_ok(feed_id="7001")
    env.amazon.send_ok(feed_id="7002")

    result = env.cli("-q", "notify", "run")

    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("Error: ") for line in lines), result.stderr
    assert all("config mail set" in line for line in lines)
    assert env.statuses() == {"A00001": "in_progress", "A00002": "in_progress"}  # both sent
    assert box.envelopes == []  # nothing forged went out
    assert {r["store"] for r in env.runs("notify")} == {STORE, "amazon-second"}


def test_a_mass_failure_mail_stays_small_counts_everything_and_says_how_to_list_the_rest(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    import shlex

    from notify_helpers import NO_CODE

    box, port = smtp
    env.mail(port=port)
    count = 40_000
    env.add(
        *(
            order(n, carrier=NO_CODE) if n % 2 else order(n, ship_date=None)
            for n in range(1, count + 1)
        )
    )

    result = env.cli("-q", "notify", "run")

    assert result.exit_code == 1  # -q: orders need the operator (one line, see test_decisions)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    (envelope,) = box.envelopes
    assert len(envelope.content) < 1_000_000
    body = box.messages()[0].get_content()
    assert "エラー: 40000 件" in body
    assert "[エラー] 20000: " in body  # counted per message: two reasons, 20,000 each
    assert body.count("管理番号 A") == 100  # the first orders, one by one
    assert "39900" in body  # ... and how many more
    commands = [
        line.strip() for line in body.splitlines() if line.strip().startswith("crossship history")
    ]
    assert commands, body[-2000:]
    listed = env.cli(*shlex.split(commands[0])[1:], "--format", "jsonl", "--limit", "100000")
    assert listed.exit_code == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == count
