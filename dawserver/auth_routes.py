"""Sign-up, sign-in and one's own account: the HTTP routes over the account service.

Anyone may sign up, sign in, verify an address and reset a password; the
answers are the same whether or not an address has an account. Signing in sets
the ``mbs_session`` cookie (HttpOnly, SameSite=Lax, Secure behind https) and
answers the session's CSRF token, which every cookie-authenticated write sends
back in ``X-CSRF-Token`` (:mod:`dawserver.identity`). The ``/me`` routes act
for the signed-in person only (a key or a project token cannot change a
password or a second factor).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from accounts.models import Account, SessionRecord
from accounts.service import Actor, SecondFactorNeeded, SignedIn

from .account_mail import queue_ask
from .client_address import limited_client
from .errors import Forbidden
from .identity import SESSION, SESSION_COOKIE, session_cookie, signed_in_session
from .keys import ACCOUNTS, BACKGROUND
from .permissions import ACCOUNT_SELF
from .plugin_api import PUBLIC, Empty, Model, Reply, Request, Route

MAX_EMAIL = 254
ACCEPTED = "if the address can be used, a mail is on its way; follow its link"


def _email(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800") is no text
        raise ValueError("send an email address in valid Unicode (no lone surrogate "
                         f"escapes such as \\ud800), got {value!r}") from None
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or " " in text or len(text) > MAX_EMAIL:
        raise ValueError(f"send an email address like name@example.org, got {value!r}")
    return text


class EmailModel(Model):
    """A body with an email address."""

    email: str

    @field_validator("email", mode="before")
    @classmethod
    def _check_email(cls, value: Any) -> str:
        return _email(value)


class SignUp(EmailModel):
    """A new person: address, password and name."""

    password: str = Field(max_length=1024)
    name: str = Field("", max_length=200)
    region: str = Field("default", max_length=40)


class SignIn(EmailModel):
    """An address and its password."""

    password: str = Field(max_length=1024)


class LinkToken(Model):
    """The token of a mailed link."""

    token: str = Field(min_length=1, max_length=200)


class SecondFactor(LinkToken):
    """A second-factor sign-in's token and a code from the app (or a recovery code)."""

    code: str = Field(min_length=1, max_length=40)


class NewPassword(LinkToken):
    """A reset link's token and the new password."""

    password: str = Field(max_length=1024)


class PasswordChange(Model):
    """The current password and a new one."""

    current: str = Field(max_length=1024)
    new: str = Field(max_length=1024)


class Password(Model):
    """The current password, asked again."""

    password: str = Field(max_length=1024)


class Code(Model):
    """A code from the authenticator app."""

    code: str = Field(min_length=1, max_length=40)


class SignOut(Model):
    """Sign out here, or everywhere."""

    everywhere: bool = False


class Accepted(Model):
    """The request was taken; what happens next."""

    status: str


class Person(Model):
    """A signed-in person."""

    id: str
    name: str
    email: str | None
    email_verified: bool
    two_factor: bool
    plan: str
    region: str


class Organisation(Model):
    """An organisation the person is in, and their role."""

    id: str
    name: str
    kind: str
    role: str


class Me(Model):
    """The signed-in person, their organisations and the session's CSRF token."""

    person: Person
    organisations: list[Organisation]
    csrf_token: str


class SessionState(Model):
    """Whether this browser is signed in and, if so, as whom (``me`` as ``GET /me``)."""

    signed_in: bool
    me: Me | None = None


class SignInAnswer(Model):
    """A signed-in session (cookie set), or the second factor still to give."""

    person: Person | None = None
    csrf_token: str | None = None
    second_factor: str | None = None
    expires_at: float | None = None


class SessionInfo(Model):
    """One of the person's sessions."""

    id: str
    created_at: float
    last_seen_at: float
    expires_at: float
    user_agent: str
    address: str
    current: bool


class Ended(Model):
    """How many sessions ended."""

    ended: int


class TwoFactorSetup(Model):
    """The secret to enter in an authenticator app (or scan as the otpauth URI)."""

    secret: str
    uri: str


class RecoveryCodes(Model):
    """Codes that sign in once each without the app; shown once."""

    recovery_codes: list[str]


def person_of(account: Account) -> Person:
    """The public view of a person."""
    return Person(id=account.account_id, name=account.name, email=account.email,
                  email_verified=account.email_verified_at is not None,
                  two_factor=account.two_factor, plan=account.plan, region=account.region)


def _address(request: Request) -> str:
    return request.native.remote or ""


async def _ask(request: Request, ask: str) -> None:
    """Queue ``ask`` for the body's address, counted against the client first
    (:meth:`~accounts.service.AccountService.take_ask`)."""
    await request.app[ACCOUNTS].take_ask(limited_client(_address(request)))
    await queue_ask(request.app[BACKGROUND], ask, request.body.email)


