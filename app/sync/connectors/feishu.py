"""飞书 Feishu / Lark: org tree, users, functional roles (reference §6; confidence High).

- Auth: ``POST /open-apis/auth/v3/tenant_access_token/internal`` with ``app_id``/``app_secret`` ->
  ``tenant_access_token`` (``expire`` seconds), sent as ``Authorization: Bearer``; codes
  ``99991663``/``99991661``/``99991668`` (invalid or missing token; guessed list) and HTTP 401 fetch
  it once more.
- Departments: ``GET /open-apis/contact/v3/departments/0`` (the root) and
  ``GET .../departments/0/children?fetch_child=true`` paged by ``page_token``/``has_more``.
  ``department_id_type=department_id`` throughout, so keys are the tenant's own department ids.
- Accounts: per department ``GET /open-apis/contact/v3/users/find_by_department`` paged by
  ``page_token``; ``user_id_type=user_id``.  Status from the ``status`` object (resigned/exited ->
  left, frozen -> disabled).  Mobile and email come only with the field scopes.
- Roles: Feishu's functional roles have no list call the reference documents, so the role ids (and
  names) to read are configured: ``functional_roles={"role_id": "name"}``.  Members:
  ``GET /open-apis/contact/v3/functional_roles/{role_id}/members`` (path and the ``scope_type``
  All/Part + ``department_ids`` fields from memory: provisional) -> ``company`` or ``listed`` scope.
- Rate limits: HTTP 429 and ``99991400``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from app.sync.connectors.api import ApiConnector
from app.sync.connectors.auth import TokenEndpoint
from app.sync.connectors.base import RawRecord
from app.sync.connectors.http import Auth, Endpoint, Request
from app.sync.connectors.paging import CursorPaging

IDS = {"department_id_type": "department_id"}
ROOT = Endpoint("GET", "/open-apis/contact/v3/departments/0", query=IDS)
CHILDREN = Endpoint(
    "GET",
    "/open-apis/contact/v3/departments/0/children",
    query={**IDS, "fetch_child": "true"},
    items="data.items",
    allow_missing_items=True,
)
USERS = Endpoint(
    "GET",
    "/open-apis/contact/v3/users/find_by_department",
    query={**IDS, "user_id_type": "user_id"},
    items="data.items",
    allow_missing_items=True,
)
ROLE_MEMBERS = Endpoint(
    "GET",
    "/open-apis/contact/v3/functional_roles/{role_id}/members",
    query={**IDS, "user_id_type": "user_id"},
    items="data.members",
    allow_missing_items=True,
)


def _paging(size: int) -> CursorPaging:
    return CursorPaging("page_token", "data.page_token", "page_size", size, has_more_path="data.has_more")


class FeishuConnector(ApiConnector):
    system = "feishu"
    credential_names = ("app_id", "app_secret")
    default_base_url = "https://open.feishu.cn"

    def __init__(self, *, functional_roles: Mapping[str, str] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.functional_roles = dict(functional_roles or {})
        self.parts = frozenset(
            {"departments", "accounts", *(("roles", "assignments") if self.functional_roles else ())}
        )

    def make_auth(self) -> Auth:
        creds = {"app_id": self.credentials["app_id"], "app_secret": self.credentials["app_secret"]}
        req = Request("POST", "/open-apis/auth/v3/tenant_access_token/internal", json=creds)
        return TokenEndpoint(
            req,
            token_field="tenant_access_token",  # noqa: S106 - a field name
            expires_field="expire",
            place="bearer",
            envelope=self.envelope,
            monotonic=self.monotonic,
            credential_values=(self.credentials["app_secret"],),
        )

    def _departments(self) -> list[Mapping[str, Any]]:
        def load() -> Iterator[Mapping[str, Any]]:
            yield self.call(ROOT)["data"]["department"]
            yield from self.fetch(CHILDREN, _paging(self.size("departments", 50)))

        return self.cached("departments", load)

    def iter_departments(self) -> Iterator[RawRecord]:
        for dept in self._departments():
            yield self.record("departments", dept.get("department_id"), dept)

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:  # noqa: ARG002 - no such filter
        seen: set[str] = set()
        paging = _paging(self.size("accounts", 50))
        for dept in self._departments():
            for user in self.fetch(USERS, paging, {"department_id": dept.get("department_id")}):
                if str(user.get("user_id")) not in seen:
                    seen.add(str(user.get("user_id")))
                    yield self.record("accounts", user.get("user_id"), user)

    def iter_roles(self) -> Iterator[RawRecord]:
        for role_id, name in self.functional_roles.items():
            yield self.record("roles", role_id, {"role_id": role_id, "role_name": name})

    def iter_assignments(self) -> Iterator[RawRecord]:
        paging = _paging(self.size("assignments", 50))
        for role_id, name in self.functional_roles.items():
            role = {"role_id": role_id, "role_name": name}
            for member in self.fetch(ROLE_MEMBERS, paging, path_args={"role_id": role_id}):
                yield self.record("assignments", f"{role_id}:{member.get('user_id')}", {"role": role, "member": member})
