"""Mail of accounts, sent to a real SMTP server (aiosmtpd on loopback) and read back."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from loopback import free_port
from smtp_server import SmtpServer, links_in

from accounts.errors import AccountError
from accounts.mail import (
    DEFAULT_SENDER,
    Mailer,
    MailError,
    MailOutbox,
    MailSettings,
    account_exists_mail,
    invitation_mail,
    mail_transport,
    message_id,
    reset_mail,
    security_notice,
    verification_mail,
)

TO = "ada@example.com"
LINK = "https://studio.example/account/verify?token=abc123&next=/projects"
Builder = Callable[..., EmailMessage]

# Each builder with the arguments it needs besides ``to`` and a words its subject has.
BUILDERS: dict[str, tuple[Builder, dict, str]] = {
    "verification": (lambda to, **kw: verification_mail(to, LINK, **kw), {}, "Confirm"),
    "reset": (lambda to, **kw: reset_mail(to, LINK, **kw), {}, "Reset your"),
    "invitation": (lambda to, **kw: invitation_mail(to, "Grace", "The Band", LINK, **kw), {},
                   "Grace invited you to The Band"),
    "security notice": (lambda to, **kw: security_notice(to, "your password was changed",
                                                         link=LINK, **kw), {},
                        "your password was changed"),
    "account exists": (lambda to, **kw: account_exists_mail(to, LINK, **kw), {},
                       "already have"),
}


def mailer(server: SmtpServer, **settings: object) -> Mailer:
    return Mailer(MailSettings(host=server.host, port=server.port, timeout=5.0,
                               **settings))  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", BUILDERS)
async def test_each_mail_arrives_with_its_link_in_text_and_html(
        smtp_server: SmtpServer, kind: str) -> None:
    build, _, subject_words = BUILDERS[kind]
    sent = build(TO, mail_id="job-17", sender="Studio <mail@studio.example>")
    await mailer(smtp_server).send(sent)

    [received] = smtp_server.received
    got = received.message
    assert received.rcpt_tos == [TO]
    assert received.mail_from == "mail@studio.example"
    assert got["To"] == TO
    assert got["From"] == "Studio <mail@studio.example>"
    assert subject_words in got["Subject"]
    assert got["Message-ID"] == sent["Message-ID"]
    assert got["Message-ID"].endswith("@studio.example>")
    assert abs((parsedate_to_datetime(got["Date"]) - datetime.now(UTC)).total_seconds()) < 60
    assert got.get_content_type() == "multipart/alternative"
    assert links_in(got, "plain") == [LINK]
    assert links_in(got, "html") == [LINK]
    # the & of the query is escaped in the HTML source, not in the text
    assert "token=abc123&amp;next=" in got.get_body(("html",)).get_content()
    assert "token=abc123&next=" in got.get_body(("plain",)).get_content()


@pytest.mark.asyncio
async def test_reset_mail_tells_to_ignore_it_if_not_asked(smtp_server: SmtpServer) -> None:
    await mailer(smtp_server).send(reset_mail(TO, LINK, mail_id="r1"))
    text = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "If you did not ask for this, ignore this mail" in text


@pytest.mark.asyncio
async def test_account_exists_mail_offers_a_reset_not_a_verification(
        smtp_server: SmtpServer) -> None:
    await mailer(smtp_server).send(account_exists_mail(TO, LINK, mail_id="s1"))
    got = smtp_server.messages[0]
    text = got.get_body(("plain",)).get_content()
    assert "already is one for this address" in text
    assert "Reset your password" in text
    assert got["Message-ID"] != verification_mail(TO, LINK, mail_id="s1")["Message-ID"]


@pytest.mark.asyncio
async def test_security_notice_without_a_link_has_none(smtp_server: SmtpServer) -> None:
    await mailer(smtp_server).send(security_notice(TO, "your password was changed",
                                                   mail_id="n1"))
    got = smtp_server.messages[0]
    assert "your password was changed" in got.get_body(("plain",)).get_content()
    assert links_in(got) == []


@pytest.mark.asyncio
async def test_user_input_is_escaped_in_html_and_kept_in_text(smtp_server: SmtpServer) -> None:
    organisation = "<script>alert('x')</script>"
    inviter = 'Eve "the" <b>Bold</b> & Co'
    await mailer(smtp_server).send(invitation_mail(TO, inviter, organisation, LINK,
                                                   mail_id="i1"))
    got = smtp_server.messages[0]
    page = got.get_body(("html",)).get_content()
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Eve &quot;the&quot; &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in page
    text = got.get_body(("plain",)).get_content()
    assert f"{inviter} invited you to join {organisation}" in text
    assert got["Subject"] == f"{inviter} invited you to {organisation} on Max Booster Studio"


@pytest.mark.asyncio
async def test_line_breaks_in_user_input_cannot_add_headers(smtp_server: SmtpServer) -> None:
    sent = invitation_mail(TO, "Mallory", "Band\r\nBcc: victim@example.com", LINK,
                           mail_id="i2")
    await mailer(smtp_server).send(sent)
    [received] = smtp_server.received
    assert received.rcpt_tos == [TO]
    assert received.message["Bcc"] is None
    # (the stdlib folds this long subject onto its second line: hence the strip)
    assert received.message["Subject"].strip().startswith(
        "Mallory invited you to Band Bcc: victim")


def test_message_id_follows_from_the_mail_id_alone() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    first = verification_mail(TO, LINK, mail_id="job-1", date=when)
    again = verification_mail(TO, LINK, mail_id="job-1")
    assert first["Message-ID"] == again["Message-ID"] == message_id("verify", "job-1")
    assert first["Message-ID"].startswith("<verify.") and first["Message-ID"].endswith(
        "@localhost>")
    assert verification_mail(TO, LINK, mail_id="job-2")["Message-ID"] != first["Message-ID"]
    assert reset_mail(TO, LINK, mail_id="job-1")["Message-ID"] != first["Message-ID"]
    assert parsedate_to_datetime(first["Date"]) == when
    assert first["From"] == DEFAULT_SENDER
    # any id is safe in the header
    odd = verification_mail(TO, LINK, mail_id="a b>\r\n<c@d")["Message-ID"]
    assert odd.count("<") == 1 and odd.count(">") == 1 and " " not in odd


@pytest.mark.asyncio
async def test_a_temporary_refusal_is_temporary_and_the_retry_keeps_the_message_id(
        smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(1, 451)
    send = mailer(smtp_server)
    with pytest.raises(MailError) as refused:
        await send.send(verification_mail(TO, LINK, mail_id="job-9"))
    assert refused.value.permanent is False
    assert refused.value.code == 451
    assert isinstance(refused.value, AccountError)
    assert "451" in str(refused.value) and "try again later" in str(refused.value)
    assert smtp_server.received == []

    retry = verification_mail(TO, LINK, mail_id="job-9")
    await send.send(retry)
    assert [m["Message-ID"] for m in smtp_server.messages] == [
        message_id("verify", "job-9")]


@pytest.mark.asyncio
async def test_a_permanent_refusal_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(2, 550)
    for _ in range(2):
        with pytest.raises(MailError) as refused:
            await mailer(smtp_server).send(reset_mail(TO, LINK, mail_id="r"))
        assert refused.value.permanent is True
        assert refused.value.code == 550
        assert "will not help" in str(refused.value)
    await mailer(smtp_server).send(reset_mail(TO, LINK, mail_id="r"))
    assert len(smtp_server.received) == 1


@pytest.mark.asyncio
async def test_a_closed_port_is_a_temporary_error() -> None:
    port = free_port()
    mail = Mailer(MailSettings(port=port, timeout=5.0))
    with pytest.raises(MailError) as failed:
        await mail.send(verification_mail(TO, LINK, mail_id="v"))
    assert failed.value.permanent is False
    assert failed.value.code is None
    assert f"127.0.0.1:{port}" in str(failed.value)
    assert isinstance(failed.value.__cause__, ConnectionRefusedError)


@pytest.mark.asyncio
async def test_a_server_that_never_greets_times_out_as_temporary() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        mail = Mailer(MailSettings(port=port, timeout=0.3))
        with pytest.raises(MailError) as failed:
            await mail.send(verification_mail(TO, LINK, mail_id="v"))
    assert failed.value.permanent is False
    assert "timed out" in str(failed.value)


@pytest.mark.asyncio
async def test_starttls_from_a_server_without_it_is_a_permanent_error(
        smtp_server: SmtpServer) -> None:
    with pytest.raises(MailError) as failed:
        await mailer(smtp_server, starttls=True).send(verification_mail(TO, LINK, mail_id="v"))
    assert failed.value.permanent is True
    assert "STARTTLS" in str(failed.value)
    assert smtp_server.received == []


@pytest.mark.asyncio
async def test_starttls_then_the_login_of_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(login=("mailer", "s3cret/pw"), tls="starttls") as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cafile))
        url = f"smtp://mailer:s3cret%2Fpw@{server.host}:{server.port}?starttls=1&timeout=5"
        await Mailer(MailSettings.from_url(url)).send(verification_mail(TO, LINK, mail_id="a"))
        assert len(server.received) == 1

        wrong = f"smtp://mailer:nope@{server.host}:{server.port}?starttls=1&timeout=5"
        with pytest.raises(MailError) as refused:
            await Mailer(MailSettings.from_url(wrong)).send(
                verification_mail(TO, LINK, mail_id="a"))
        assert refused.value.permanent is True
        assert refused.value.code == 535
        assert len(server.received) == 1


@pytest.mark.asyncio
async def test_smtps_speaks_tls_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(tls="implicit") as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cafile))
        settings = MailSettings.from_url(server.url)
        assert settings.ssl is True
        await Mailer(settings).send(reset_mail(TO, LINK, mail_id="t"))
        assert links_in(server.messages[0]) == [LINK]


@pytest.mark.asyncio
async def test_an_untrusted_certificate_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    empty = tmp_path / "no-cas.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with SmtpServer(tls="starttls") as server:
        with pytest.raises(MailError) as failed:
            await Mailer(MailSettings.from_url(server.url)).send(
                verification_mail(TO, LINK, mail_id="u"))
        assert "certificate verify failed" in str(failed.value)
        assert server.received == []


def test_settings_from_a_full_url() -> None:
    settings = MailSettings.from_url(
        "smtp://me%40example.com:p%40ss%3Aw@mail.example.com:587"
        "?from=Studio%20%3Cno-reply%40example.com%3E&starttls=1&timeout=2.5")
    assert settings == MailSettings(host="mail.example.com", port=587,
                                    sender="Studio <no-reply@example.com>",
                                    username="me@example.com", password="p@ss:w",
                                    starttls=True, ssl=False, timeout=2.5)


def test_settings_defaults_from_short_urls() -> None:
    assert MailSettings.from_url("smtp://localhost") == MailSettings(host="localhost")
    secure = MailSettings.from_url("smtps://u:p@mail.example.com")
    assert (secure.port, secure.ssl, secure.starttls) == (465, True, False)
    assert (secure.username, secure.password) == ("u", "p")


@pytest.mark.parametrize(("url", "why"), [
    ("http://mail.example.com", "scheme must be smtp or smtps"),
    ("smtp://", "names no host"),
    ("smtp://:secret@:25", "names no host"),
    ("smtp://mail.example.com:99999", "port"),
    ("smtp://mail.example.com:abc", "port"),
    ("smtp://mail.example.com/inbox", "path"),
    ("smtp://mail.example.com?form=x", "unknown parameter 'form'"),
    ("smtp://mail.example.com?starttls=maybe", "starttls must be 1 or 0"),
    ("smtps://mail.example.com?starttls=1", "only goes with smtp://"),
    ("smtp://mail.example.com?from=nobody", "from must be an address"),
    ("smtp://mail.example.com?timeout=-1", "timeout must be a positive"),
    ("smtp://mail.example.com?timeout=soon", "timeout must be a positive"),
])
def test_bad_urls_are_refused_clearly(url: str, why: str) -> None:
    with pytest.raises(MailError) as bad:
        MailSettings.from_url(url)
    assert why in str(bad.value)
    assert "use smtp://" in str(bad.value)
    assert bad.value.permanent is True


def test_the_password_of_a_bad_url_is_not_shown() -> None:
    with pytest.raises(MailError) as bad:
        MailSettings.from_url("smtp://user:hunter2@mail.example.com/x")
    assert "hunter2" not in str(bad.value)
    assert "user:***@" in str(bad.value)


def test_no_url_means_the_outbox(tmp_path: Path) -> None:
    outbox = mail_transport(None, tmp_path)
    assert isinstance(outbox, MailOutbox) and outbox.directory == tmp_path
    assert isinstance(mail_transport("", tmp_path), MailOutbox)
    smtp = mail_transport("smtp://mail.example.com?from=a%40b.c", tmp_path)
    assert isinstance(smtp, Mailer)
    assert (smtp.settings.host, smtp.sender) == ("mail.example.com", "a@b.c")


@pytest.mark.asyncio
async def test_the_outbox_writes_a_readable_eml_and_logs_the_link(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outbox = MailOutbox(tmp_path / "outbox")
    sent = reset_mail(TO, LINK, mail_id="job-3", sender=outbox.sender)
    with caplog.at_level(logging.INFO, logger="accounts.mail"):
        await outbox.send(sent)
        await outbox.send(reset_mail(TO, LINK, mail_id="job-3"))  # a retry: same file
    [path] = (tmp_path / "outbox").iterdir()
    assert path.suffix == ".eml" and path == outbox.path_of(sent)
    read = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(read, EmailMessage)
    assert (read["To"], read["Subject"], read["Message-ID"]) == (
        TO, sent["Subject"], sent["Message-ID"])
    assert links_in(read, "plain") == links_in(read, "html") == [LINK]
    assert LINK in caplog.text and str(path) in caplog.text


@pytest.mark.asyncio
async def test_an_unwritable_outbox_is_a_mail_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MailError) as failed:
        await MailOutbox(blocker / "outbox").send(verification_mail(TO, LINK, mail_id="x"))
    assert str(blocker) in str(failed.value)
