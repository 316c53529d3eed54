"""Who may do what: reading a request's token and checking it against a project."""

from __future__ import annotations

from aiohttp import web

from collab.errors import AuthError
from collab.protocol import CloseCode
from collab.tokens import Grant, Role

from .keys import STORE, TOKENS


class AccessDenied(AuthError):
    """A valid token that does not open this project (wrong project, revoked, low role)."""

    def __init__(self, message: str, close_code: int, http_status: int = 403) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.http_status = http_status


def request_token(request: web.Request) -> str | None:
    """The token from ``?token=`` or an ``Authorization: Bearer`` header."""
    token = request.query.get("token")
    if token:
        return token
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def authorize(app: web.Application, project_id: str, token: str | None,
                    minimum: Role = Role.VIEWER) -> Grant:
    """The grant of ``token`` on ``project_id`` with at least role ``minimum``.

    Raises :class:`AuthError` (bad token: close 4401, HTTP 401) or
    :class:`AccessDenied` (4403 wrong project or role, 4410 revoked).
    """
    grant = app[TOKENS].verify(token)
    if not grant.allows(project_id):
        raise AccessDenied(f"token is for project {grant.project_id!r}, not {project_id!r}",
                           CloseCode.FORBIDDEN)
    if not grant.is_admin:
        revoked = await app[STORE].revoked_at(project_id, grant.user)
        if revoked is not None and grant.issued_at <= revoked:
            raise AccessDenied(f"the role of user {grant.user!r} on {project_id!r} was revoked",
                               CloseCode.ROLE_REVOKED)
    order = list(Role)
    if order.index(grant.role) < order.index(minimum):
        raise AccessDenied(f"role {grant.role.value} may not do this; it needs "
                           f"{minimum.value}", CloseCode.FORBIDDEN)
    return grant
