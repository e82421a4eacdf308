"""Result mails (seed 5-2, SPEC §5 step 6) through a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

import notify_helpers
import pytest
from notify_helpers import (
    FEED_ID,
    NO_CODE,
    REPORTS,
    SECRETS,
    Env,
    Mailbox,
    free_port,
    order,
    report_en,
    shipconfirm_orders,
)

from crossship import mail
from crossship.amazon import NOTIFY_SUBJECT, RESULTS_SUBJECT
from crossship.errors import MailError

env = notify_helpers.env  # fixtures
amazon_mock = notify_helpers.amazon_mock
smtp = notify_helpers.smtp

RECIPIENTS = ["admin@example.jp", "ship@example.jp", "boss@example.jp"]


def one_mail(box: Mailbox):
    (envelope,) = box.envelopes
    (message,) = box.messages()
    return envelope, message


def assert_no_secret(text: str) -> None:
    for secret in SECRETS.values():
        assert secret not in text


# ---------------------------------------------------------------------------------- notify


def test_notify_mail_lists_counts_feed_id_and_every_failed_order(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    env.mail(port=port)
    env.add(order(1), order(2), order(3, ship_date=None), order(4, carrier=NO_CODE))
    env.amazon.send_ok()

    result = env.cli("notify", "run")

    assert result.exit_code == 0, result.stderr
    envelope, message = one_mail(box)
    assert message["Subject"] == NOTIFY_SUBJECT == "(CROSSMALL)Amazon出荷通知処理(自動)のお知らせ"
    assert envelope.mail_from == "crossship@example.jp"
    assert envelope.rcpt_tos == RECIPIENTS
    body = message.get_content()
    assert "送信した注文: 2 件" in body
    assert FEED_ID in body
    assert "エラー: 2 件" in body
    assert "通知失敗: 0 件" in body
    # the checks' messages in the mail's language (Japanese by default)
    assert (
        "管理番号 A00003 (注文番号 250-0000003-0000003) [エラー] 発送日 (ship_date) がありません"
        in (body)
    )
    assert "管理番号 A00004" in body and "配送業者コード (carrier-code) がありません" in body
    assert_no_secret(body)


def test_notify_mail_says_why_nothing_reached_amazon(env: Env, smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    env.mail(port=port)
    env.add(order(1))
    env.amazon.token(status=400)

    result = env.cli("notify", "run")

    assert result.exit_code == 1
    _, message = one_mail(box)
    body = message.get_content()
    assert "■ 処理に失敗した内容" in body
    assert "invalid_grant" in body
    assert_no_secret(body)


def test_notify_mail_for_a_rejected_feed_lists_each_order(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    env.mail(port=port)
    env.add(order(1), order(2))
    env.amazon.token()
    env.amazon.create_document()
    env.amazon.upload()
    env.amazon.create_feed(
        status=400, body=notify_helpers.error_body("InvalidInput", "Invalid input")
    )

    env.cli("notify", "run")

    body = one_mail(box)[1].get_content()
    assert "通知失敗: 2 件" in body
    for order_no in ("A00001", "A00002"):
        assert f"管理番号 {order_no}" in body
    assert body.count("InvalidInput: Invalid input") >= 2


def test_no_notify_mail_when_nothing_was_sent_or_failed(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    env.mail(port=port)
    env.add(order(1, category="hold"))

    result = env.cli("notify", "run")

    assert result.exit_code == 0
    assert env.amazon.ops() == []
    assert box.envelopes == []


def test_smtp_down_keeps_the_statuses_and_fails_the_run(env: Env) -> None:
    env.mail(port=free_port())  # nothing listens there
    env.add(order(1))
    env.amazon.send_ok()

    result = env.cli("-q", "notify", "run")

    assert result.exit_code == 1
    assert env.amazon.ops() == ["token", "createFeedDocument", "upload", "createFeed"]
    assert env.status("A00001") == "in_progress"
    assert env.batches()[0]["feed_id"] == FEED_ID
    (line,) = result.stderr.splitlines()
    assert "could not be sent" in line and NOTIFY_SUBJECT in line
    (run,) = env.runs("notify")
    assert run["outcome"] == "failed"


def test_unconfigured_mail_is_a_note_not_a_failure(env: Env) -> None:
    env.add(order(1))
    env.amazon.send_ok()

    result = env.cli("-v", "notify", "run")

    assert result.exit_code == 0, result.stderr
    assert "no result mail: mail is not configured" in result.stderr


# ---------------------------------------------------------------------------------- results


def sent(env: Env, *orders: dict) -> None:
    env.add(*orders)
    env.amazon.send_ok()
    assert env.notify().runs[0].sent == len(orders)
    env.amazon.mock.reset()
    env.amazon.reset_calls()
    env.clock.advance(minutes=15)


def test_results_mail_lists_each_error_with_amazons_message_and_the_advice(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    sent(env, *shipconfirm_orders())
    env.mail(port=port)
    env.amazon.token()
    env.amazon.result((REPORTS / "shipconfirm-error-warning.en.txt").read_bytes())

    result = env.cli("results", "fetch")

    assert result.exit_code == 0, result.stderr
    envelope, message = one_mail(box)
    assert message["Subject"] == RESULTS_SUBJECT
    assert RESULTS_SUBJECT == "(CROSSMALL)Amazon出荷通知結果取得処理(自動)のお知らせ"
    assert envelope.rcpt_tos == RECIPIENTS
    body = message.get_content()
    assert f"結果を取得したモール側ID: {FEED_ID}" in body
    assert "正常: 2 件 (うち警告あり 1 件)" in body
    assert "エラー: 1 件" in body
    assert "移動先処理フェーズへ移動した注文: 2 件" in body
    assert (
        "管理番号 A00001 (注文番号 250-1234567-1234567) [エラー] 18028: Your order cannot be "
        "found using order-id 250-1234567-1234567."
    ) in body
    assert "対応方法: 設定情報や注文情報を確認し、修正してください" in body
    assert "管理番号 A00002: 99001: The ship-method field is missing or invalid." in body


def test_results_mail_for_a_result_failed_batch_gives_the_seller_central_advice(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    sent(env, order(1))
    env.mail(port=port)
    env.amazon.token()
    env.amazon.result(b"<html><body>gateway error</body></html>", content_type="text/html")

    env.cli("results", "fetch")

    body = one_mail(box)[1].get_content()
    assert "通知結果取得失敗: 1 件" in body
    assert "[通知結果取得失敗]" in body
    assert "対応方法: モールの管理画面 (セラーセントラル、RMS、ストアクリエイターPro)" in body


def test_no_results_mail_while_amazon_is_still_processing(
    env: Env, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    sent(env, order(1))
    env.mail(port=port)
    env.amazon.token()
    env.amazon.get_feed(processing_status="IN_PROGRESS", result_document_id=None)

    result = env.cli("results", "fetch")

    assert result.exit_code == 0
    assert box.envelopes == []


def test_results_mail_failure_never_undoes_the_statuses(env: Env) -> None:
    sent(env, order(1))
    env.mail(port=free_port())
    env.amazon.token()
    env.amazon.result(report_en(1, 1))

    result = env.cli("results", "fetch")

    assert result.exit_code == 1
    assert "could not be sent" in result.stderr and RESULTS_SUBJECT in result.stderr
    assert env.status("A00001") == "success"
    assert env.get("A00001")["phase"] == notify_helpers.DESTINATION


# ---------------------------------------------------------------------------------- SMTP login


def _auth_server(logins: list):
    """A real aiosmtpd server that requires AUTH (over plain TCP, for the test only)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"shop" and auth_data.password == b"s3cret-SMTP"
        logins.append((auth_data.login, ok))
        return AuthResult(success=ok)

    box = notify_helpers.Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=notify_helpers.free_port(),
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    return box, controller


