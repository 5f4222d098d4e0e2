"""Campaign decisions and least-privilege proposals become changes through the grant service.

Every revocation is a ``grant.revoke`` in the change log (with the campaign and item in its reason),
visible to decisions at once; a rollback gives the grant back as a new ``grant.create`` with the
same role, department scope, window and source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.directory.models import Grant
from app.directory.service import GrantService
from app.errors import NotFound


class GrantRemediator:
    """``audit.campaigns.Remediator`` over the service's grant service."""

    def __init__(self, grants: GrantService) -> None:
        self._grants = grants

    def _grant(self, grant_id: int) -> Grant:
        with self._grants.factory() as session:
            old = session.get(Grant, grant_id)
            if old is None:
                raise NotFound(f"no grant {grant_id}")
            session.expunge(old)
            return old

    def revoke(self, grant_id: int, *, actor: str, reason: str) -> Mapping[str, Any]:
        grant = self._grants.revoke_grant(actor=actor, grant_id=grant_id, reason=reason)
        return {"change": "grant.revoke", "grant_id": grant.id, "person_id": grant.person_id, "role": grant.role}

    def replace(self, grant_id: int, role: str, *, actor: str, reason: str) -> Mapping[str, Any]:
        """Grant ``role`` in the scope of (revoked) grant ``grant_id``: the reduced replacement."""
        old = self._grant(grant_id)
        grant = self._grants.create_grant(actor=actor, reason=reason, person_id=old.person_id, role=role,
                                          department_id=old.department_id, include_subtree=old.include_subtree,
                                          valid_from=None, valid_until=old.valid_until)
        return {"change": "grant.create", "grant_id": grant.id, "role": role, "replaces": grant_id}

    def restore(self, snapshot: Mapping[str, Any], *, actor: str, reason: str) -> Mapping[str, Any]:
        """The revoked grant given back: same person, role, scope, window and source (a new grant)."""
        old = self._grant(int(snapshot["grant_id"]))
        grant = self._grants.create_grant(actor=actor, reason=reason, person_id=old.person_id, role=old.role,
                                          department_id=old.department_id, include_subtree=old.include_subtree,
                                          valid_from=old.valid_from, valid_until=old.valid_until,
                                          source_system=old.source_system)
        return {"change": "grant.create", "grant_id": grant.id, "restores": int(snapshot["grant_id"])}
