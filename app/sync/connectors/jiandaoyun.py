"""简道云 Jiandaoyun: the corp address book and roles (reference §1; confidence High).

- Auth: static API key, ``Authorization: Bearer <api_key>``.
- Departments: ``POST /v6/corp/department/list`` from the root (``dept_no`` 1, ``has_child``): one call.
- Accounts: ``POST /v5/corp/department/user/list`` on the root with ``has_child``: one call (there is
  no other user list and no "changed since").
- Roles: ``POST /v5/corp/role/list``, ``skip``/``limit`` paging (the API's default limit is 1).
- Assignments: ``POST /v5/corp/role/user/list`` per role, ``skip``/``limit``, with
  ``has_manage_range``: a member's ``departments_range`` (also spelt ``deptarments_range``) and
  ``has_child`` become a ``subtree`` (has_child) or ``listed`` scope; no range -> scope None.
- Envelope: success bodies carry no code; errors are HTTP 400 ``{code, msg}``; ``8303`` is the rate limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from app.sync.connectors.api import ApiConnector
from app.sync.connectors.auth import StaticBearer
from app.sync.connectors.base import RawRecord
from app.sync.connectors.http import Auth, Endpoint
from app.sync.connectors.paging import OffsetPaging

API_VERSION_PINNED = {"departments": "v6", "users": "v5", "roles": "v5"}
DEPARTMENTS = Endpoint(
    "POST", "/v6/corp/department/list", json={"dept_no": 1, "has_child": True}, params_at="json", items="departments"
)
USERS = Endpoint(
    "POST", "/v5/corp/department/user/list", json={"dept_no": 1, "has_child": True}, params_at="json", items="users"
)
ROLES = Endpoint(
    "POST", "/v5/corp/role/list", json={"has_internal": True, "has_sync": True}, params_at="json", items="roles"
)
ROLE_USERS = Endpoint(
    "POST", "/v5/corp/role/user/list", json={"has_manage_range": True}, params_at="json", items="users"
)


class JiandaoyunConnector(ApiConnector):
    system = "jiandaoyun"
    credential_names = ("api_key",)
    default_base_url = "https://api.jiandaoyun.com/api"

    def make_auth(self) -> Auth:
        return StaticBearer(self.credentials["api_key"])

    def iter_departments(self) -> Iterator[RawRecord]:
        for dept in self.fetch(DEPARTMENTS):
            yield self.record("departments", dept.get("dept_no"), dept)

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:  # noqa: ARG002 - no such filter
        for user in self.fetch(USERS):
            yield self.record("accounts", user.get("username"), user)

    def _roles(self) -> list[dict[str, Any]]:
        return self.cached("roles", lambda: self.fetch(ROLES, OffsetPaging("skip", "limit", self.size("roles", 100))))

    def iter_roles(self) -> Iterator[RawRecord]:
        for role in self._roles():
            yield self.record("roles", role.get("role_no"), role)

    def iter_assignments(self) -> Iterator[RawRecord]:
        roles = self._roles()
        paging = OffsetPaging("skip", "limit", self.size("assignments", 100))
        for role in roles:
            for member in self.fetch(ROLE_USERS, paging, {"role_no": role.get("role_no")}):
                yield self.record(
                    "assignments", f"{role.get('role_no')}:{member.get('username')}", {"role": role, "member": member}
                )
