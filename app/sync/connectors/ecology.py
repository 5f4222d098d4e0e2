"""泛微 e-cology HRM (E9): subcompanies, departments, positions, people (reference §2).

Users, departments and positions: documented, High.  Auth: Medium-High.  Roles: Low (see below).

- Auth, either
  - ``auth="rsa"`` (default): the 集成中心 handshake ``/api/ec/dev/auth/regist`` ->
    ``/api/ec/dev/auth/applytoken`` -> headers ``appid``, ``token``, ``userid`` (RSA-encrypted).
    Credentials ``appid``, ``userid`` (the OA user id the calls act as), optionally ``cpk`` and the
    stored ``spk``/``secrit`` of an earlier registration.  HTTP 401 (and any ``auth_expired`` codes in
    the mapping file) re-applies for a token once;
  - ``auth="md5"``: the older HRM REST scheme, header ``token = {key: UPPER(MD5(secret_key + ts)), ts}``.
- Lists: ``POST /api/hrm/resful/get…WithPage``, form field ``params`` holding JSON with ``curpage`` and
  ``pagesize``; answer ``{code: "1", data: {dataList: [...]}}``.  ``totalSize`` is ambiguous in the
  docs, so pages are read until an empty or short page.
- Departments: subcompanies (分部) and departments in one tree.  Subcompany keys are ``sub:<id>`` so
  they cannot collide with department ids; a top department's parent is its subcompany.
- Accounts: ``getHrmUserInfoWithPage``; ``position`` is the 岗位 name (read from
  ``getJobtitleInfoWithPage``).  Status 0–3 active, 4–6 left, 7 disabled.  With ``since``: the
  ``modified`` filter (China time), and the snapshot does not claim its accounts are complete.
  Sub-accounts (``accounttype`` 1) stay in ``raw`` for the audit.
- Roles and assignments (PROVISIONAL): e-cology has no standard REST read of ``HrmRoleMembers``.  When
  the customer publishes one (集成中心/ESB/建模) give its path as ``role_members_path``; it must answer
  in the same envelope with rows ``roleid``, ``rolesmark``, ``resourceid``, ``rolelevel`` and the
  member's ``departmentid``/``subcompanyid1``.  ``rolelevel`` 0 -> department, 1 -> subtree of the
  subcompany, 2 -> company.  Without it, the snapshot carries no roles (and does not claim them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from app.sync.connectors.api import ApiConnector
from app.sync.connectors.auth import EcologyRsaHandshake, Md5KeyTimestamp
from app.sync.connectors.base import RawRecord, SourceError
from app.sync.connectors.http import Auth, Endpoint, Envelope
from app.sync.connectors.mapping import CHINA
from app.sync.connectors.paging import PageNumberPaging


def _list(path: str) -> Endpoint:
    return Endpoint("POST", path, form={"params": {}}, params_at="form:params", items="data.dataList")


SUBCOMPANIES = _list("/api/hrm/resful/getHrmsubcompanyWithPage")
DEPARTMENTS = _list("/api/hrm/resful/getHrmdepartmentWithPage")
JOBTITLES = _list("/api/hrm/resful/getJobtitleInfoWithPage")
USERS = _list("/api/hrm/resful/getHrmUserInfoWithPage")
# regist/applytoken answer {code: 0, msg, status: true, ...}: code 0 as the success marker is guessed.
HANDSHAKE_ENVELOPE = Envelope(code="code", message="msg", ok=frozenset({"0"}), ok_if_missing=True)


class EcologyConnector(ApiConnector):
    system = "ecology"
    incremental = True

    def __init__(self, *, auth: str = "rsa", role_members_path: str | None = None, **kw: Any) -> None:
        if auth not in ("rsa", "md5"):
            raise SourceError("ecology", f"auth must be rsa or md5, not {auth!r}")
        self.auth_kind = auth
        self.credential_names = ("appid", "userid") if auth == "rsa" else ("secret_key",)
        super().__init__(**kw)
        self.role_members = _list(role_members_path) if role_members_path else None
        self.parts = frozenset({"departments", "accounts", *(("roles", "assignments") if self.role_members else ())})

    def make_auth(self) -> Auth:
        c = self.credentials
        if self.auth_kind == "md5":
            return Md5KeyTimestamp(c["secret_key"], now_ms=lambda: int(self.clock().timestamp() * 1000))
        return EcologyRsaHandshake(
            appid=c["appid"],
            userid=c["userid"],
            cpk=c.get("cpk"),
            spk=c.get("spk"),
            secrit=c.get("secrit"),
            envelope=HANDSHAKE_ENVELOPE,
            monotonic=self.monotonic,
        )

    def _pages(self, kind: str) -> PageNumberPaging:
        return PageNumberPaging("curpage", "pagesize", self.size(kind, 100))

    def iter_departments(self) -> Iterator[RawRecord]:
        for sub in self.fetch(SUBCOMPANIES, self._pages("departments")):
            yield self.record("departments", f"sub:{sub.get('id')}", sub)
        for dept in self.fetch(DEPARTMENTS, self._pages("departments")):
            yield self.record("departments", dept.get("id"), dept)

    def iter_accounts(self, since: datetime | None = None) -> Iterator[RawRecord]:
        self.lookups["jobtitles"] = {
            str(j.get("id")): str(j.get("jobtitlename")) for j in self.fetch(JOBTITLES, self._pages("accounts"))
        }
        params = {"modified": since.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")} if since else {}
        for user in self.fetch(USERS, self._pages("accounts"), params):
            yield self.record("accounts", user.get("id"), user)

    def _rows(self) -> list[Any]:
        members = self.role_members
        if members is None:
            return []
        return self.cached("role_rows", lambda: self.fetch(members, self._pages("assignments")))

    def iter_roles(self) -> Iterator[RawRecord]:
        for row in self._rows():
            yield self.record("roles", row.get("roleid"), row)

    def iter_assignments(self) -> Iterator[RawRecord]:
        for row in self._rows():
            yield self.record("assignments", f"{row.get('roleid')}:{row.get('resourceid')}", row)
