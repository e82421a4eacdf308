"""公開鍵認証: the store's public key, the X-sws-signature it gives, and the dates to watch.

The signature is RSA *encryption* with the public key Yahoo issued (PKCS#1 v1.5 padding) of
``"<seller id>:<unix time>"``, base64-encoded: Yahoo decrypts it with its private key. With a
valid key Yahoo's authorization lasts 28 days; without one, 12 hours (then ``px-04102``). The key
itself is valid one year.
"""

from __future__ import annotations

import base64
from datetime import date, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from crossship.errors import ConfigError
from crossship.i18n import N_, Message

AUTHORIZATION_DAYS = 28
WARN_DAYS = 5
PEM_BEGIN = b"-----BEGIN "

# what a run says on px-04102: act in ストアクリエイターPro, then authorize again
PX_04102_HELP = Message(
    "Yahoo ended this store's authorization (px-04102). Without a valid public key "
    "(公開鍵認証) it lasts only 12 hours; with one, 28 days; an expired public key brings "
    "the 12-hour limit back. Issue or renew the key in ストアクリエイターPro (設定 > 暗号鍵管理, "
    "公開鍵発行, mark it 有効), then `crossship config store set STORE --public-key FILE "
    "--public-key-version N --public-key-expires YYYY-MM-DD`, authorize crossship again "
    "(Yahoo! ID連携) and set the new refresh token and `--authorized-on`"
)
NO_KEY_WARNING = N_(
    "no public key (--public-key, --public-key-version): without 公開鍵認証 Yahoo ends the "
    "authorization 12 hours after it was given and calls fail with px-04102; issue a key in "
    "ストアクリエイターPro (設定 > 暗号鍵管理, 公開鍵発行)"
)


def load_public_key(path: Path) -> rsa.RSAPublicKey:
    """The RSA public key in a PEM file; a ConfigError says what is wrong with the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            Message(
                "cannot read the public key file {path}: {error}",
                {"path": str(path), "error": exc.strerror},
            )
        ) from None
    return parse_public_key(data, str(path))


def parse_public_key(data: bytes, where: str) -> rsa.RSAPublicKey:
    if PEM_BEGIN not in data:
        raise ConfigError(
            Message(
                "the public key file {where} is not PEM: copy the key from ストアクリエイターPro "
                "with its -----BEGIN PUBLIC KEY----- and -----END PUBLIC KEY----- lines",
                {"where": where},
            )
        )
    if b"PRIVATE KEY-----" in data:
        raise ConfigError(
            Message(
                "{where} holds a private key: give the public key Yahoo issued (BEGIN PUBLIC KEY)",
                {"where": where},
            )
        )
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        reason = str(exc).split("\n")[0][:120]
        raise ConfigError(
            Message(
                "the public key file {where} is not a PEM public key ({reason}): copy the key "
                "from ストアクリエイターPro with its BEGIN and END lines",
                {"where": where, "reason": reason},
            )
        ) from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError(
            Message(
                "the public key in {where} is not an RSA key: Yahoo issues RSA keys",
                {"where": where},
            )
        )
    return key


def signature(key: rsa.RSAPublicKey, seller_id: str, unix_time: int) -> str:
    """X-sws-signature: base64 of RSA PKCS#1 v1.5 encryption of ``"<seller id>:<unix time>"``."""
    plain = f"{seller_id}:{unix_time}".encode()
    return base64.b64encode(key.encrypt(plain, padding.PKCS1v15())).decode("ascii")


def date_warnings(
    *, authorized_on: str | None, key_expires: str | None, has_key: bool, today: date
) -> list[str]:
    """From 5 days before the 28-day authorization or the key's validity ends, say so."""
    return [
        str(text)
        for _level, text in date_problems(
            authorized_on=authorized_on, key_expires=key_expires, has_key=has_key, today=today
        )
    ]


def date_problems(
    *, authorized_on: str | None, key_expires: str | None, has_key: bool, today: date
) -> list[tuple[str, Message]]:
    """(level, message): ``warning`` from 5 days before an end (or without a key),
    ``critical`` after it (runs then fail with px-04102 or invalid_grant)."""
    if not has_key:
        return [("warning", Message(NO_KEY_WARNING))]
    found: list[tuple[str, Message]] = []
    if authorized_on:
        ends = (date.fromisoformat(authorized_on) + timedelta(days=AUTHORIZATION_DAYS)).isoformat()
        left = (date.fromisoformat(ends) - today).days
        if left < 0:
            ended = Message(
                "Yahoo's authorization ended on {ends} (28 days after --authorized-on {given}): "
                "authorize crossship again (Yahoo! ID連携), set the new refresh token and "
                "`--authorized-on`",
                {"ends": ends, "given": authorized_on},
            )
            found.append(("critical", ended))
        elif left <= WARN_DAYS:
            ending = Message(
                "Yahoo's authorization ends on {ends} (days left: {days}): authorize crossship "
                "again (Yahoo! ID連携), set the new refresh token and `--authorized-on`",
                {"ends": ends, "days": left},
            )
            found.append(("warning", ending))
    if key_expires:
        left = (date.fromisoformat(key_expires) - today).days
        if left < 0:
            expired = Message(
                "the public key expired on {ends}: Yahoo is back to the 12-hour limit (px-04102); "
                "issue a new key in ストアクリエイターPro (設定 > 暗号鍵管理) and set "
                "--public-key, --public-key-version and --public-key-expires",
                {"ends": key_expires},
            )
            found.append(("critical", expired))
        elif left <= WARN_DAYS:
            expiring = Message(
                "the public key expires on {ends} (days left: {days}): issue a new key in "
                "ストアクリエイターPro (設定 > 暗号鍵管理) and set --public-key, "
                "--public-key-version and --public-key-expires",
                {"ends": key_expires, "days": left},
            )
            found.append(("warning", expiring))
    return found
