"""The errors of :mod:`accounts`: each says what went wrong and what to do."""

from __future__ import annotations


class AccountError(Exception):
    """Base of every accounts error."""


class InvalidCredentials(AccountError):
    """Wrong email, password, code or key; the message never says which."""


class WeakPassword(AccountError):
    """A new password the policy refuses (too short, too long, blank or the email)."""


class Throttled(AccountError):
    """Too many failures: try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LinkInvalid(AccountError):
    """An email link that is unknown, used already or expired."""


class NotFound(AccountError):
    """No such account, organisation, session, key or invitation (or not yours)."""


class Conflict(AccountError):
    """The change clashes with what exists (an email taken, the last owner leaving)."""


class UnknownRegion(AccountError):
    """A data region that is not configured (sign-up, ``dawserver users create``)."""


class Forbidden(AccountError):
    """The person may not do this (their role is too low)."""


class ProviderError(AccountError):
    """A sign-in provider (OpenID Connect) answered wrongly or refused."""


class AccountMoving(Conflict):
    """The account is being moved to another data region: try again after
    ``retry_after`` seconds (nothing was written)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
