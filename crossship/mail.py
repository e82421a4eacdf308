"""Result mails (処理結果メール, CROSS MALL help: Amazon自動出荷通知, 5-2), sent over SMTP to the
administrator and the notification addresses."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from crossship import i18n
from crossship.errors import MailError
from crossship.i18n import _
from crossship.templating import render_mail


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    starttls: bool = False
    sender: str | None = None
    admin: str | None = None
    notify: list[str] = field(default_factory=list)
    language: str = i18n.DEFAULT_MAIL_LANGUAGE  # shop staff read the mails: Japanese by default

    @classmethod
    def from_stored(cls, values: dict[str, Any]) -> MailSettings:
        return cls(
            smtp_host=values.get("smtp_host") or None,
            smtp_port=int(values.get("smtp_port") or 25),
            smtp_user=values.get("smtp_user") or None,
            starttls=bool(values.get("starttls", False)),
            sender=values.get("from") or None,
            admin=values.get("admin") or None,
            notify=list(values.get("notify") or []),
            language=i18n.normalise(values.get("language") or i18n.DEFAULT_MAIL_LANGUAGE),
        )

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys(a for a in [self.admin, *self.notify] if a))

    def missing(self) -> list[str]:
        """What `config mail set` still needs before a mail can be sent."""
        gaps = []
        if not self.smtp_host:
            gaps.append("--smtp-host")
        if not self.sender:
            gaps.append("--from")
        if not self.recipients:
            gaps.append(_("--admin or --notify"))
        return gaps


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


def title(subject: str) -> str:
    """The process a subject names: "(CROSSMALL)Amazon出荷通知処理(自動)のお知らせ" →
    "Amazon出荷通知処理(自動)"."""
    return subject.removeprefix("(CROSSMALL)").removesuffix("のお知らせ")


def compose(
    subject: str, template: str, context: dict[str, Any], language: str = i18n.DEFAULT_MAIL_LANGUAGE
) -> Mail:
    """A mail in ``language``; the subject stays the name CROSS MALL gives the process."""
    body = render_mail(template, {"title": title(subject), **context}, language)
    return Mail(subject=subject, body=body)


def send(settings: MailSettings, password: str | None, mail: Mail, *, timeout: float = 30) -> None:
    """Deliver one mail, or raise MailError saying why (never with the password in it)."""
    gaps = settings.missing()
    if gaps:
        raise MailError(
            _("mail settings are incomplete: set {options} with `{command}`").format(
                options=", ".join(gaps), command="config mail set"
            )
        )
    assert settings.smtp_host and settings.sender  # missing() said so otherwise
    message = EmailMessage()
    try:
        # an address stored before crossship refused line breaks must not end the run
        message["Subject"] = mail.subject
        message["From"] = settings.sender
        message["To"] = ", ".join(settings.recipients)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="crossship")
        message.set_content(mail.body, charset="utf-8")
    except (ValueError, TypeError) as exc:
        raise MailError(
            _(
                "mail {subject!r} could not be written: {error}; check the addresses with "
                "`{show}` and set them again with `{set}`"
            ).format(
                subject=mail.subject,
                error=exc,
                show="crossship config mail show",
                set="crossship config mail set",
            )
        ) from None
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.smtp_user:
                if password is None:
                    raise MailError(
                        _(
                            "SMTP user is set but no password: set CROSSSHIP_SMTP_PASSWORD or "
                            "[smtp] password in the credentials file"
                        )
                    )
                smtp.login(settings.smtp_user, password)
            smtp.send_message(message)
    except MailError:
        raise
    except (TimeoutError, smtplib.SMTPException, OSError, ValueError, UnicodeError) as exc:
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        raise MailError(
            _("mail {subject!r} could not be sent through {server}: {error}").format(
                subject=mail.subject, server=where, error=exc
            )
        ) from None
