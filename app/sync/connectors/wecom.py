"""企业微信 WeCom: the authoritative org tree (reference §6; confidence High).

- Auth: ``GET /cgi-bin/gettoken?corpid&corpsecret`` (use the 通讯录同步 secret) -> ``access_token``, sent
  as the ``access_token`` query parameter; cached for ``expires_in``; ``42001``/``40014`` drop it and
  fetch it once more.
- Departments: ``GET /cgi-bin/department/list`` (the whole tree in one answer).
- Accounts: ``POST /cgi-bin/user/list_id`` with ``cursor``/``limit`` (cursor paging on ``next_cursor``),
  then ``GET /cgi-bin/user/get?userid=`` for each user.  Mobile and email may be withheld (apps made
  after 2022-06-20).
- Roles: WeCom has none.  With ``tags_as_roles=True`` tags become roles (``/cgi-bin/tag/list``,
  ``/cgi-bin/tag/get``; paths from memory in the reference, so provisional): tag members are
  assignments, and a tag given to a department (``partylist``) is assigned to every account in that
  department's subtree.  Scope None: tags do not state one.
- Rate limits: ``45009`` (frequency) and ``45033`` (concurrency), and HTTP 429.
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

DEPARTMENTS = Endpoint("GET", "/cgi-bin/department/list", items="department")
LIST_ID = Endpoint("POST", "/cgi-bin/user/list_id", json={}, params_at="json", items="dept_user")
USER_GET = Endpoint("GET", "/cgi-bin/user/get")
TAG_LIST = Endpoint("GET", "/cgi-bin/tag/list", items="taglist")
TAG_GET = Endpoint("GET", "/cgi-bin/tag/get")


class WecomConnector(ApiConnector):
    system = "wecom"
    credential_names = ("corpid", "corpsecret")
    default_base_url = "https://qyapi.weixin.qq.com"

    def __init__(self, *, tags_as_roles: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.tags_as_roles = tags_as_roles
        self.parts = frozenset({"departments", "accounts", *(("roles", "assignments") if tags_as_roles else ())})

    def make_auth(self) -> Auth:
        req = Request(
            "GET",
            "/cgi-bin/gettoken",
            query={"corpid": self.credentials["corpid"], "corpsecret": self.credentials["corpsecret"]},
        )
        return TokenEndpoint(
            req,
            place="query:access_token",
            envelope=self.envelope,
            monotonic=self.monotonic,
            credential_values=(self.credentials["corpsecret"],),
        )

    def _all_departments(self) -> list[Mapping[str, Any]]:
        return self.cached("departments", lambda: self.fetch(DEPARTMENTS))

    def _all_users(self) -> list[Mapping[str, Any]]:
        def load() -> Iterator[Mapping[str, Any]]:
            paging = CursorPaging("cursor", "next_cursor", "limit", self.size("accounts", 10000))
            ids = dict.fromkeys(str(pair.get("userid")) for pair in self.fetch(LIST_ID, paging))
            for uid in ids:
                yield self.call(USER_GET, {"userid": uid})

        return self.cached("accounts", load)

    def iter_departments(self) -> Iterator[RawRecord]:
        for dept in self._all_departments():
            yield self.record("departments", dept.get("id"), dept)

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:  # noqa: ARG002 - no such filter
        for user in self._all_users():
            yield self.record("accounts", user.get("userid"), user)

    def _all_tags(self) -> list[Mapping[str, Any]]:
        return self.cached("tags", lambda: self.fetch(TAG_LIST))

    def iter_roles(self) -> Iterator[RawRecord]:
        for tag in self._all_tags():
            yield self.record("roles", tag.get("tagid"), tag)

    def _subtree(self, roots: list[str]) -> set[str]:
        children: dict[str, list[str]] = {}
        for dept in self._all_departments():
            children.setdefault(str(dept.get("parentid")), []).append(str(dept.get("id")))
        out, todo = set(), list(roots)
        while todo:
            key = todo.pop()
            if key not in out:
                out.add(key)
                todo.extend(children.get(key, ()))
        return out

    def iter_assignments(self) -> Iterator[RawRecord]:
        for tag in self._all_tags():
            body = self.call(TAG_GET, {"tagid": tag.get("tagid")})
            members = [str(u.get("userid")) for u in body.get("userlist") or []]
            parties = self._subtree([str(p) for p in body.get("partylist") or []])
            if parties:
                for user in self._all_users():
                    if {str(d) for d in user.get("department") or []} & parties:
                        members.append(str(user.get("userid")))
            for userid in dict.fromkeys(members):
                yield self.record(
                    "assignments", f"{tag.get('tagid')}:{userid}", {"role": tag, "member": {"userid": userid}}
                )
