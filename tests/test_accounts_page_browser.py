"""The account pages in real headless Debian Chromium, against ``dawserver serve`` and a real
SMTP server: sign-up, mailed links, sign-in, team, sessions, API keys, two-step sign-in, and
two people editing one organisation's project together."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fake_oidc import FakeOidcProvider, FakeUser
from loopback import free_port
from pagebrowser import (
    BROWSER_TEST,
    CHROMIUM,
    CHROMIUM_FLAGS,
    REPO,
    ServerProcess,
    screenshot,
    wait_for,
)
from smtp_server import SmtpServer, links_in

pytestmark = BROWSER_TEST

PASSWORD = "correct horse battery"
OIDC_USER = FakeUser(subject="1170", email="iris@example.org", name="Iris")
#: What a browser logs for every 4xx answer; a test that provokes one names its path
#: (:meth:`Browser.expect_refusal`), any other is an error.
REFUSED = "Failed to load resource: the server responded with a status of 4"


@dataclass
class Site:
    """The server, its SMTP server and one Chromium."""

    server: ServerProcess
    smtp: SmtpServer
    browser: Any

    @property
    def url(self) -> str:
        return self.server.url

    def link(self, email: str, kind: str, count: int = 1) -> str:
        """The link of the ``count``-th mail of ``kind`` (verify, reset, invite) to ``email``."""
        def mails() -> list[Any]:
            return [m for m in self.smtp.messages if email in str(m["To"])
                    and str(m["Message-ID"]).startswith(f"<{kind}.")]
        found = wait_for(lambda: len(mails()) >= count and mails(), timeout=20)
        link = links_in(found[count - 1], "plain")[0]
        assert link.startswith(f"{self.url}/account/{kind}?token="), link
        return link

    def post(self, path: str, body: dict[str, Any], token: str = "") -> tuple[int, Any]:
        """``(status, JSON)`` of a POST, optionally with a Bearer token."""
        return self.call("POST", path, body, token)

    def call(self, method: str, path: str, body: Any = None, token: str = ""
             ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def person(self, email: str, name: str) -> None:
        """A verified person, made over HTTP (for the tests whose subject is elsewhere)."""
        assert self.post("/auth/sign-up", {"email": email, "password": PASSWORD,
                                           "name": name})[0] == 202
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(
            self.link(email, "verify")).query)["token"][0]
        assert self.post("/auth/verify", {"token": token})[0] == 200


@contextmanager
def provider_in_a_thread(callback: str) -> Iterator[FakeOidcProvider]:
    """The fake OpenID provider, served by an event loop of its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    provider = FakeOidcProvider(redirect_uris=(callback,), user=OIDC_USER)
    try:
        asyncio.run_coroutine_threadsafe(provider.__aenter__(), loop).result(30)
        yield provider
    finally:
        asyncio.run_coroutine_threadsafe(provider.__aexit__(None, None, None), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server (cheap password hashing, "Sign in with Google" through the fake provider),
    one SMTP server, one headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("accounts-page")
    data = root / "data"
    data.mkdir()
    port = free_port()
    callback = f"http://127.0.0.1:{port}/auth/oidc/google/callback"
    with SmtpServer() as smtp, provider_in_a_thread(callback) as provider:
        ca_file = root / "provider-ca.pem"
        ca_file.write_text("".join(ssl.DER_cert_to_PEM_cert(der) for der in
                                   provider.trust.get_ca_certs(binary_form=True)))
        providers = root / "providers.json"
        providers.write_text(json.dumps({"google": {
            "issuer": provider.issuer, "client_id": provider.client_id,
            "client_secret": provider.client_secret, "ca_file": str(ca_file)}}))
        env = {"DAW_MAIL_URL": f"{smtp.url}?from=studio@example.org",
               "DAW_PASSWORD_HASHING": "1,1024,1", "DAW_SIGN_IN_PROVIDERS": str(providers)}
        with ServerProcess(data, port, env) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                yield Site(server, smtp, browser)
            finally:
                browser.close()


class Browser:
    """One person's browser: its own cookies and storage, its console errors."""

    def __init__(self, site: Site) -> None:
        self.site = site
        # the fake provider's certificate is self-signed (its pages only redirect)
        self.context = site.browser.new_context(viewport={"width": 1100, "height": 800},
                                                ignore_https_errors=True)
        self.page = self.context.new_page()
        self.messages: list[tuple[str, str]] = []  # (text, the URL it is about)
        self.refusals: set[str] = set()
        self.page.on("console", lambda m: self.messages.append(
            (f"{m.type}: {m.text}", (m.location or {}).get("url", ""))))
        self.page.on("pageerror", lambda e: self.messages.append((f"pageerror: {e}", "")))
        self.page.set_default_timeout(15000)

    def expect_refusal(self, path: str) -> None:
        """Let the browser log the 4xx answer of ``path`` that the test provokes on purpose."""
        self.refusals.add(path)

    def open(self, path_or_url: str) -> Any:
        """Go to a page and wait until it has drawn itself."""
        url = path_or_url if path_or_url.startswith("http") else self.site.url + path_or_url
        self.page.goto(url)
        self.ready()
        return self.page

    def ready(self) -> None:
        self.page.wait_for_selector("body[data-ready=true]")

    def errors(self) -> list[str]:
        """Console errors, less the refusals the test provoked."""
        return [text for text, url in self.messages if text.startswith(("error:", "pageerror:"))
                and not (REFUSED in text and urllib.parse.urlsplit(url).path in self.refusals)]

    def sign_up(self, email: str, name: str) -> None:
        page = self.open("/account/sign-up")
        page.get_by_label("Your name").fill(name)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_role("status").filter(has_text="Check your mail").wait_for()

    def verify(self, email: str) -> None:
        page = self.open(self.site.link(email, "verify"))
        page.get_by_role("status").filter(has_text=f"{email} is verified").wait_for()

    def sign_in(self, email: str, password: str = PASSWORD, *, lands: str = "/") -> None:
        page = self.open("/account/sign-in")
        self.fill_sign_in(email, password)
        page.wait_for_url(self.site.url + lands)
        self.ready()

    def fill_sign_in(self, email: str, password: str) -> None:
        page = self.page
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

    def close(self) -> None:
        assert self.errors() == []
        self.context.close()


def qr_drawn(svg: Any) -> tuple[int, set[tuple[int, int]]]:
    """The side of the QR code an SVG draws and its dark modules (the unit squares of its
    path)."""
    d = svg.locator("path").get_attribute("d")
    squares = re.findall(r"M(\d+) (\d+)h1v1h-1z", d)
    assert "".join(f"M{x} {y}h1v1h-1z" for x, y in squares) == d  # nothing else drawn
    return int(svg.get_attribute("data-modules")), {(int(x), int(y)) for x, y in squares}


def qr_of(text: str) -> tuple[int, set[tuple[int, int]]] | None:
    """What uqr (the page's QR encoder, from web/node_modules) makes of ``text``; None
    where web/node_modules is not installed."""
    web = REPO / "web"
    if shutil.which("node") is None or not (web / "node_modules" / "uqr").is_dir():
        return None
    script = ("import { encode } from 'uqr'; const { size, data } = encode(process.argv[1], "
              "{ ecc: 'M', border: 0 }); console.log(JSON.stringify({ size, dark: data.flatMap("
              "(row, y) => row.flatMap((on, x) => on ? [[x, y]] : [])) }))")
    done = subprocess.run(["node", "--input-type=module", "-e", script, text], cwd=web,
                          check=True, capture_output=True, text=True, timeout=60)
    made = json.loads(done.stdout)
    return made["size"], {(x, y) for x, y in made["dark"]}


def test_two_people_sign_up_join_an_organisation_and_edit_its_project_together(
        site: Site) -> None:
    ana, ben = Browser(site), Browser(site)
    # Ana signs up in the page, follows the mailed link and signs in: her (empty) projects.
    ana.sign_up("ana@example.org", "Ana")
    ana.verify("ana@example.org")
    ana.page.get_by_role("link", name="Sign in").click()
    ana.ready()
    ana.fill_sign_in("ana@example.org", PASSWORD)
    ana.page.wait_for_url(site.url + "/")
    ana.page.get_by_text("No projects yet").wait_for()
    # She makes an organisation and invites Ben into it.
    page = ana.open("/account/team")
    page.get_by_label("Organisation name").fill("Night Owls")
    page.get_by_role("button", name="Create").click()
    org = page.locator("section.organisation").filter(has_text="Night Owls")
    org.get_by_role("row").filter(has_text="Ana (you)").wait_for()
    org.get_by_label("Email to invite").fill("ben@example.org")
    org.get_by_role("button", name="Send invitation").click()
    org.get_by_role("status").filter(has_text="Invitation mailed to ben@example.org").wait_for()
    org.locator("tr[data-state=pending]").filter(has_text="ben@example.org").wait_for()
    shot = screenshot(page, "account-team")
    if os.environ.get("DAW_UPDATE_DOCS_IMAGES") == "1":  # the image in docs/browser-page.md
        shutil.copyfile(shot, REPO / "docs" / "images" / "account-team.png")
    # A project of the organisation's, opened with a token derived from her session.
    page = ana.open("/")
    page.get_by_label("New project name").fill("Single")
    page.get_by_label("Owner of the new project").select_option(label="Night Owls")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(f"{site.url}/?project=*")
    ana.ready()
    project_id = page.evaluate("window.daw.project.projectId")
    assert "token=" not in page.url
    assert page.locator(".role-badge").inner_text().lower() == "owner"
    page.click("button.add-track")
    track = page.locator(".track-header[data-track]").first
    track.wait_for()
    track_id = track.get_attribute("data-track")

    # Ben opens the invitation before he has an account: he signs up, verifies, signs in,
    # and comes back to the invitation to accept it.
    page = ben.open(site.link("ben@example.org", "invite"))
    page.get_by_role("link", name="Sign up").click()
    ben.ready()
    page.get_by_label("Your name").fill("Ben")
    page.get_by_label("Email").fill("ben@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("status").filter(has_text="Check your mail").wait_for()
    ben.verify("ben@example.org")
    ben.page.get_by_role("link", name="Sign in").click()
    ben.ready()
    ben.fill_sign_in("ben@example.org", PASSWORD)
    page.wait_for_url(f"{site.url}/account/invite?token=*")
    ben.ready()
    page.get_by_role("button", name="Accept invitation").click()
    page.get_by_role("status").filter(has_text="You joined Night Owls as member").wait_for()
    # The organisation's project is in his list; he opens it and renames Ana's track.
    page = ben.open("/")
    entry = page.locator(f".project[data-project='{project_id}']")
    assert entry.locator(".role-badge").text_content() == "editor"
    assert entry.get_by_role("button", name="Delete").count() == 0  # owners only
    entry.get_by_role("link", name="Open").click()
    ben.ready()
    name = page.locator(f".track-header[data-track='{track_id}'] .name")
    name.fill("Ben's bass")
    name.press("Enter")
    # Ana sees it, and sees Ben (by his name) in the project.
    ana.page.wait_for_function(
        f"document.querySelector(\".track-header[data-track='{track_id}'] .name\").value"
        " === \"Ben's bass\"")
    ana.page.locator(".people .person").filter(has_text="Ben").wait_for()
    # Her team page now shows Ben as a member and the invitation as accepted.
    page = ana.open("/account/team")
    org = page.locator("section.organisation").filter(has_text="Night Owls")
    org.get_by_role("row").filter(has_text="ben@example.org").filter(
        has=page.get_by_role("combobox")).wait_for()
    org.locator("tr[data-state=accepted]").wait_for()
    # Ana, an owner, deletes the project from her list (after confirming): Ben's page is
    # closed, saying why, and the project is gone from her list.
    page = ana.open("/")
    entry = page.locator(f".project[data-project='{project_id}']")
    page.once("dialog", lambda dialog: dialog.accept())
    entry.get_by_role("button", name="Delete").click()
    entry.wait_for(state="detached")
    page.locator(".toast").filter(has_text="deleted Single").wait_for()
    ben.page.wait_for_function(
        "document.querySelector('.status').textContent.startsWith('closed')")
    assert "deleted" in ben.page.locator(".status").inner_text()
    ana.close()
    ben.close()


def test_a_wrong_password_shows_the_servers_error(site: Site) -> None:
    site.person("cleo@example.org", "Cleo")
    cleo = Browser(site)
    cleo.expect_refusal("/auth/sign-in")
    page = cleo.open("/account/sign-in")
    cleo.fill_sign_in("cleo@example.org", "not the password")
    alert = page.get_by_role("alert")
    alert.filter(has_text="wrong email or password").wait_for()
    assert page.url == site.url + "/account/sign-in"
    # An empty field is caught before asking the server, and said so.
    page.get_by_label("Password").fill("")
    page.get_by_role("button", name="Sign in").click()
    alert.filter(has_text="Password is required").wait_for()
    screenshot(page, "account-sign-in")
    cleo.close()


def test_sign_in_with_google_goes_through_the_provider_and_back_signed_in(site: Site) -> None:
    iris = Browser(site)
    page = iris.open("/account/sign-in")
    google = page.get_by_role("link", name="Sign in with Google")
    assert google.get_attribute("href") == "/auth/oidc/google/start"
    google.click()
    page.wait_for_url(site.url + "/")
    iris.ready()
    page.get_by_text("Signed in as Iris").wait_for()
    page = iris.open("/account")
    page.get_by_role("status").filter(has_text="Signed in as iris@example.org").wait_for()
    # She turns two-step sign-in on; a sign-in that started on a page that needs it goes
    # through the provider, asks for the code, and lands back on that page.
    page = iris.open("/account/two-factor")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    totp = pyotp.TOTP(page.locator("code.secret").get_attribute("data-secret"))
    page.get_by_label("Code the app shows").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    page.locator(".recovery-codes li").first.wait_for()
    laptop = Browser(site)
    page = laptop.page
    page.goto(site.url + "/account/sessions")
    page.wait_for_url(f"{site.url}/account/sign-in?next=%2Faccount%2Fsessions")
    laptop.ready()
    google = page.get_by_role("link", name="Sign in with Google")
    assert google.get_attribute("href") == "/auth/oidc/google/start?next=%2Faccount%2Fsessions"
    google.click()
    code = page.get_by_label("Code from your authenticator app")
    code.wait_for()
    assert page.url == f"{site.url}/account/sign-in?next=%2Faccount%2Fsessions"  # no token
    code.fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(site.url + "/account/sessions")
    laptop.ready()
    page.locator("tr[data-current=true]").wait_for()
    iris.close()
    laptop.close()


def test_a_forgotten_password_is_reset_through_the_mailed_link(site: Site) -> None:
    site.person("dora@example.org", "Dora")
    dora = Browser(site)
    page = dora.open("/account/sign-in")
    page.get_by_role("link", name="Forgotten your password?").click()
    dora.ready()
    page.get_by_label("Email").fill("dora@example.org")
    page.get_by_role("button", name="Mail me a link").click()
    page.get_by_role("status").filter(has_text="mail is on its way").wait_for()
    page = dora.open(site.link("dora@example.org", "reset"))
    page.get_by_label("New password", exact=True).fill("a brand new secret")
    page.get_by_label("New password again").fill("a brand new secreT")
    page.get_by_role("button", name="Set password").click()
    page.get_by_role("alert").filter(has_text="the two passwords differ").wait_for()
    page.get_by_label("New password again").fill("a brand new secret")
    page.get_by_role("button", name="Set password").click()
    page.get_by_role("status").filter(has_text="Your password is changed").wait_for()
    dora.sign_in("dora@example.org", "a brand new secret")
    assert site.post("/auth/sign-in", {"email": "dora@example.org",
                                       "password": PASSWORD})[0] == 401
    # Signed in, she changes it again on the overview page (the current one is asked).
    page = dora.open("/account")
    dora.expect_refusal("/me/password")
    page.get_by_label("Current password").fill("not it at all")
    page.get_by_label("New password").fill("the third secret")
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("alert").filter(has_text="wrong").wait_for()
    page.get_by_label("Current password").fill("a brand new secret")
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("status").filter(has_text="Password changed").wait_for()
    assert site.post("/auth/sign-in", {"email": "dora@example.org",
                                       "password": "the third secret"})[0] == 200
    dora.close()


def test_the_sessions_page_ends_another_session(site: Site) -> None:
    site.person("eve@example.org", "Eve")
    laptop, phone = Browser(site), Browser(site)
    laptop.sign_in("eve@example.org")
    phone.sign_in("eve@example.org")
    page = laptop.open("/account/sessions")
    rows = page.locator("tr[data-session]")
    wait_for(lambda: rows.count() == 2)
    assert page.locator("tr[data-current=true]").get_by_text("This session").count() == 1
    page.locator("tr[data-current=false]").get_by_role("button", name="End").click()
    page.get_by_role("status").filter(has_text="Session: 1 ended").wait_for()
    wait_for(lambda: rows.count() == 1)
    # The phone's session is over: its next page sends it to sign in.
    phone.page.goto(site.url + "/account/sessions")
    phone.page.wait_for_url(f"{site.url}/account/sign-in?next=*")
    laptop.open("/account/sessions")  # the laptop's is not
    laptop.close()
    phone.close()


def test_an_api_key_is_shown_once_works_and_stops_when_revoked(site: Site) -> None:
    site.person("finn@example.org", "Finn")
    finn = Browser(site)
    finn.sign_in("finn@example.org")
    page = finn.open("/account/keys")
    person_id = page.get_by_label("Keys of").input_value()
    page.get_by_label("Key name").fill("mix export")
    page.get_by_role("checkbox", name="account.read").check()
    page.get_by_label("Expires after").select_option(label="30 days")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret of mix export")
    secret.wait_for()
    key = secret.input_value()
    assert key.startswith("mbk_live_")
    row = page.locator("tr[data-key]").filter(has_text="mix export")
    assert "account.read" in row.inner_text()
    assert key not in row.inner_text()  # the list shows its prefix only
    screenshot(page, "account-keys")
    status, account = site.call("GET", f"/accounts/{person_id}", token=key)
    assert (status, account["id"]) == (200, person_id)
    row.get_by_role("button", name="Revoke mix export").click()
    page.locator("tr[data-key][data-revoked=true]").filter(has_text="mix export").wait_for()
    assert site.call("GET", f"/accounts/{person_id}", token=key)[0] == 401
    # A reload never shows the secret again.
    page = finn.open("/account/keys")
    page.locator("tr[data-key]").filter(has_text="mix export").wait_for()
    assert key not in page.content()
    finn.close()


def test_two_step_sign_in_is_turned_on_and_then_asked_for(site: Site) -> None:
    site.person("gus@example.org", "Gus")
    gus = Browser(site)
    gus.sign_in("gus@example.org")
    page = gus.open("/account/two-factor")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    shown = page.locator("code.secret")
    shown.wait_for()
    secret = shown.get_attribute("data-secret")
    assert shown.inner_text().replace(" ", "") == secret
    uri = page.get_by_role("link", name="this otpauth link").get_attribute("href")
    assert uri.startswith("otpauth://totp/")
    # the secret shown is the one in the URI, and the URI is drawn as a QR code
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)["secret"] == [secret]
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    assert qr.evaluate("e => e.tagName") == "svg" and qr.bounding_box()["width"] >= 150
    size, dark = qr_drawn(qr)
    assert size >= 21 and (size - 17) % 4 == 0  # a QR version's side: 21, 25, 29...
    assert 0.3 < len(dark) / size**2 < 0.7
    expected = qr_of(uri)
    if expected is not None:  # the modules uqr encodes for this URI, square by square
        assert (size, dark) == expected
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code the app shows").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator(".recovery-codes li")
    codes.first.wait_for()
    assert codes.count() == 10
    recovery = codes.first.inner_text()
    # Signing in now asks for a code: the next step's (a step is never accepted twice).
    phone = Browser(site)
    page = phone.open("/account/sign-in")
    phone.fill_sign_in("gus@example.org", PASSWORD)
    code = page.get_by_label("Code from your authenticator app")
    phone.expect_refusal("/auth/sign-in/second-factor")
    code.fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("alert").filter(has_text="wrong code").wait_for()
    code.fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(site.url + "/")
    phone.ready()
    assert page.get_by_text("Signed in as Gus").count() == 1
    # A recovery code signs in once too.
    spare = Browser(site)
    page = spare.open("/account/sign-in")
    spare.fill_sign_in("gus@example.org", PASSWORD)
    page.get_by_label("Code from your authenticator app").fill(recovery)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(site.url + "/")
    # Turning it off asks for the password.
    page = gus.open("/account/two-factor")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Turn off").click()
    page.get_by_role("status").filter(has_text="Two-step sign-in is off. With it on").wait_for()
    assert "second_factor" not in site.post("/auth/sign-in", {
        "email": "gus@example.org", "password": PASSWORD})[1]
    for browser in (gus, phone, spare):
        browser.close()


def test_pages_that_need_someone_signed_in_send_them_to_sign_in_and_back(site: Site) -> None:
    site.person("hal@example.org", "Hal")
    hal = Browser(site)
    hal.page.goto(site.url + "/account/keys")
    hal.page.wait_for_url(f"{site.url}/account/sign-in?next=%2Faccount%2Fkeys")
    hal.ready()
    hal.fill_sign_in("hal@example.org", PASSWORD)
    hal.page.wait_for_url(site.url + "/account/keys")
    # Someone not signed in sees the sign-in links on the project list, and a project
    # link without a token sends them to sign in first.
    stranger = Browser(site)
    page = stranger.open("/")
    assert page.get_by_role("link", name="Sign in").get_attribute("href") == "/account/sign-in"
    page.goto(site.url + "/?project=p123")
    page.wait_for_url(f"{site.url}/account/sign-in?next=%2F%3Fproject%3Dp123")
    hal.close()
    stranger.close()



def test_the_security_log_shows_ones_own_and_an_organisations_events_in_pages(
        site: Site) -> None:
    site.person("jo@example.org", "Jo")
    for _ in range(52):  # more sign-ins than a page of the log holds (50)
        assert site.post("/auth/sign-in", {"email": "jo@example.org",
                                           "password": PASSWORD})[0] == 200
    assert site.post("/auth/sign-in", {"email": "jo@example.org",
                                       "password": "wrong one"})[0] == 401
    jo = Browser(site)
    jo.sign_in("jo@example.org")
    page = jo.open("/account/team")
    page.get_by_label("Organisation name").fill("Brass Band")
    page.get_by_role("button", name="Create").click()
    org = page.locator("section.organisation").filter(has_text="Brass Band")
    org.get_by_label("Email to invite").fill("tuba@example.org")
    org.get_by_role("button", name="Send invitation").click()
    org.get_by_role("status").filter(has_text="Invitation mailed").wait_for()
    page = jo.open("/account/security")
    rows = page.locator(".audit tbody tr[data-event]")
    wait_for(lambda: rows.count() == 50)
    first = rows.first
    assert first.get_attribute("data-action") == "sign_in"  # her browser's, the newest
    assert "127.0.0.1" in first.inner_text() and "Jo (you)" in first.inner_text()
    older = page.get_by_role("button", name="Older events")
    older.click()
    wait_for(lambda: older.is_hidden() and rows.count() > 50)
    # 53 sign-ins, one failure, the verification...: every event once, the oldest last
    events = rows.evaluate_all("rows => rows.map(r => r.dataset.event)")
    assert len(set(events)) == len(events)
    actions = rows.evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions.count("sign_in") == 53 and actions[-1] == "email.verified"
    failed = page.locator("tr[data-action='sign_in.failed']")
    assert "Failed sign-in" in failed.inner_text()
    # The organisation's own log: the invitation she sent, nothing of her sign-ins.
    page.get_by_label("Log of").select_option(label="Brass Band")
    org_rows = page.locator(".audit tbody tr[data-event]")
    org_rows.filter(has_text="Invitation sent").wait_for()
    assert "sign_in" not in org_rows.evaluate_all("rows => rows.map(r => r.dataset.action)")
    jo.close()


def test_an_owner_grants_a_team_and_a_person_a_role_on_a_project_and_removes_it(
        site: Site) -> None:
    site.person("kim@example.org", "Kim")
    status, signed = site.post("/auth/sign-in", {"email": "kim@example.org",
                                                 "password": PASSWORD})
    kim_id = signed["person"]["id"]
    site.person("lou@example.org", "Lou")
    lou, kim = Browser(site), Browser(site)
    lou.sign_in("lou@example.org")
    page = lou.open("/account/team")
    page.get_by_label("Organisation name").fill("Strings")
    page.get_by_label("Kind").select_option("team")
    page.get_by_role("button", name="Create").click()
    page.locator("section.organisation").filter(has_text="Strings").wait_for()
    page = lou.open("/")
    page.get_by_label("New project name").fill("Duet")
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(f"{site.url}/?project=*")
    lou.ready()
    project_id = page.evaluate("window.daw.project.projectId")
    page = lou.open("/")
    page.get_by_role("link", name="Who may open Duet").click()
    page.wait_for_url(f"{site.url}/account/access?project={project_id}")
    lou.ready()
    page.get_by_role("cell", name="No one else").wait_for()
    # The team, picked by name, as editors; Kim, by her id, as a viewer.
    page.get_by_label("Person or team").select_option(label="Strings (team)")
    page.get_by_role("button", name="Grant").click()
    page.get_by_role("status").filter(has_text="Strings (team) is now editor on Duet").wait_for()
    page.get_by_label("Or an account id").fill(kim_id)
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Grant").click()
    page.locator(f"tr[data-grantee='{kim_id}']").filter(has_text="viewer").wait_for()
    team = page.locator("tr[data-grantee]").filter(has_text="Strings (team)")
    assert "editor" in team.inner_text() and "Lou (you)" in team.inner_text()
    # Kim now has Duet in her list as a viewer.
    kim.sign_in("kim@example.org")
    entry = kim.page.locator(f".project[data-project='{project_id}']")
    assert entry.locator(".role-badge").text_content() == "viewer"
    assert entry.get_by_role("link", name="Who may open Duet").count() == 0  # not an owner
    # Lou takes it away again: Kim's list no longer has it.
    page.get_by_role("button", name=f"Remove {kim_id}").click()
    page.get_by_role("status").filter(has_text="no longer has a role on Duet").wait_for()
    wait_for(lambda: page.locator(f"tr[data-grantee='{kim_id}']").count() == 0)
    kim.open("/")
    kim.page.get_by_text("No projects yet").wait_for()
    lou.close()
    kim.close()


def test_a_project_stays_connected_and_editable_after_its_first_token_expired(
        site: Site, tmp_path: Path) -> None:
    data = tmp_path / "short-tokens"
    data.mkdir()
    env = {"DAW_MAIL_URL": f"{site.smtp.url}?from=studio@example.org",
           "DAW_PASSWORD_HASHING": "1,1024,1", "DAW_COLLAB_TOKEN_SECONDS": "4"}
    with ServerProcess(data, free_port(), env) as server:
        short = Site(server, site.smtp, site.browser)
        short.person("max@example.org", "Max")
        max_ = Browser(short)
        max_.sign_in("max@example.org")
        page = max_.page
        page.get_by_label("New project name").fill("Long night")
        page.get_by_role("button", name="Create project").click()
        page.wait_for_url(f"{short.url}/?project=*")
        max_.ready()
        project_id = page.evaluate("window.daw.project.projectId")
        first = page.evaluate("window.daw.project.token")
        expires = json.loads(_claims(first))["exp"]
        # The page fetches a new token on its own (nothing dropped yet), and presents it
        # once the first has run out and the connection drops and comes back.
        page.wait_for_function(
            f"window.daw.project.provider.params.token !== {json.dumps(first)}", timeout=20000)
        page.wait_for_function(f"Date.now() / 1000 > {expires} + 0.5", timeout=20000)
        drop_and_reconnect(page)
        assert page.evaluate("window.daw.project.provider.params.token") != first
        # A token refused as expired (the page slept through its renewal) is renewed then.
        page.evaluate("t => window.daw.project.setToken(t)", first)
        drop_and_reconnect(page)
        token = page.evaluate("window.daw.project.token")
        assert token != first and json.loads(_claims(token))["exp"] > expires
        # Still editing: a track added now reaches the server.
        page.click("button.add-track")
        track = page.locator(".track-header[data-track]").first
        track.wait_for()
        track_id = track.get_attribute("data-track")
        wait_for(lambda: track_id in server.document(project_id, page.evaluate(
            "window.daw.project.token"))["tracks"], timeout=15)
        assert page.locator(".status").inner_text() == "connected"
        max_.close()


def _claims(token: str) -> str:
    """The JSON claims of a collaboration token (``base64url(json).signature``)."""
    body = token.split(".")[0]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def drop_and_reconnect(page: Any) -> None:
    """Close the page's WebSocket as a network drop would, and wait until it is synced again
    over a new one."""
    page.evaluate("""() => {
      const provider = window.daw.project.provider
      window.__dropped = provider.ws
      provider.ws.close()
    }""")
    page.wait_for_function("""() => {
      const provider = window.daw.project.provider
      return provider.ws && provider.ws !== window.__dropped && provider.wsconnected &&
        provider.synced
    }""", timeout=20000)
