"""``allows`` answers as ``require`` checks: what a caller is told they may do is what a
route declaring the permission lets them do, for every scope."""

from __future__ import annotations

import pluggy
import pytest

from dawserver.authorization import allows, check_permission
from dawserver.context import PluginContext
from dawserver.declarations import Permission, Principal, Role, Scope

CONTEXT = PluginContext(manager=pluggy.PluginManager("dawserver"))
EDITOR = Principal("acc", Role.EDITOR.value, "p_ada", via="session")
ADMIN = Principal("", Role.OWNER.value, "root", admin=True, via="token")
NOBODY = Principal("", "", "")


@pytest.mark.parametrize(("permission", "principal", "allowed"), [
    (Permission("pub.read", "anyone", scope=Scope.ANYONE), NOBODY, True),
    (Permission("srv.stats", "admins", scope=Scope.SERVER), EDITOR, False),
    (Permission("srv.stats", "admins", scope=Scope.SERVER), ADMIN, True),
    # an account permission needs an account: an administrator naming none holds nothing
    (Permission("acc.read", "viewers", minimum=Role.VIEWER), ADMIN, False),
    (Permission("acc.read", "viewers", minimum=Role.VIEWER), NOBODY, False),
    (Permission("acc.read", "viewers", minimum=Role.VIEWER), EDITOR, True),
    (Permission("acc.admin", "owners"), EDITOR, False),
    (Permission("acc.read", "viewers", minimum=Role.VIEWER),
     Principal("acc", Role.OWNER.value, "p_ada", via="key", scopes=("other",)), False),
])
def test_allows_answers_as_a_route_checks(permission: Permission, principal: Principal,
                                          allowed: bool) -> None:
    assert allows(CONTEXT, principal, permission) is allowed


def test_an_account_permission_allowed_is_one_check_permission_passes() -> None:
    permission = Permission("acc.write", "editors", minimum=Role.EDITOR)
    assert allows(CONTEXT, EDITOR, permission)
    check_permission(CONTEXT, EDITOR, permission)  # no Forbidden
