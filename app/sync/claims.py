"""OIDC claims as one more source: a signed-in person's verified token (an ID token, or a JWT access
token) becomes a one-account partial snapshot.

The mapping is the ``claims`` entry of the IdP's source in ``sources.yaml`` (Keycloak, Authing, Okta,
Entra and the test IdP differ only in claim names); it applies to both kinds of token::

    idp: {connector: oidc, kind: idp, id_token_audiences: [console],
          access_token_audiences: ["https://crm.example.cn/api"],
          claims: {key: sub, name: name, email: email, mobile: phone_number, employee_no: employee_no,
                   department: department,
                   roles: [realm_access.roles, "resource_access.crm.roles", groups, crm_roles, oa_roles]}}

What the claims say is evidence, never a grant: the account is created or updated (linked to its
person by employee number, mobile or e-mail; a new person only when this source is master of
``people``), its claimed roles are kept on the account for the audit, and where they differ from
the directory the master's value stays and a conflict is recorded.  No role assignment comes from
claims: what a person may do is what the directory and policy say.

A claim the token does not carry says nothing: the account keeps what it had (an access token
usually carries fewer claims than the ID token: no e-mail, only some of the role claims).  Roles are
kept per claim path, so a token without ``groups`` keeps the groups an earlier token claimed.

The sign-in is recorded as the account's ``last_login_at``: the token's ``iat`` (when the IdP issued
it, at a sign-in or a refresh), never later than now, never earlier than what is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.errors import InvalidRequest
from app.sync.canonical import Snapshot, SourceAccount

DEFAULT_CLAIMS: dict[str, Any] = {
    "key": "sub", "name": "name", "email": "email", "mobile": "phone_number", "employee_no": "employee_no",
    "department": "department", "roles": ["realm_access.roles", "groups", "crm_roles", "oa_roles"],
}
TEXT_FIELDS = ("name", "email", "mobile", "employee_no", "department")


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A dotted claim path (``resource_access.crm.roles``); None when absent."""
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


@dataclass(frozen=True)
class Claimed:
    """What one token says of its person: only the claims it carries."""

    key: str
    values: dict[str, str]  # name, email, mobile, employee_no, department, login: present and non-empty only
    roles: dict[str, list[str]]  # per role claim path the token carries (an empty list is "none now")
    role_paths: tuple[str, ...]  # the mapping's role paths, in order
    evidence: dict[str, Any] = field(default_factory=dict)  # iss, iat
    issued_at: datetime | None = None


def read_claims(claims: Mapping[str, Any], mapping: Mapping[str, Any] | None) -> Claimed:
    """The mapped claims of a verified token (InvalidRequest if the key claim is missing)."""
    spec = {**DEFAULT_CLAIMS, **(mapping or {})}
    key = claim(claims, str(spec["key"]))
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequest(f"the token has no {spec['key']} claim (the account key of this source)")
    values: dict[str, str] = {}
    for name in TEXT_FIELDS:
        path = spec.get(name)
        value = claim(claims, str(path)) if path else None
        if isinstance(value, str) and value.strip():
            values[name] = value.strip()
    login = claims.get("preferred_username")
    if isinstance(login, str) and login.strip():
        values["login"] = login.strip()
    paths = tuple(str(p) for p in spec.get("roles") or ())
    roles: dict[str, list[str]] = {}
    for path in paths:
        value = claim(claims, path)
        if value is None:
            continue  # the token does not say
        items = value if isinstance(value, list) else [value]
        roles[path] = list(dict.fromkeys(i for i in items if isinstance(i, str) and i))
    iat = claims.get("iat")
    issued = datetime.fromtimestamp(iat, UTC) if isinstance(iat, int | float) and iat > 0 else None
    return Claimed(key=key, values=values, roles=roles, role_paths=paths,
                   evidence={"iss": claims.get("iss"), "claims_at": iat}, issued_at=issued)


def sign_in_time(claimed: Claimed, now: datetime) -> datetime:
    """When the person signed in: the token's ``iat``, never later than now."""
    return min(claimed.issued_at or now, now)


def claims_snapshot(source: str, claimed: Claimed, stored: Mapping[str, Any] | None = None,
                    signed_in_at: datetime | None = None) -> Snapshot:
    """The one-account partial snapshot the claims give; what the token leaves out is taken from
    ``stored`` (the account as it is: ``name``, ``login``, ``email``, ``mobile``, ``employee_no``,
    ``departments``, ``claimed_role_claims``, ``claimed_roles``)."""
    had = dict(stored or {})
    values = claimed.values
    kept_roles: dict[str, list[str]] = dict(had.get("claimed_role_claims") or {})
    per_path = {**kept_roles, **claimed.roles}
    roles: list[str] = []
    for path in claimed.role_paths:
        for role in per_path.get(path, ()):
            if role not in roles:
                roles.append(role)
    if not per_path and had.get("claimed_roles"):
        roles = list(had["claimed_roles"])  # kept from before roles were recorded per claim
    department = values.get("department")
    departments = (department,) if department else tuple(had.get("departments") or ())
    account = SourceAccount(
        key=claimed.key, name=values.get("name") or had.get("name") or values.get("login") or claimed.key,
        status="active", login=values.get("login") or had.get("login"),
        employee_no=values.get("employee_no") or had.get("employee_no"),
        mobile=values.get("mobile") or had.get("mobile"), email=values.get("email") or had.get("email"),
        department_keys=departments, last_login_at=signed_in_at,
        raw={"claimed_roles": roles, "claimed_role_claims": {p: r for p, r in per_path.items()
                                                            if p in claimed.role_paths},
             **claimed.evidence},
    )
    return Snapshot(source=source, accounts=(account,), complete=frozenset())
