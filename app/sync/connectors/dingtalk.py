"""钉钉 DingTalk: org tree, users and roles (reference §6; confidence High, some paths from memory).

- Auth: ``GET /gettoken?appkey&appsecret`` -> ``access_token`` (query parameter), cached for
  ``expires_in``; ``40014``/``42001`` (guessed codes) drop it and fetch it once more.
- Departments: a tree walk from the root (``dept_id`` 1): ``POST /topapi/v2/department/get`` for the
  root, then ``POST /topapi/v2/department/listsub`` one level at a time.
- Accounts: per department ``POST /topapi/v2/user/list`` with ``cursor``/``size`` until
  ``has_more`` is false; a person in several departments is read once.  DingTalk lists only current
  members (no disabled or left state): leavers simply disappear.
- Roles: ``POST /topapi/role/list`` (role groups holding roles; ``offset``/``size``).
- Assignments: ``POST /topapi/role/simplelist`` per role (``offset``/``size``); a member's
  ``manageScopes`` (the departments the role is managed in) becomes a ``listed`` scope, else None.
- Rate limits: HTTP 429 and ``90018`` (guessed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from app.sync.connectors.api import ApiConnector
from app.sync.connectors.auth import TokenEndpoint
from app.sync.connectors.base import RawRecord
from app.sync.connectors.http import Auth, Endpoint, Request
from app.sync.connectors.paging import CursorPaging, OffsetPaging, walk_tree

ROOT = 1
DEPT_GET = Endpoint("POST", "/topapi/v2/department/get", json={}, params_at="json")
LISTSUB = Endpoint("POST", "/topapi/v2/department/listsub", json={}, params_at="json", items="result")
USERS = Endpoint("POST", "/topapi/v2/user/list", json={}, params_at="json", items="result.list")
ROLES = Endpoint("POST", "/topapi/role/list", json={}, params_at="json", items="result.list")
ROLE_MEMBERS = Endpoint("POST", "/topapi/role/simplelist", json={}, params_at="json", items="result.list")


class DingtalkConnector(ApiConnector):
    system = "dingtalk"
    credential_names = ("appkey", "appsecret")
    default_base_url = "https://oapi.dingtalk.com"

    def make_auth(self) -> Auth:
        req = Request(
            "GET", "/gettoken", query={"appkey": self.credentials["appkey"], "appsecret": self.credentials["appsecret"]}
        )
        return TokenEndpoint(
            req,
            place="query:access_token",
            envelope=self.envelope,
            monotonic=self.monotonic,
            credential_values=(self.credentials["appsecret"],),
        )

    def _departments(self) -> list[Mapping[str, Any]]:
        def children(parent: int) -> Iterable[tuple[int, Mapping[str, Any]]]:
            return ((int(d["dept_id"]), d) for d in self.fetch(LISTSUB, None, {"dept_id": parent}))

        def load() -> Iterator[Mapping[str, Any]]:
            yield self.call(DEPT_GET, {"dept_id": ROOT})["result"]
            yield from (d for _, d in walk_tree([ROOT], children))

        return self.cached("departments", load)

    def iter_departments(self) -> Iterator[RawRecord]:
        for dept in self._departments():
            yield self.record("departments", dept.get("dept_id"), dept)

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:  # noqa: ARG002 - no such filter
        paging = CursorPaging(
            "cursor",
            "result.next_cursor",
            "size",
            self.size("accounts", 100),
            has_more_path="result.has_more",
            first_cursor=0,
        )
        seen: set[str] = set()
        for dept in self._departments():
            for user in self.fetch(USERS, paging, {"dept_id": dept.get("dept_id")}):
                if str(user.get("userid")) not in seen:
                    seen.add(str(user.get("userid")))
                    yield self.record("accounts", user.get("userid"), user)

    def _roles(self) -> list[Mapping[str, Any]]:
        def load() -> Iterator[Mapping[str, Any]]:
            for group in self.fetch(ROLES, OffsetPaging("offset", "size", self.size("roles", 200))):
                for role in group.get("roles") or []:
                    yield {"group": {k: v for k, v in group.items() if k != "roles"}, "role": role}

        return self.cached("roles", load)

    def iter_roles(self) -> Iterator[RawRecord]:
        for item in self._roles():
            yield self.record("roles", item["role"].get("id"), item)

    def iter_assignments(self) -> Iterator[RawRecord]:
        paging = OffsetPaging("offset", "size", self.size("assignments", 200))
        for item in self._roles():
            role = item["role"]
            for member in self.fetch(ROLE_MEMBERS, paging, {"role_id": role.get("id")}):
                yield self.record(
                    "assignments", f"{role.get('id')}:{member.get('userid')}", {"role": role, "member": member}
                )