def _user_agent(request: Request) -> str:
    return request.headers.get("User-Agent", "")


def _signed_in(request: Request, signed: SignedIn) -> Reply:
    policy = request.app[ACCOUNTS].sessions.policy
    return Reply(SignInAnswer(person=person_of(signed.person),
                              csrf_token=signed.session.csrf_token),
                 headers={"Set-Cookie": session_cookie(request, signed.secret,
                                                       int(policy.absolute_s))})


def _session(request: Request) -> SessionRecord:
    session = request.native.get(SESSION)
    if session is None:
        raise Forbidden("only a signed-in session may do this (not an API key or a project "
                        "token); sign in")
    return session


def actor_of(request: Request) -> Actor:
    """Who asks for a change (the principal's person), from where, with which browser."""
    return Actor(request.principal.user, _address(request), _user_agent(request))


async def sign_up(request: Request) -> Reply:
    """Create an account; a verification link is mailed. The request checks the
    password and region, hashes the password and queues one ``account_asks`` job, the
    same for any address; the job looks the address up and creates the account or mails
    that it has one, so neither the answer nor its time tells which. It is counted
    against the client before the password is hashed (429 past its free sign-ups)."""
    body: SignUp = request.body
    await request.app[ACCOUNTS].take_sign_up(limited_client(_address(request)))
    email, password_hash = await request.app[ACCOUNTS].sign_up_request(
        body.email, body.password, body.region)
    await queue_ask(request.app[BACKGROUND], "sign_up", email, name=body.name,
                    region=body.region, password_hash=password_hash)
    return Reply(Accepted(status=ACCEPTED), status=202)


async def resend_verification(request: Request) -> Reply:
    """Mail a new verification link to an unverified address (the same answer for any:
    the request only queues a job, :func:`~dawserver.account_mail.queue_ask`, that does
    the lookup and the mail, so neither its time nor a failure tells whether the address
    has an account); 429 when the client asked too often."""
    await _ask(request, "resend")
    return Reply(Accepted(status=ACCEPTED), status=202)


async def verify(request: Request) -> Person:
    """Verify an address with the mailed link's token."""
    return person_of(await request.app[ACCOUNTS].verify_email(request.body.token))


async def sign_in(request: Request) -> Reply:
    """Sign in with an address and password: sets the session cookie, or asks for the
    second factor. 401 for a wrong address or password alike; 429 after repeated failures."""
    body: SignIn = request.body
    address = _address(request)
    result = await request.app[ACCOUNTS].log_in(body.email, body.password, address=address,
                                                client=limited_client(address),
                                                user_agent=_user_agent(request))
    if isinstance(result, SecondFactorNeeded):
        return Reply(SignInAnswer(second_factor=result.token, expires_at=result.expires_at))
    return _signed_in(request, result)


async def second_factor(request: Request) -> Reply:
    """Finish signing in with a code from the app or a recovery code."""
    body: SecondFactor = request.body
    signed = await request.app[ACCOUNTS].second_factor(
        body.token, body.code, address=_address(request), user_agent=_user_agent(request))
    return _signed_in(request, signed)


async def sign_out(request: Request) -> Reply:
    """End this session (or every session of the person) and clear the cookie."""
    ended = await request.app[ACCOUNTS].log_out(_session(request),
                                                everywhere=request.body.everywhere)
    return Reply(Ended(ended=ended), headers={"Set-Cookie": session_cookie(request, "", 0)})


async def request_reset(request: Request) -> Reply:
    """Mail a password reset link (the same answer for any address, as fast: the request
    only queues a job that does the lookup and the mail); 429 when the client asked
    too often."""
    await _ask(request, "reset")
    return Reply(Accepted(status=ACCEPTED), status=202)


async def reset(request: Request) -> Person:
    """Set a new password with a reset link; every session of the person ends."""
    body: NewPassword = request.body
    return person_of(await request.app[ACCOUNTS].reset_password(body.token, body.password))


async def me(request: Request) -> Me:
    """The signed-in person, their organisations and the CSRF token for writes."""
    return await _me_of(request, _session(request))


async def session_state(request: Request) -> Reply:
    """Whether the browser's cookie is a live session: ``{"signed_in": false}`` for a
    visitor (no 401, so a page asking shows no error), else the person as ``GET /me``.
    An ended session's cookie is cleared."""
    session = await signed_in_session(request.native)
    if session is None:
        ended = SESSION_COOKIE in request.native.cookies
        return Reply(SessionState(signed_in=False),
                     headers={"Set-Cookie": session_cookie(request, "", 0)} if ended else {})
    return Reply(SessionState(signed_in=True, me=await _me_of(request, session)))


