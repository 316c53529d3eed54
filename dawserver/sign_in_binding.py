"""A started sign-in, bound to the browser that started it (against login CSRF).

A provider's callback URL (``?code=...&state=...``) signs in whichever browser opens
it. Someone could start a sign-in, pass the provider as themselves and hand the
callback URL to someone else, whose browser would then be signed in to the first
person's account (and what they upload would land there). So ``start`` also gives
its browser a cookie, :data:`BINDING_COOKIE` (a random value; HttpOnly, SameSite=Lax,
Secure when the site is https, scoped to the callback's path and living as long as
the sign-in), and keeps only the value's SHA-256 with the started sign-in; the
callback finishes it only for a browser that holds the value (:func:`holds_binding`),
then clears the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie
from typing import Any

from .keys import CONFIG

#: The cookie that binds a started sign-in to its browser.
BINDING_COOKIE = "mbs_sign_in"
#: Why a callback is refused in a browser that does not hold the sign-in's cookie.
OTHER_BROWSER = (f"this sign-in was started in another browser, or this browser did not "
                 f"keep the {BINDING_COOKIE} cookie it was given; start the sign-in again "
                 f"in this browser, with cookies allowed for this site")


def new_binding() -> tuple[str, str]:
    """A fresh random value for the browser's cookie, and its digest to keep."""
    value = secrets.token_urlsafe(32)
    return value, binding_digest(value)


def binding_digest(value: str) -> str:
    """The SHA-256 (hex) kept with a started sign-in in place of its cookie's value."""
    return hashlib.sha256(value.encode()).hexdigest()


def binding_cookie(request: Any, value: str, path: str, max_age: int) -> str:
    """The ``Set-Cookie`` value that gives the browser ``value`` for ``max_age`` seconds
    on ``path`` (the callback's), or clears it (``""`` and 0)."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[BINDING_COOKIE] = value
    morsel = cookie[BINDING_COOKIE]
    morsel["path"], morsel["httponly"], morsel["samesite"] = path, True, "Lax"
    morsel["max-age"] = max_age
    if request.app[CONFIG].secure_cookies:
        morsel["secure"] = True
    return morsel.OutputString()


def holds_binding(request: Any, digest: str) -> bool:
    """Whether the browser sent the cookie whose digest is ``digest`` (constant time)."""
    value = request.native.cookies.get(BINDING_COOKIE, "")
    if not value or not digest:
        return False
    return hmac.compare_digest(binding_digest(value).encode(), digest.encode())
