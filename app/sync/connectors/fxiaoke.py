"""纷享销客 Fxiaoke / ShareCRM (reference §5; users and departments High, roles Medium: provisional).

- Auth: ``POST /cgi/corpAccessToken/get/V2`` with ``appId``/``appSecret``/``permanentCode`` ->
  ``corpAccessToken`` + ``corpId`` (``expiresIn`` ~7200 s).  Every call carries both **in the JSON
  body**.  ``20016`` (guessed: "token expired") and HTTP 401 fetch a new one once.
- Departments: ``POST /cgi/department/list``.
- Accounts: ``POST /cgi/user/list`` with ``departmentId`` 999999 (the whole company, per a
  third-party note; ``root_department`` changes it), ``fetchChild`` and ``showDepartmentIdsDetail``.
  With ``since``: ``POST /cgi/user/get/batchByUpdTime`` paged by ``pageNumber``/``pageSize`` over
  ``startTime``..``endTime`` (ms); such a snapshot does not claim its accounts are complete.
  ``isStop`` (停用) -> disabled.
- Roles (PROVISIONAL, response shapes not captured in the reference): ``POST
  /cgi/crm/v2/special/roleGetRoleList`` with ``currentOpenUserId`` and ``data.authContext.appId``
  "CRM", roles in ``data``; assignments via ``POST /cgi/crm/v2/special/getRolesByUsers`` in batches
  of user ids, answered as ``data: {openUserId: [roleCode, ...]}``.  Scope None.  Roles are read only
  when ``currentOpenUserId`` (a CRM admin's id) is among the credentials.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from app.sync.connectors.api import ApiConnector
from app.sync.connectors.auth import TokenEndpoint
from app.sync.connectors.base import RawRecord
from app.sync.connectors.http import Auth, Endpoint, Request
from app.sync.connectors.paging import PageNumberPaging

DEPARTMENTS = Endpoint("POST", "/cgi/department/list", json={}, params_at="json", items="departments")
USERS = Endpoint(
    "POST",
    "/cgi/user/list",
    json={"fetchChild": True, "showDepartmentIdsDetail": True},
    params_at="json",
    items="userList",
)
CHANGED_USERS = Endpoint(
    "POST", "/cgi/user/get/batchByUpdTime", json={}, params_at="json", items="userList", allow_missing_items=True
)
ROLES = Endpoint(
    "POST",
    "/cgi/crm/v2/special/roleGetRoleList",
    json={"data": {"authContext": {"appId": "CRM"}}},
    params_at="json",
    items="data",
)
ROLES_BY_USERS = Endpoint(
    "POST",
    "/cgi/crm/v2/special/getRolesByUsers",
    json={"data": {"authContext": {"appId": "CRM"}}},
    params_at="json.data",
    items="",
)


class FxiaokeConnector(ApiConnector):
    system = "fxiaoke"
    credential_names = ("appId", "appSecret", "permanentCode")
    default_base_url = "https://open.fxiaoke.com"
    incremental = True

    def __init__(self, *, root_department: int = 999999, batch: int = 100, **kw: Any) -> None:
        super().__init__(**kw)
        self.root_department = root_department
        self.batch = batch
        self.admin = self.credentials.get("currentOpenUserId")
        self.parts = frozenset({"departments", "accounts", *(("roles", "assignments") if self.admin else ())})

    def make_auth(self) -> Auth:
        creds = {k: self.credentials[k] for k in ("appId", "appSecret", "permanentCode")}
        req = Request("POST", "/cgi/corpAccessToken/get/V2", json=creds)
        return TokenEndpoint(
            req,
            token_field="corpAccessToken",  # noqa: S106 - a field name
            expires_field="expiresIn",
            place="json",
            json_fields={"corpAccessToken": "{token}", "corpId": "{corpId}"},
            extra_fields={"corpId": "corpId"},
            envelope=self.envelope,
            monotonic=self.monotonic,
            credential_values=(self.credentials["appSecret"], self.credentials["permanentCode"]),
        )

    def iter_departments(self) -> Iterator[RawRecord]:
        for dept in self.fetch(DEPARTMENTS):
            yield self.record("departments", dept.get("id"), dept)

    def _users(self) -> list[Mapping[str, Any]]:
        return self.cached("users", lambda: self.fetch(USERS, None, {"departmentId": self.root_department}))

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:
        if since is None:
            users: Any = self._users()
        else:
            window = {"startTime": int(since.timestamp() * 1000), "endTime": int(self.clock().timestamp() * 1000)}
            users = self.fetch(
                CHANGED_USERS, PageNumberPaging("pageNumber", "pageSize", self.size("accounts", 100)), window
            )
        for user in users:
            yield self.record("accounts", user.get("openUserId"), user)

    def iter_roles(self) -> Iterator[RawRecord]:
        for role in self.fetch(ROLES, None, {"currentOpenUserId": self.admin}):
            yield self.record("roles", role.get("roleCode"), role)

    def iter_assignments(self) -> Iterator[RawRecord]:
        ids = [str(u.get("openUserId")) for u in self._users()]
        for start in range(0, len(ids), self.batch):
            chunk = ids[start : start + self.batch]
            req = ROLES_BY_USERS.build({"userIds": chunk})
            req.json["currentOpenUserId"] = self.admin
            body = self.session.call(req, label=req.path, page=start // self.batch + 1)
            per_user = body.get("data")
            if not isinstance(per_user, Mapping):
                raise self.error("getRolesByUsers: 'data' is not an object of user -> role codes", endpoint=req.path)
            for user_id, codes in per_user.items():
                for code in codes or []:
                    yield self.record("assignments", f"{code}:{user_id}", {"userId": user_id, "roleCode": code})
