"""A real SMTP server on loopback for tests (aiosmtpd), which keeps the mail it receives.

``SmtpServer`` runs aiosmtpd's :class:`~aiosmtpd.controller.Controller` in its own thread
on a free port of 127.0.0.1, parses each received mail into an
:class:`~email.message.EmailMessage` and can be told to refuse the next mails with a
temporary (451) or permanent (550) answer. The ``smtp_server`` fixture in
``tests/conftest.py`` gives each test a fresh one.

With ``tls="starttls"`` or ``tls="implicit"`` it speaks TLS with a self-signed certificate
for 127.0.0.1 (made with ``cryptography``), written to ``cafile``: point
``SSL_CERT_FILE`` at it and stdlib clients trust the server.
"""

from __future__ import annotations

import errno
import re
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from loopback import free_port, self_signed_files

REPLIES = {451: "451 4.3.0 Try again later (test server)",
           550: "550 5.1.1 Mailbox unavailable (test server)"}


@dataclass
class Received:
    """A mail the server accepted: the parsed message and its SMTP envelope."""

    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str] = field(default_factory=list)


class _Handler:
    """aiosmtpd handler: refuses what it is told to, keeps the rest."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        with self.server._lock:
            if self.server._failures:
                code = self.server._failures.pop(0)
                return REPLIES[code]
            message = message_from_bytes(envelope.original_content or envelope.content,
                                         policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.server.received.append(
                Received(message, envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1; with ``login`` set, it wants that AUTH login.

    ``tls``: ``"starttls"`` offers STARTTLS (and then only allows AUTH after it),
    ``"implicit"`` speaks TLS from the first byte (smtps). Use as a context manager (or
    :meth:`start` / :meth:`stop`).
    """

    def __init__(self, login: tuple[str, str] | None = None,
                 tls: Literal["starttls", "implicit"] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.login = login
        self.tls = tls
        #: The server's certificate (PEM), once started with ``tls``.
        self.cafile: Path | None = None
        self._certdir: tempfile.TemporaryDirectory[str] | None = None
        self.received: list[Received] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        """The messages received so far, oldest first."""
        with self._lock:
            return [r.message for r in self.received]

    @property
    def url(self) -> str:
        """An ``smtp://`` URL of this server (with its login, if it has one)."""
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        query = "?starttls=1" if self.tls == "starttls" else ""
        login = f"{self.login[0]}:{self.login[1]}@" if self.login else ""
        return f"{scheme}://{login}{self.host}:{self.port}{query}"

    def fail_next(self, count: int = 1, code: int = 451) -> None:
        """Answer the next ``count`` mails with ``code``: 451 (temporary) or 550 (permanent)."""
        if code not in REPLIES:
            raise ValueError(f"code must be one of {sorted(REPLIES)}, not {code}")
        with self._lock:
            self._failures += [code] * count

    def _authenticate(self, smtp: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.login)
        return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535

    def start(self) -> None:
        """Listen on a free port (retrying if another process takes it first)."""
        if self._controller is not None:
            raise RuntimeError("the SMTP server is started already")
        extra: dict[str, Any] = {}
        if self.tls:
            context = self._server_context()
            extra["tls_context" if self.tls == "starttls" else "ssl_context"] = context
        if self.login:  # without STARTTLS, AUTH over plain TCP (aiosmtpd warns of it)
            extra |= {"authenticator": self._authenticate, "auth_required": True,
                      "auth_require_tls": self.tls == "starttls"}
        for attempt in range(5):
            port = free_port()
            controller = Controller(_Handler(self), hostname=self.host, port=port,
                                    server_hostname="localhost", ready_timeout=10, **extra)
            try:
                controller.start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
                continue
            self._controller, self.port = controller, port
            return

    def stop(self) -> None:
        """Stop listening (and remove the certificate)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._certdir is not None:
            self._certdir.cleanup()
            self._certdir = self.cafile = None

    def _server_context(self) -> ssl.SSLContext:
        """A TLS context with a fresh self-signed certificate for 127.0.0.1 (in ``cafile``)."""
        self._certdir = tempfile.TemporaryDirectory(prefix="smtp-test-cert-")
        self.cafile, keyfile = self_signed_files(Path(self._certdir.name), self.host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cafile, keyfile)
        return context

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value for name, value in attrs if name == "href" and value]

    def handle_data(self, data: str) -> None:
        self.links += _URL.findall(data)


_URL = re.compile(r"https?://[^\s<>\"']+")


def links_in(message: EmailMessage, subtype: str | None = None) -> list[str]:
    """The URLs in ``message``'s text parts (``subtype`` "plain" or "html": only those).

    HTML links come from ``href`` attributes and text, entities decoded. Each URL is
    listed once, in the order it first appears.
    """
    found: list[str] = []
    for part in message.walk():
        if part.get_content_maintype() != "text" or part.is_attachment():
            continue
        kind = part.get_content_subtype()
        if subtype is not None and kind != subtype:
            continue
        text = part.get_content()
        if kind == "html":
            parser = _Links()
            parser.feed(text)
            parser.close()
            found += parser.links
        else:
            found += _URL.findall(text)
    return list(dict.fromkeys(found))
