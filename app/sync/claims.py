"""OIDC claims as one more source: a signed-in person's ID token becomes a one-account partial snapshot.

The mapping is the ``claims`` entry of the IdP's source in ``sources.yaml`` (Keycloak, Authing, Okta,
Entra and the test IdP differ only in claim names)::

    idp: {connector: oidc, kind: idp, id_token_audiences: [console],
          claims: {key: sub, name: name, email: email, mobile: phone_number, employee_no: employee_no,
                   department: department,
                   roles: [realm_access.roles, "resource_access.crm.roles", groups, crm_roles, oa_roles]}}

What the claims say is evidence, never a grant: the account is created or updated (linked to its
person by employee number, mobile or e-mail; a new person only when this source is master of
``people``), its claimed roles are kept on the account for the audit, and where they differ from
the directory the master's value stays and a conflict is recorded.  No role assignment comes from
claims: what a person may do is what the directory and policy say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.errors import InvalidRequest
from app.sync.canonical import Snapshot, SourceAccount

DEFAULT_CLAIMS: dict[str, Any] = {
    "key": "sub", "name": "name", "email": "email", "mobile": "phone_number", "employee_no": "employee_no",
    "department": "department", "roles": ["realm_access.roles", "groups", "crm_roles", "oa_roles"],
}


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A dotted claim path (``resource_access.crm.roles``); None when absent."""
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def claims_snapshot(source: str, claims: Mapping[str, Any], mapping: Mapping[str, Any] | None) -> Snapshot:
    """The one-account partial snapshot the claims give (InvalidRequest if the key claim is missing)."""
    spec = {**DEFAULT_CLAIMS, **(mapping or {})}
    key = claim(claims, str(spec["key"]))
    if not isinstance(key, str) or not key:
        raise InvalidRequest(f"the token has no {spec['key']} claim")

    def text(name: str) -> str | None:
        path = spec.get(name)
        value = claim(claims, str(path)) if path else None
        return value.strip() or None if isinstance(value, str) else None

    roles: list[str] = []
    for path in spec.get("roles") or []:
        value = claim(claims, str(path))
        for item in value if isinstance(value, list) else [value] if isinstance(value, str) else []:
            if isinstance(item, str) and item and item not in roles:
                roles.append(item)
    department = text("department")
    account = SourceAccount(
        key=key, name=text("name") or claim(claims, "preferred_username") or key, status="active",
        login=claim(claims, "preferred_username") if isinstance(claim(claims, "preferred_username"), str) else None,
        employee_no=text("employee_no"), mobile=text("mobile"), email=text("email"),
        department_keys=(department,) if department else (),
        raw={"claimed_roles": roles, "iss": claims.get("iss"), "claims_at": claims.get("iat")},
    )
    return Snapshot(source=source, accounts=(account,), complete=frozenset())