def _settings(port: int, user: str | None) -> mail.MailSettings:
    return mail.MailSettings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_user=user, sender="crossship@example.jp",
        admin="admin@example.jp", notify=["shipping@example.jp"],
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_uses_the_password_from_the_secrets() -> None:
    logins: list = []
    box, controller = _auth_server(logins)
    controller.start()
    try:
        settings = _settings(controller.port, "shop")
        mail.send(settings, "s3cret-SMTP", mail.Mail(NOTIFY_SUBJECT, "本文"))
    finally:
        controller.stop()
    assert logins == [(b"shop", True)]
    (message,) = box.messages()
    assert message["Subject"] == NOTIFY_SUBJECT
    assert message["To"] == "admin@example.jp, shipping@example.jp"
    assert message.get_content().strip() == "本文"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_user_without_a_password_says_where_to_set_it() -> None:
    settings = _settings(notify_helpers.free_port(), "shop")
    logins: list = []
    _box, controller = _auth_server(logins)
    controller.port = settings.smtp_port
    controller.start()
    try:
        with pytest.raises(MailError, match="CROSSSHIP_SMTP_PASSWORD"):
            mail.send(settings, None, mail.Mail(NOTIFY_SUBJECT, "本文"))
    finally:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_wrong_smtp_password_is_a_mail_error_without_the_password() -> None:
    logins: list = []
    _box, controller = _auth_server(logins)
    controller.start()
    try:
        with pytest.raises(MailError) as raised:
            mail.send(
                _settings(controller.port, "shop"), "wrong-pw-123", mail.Mail("s", "b"), timeout=3
            )
    finally:
        controller.stop()
    assert "wrong-pw-123" not in raised.value.message
    assert logins == [(b"shop", False)]


def test_incomplete_mail_settings_name_the_missing_options() -> None:
    with pytest.raises(MailError, match="--smtp-host, --from"):
        mail.send(mail.MailSettings(admin="a@example.jp"), None, mail.Mail("s", "b"))


def test_mail_language_english_when_set(env: Env, smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    env.mail(port=port, language="en")
    env.add(order(1), order(2), order(3, ship_date=None))
    env.amazon.send_ok()

    result = env.cli("--lang", "ja", "notify", "run")  # the reader's language is not the mail's

    assert result.exit_code == 0, result.stderr
    _envelope, message = one_mail(box)
    assert message["Subject"] == NOTIFY_SUBJECT  # CROSS MALL's name for the process, always
    body = message.get_content()
    assert body.startswith("Amazon出荷通知処理(自動) was run.")
    assert "Orders sent: 2" in body and "Errors (エラー): 1" in body
    assert "送信した注文" not in body and "管理番号" not in body


def test_config_mail_set_language_is_checked_and_kept(run, db_path) -> None:  # noqa: ANN001
    assert run(["init"]).exit_code == 0
    assert run(["config", "mail", "set", "--language", "fr"]).exit_code == 2
    assert run(["config", "mail", "set", "--language", "en"]).exit_code == 0
    shown = run(["config", "mail", "show", "--format", "json"])
    assert '"language": "en"' in shown.stdout