async def _me_of(request: Request, session: SessionRecord) -> Me:
    service = request.app[ACCOUNTS]
    person = await service.store.require_account(session.person_id)
    organisations = []
    for membership in await service.store.memberships_of(person.account_id):
        org = await service.store.account(membership.account_id)
        if org is not None and org.active:
            organisations.append(Organisation(id=org.account_id, name=org.name,
                                              kind=org.kind.value, role=membership.role))
    return Me(person=person_of(person), organisations=organisations,
              csrf_token=session.csrf_token)


async def change_password(request: Request) -> Person:
    """Change the password (the current one is asked); other sessions end."""
    session = _session(request)
    body: PasswordChange = request.body
    return person_of(await request.app[ACCOUNTS].change_password(
        actor_of(request), body.current, body.new, keep=session.key_hash))


async def list_sessions(request: Request) -> list[SessionInfo]:
    """The person's live sessions; ``current`` marks this one."""
    session = _session(request)
    records = await request.app[ACCOUNTS].sessions.list(session.person_id)
    return [SessionInfo(id=r.session_id, created_at=r.created_at, last_seen_at=r.last_seen_at,
                        expires_at=r.expires_at, user_agent=r.user_agent, address=r.address,
                        current=r.key_hash == session.key_hash) for r in records]


async def end_session(request: Request) -> Ended:
    """End one of the person's sessions by its id."""
    session = _session(request)
    ended = await request.app[ACCOUNTS].sessions.end_by_id(session.person_id,
                                                           request.params["session_id"])
    return Ended(ended=int(ended))


async def end_other_sessions(request: Request) -> Ended:
    """End every session of the person but this one."""
    session = _session(request)
    ended = await request.app[ACCOUNTS].sessions.end_all(session.person_id,
                                                         keep=session.key_hash)
    return Ended(ended=ended)


async def begin_two_factor(request: Request) -> TwoFactorSetup:
    """Start setting up two-step sign-in: a secret for the authenticator app."""
    _session(request)
    secret, uri = await request.app[ACCOUNTS].begin_two_factor(actor_of(request))
    return TwoFactorSetup(secret=secret, uri=uri)


async def enable_two_factor(request: Request) -> RecoveryCodes:
    """Turn two-step sign-in on with a first code; answers the recovery codes once."""
    _session(request)
    codes = await request.app[ACCOUNTS].enable_two_factor(actor_of(request), request.body.code)
    return RecoveryCodes(recovery_codes=codes)


async def disable_two_factor(request: Request) -> Person:
    """Turn two-step sign-in off (the password is asked again)."""
    _session(request)
    service = request.app[ACCOUNTS]
    await service.disable_two_factor(actor_of(request), request.body.password)
    return person_of(await service.store.require_account(request.principal.user))


def _public(path: str, handler: Any, body: Any, response: Any, status: int = 200,
            statuses: tuple[int, ...] = ()) -> Route:
    return Route(method="POST", path=path, handler=handler, permission=PUBLIC, body=body,
                 response=response, status=status, statuses=statuses)


def _own(method: str, path: str, handler: Any, response: Any, body: Any = None) -> Route:
    return Route(method=method, path=path, handler=handler, permission=ACCOUNT_SELF,
                 body=body, response=response)


ROUTES = [
    _public("/auth/sign-up", sign_up, SignUp, Accepted, 202),
    _public("/auth/verify", verify, LinkToken, Person),
    _public("/auth/verify/resend", resend_verification, EmailModel, Accepted, 202),
    _public("/auth/sign-in", sign_in, SignIn, SignInAnswer),
    _public("/auth/sign-in/second-factor", second_factor, SecondFactor, SignInAnswer),
    _public("/auth/reset", request_reset, EmailModel, Accepted, 202),
    _public("/auth/reset/confirm", reset, NewPassword, Person),
    _own("POST", "/auth/sign-out", sign_out, Ended, SignOut),
    Route(method="GET", path="/auth/session", handler=session_state, permission=PUBLIC,
          response=SessionState),
    _own("GET", "/me", me, Me),
    _own("PUT", "/me/password", change_password, Person, PasswordChange),
    _own("GET", "/me/sessions", list_sessions, list[SessionInfo]),
    _own("DELETE", "/me/sessions", end_other_sessions, Ended),
    _own("DELETE", "/me/sessions/{session_id}", end_session, Ended),
    _own("POST", "/me/two-factor", begin_two_factor, TwoFactorSetup, Empty),
    _own("POST", "/me/two-factor/enable", enable_two_factor, RecoveryCodes, Code),
    _own("POST", "/me/two-factor/disable", disable_two_factor, Person, Password),
]
