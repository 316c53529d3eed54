"""The mail accounts send: verification, password reset, invitations and security notices.

Builders make :class:`email.message.EmailMessage` objects (plain text with an HTML
alternative); a :class:`MailTransport` sends them: :class:`Mailer` through an SMTP server
(stdlib :mod:`smtplib`, run in a thread), :class:`MailOutbox` into a directory of ``.eml``
files for a local server that has none. :func:`mail_transport` picks one from the
configured URL::

    smtp://USER:PASSWORD@HOST:PORT?from=Studio%20%3Cno-reply%40example.com%3E&starttls=1
    smtps://USER:PASSWORD@HOST               (implicit TLS, port 465 by default)

Each message carries a ``Message-ID`` made from the ``mail_id`` its caller passes (the id
of the job that sends it), so a retried send carries the same one and receivers can drop
the duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import AccountError

logger = logging.getLogger(__name__)

PRODUCT = "Max Booster Studio"
DEFAULT_SENDER = f"{PRODUCT} <no-reply@localhost>"
#: Default ports: plain SMTP (optionally upgraded with STARTTLS) and implicit TLS.
SMTP_PORT, SMTPS_PORT = 25, 465
ACCEPTED_URL = "smtp://[USER:PASSWORD@]HOST[:PORT][?from=...&starttls=1&timeout=S] or smtps://..."


class MailError(AccountError):
    """A mail could not be sent (or the mail settings are wrong).

    ``permanent`` is true when sending it again cannot help (the server answered 5xx,
    or the settings are wrong); false for 4xx answers and network failures, which a
    retry later may get past. ``code`` is the SMTP reply code, if the server gave one.
    """

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


@dataclass
class MailSettings:
    """Where and how :class:`Mailer` sends: an SMTP server, its credentials and TLS mode."""

    host: str = "127.0.0.1"
    port: int = SMTP_PORT
    sender: str = DEFAULT_SENDER
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0

    @classmethod
    def from_url(cls, url: str) -> MailSettings:
        """Settings from ``smtp://USER:PASSWORD@HOST:PORT?from=...&starttls=1&timeout=S``.

        ``smtps://`` means implicit TLS (port 465 by default). User name and password are
        percent-decoded. Raises :class:`MailError` (permanent) for anything else.
        """

        def bad(why: str) -> MailError:
            return MailError(f"bad mail URL {redact(url)!r}: {why}; use {ACCEPTED_URL}",
                             permanent=True)

        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise bad(f"the scheme must be smtp or smtps, not {parts.scheme!r}")
        if not parts.hostname:
            raise bad("it names no host")
        if parts.path not in ("", "/") or parts.fragment:
            raise bad("it has a path or fragment, which SMTP URLs do not")
        try:
            port = parts.port
        except ValueError:
            raise bad("the port is not a number from 1 to 65535") from None
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise bad("the query is not NAME=VALUE pairs joined by &") from None
        unknown = sorted(set(query) - {"from", "starttls", "timeout"})
        if unknown:
            raise bad(f"unknown parameter {unknown[0]!r} (known: from, starttls, timeout)")
        values = {name: found[-1] for name, found in query.items()}
        implicit_tls = parts.scheme == "smtps"
        starttls = values.get("starttls", "0").lower()
        if starttls not in ("0", "1", "true", "false", "yes", "no"):
            raise bad(f"starttls must be 1 or 0, not {starttls!r}")
        starttls_on = starttls in ("1", "true", "yes")
        if starttls_on and implicit_tls:
            raise bad("smtps:// is TLS from the start; starttls=1 only goes with smtp://")
        settings = cls(host=parts.hostname, ssl=implicit_tls, starttls=starttls_on,
                       port=port or (SMTPS_PORT if implicit_tls else SMTP_PORT))
        if parts.username:
            settings.username = unquote(parts.username)
            settings.password = unquote(parts.password or "")
        if "from" in values:
            sender = values["from"].strip()
            if "@" not in parseaddr(sender)[1]:
                raise bad(f"from must be an address like 'Studio <no-reply@example.com>', "
                          f"not {sender!r}")
            settings.sender = sender
        if "timeout" in values:
            try:
                settings.timeout = float(values["timeout"])
            except ValueError:
                settings.timeout = -1.0
            if not settings.timeout > 0:
                raise bad(f"timeout must be a positive number of seconds, "
                          f"not {values['timeout']!r}")
        return settings


class MailTransport(Protocol):
    """What sends mail: :class:`Mailer` (SMTP) or :class:`MailOutbox` (files)."""

    @property
    def sender(self) -> str:
        """The From address builders should use for mail sent through this transport."""

    async def send(self, message: EmailMessage) -> None:
        """Send ``message``; raise :class:`MailError` if it could not be."""


class Mailer:
    """Sends mail through the SMTP server of ``settings`` (smtplib, in a worker thread)."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    @property
    def sender(self) -> str:
        """The From address of the settings."""
        return self.settings.sender

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` to the SMTP server.

        Raises :class:`MailError`: ``permanent`` for a 5xx answer or a server that lacks
        what the settings ask for (STARTTLS, AUTH); temporary for 4xx answers, refused or
        dropped connections and timeouts.
        """
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        where = f"{s.host}:{s.port}"
        to = message.get("To", "(no recipient)")
        try:
            context = ssl.create_default_context() if s.ssl or s.starttls else None
            if s.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                        context=context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.starttls:
                    client.starttls(context=context)
                if s.username is not None:
                    client.login(s.username, s.password or "")
                refused = client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            answers = "; ".join(f"{rcpt}: {code} {_text(reply)}"
                                for rcpt, (code, reply) in exc.recipients.items())
            permanent = all(500 <= code < 600 for code in codes)
            raise MailError(f"{where} refused every recipient of the mail to {to} ({answers}); "
                            + _advice(permanent), permanent=permanent,
                            code=codes[0] if codes else None) from exc
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            raise MailError(f"{where} refused the mail to {to}: {exc.smtp_code} "
                            f"{_text(exc.smtp_error)}; " + _advice(permanent),
                            permanent=permanent, code=exc.smtp_code) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise MailError(f"{where} cannot do what the mail settings ask: {exc}; change the "
                            f"settings (starttls, user name) to what the server offers",
                            permanent=True) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise MailError(f"{where} closed the connection while sending the mail to {to} "
                            f"({exc}); " + _advice(False), permanent=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"cannot reach the SMTP server {where} to send the mail to {to}: "
                            f"{str(exc) or type(exc).__name__}; check that it runs and the host "
                            f"and port are right; " + _advice(False), permanent=False) from exc
        if refused:
            logger.warning("%s refused some recipients of %s: %s", where,
                           message.get("Message-ID"), refused)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _advice(permanent: bool) -> str:
    if permanent:
        return "sending it again will not help: check the address and the mail settings"
    return "try again later"


class MailOutbox:
    """Writes mail to ``directory`` as ``.eml`` files instead of sending it, and logs links.

    For a local server with no SMTP server configured: the person running it opens the
    verification or reset link from the log (or the file). A message is written under a
    name made from its ``Message-ID``, so sending it again replaces the file.
    """

    def __init__(self, directory: str | Path, sender: str = DEFAULT_SENDER) -> None:
        self.directory = Path(directory)
        self.sender = sender

    async def send(self, message: EmailMessage) -> None:
        """Write ``message`` to ``directory/<Message-ID>.eml`` and log where and its links."""
        path = await asyncio.to_thread(self._write, message)
        logger.info("mail to %s (%r) not sent (no SMTP server configured) but written to %s; "
                    "links: %s", message.get("To"), message.get("Subject"), path,
                    " ".join(_links(message)) or "none")

    def path_of(self, message: EmailMessage) -> Path:
        """Where :meth:`send` writes ``message``."""
        message_id = message.get("Message-ID") or hashlib.sha256(message.as_bytes()).hexdigest()
        name = re.sub(r"[^A-Za-z0-9._@-]+", "_", str(message_id).strip("<>"))
        return self.directory / f"{name}.eml"

    def _write(self, message: EmailMessage) -> Path:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.path_of(message)
            partial = path.with_suffix(".eml.partial")
            partial.write_bytes(message.as_bytes())
            os.replace(partial, path)
        except OSError as exc:
            raise MailError(f"cannot write the mail to {message.get('To')} into the outbox "
                            f"{self.directory}: {exc}; make the directory writable",
                            permanent=False) from exc
        return path


_URL = re.compile(r"https?://[^\s<>\"']+")


def _links(message: EmailMessage) -> list[str]:
    """The URLs in the plain-text part of ``message``."""
    part = message.get_body(("plain",))
    return _URL.findall(part.get_content()) if part is not None else []


def mail_transport(url: str | None, outbox: str | Path) -> MailTransport:
    """A :class:`Mailer` for the SMTP ``url``; a :class:`MailOutbox` in ``outbox`` if none."""
    if not url:
        return MailOutbox(outbox)
    return Mailer(MailSettings.from_url(url))


# -- the messages -----------------------------------------------------------------------

def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space."""
    return " ".join(str(text).split())


def message_id(kind: str, mail_id: str, sender: str = DEFAULT_SENDER) -> str:
    """The ``Message-ID`` of the ``kind`` of mail sent for ``mail_id`` from ``sender``.

    The same arguments always give the same id (a retry is recognisably the same mail);
    the id is hashed so that any string is safe in the header.
    """
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(f"{kind}\0{mail_id}".encode()).hexdigest()[:32]
    return f"<{kind}.{digest}@{domain}>"


def _mail(kind: str, to: str, subject: str, paragraphs: list[str], *, mail_id: str,
          sender: str, date: datetime | None, link: str | None = None,
          action: str = "", after: list[str] | None = None) -> EmailMessage:
    """A message of ``paragraphs``, then ``link`` (labelled ``action``), then ``after``."""
    after = after or []
    message = EmailMessage()
    message["Subject"] = _one_line(subject)
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = message_id(kind, mail_id, sender)
    text = list(paragraphs)
    if link:
        text.append(f"{action}:\n{link}")
    text += after
    message.set_content("\n\n".join(text) + f"\n\n-- \n{PRODUCT}\n")
    body = [f"<p>{html.escape(p)}</p>" for p in paragraphs]
    if link:
        href = html.escape(link)
        body.append(f'<p><a href="{href}">{html.escape(action)}</a></p>'
                    f"<p>Or paste this address into your browser:<br>{href}</p>")
    body += [f"<p>{html.escape(p)}</p>" for p in after]
    message.add_alternative(
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>'
        f"{html.escape(_one_line(subject))}</title></head>\n<body>\n" + "\n".join(body)
        + f"\n<p>&mdash;<br>{html.escape(PRODUCT)}</p>\n</body></html>\n", subtype="html")
    return message


def verification_mail(to: str, link: str, *, mail_id: str, sender: str = DEFAULT_SENDER,
                      date: datetime | None = None) -> EmailMessage:
    """Asks ``to`` to confirm their address by opening ``link``."""
    return _mail("verify", to, f"Confirm your email address for {PRODUCT}", [
        f"Please confirm that {to} is your email address, so that your {PRODUCT} "
        "account can use it.",
    ], link=link, action="Confirm your email address", after=[
        "If you did not create an account, ignore this mail: nothing happens without "
        "the link.",
    ], mail_id=mail_id, sender=sender, date=date)


def reset_mail(to: str, link: str, *, mail_id: str, sender: str = DEFAULT_SENDER,
               date: datetime | None = None) -> EmailMessage:
    """Offers ``to`` a new password through ``link``."""
    return _mail("reset", to, f"Reset your {PRODUCT} password", [
        f"Someone asked to reset the password of the {PRODUCT} account of {to}.",
    ], link=link, action="Choose a new password", after=[
        "If you did not ask for this, ignore this mail: your password stays as it is.",
    ], mail_id=mail_id, sender=sender, date=date)


def invitation_mail(to: str, inviter: str, organisation: str, link: str, *, mail_id: str,
                    sender: str = DEFAULT_SENDER,
                    date: datetime | None = None) -> EmailMessage:
    """Invites ``to`` into ``organisation`` on behalf of ``inviter``."""
    return _mail("invite", to, f"{inviter} invited you to {organisation} on {PRODUCT}", [
        f"{inviter} invited you to join {organisation} on {PRODUCT}.",
    ], link=link, action="Accept the invitation", after=[
        "If you do not know them or do not want to join, ignore this mail.",
    ], mail_id=mail_id, sender=sender, date=date)


def security_notice(to: str, what: str, *, mail_id: str, link: str | None = None,
                    sender: str = DEFAULT_SENDER,
                    date: datetime | None = None) -> EmailMessage:
    """Tells ``to`` that ``what`` happened to their account (e.g. "your password was changed").

    ``link``, if given, is where they can secure the account (a password reset).
    """
    return _mail("notice", to, f"{PRODUCT} security notice: {what}", [
        f"This is to let you know: {what}.",
        "If that was you, there is nothing to do.",
    ], link=link, action="Secure your account", after=[
        "If it was not you, change your password at once and sign out your other sessions.",
    ], mail_id=mail_id, sender=sender, date=date)


def webhook_disabled_mail(to: str, url: str, reason: str, link: str, *, mail_id: str,
                          sender: str = DEFAULT_SENDER,
                          date: datetime | None = None) -> EmailMessage:
    """Tells ``to`` that the webhook posting to ``url`` was disabled, and why."""
    return _mail("webhook_disabled", to, f"{PRODUCT}: a webhook was disabled", [
        f"We stopped sending events to your webhook {url} because its deliveries kept "
        f"failing: {reason}.",
        "Events published while it is disabled are not sent to it.",
    ], link=link, action="The webhook (its delivery log shows each failure)", after=[
        "Fix the endpoint, then re-enable the webhook (POST .../enable) and replay the "
        "deliveries you missed from its log.",
    ], mail_id=mail_id, sender=sender, date=date)


def plugin_mail(to: str, subject: str, paragraphs: list[str], *, mail_id: str,
                link: str = "", action: str = "", sender: str = DEFAULT_SENDER,
                date: datetime | None = None) -> EmailMessage:
    """A plug-in's notification to ``to`` (``PluginContext.send_mail``): its own subject and
    paragraphs, then ``link`` labelled ``action``."""
    return _mail("plugin", to, subject, [str(p) for p in paragraphs], link=link or None,
                 action=action or "Open it", mail_id=mail_id, sender=sender, date=date)


def account_exists_mail(to: str, reset_link: str, *, mail_id: str,
                        sender: str = DEFAULT_SENDER,
                        date: datetime | None = None) -> EmailMessage:
    """Sent instead of a verification mail when someone signs up with a known address.

    Sign-up answers the same either way, so it does not tell strangers who has an account;
    the owner of the address learns it here.
    """
    return _mail("exists", to, f"You already have a {PRODUCT} account", [
        f"Someone (perhaps you) tried to create a {PRODUCT} account for {to}, "
        "but there already is one for this address.",
        "If it was you and you forgot your password, choose a new one.",
    ], link=reset_link, action="Reset your password", after=[
        "If it was not you, ignore this mail: your account is unchanged.",
    ], mail_id=mail_id, sender=sender, date=date)
