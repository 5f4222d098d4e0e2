"""A least-privilege proposal for one person: the grants their use in the window actually needed.

For each active grant: its *own* permissions (the ``type:action`` pairs no other grant of the person
gives) and which of them were allowed within the window.  A grant whose own permissions were used is
kept; one whose own permissions were not used (or that gives nothing of its own) is proposed for
revocation; a privileged grant used only for its ordinary part is proposed to be reduced to the
smallest non-privileged role that covers what was used, held in the same department scope.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from audit.config import AuditConfig
from audit.population import Population


def propose(pop: Population, person_id: str, cfg: AuditConfig) -> dict[str, Any]:
    """The proposal (``grants``: one entry per active grant with ``proposal`` keep | revoke | reduce)."""
    now = pop.taken_at
    since = now - timedelta(days=cfg.window_days)
    grants = [g for g in pop.grants if g.person_id == person_id and g.suspended_at is None
              and (g.valid_from is None or g.valid_from <= now) and (g.valid_until is None or now < g.valid_until)]
    used: dict[str, Any] = {}
    for u in pop.usage:
        if u.person_id == person_id and u.allows and u.last_used >= since:
            used[f"{u.resource_type}:{u.action}"] = u.last_used
    gives = {g.id: {p.key for p in (pop.roles[g.role].perms if g.role in pop.roles else ())} for g in grants}
    givers: dict[str, set[int]] = defaultdict(set)
    for gid, keys in gives.items():
        for k in keys:
            givers[k].add(gid)
    out = []
    for g in grants:
        own = {k for k in gives[g.id] if givers[k] == {g.id}}
        own_used = sorted(k for k in own if k in used)
        info = pop.roles.get(g.role)
        entry: dict[str, Any] = {"grant_id": g.id, "role": g.role, "held_in": g.domain, "source": g.source_system,
                                 "own": sorted(own), "own_used": own_used, "proposal": "keep"}
        if not own or not own_used:
            entry["proposal"] = "revoke"
        elif info is not None and info.privileged and not any(
                k.partition(":")[2] in cfg.sensitive_actions for k in own_used):
            entry["proposal"] = "reduce"
            entry["replacement"] = _smallest_cover(pop, set(own_used))
        out.append(entry)
    return {"person_id": person_id, "window_days": cfg.window_days, "taken_at": now.isoformat(),
            "used": sorted(used), "grants": out,
            "summary": {p: sum(e["proposal"] == p for e in out) for p in ("keep", "revoke", "reduce")}}


def _smallest_cover(pop: Population, needed: set[str]) -> str | None:
    """The non-privileged role with the fewest permissions that gives every needed pair."""
    best: tuple[int, str] | None = None
    for name, info in pop.roles.items():
        if info.privileged:
            continue
        keys = {p.key for p in info.perms}
        if needed <= keys and (best is None or (len(keys), name) < best):
            best = (len(keys), name)
    return best[1] if best else None
