"""The audit's checks: a ``Population`` in, ``Finding`` objects out; no database, no clock of its own.

Each check is a plain function of the population and the configuration.  A finding's ``key`` is
its identity across runs (kind and what it is about, never a count or a date), so that the same
problem seen next quarter is the same finding.  ``audit/README.md`` documents every check: what it
looks at, when it fires and how severe it is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timedelta
from typing import Any

from audit.config import SEVERITIES, AuditConfig
from audit.population import Account, Grant, Person, Population, RoleInfo

ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    key: str
    severity: str
    person_id: str | None
    system: str | None = None
    account: str | None = None
    permission: str | None = None
    field: str | None = None
    grant_id: int | None = None
    evidence: Mapping[str, Any] = dc_field(default_factory=dict)
    evidence_quality: str = "directory"  # usage | no_usage_data | directory
    recommendation: Mapping[str, Any] = dc_field(default_factory=dict)


def raise_level(level: str, steps: int = 1) -> str:
    """One severity level up (capped at critical)."""
    return SEVERITIES[min(len(SEVERITIES) - 1, SEVERITIES.index(level) + steps)]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


# --------------------------------------------------------------------------- domains

def covers(pattern: str, path: str) -> bool:
    """Does a domain pattern cover a department path?"""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


def meet(a: str, b: str) -> str | None:
    """The narrower of two domain patterns if they cover some department in common, else None."""
    if a == "*":
        return b
    if b == "*" or a == b:
        return a
    if a.endswith("*") and b.startswith(a[:-1]):
        return b
    if b.endswith("*") and a.startswith(b[:-1]):
        return a
    return None


# --------------------------------------------------------------------------- context

class _Ctx:
    """Indexes over the population, built once per run and shared by the checks."""

    def __init__(self, pop: Population, cfg: AuditConfig) -> None:
        self.pop, self.cfg, self.now = pop, cfg, pop.taken_at
        self.people = {p.id: p for p in pop.people}
        self.accounts_of: dict[str, list[Account]] = defaultdict(list)
        for a in pop.accounts:
            if a.person_id:
                self.accounts_of[a.person_id].append(a)
        self.grants_of: dict[str, list[Grant]] = defaultdict(list)
        for g in pop.grants:
            self.grants_of[g.person_id].append(g)
        # Per person: "type:action" -> last request (allowed or denied), "type:action" -> last
        # allowed use, system -> last request.  The usage rows (a million and more) may come in any
        # order: one lookup of the person per row (in a dict this large, a cache miss unless the
        # person's rows come together), the rest in the person's own small dicts.
        usage_of: dict[str, tuple[dict[str, datetime], dict[str, datetime], dict[str, datetime]]] = {}
        system_of: dict[str, str] = {}  # "type:action" -> its system
        for u in pop.usage:
            key = f"{u.resource_type}:{u.action}"
            system = system_of.get(key)
            if system is None:
                system = system_of[key] = u.resource_type.partition(".")[0]
            mine = usage_of.get(u.person_id)
            if mine is None:
                mine = usage_of[u.person_id] = ({}, {}, {})
            asked, used, last_of = mine
            last = u.last_used
            asked[key] = last
            if u.allows:
                used[key] = last
            prev = last_of.get(system)
            if prev is None or last > prev:
                last_of[system] = last
        self.asked = {pid: mine[0] for pid, mine in usage_of.items()}  # person -> "type:action" -> last request
        self.used = {pid: mine[1] for pid, mine in usage_of.items()}  # ... -> last allowed use
        self.last_activity = {pid: mine[2] for pid, mine in usage_of.items()}  # person -> system -> last request
        self.keys_with_data: set[str] = set(system_of)  # "type:action" anyone asked about
        self.field_used: dict[tuple[str, str, str], datetime] = {
            (f.person_id, f.resource_type, f.field): f.last_used for f in pop.field_usage}
        self.fields_with_data = {(f.resource_type, f.field) for f in pop.field_usage}
        self.window_start = self.now - timedelta(days=cfg.window_days)
        # "type:action" of every allow a role gives (its perms through inheritance), once per role
        self.keys_of_role: dict[str, frozenset[str]] = {
            name: frozenset(p.key for p in info.perms) for name, info in pop.roles.items()}

    def role(self, name: str) -> RoleInfo | None:
        return self.pop.roles.get(name)

    def active_grant(self, g: Grant) -> bool:
        if g.suspended_at is not None:
            return False
        if g.valid_from is not None and self.now < g.valid_from:
            return False
        return g.valid_until is None or self.now < g.valid_until

    def who(self, pid: str | None) -> dict[str, Any]:
        p = self.people.get(pid or "")
        if p is None:
            return {"person_id": pid}
        return {"person_id": p.id, "name": p.name, "department": p.department_path,
                "department_name": self.pop.department_names.get(p.department_path, ""), "position": p.position,
                "status": p.status}

    def grant_evidence(self, g: Grant) -> dict[str, Any]:
        info = self.role(g.role)
        return {"grant_id": g.id, "role": g.role, "role_zh": info.title_zh if info else g.role,
                "held_in": g.domain, "source": g.source_system, "source_role": g.source_role,
                "granted_by": g.granted_by, "created_at": _iso(g.created_at), "valid_until": _iso(g.valid_until)}


def _revoke(g: Grant, zh: str, en: str) -> dict[str, Any]:
    return {"action": "revoke_grant", "grant_id": g.id, "zh": zh, "en": en}


# --------------------------------------------------------------------------- the checks

def unused_permissions(c: _Ctx) -> Iterable[Finding]:
    """A grant none of whose own permissions the person used in the window.

    A grant's *own* permissions are the (type, action) pairs it gives that none of the person's
    other active grants gives: use of a pair two grants give proves neither is needed.  A grant
    with no own permission at all is redundant.  People hired and grants made within the window
    are skipped (too young to judge).  Where nobody in the company has any recorded use of a pair
    (the calling system may not ask accessgov for it), the evidence is marked ``no_usage_data``.
    """
    cfg = c.cfg
    for pid, grants in c.grants_of.items():
        person = c.people.get(pid)
        if person is None or person.status != ACTIVE:
            continue  # leavers are reported as such
        if person.hired_on is not None and person.hired_on > c.window_start.date():
            continue
        live = [g for g in grants if c.active_grant(g)]
        if not live:
            continue
        gives = {g.id: c.keys_of_role.get(g.role, frozenset()) for g in live}
        used = c.used.get(pid, {})
        for g in live:
            if (g.valid_from or g.created_at) > c.window_start:
                continue  # too young to judge
            others: set[str] = set()
            for other in live:
                if other.id != g.id:
                    others |= gives[other.id]
            own = gives[g.id] - others
            info = c.role(g.role)
            privileged = bool(info and info.privileged)
            if not gives[g.id]:
                continue  # a role without record rules (fields only, or empty)
            if not own:
                if g.source_system != "manual":
                    continue  # mirrored from a source that gives it on its own terms (e.g. the OA's 普通员工)
                yield Finding("unused_permission", f"unused_permission:grant:{g.id}",
                              "low", pid,
                              system=_system_of(gives[g.id]), permission=g.role, grant_id=g.id,
                              evidence={"person": c.who(pid), "grant": c.grant_evidence(g), "redundant": True,
                                        "also_given_by": sorted(o.id for o in live if o.id != g.id
                                                                and gives[o.id] & gives[g.id])},
                              evidence_quality="directory",
                              recommendation=_revoke(g, "该授权的全部权限已由此人的其他授权提供，可撤销",
                                                     "every permission of this grant also comes from the person's "
                                                     "other grants: revoke it"))
                continue
            recent = {k: used[k] for k in own if k in used and used[k] >= c.window_start}
            if recent:
                # a privileged grant used only for its ordinary part: its privileged actions are the excess
                sensitive = {k for k in own if k.partition(":")[2] in cfg.sensitive_actions} if privileged else set()
                if sensitive and not sensitive & recent.keys():
                    yield Finding("unused_permission", f"unused_permission:grant:{g.id}",
                                  raise_level(cfg.severity["unused_permission"]), pid, system=_system_of(own),
                                  permission=g.role, grant_id=g.id,
                                  evidence={"person": c.who(pid), "grant": c.grant_evidence(g), "privileged": True,
                                            "window_days": cfg.window_days, "unused": sorted(sensitive),
                                            "used": sorted(recent), "usage_since": _iso(c.pop.usage_since)},
                                  evidence_quality="usage" if sensitive & c.keys_with_data else "no_usage_data",
                                  recommendation={"action": "reduce_grant", "grant_id": g.id,
                                                  "zh": f"特权角色的管理操作{cfg.window_days}天内从未使用，"
                                                        "建议改授只含已用权限的普通角色",
                                                  "en": f"the privileged role's administrative actions were not used "
                                                        f"in {cfg.window_days} days: replace it with an ordinary "
                                                        "role covering what is used"})
                continue
            with_data = sorted(k for k in own if k in c.keys_with_data)
            quality = "usage" if with_data else "no_usage_data"
            level = cfg.severity["unused_permission"]
            if privileged or any(k.partition(":")[2] in cfg.sensitive_actions for k in with_data):
                level = raise_level(level)
            if quality == "no_usage_data":
                level = "low"
            last = max((used[k] for k in own if k in used), default=None)
            yield Finding("unused_permission", f"unused_permission:grant:{g.id}", level, pid,
                          system=_system_of(own), permission=g.role, grant_id=g.id,
                          evidence={"person": c.who(pid), "grant": c.grant_evidence(g), "privileged": privileged,
                                    "window_days": cfg.window_days, "unused": sorted(own),
                                    "without_usage_data": sorted(own - set(with_data)),
                                    "last_used": _iso(last), "usage_since": _iso(c.pop.usage_since)},
                          evidence_quality=quality,
                          recommendation=_revoke(g, f"{cfg.window_days}天内未使用此授权独有的任何权限，建议撤销",
                                                 f"none of this grant's own permissions was used in "
                                                 f"{cfg.window_days} days: revoke it"))


def _system_of(keys: Iterable[str]) -> str | None:
    systems = {k.partition(".")[0] for k in keys}
    return systems.pop() if len(systems) == 1 else None


def unused_sensitive_fields(c: _Ctx) -> Iterable[Finding]:
    """A classified field a person's active grants let them see (visible or masked on read), never
    returned to them in the window.  Skipped for people hired within the window."""
    cfg = c.cfg
    for pid, grants in c.grants_of.items():
        person = c.people.get(pid)
        if person is None or person.status != ACTIVE:
            continue
        if person.hired_on is not None and person.hired_on > c.window_start.date():
            continue
        seen: dict[tuple[str, str], tuple[Any, Grant]] = {}
        for g in grants:
            info = c.role(g.role)
            if info is None or not c.active_grant(g) or g.created_at > c.window_start:
                continue
            for f in info.fields:
                k = (f.resource_type, f.field)
                if k not in seen or (f.level == "visible" and seen[k][0].level != "visible"):
                    seen[k] = (f, g)
        for (rtype, name), (f, g) in sorted(seen.items()):
            last = c.field_used.get((pid, rtype, name))
            if last is not None and last >= c.window_start:
                continue
            quality = "usage" if (rtype, name) in c.fields_with_data else "no_usage_data"
            level = cfg.severity["unused_sensitive_field"]
            if f.sensitivity == "secret":
                level = raise_level(level)
            if quality == "no_usage_data":
                level = "low"
            yield Finding("unused_sensitive_field", f"unused_sensitive_field:{pid}:{rtype}:{name}", level, pid,
                          system=rtype.partition(".")[0], permission=rtype, field=name, grant_id=g.id,
                          evidence={"person": c.who(pid), "resource_type": rtype, "field": name, "level": f.level,
                                    "sensitivity": f.sensitivity, "through": c.grant_evidence(g), "rule": f.rule_id,
                                    "window_days": cfg.window_days, "last_used": _iso(last)},
                          evidence_quality=quality,
                          recommendation={"action": "review_field_access", "grant_id": g.id,
                                          "zh": f"{cfg.window_days}天内从未查看该敏感字段，建议收紧字段规则或撤销授权",
                                          "en": f"the field was not seen in {cfg.window_days} days: narrow the field "
                                                "rule or revoke the grant"})


def dormant_accounts(c: _Ctx) -> Iterable[Finding]:
    """An active account of an active person with no sign-in and no request in ``dormant_days``
    (per system, and in the IdP by its recorded sign-ins)."""
    cfg = c.cfg
    since = c.now - timedelta(days=cfg.dormant_days)
    for a in c.pop.accounts:
        if a.status != ACTIVE or a.person_id is None:
            continue
        person = c.people.get(a.person_id)
        if person is None or person.status != ACTIVE:
            continue  # leavers are reported as such
        if person.hired_on is not None and person.hired_on > since.date():
            continue
        activity = c.last_activity.get(a.person_id, {}).get(a.system)
        last = max((t for t in (a.last_login_at, activity) if t is not None), default=None)
        if last is not None and last >= since:
            continue
        if a.system not in (*cfg.systems, cfg.idp_system):
            continue
        quality = "usage" if a.last_login_at or activity or c.pop.usage_since else "no_usage_data"
        yield Finding("dormant_account", f"dormant_account:{a.system}:{a.local_id}",
                      cfg.severity["dormant_account"], a.person_id, system=a.system, account=a.local_id,
                      evidence={"person": c.who(a.person_id), "system": a.system, "account": a.local_id,
                                "last_login_at": _iso(a.last_login_at), "last_request_at": _iso(activity),
                                "dormant_days": cfg.dormant_days},
                      evidence_quality=quality,
                      recommendation={"action": "disable_account", "system": a.system, "account": a.local_id,
                                      "zh": f"超过{cfg.dormant_days}天未使用，建议在{a.system.upper()}中停用该账号",
                                      "en": f"unused for over {cfg.dormant_days} days: disable the account in "
                                            f"{a.system.upper()}"})


def orphan_accounts(c: _Ctx) -> Iterable[Finding]:
    """An active account in the CRM or the OA linked to no person (or whose link an admin broke)."""
    for a in c.pop.accounts:
        if a.status != ACTIVE or a.system not in c.cfg.systems:
            continue
        if a.person_id is not None and a.link_state != "broken":
            continue
        yield Finding("orphan_account", f"orphan_account:{a.system}:{a.local_id}", c.cfg.severity["orphan_account"],
                      None, system=a.system, account=a.local_id,
                      evidence={"system": a.system, "account": a.local_id, "link_state": a.link_state,
                                "last_login_at": _iso(a.last_login_at), "department": a.department_path},
                      recommendation={"action": "link_or_disable_account", "system": a.system, "account": a.local_id,
                                      "zh": "该账号不属于任何员工：确认归属并关联，否则停用",
                                      "en": "the account belongs to nobody: link it to its owner or disable it"})


def leavers_active(c: _Ctx) -> Iterable[Finding]:
    """A person who left (or is disabled in the master source) with an active account anywhere or
    a grant not revoked; evidence includes requests allowed after the exit date."""
    for p in c.pop.people:
        if p.status == ACTIVE:
            continue
        live_accounts = [a for a in c.accounts_of.get(p.id, ()) if a.status == ACTIVE]
        if not live_accounts:
            continue  # grants of people who left are inert (every decision about them is a deny)
        live_grants = [g.id for g in c.grants_of.get(p.id, ()) if c.active_grant(g)]
        left = datetime.combine(p.left_on, datetime.min.time(), tzinfo=c.now.tzinfo) if p.left_on else None
        # what they (or someone with their account) asked for after leaving: accessgov denied it,
        # but the request shows the account is in use
        used_after = sorted(k for k, t in c.asked.get(p.id, {}).items() if left is not None and t >= left)
        for a in live_accounts:
            yield Finding("leaver_active", f"leaver_active:{p.id}:{a.system}:{a.local_id}",
                          c.cfg.severity["leaver_active"], p.id, system=a.system, account=a.local_id,
                          evidence={"person": c.who(p.id), "left_on": p.left_on.isoformat() if p.left_on else None,
                                    "account": a.local_id, "system": a.system,
                                    "last_login_at": _iso(a.last_login_at), "used_after_leaving": used_after,
                                    "grants_not_revoked": live_grants},
                          evidence_quality="usage" if used_after else "directory",
                          recommendation={"action": "disable_account", "system": a.system, "account": a.local_id,
                                          "zh": f"此人已离职，立即在{a.system.upper()}中停用账号",
                                          "en": f"the person has left: disable the account in {a.system.upper()} now"})


def stale_grants(c: _Ctx) -> Iterable[Finding]:
    """A grant left behind by a department move: suspended by the sync when the person moved and
    waiting for review, or held in a department that no longer covers the person's own for a role
    the sources only ever give within one's own department (or subtree)."""
    moves: dict[str, list[Any]] = defaultdict(list)
    for m in c.pop.moves:
        moves[m.person_id].append(m)
    for p in c.pop.people:
        if p.status != ACTIVE:
            continue
        for g in c.grants_of.get(p.id, ()):
            info = c.role(g.role)
            suspended = g.suspended_at is not None
            if not suspended:
                if g.source_system == "manual" or not c.active_grant(g) or g.domain == "*" \
                        or covers(g.domain, p.department_path):
                    continue  # hand-made grants elsewhere are deliberate (reported as direct grants)
                if info is None or not info.mapped_scopes or "company" in info.mapped_scopes:
                    continue  # a role given across departments by design
            gives = c.keys_of_role.get(g.role, frozenset())
            used_since = sorted(k for k, t in c.used.get(p.id, {}).items()
                                if k in gives and g.suspended_at is None
                                and moves.get(p.id) and t >= max(m.at for m in moves[p.id]))
            yield Finding("stale_grant_after_move", f"stale_grant_after_move:grant:{g.id}",
                          c.cfg.severity["stale_grant_after_move"], p.id, system=g.source_system, permission=g.role,
                          grant_id=g.id,
                          evidence={"person": c.who(p.id), "grant": c.grant_evidence(g), "suspended": suspended,
                                    "suspended_at": _iso(g.suspended_at), "suspend_reason": g.suspend_reason,
                                    "home": p.department_path,
                                    "moves": [{"at": _iso(m.at), "from": m.from_path, "to": m.to_path}
                                              for m in moves.get(p.id, ())],
                                    "used_after_move": used_since},
                          evidence_quality="usage" if used_since else "directory",
                          recommendation=_revoke(g, "调岗后残留的原部门授权，建议撤销", "a grant left in the person's "
                                                 "former department after a move: revoke it"))


def sod_conflicts(c: _Ctx) -> Iterable[Finding]:
    """Two grants of one person that together give both sides of a ``sod.yaml`` rule (reach
    overlapping in some department when the rule says ``overlap``)."""
    rules = c.cfg.sod
    if not rules:
        return
    # role -> rule id -> side -> perms of that side
    sides: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for name, info in c.pop.roles.items():
        per: dict[str, dict[str, list[Any]]] = {}
        for rule in rules:
            left = [p for p in info.perms if p.key in rule.left and p.key not in info.denies]
            right = [p for p in info.perms if p.key in rule.right and p.key not in info.denies]
            if left or right:
                per[rule.id] = {"left": left, "right": right}
        sides[name] = per
    for pid, grants in c.grants_of.items():
        person = c.people.get(pid)
        if person is None or person.status != ACTIVE:
            continue
        live = [g for g in grants if c.active_grant(g) and sides.get(g.role)]
        if len(live) < 2:
            continue
        for rule in rules:
            # a role that combines both sides by design, given through the sources' mapping (the
            # position that carries it), is accepted with whatever else its holder has for the rule
            if any(rule.id in c.cfg.roles_by_design.get(g.role, ()) and g.source_system != "manual" for g in live):
                continue
            hit = _sod_pair(rule, live, sides)
            if hit is None:
                continue
            (gl, pl, reach_l), (gr, pr, reach_r) = hit
            yield Finding("sod_conflict", f"sod_conflict:{pid}:{rule.id}", rule.severity, pid,
                          system=_system_of([pl.key, pr.key]) or "cross", permission=rule.id,
                          grant_id=gr.id,
                          evidence={"person": c.who(pid), "rule": rule.id, "title_zh": rule.title_zh,
                                    "title_en": rule.title_en,
                                    "left": {"permission": pl.key, "scope": pl.scope, "condition": pl.condition,
                                             "rule": pl.rule_id, "reach": reach_l, "grant": c.grant_evidence(gl)},
                                    "right": {"permission": pr.key, "scope": pr.scope, "condition": pr.condition,
                                              "rule": pr.rule_id, "reach": reach_r, "grant": c.grant_evidence(gr)},
                                    "used": sorted(k for k in (pl.key, pr.key) if k in c.used.get(pid, {}))},
                          evidence_quality="directory",
                          recommendation=_revoke(gr, f"违反职责分离规则 {rule.id}：撤销其中一项授权"
                                                     f"（建议撤销 #{gr.id}）",
                                                 f"breaks separation-of-duties rule {rule.id}: revoke one of the two "
                                                 f"grants (suggested: #{gr.id})"))


def _sod_pair(rule: Any, live: list[Grant], sides: Mapping[str, Any]) -> Any:
    for gl in live:
        for pl in sides[gl.role].get(rule.id, {}).get("left", ()):
            reach_l = meet(gl.domain, pl.domain)
            if reach_l is None:
                continue
            for gr in live:
                if gr.id == gl.id:
                    continue
                for pr in sides[gr.role].get(rule.id, {}).get("right", ()):
                    reach_r = meet(gr.domain, pr.domain)
                    if reach_r is None:
                        continue
                    if rule.scope == "overlap" and meet(reach_l, reach_r) is None:
                        continue
                    return (gl, pl, reach_l), (gr, pr, reach_r)
    return None


def peer_outliers(c: _Ctx) -> Iterable[Finding]:
    """A role few of a person's peers (same department and position) hold.

    For each group of at least ``peers.min_group`` active people, a role held by at most
    ``peers.max_share`` of the group and by no more than ``peers.max_holders`` people is unusual for
    its holders.  Documented in audit/README.md; tune it in policies/audit.yaml.
    """
    cfg = c.cfg
    groups: dict[tuple[str, str], list[Person]] = defaultdict(list)
    for p in c.pop.people:
        if p.status == ACTIVE and p.department_path and p.position:
            groups[(p.department_path, p.position)].append(p)
    for (dept, position), members in groups.items():
        n = len(members)
        if n < cfg.peer_min_group:
            continue
        holders: dict[str, list[Grant]] = defaultdict(list)
        for p in members:
            for role in {g.role for g in c.grants_of.get(p.id, ()) if c.active_grant(g)}:
                holders[role].append(next(g for g in c.grants_of[p.id] if g.role == role and c.active_grant(g)))
        for role, gs in holders.items():
            share = len(gs) / n
            if share > cfg.peer_max_share or len(gs) > cfg.peer_max_holders:
                continue
            info = c.role(role)
            level = cfg.severity["peer_outlier"]
            if info and info.privileged:
                level = raise_level(level)
            for g in gs:
                yield Finding("peer_outlier", f"peer_outlier:{g.person_id}:{role}", level, g.person_id,
                              system=g.source_system, permission=role, grant_id=g.id,
                              evidence={"person": c.who(g.person_id), "grant": c.grant_evidence(g),
                                        "peers": n, "holders": len(gs), "share": round(share, 3),
                                        "group": {"department": dept, "position": position},
                                        "threshold": {"max_share": cfg.peer_max_share,
                                                      "max_holders": cfg.peer_max_holders,
                                                      "min_group": cfg.peer_min_group}},
                              recommendation={"action": "review_grant", "grant_id": g.id,
                                              "zh": f"同部门同岗位{n}人中仅{len(gs)}人持有该角色，请确认是否必要",
                                              "en": f"only {len(gs)} of {n} peers (same department and position) "
                                                    "hold this role: confirm it is needed"})


def privileged_and_broad(c: _Ctx) -> Iterable[Finding]:
    """Standing privileged access granted by hand (no end date, not mirrored from a source role),
    grants wider than the sources ever give the role (company-wide for a department role), and
    other hand-made grants outside the sources' role assignments."""
    cfg = c.cfg
    for g in c.pop.grants:
        person = c.people.get(g.person_id)
        if person is None or person.status != ACTIVE or not c.active_grant(g):
            continue
        info = c.role(g.role)
        privileged = bool(info and info.privileged)
        manual = g.source_system == "manual"
        if privileged and manual and g.valid_until is None:
            yield Finding("privileged_role", f"privileged_role:grant:{g.id}", cfg.severity["privileged_role"],
                          g.person_id, system="accessgov", permission=g.role, grant_id=g.id,
                          evidence={"person": c.who(g.person_id), "grant": c.grant_evidence(g), "standing": True},
                          recommendation={"action": "review_grant", "grant_id": g.id,
                                          "zh": "手工授予的常设特权角色：确认必要性并设置到期日，或撤销",
                                          "en": "standing privileged role granted by hand: confirm it, give it an "
                                                "end date, or revoke it"})
        mapped = info.mapped_scopes if info else frozenset()
        if g.domain == "*" and mapped and "company" not in mapped:
            wide = sorted({p.key for p in (info.perms if info else ()) if p.scope == "all"})
            level = cfg.severity["broad_grant"]
            if any(k.partition(":")[2] in cfg.sensitive_actions for k in wide):
                level = raise_level(level)
            yield Finding("broad_grant", f"broad_grant:grant:{g.id}", level, g.person_id, system=g.source_system,
                          permission=g.role, grant_id=g.id,
                          evidence={"person": c.who(g.person_id), "grant": c.grant_evidence(g),
                                    "usual_scopes": sorted(mapped), "all_scope_permissions": wide},
                          recommendation={"action": "reduce_grant", "grant_id": g.id,
                                          "zh": "该角色通常只在本部门授予，此授权覆盖全公司：缩小到所需部门",
                                          "en": "the role is normally held within a department; this grant covers the "
                                                "whole company: narrow it"})
        if manual and not privileged and g.valid_until is None:
            yield Finding("direct_grant", f"direct_grant:grant:{g.id}", cfg.severity["direct_grant"], g.person_id,
                          system="accessgov", permission=g.role, grant_id=g.id,
                          evidence={"person": c.who(g.person_id), "grant": c.grant_evidence(g)},
                          recommendation={"action": "review_grant", "grant_id": g.id,
                                          "zh": "在accessgov中直接授予、无来源系统角色依据的常设授权："
                                                "确认或改由来源系统分配",
                                          "en": "a standing grant made directly in accessgov, not backed by a source "
                                                "system's role: confirm it or assign the role at the source"})


def temporary_access(c: _Ctx) -> Iterable[Finding]:
    """Temporary grants and delegations: ended but never cleaned up, or ending within ``expiring_days``."""
    cfg = c.cfg
    soon = c.now + timedelta(days=cfg.expiring_days)
    items: list[tuple[str, Any, str, str]] = [
        ("grant", g, g.person_id, g.role) for g in c.pop.grants if g.valid_until is not None]
    items += [("delegation", d, d.to_person_id, d.role) for d in c.pop.delegations if d.valid_until is not None]
    for what, x, pid, role in items:
        until: datetime = x.valid_until
        base = {"person": c.who(pid), what: c.grant_evidence(x) if what == "grant" else {
            "delegation_id": x.id, "from": x.from_person_id, "to": x.to_person_id, "role": role,
            "valid_until": _iso(until)}}
        grant_id = x.id if what == "grant" else None
        if until <= c.now:
            yield Finding("expired_access", f"expired_access:{what}:{x.id}", cfg.severity["expired_access"], pid,
                          system="accessgov", permission=role, grant_id=grant_id,
                          evidence={**base, "ended": _iso(until)},
                          recommendation={"action": "revoke_grant" if grant_id else "end_delegation",
                                          "grant_id": grant_id,
                                          "zh": "临时授权已到期但记录未清理：撤销以免误续期",
                                          "en": "the temporary access has ended but was never cleaned up: revoke it"})
        elif until <= soon:
            yield Finding("expiring_access", f"expiring_access:{what}:{x.id}:{until.date().isoformat()}",
                          cfg.severity["expiring_access"], pid, system="accessgov", permission=role, grant_id=grant_id,
                          evidence={**base, "ends": _iso(until), "days_left": (until - c.now).days},
                          recommendation={"action": "renew_or_expire", "grant_id": grant_id,
                                          "zh": "临时授权即将到期：确认是否续期，否则任其到期",
                                          "en": "the temporary access ends soon: renew it if still needed, "
                                                "otherwise let it end"})


def cross_system(c: _Ctx) -> Iterable[Finding]:
    """Where the sources disagree: a person disabled in the IdP but active in the CRM or OA, a
    department that differs between the CRM and the OA, and the sync's recorded conflicts."""
    cfg = c.cfg
    for p in c.pop.people:
        accounts = c.accounts_of.get(p.id, [])
        idp = [a for a in accounts if a.system == cfg.idp_system]
        others = [a for a in accounts if a.system in cfg.systems]
        if p.status == ACTIVE and idp and all(a.status != ACTIVE for a in idp):
            for a in others:
                if a.status == ACTIVE:
                    yield Finding("cross_system_inconsistency", f"cross_system_inconsistency:{p.id}:idp_disabled:"
                                  f"{a.system}", raise_level(cfg.severity["cross_system_inconsistency"]), p.id,
                                  system=a.system, account=a.local_id,
                                  evidence={"person": c.who(p.id), "idp": "disabled", a.system: "active",
                                            "account": a.local_id},
                                  recommendation={"action": "disable_account", "system": a.system,
                                                  "account": a.local_id,
                                                  "zh": "IdP中已停用而业务系统仍启用：核实后停用业务系统账号",
                                                  "en": "disabled in the IdP but active here: verify and disable"})
        depts = {a.system: a.department_path for a in others if a.status == ACTIVE and a.department_path}
        if len(set(depts.values())) > 1:
            yield Finding("cross_system_inconsistency", f"cross_system_inconsistency:{p.id}:department",
                          cfg.severity["cross_system_inconsistency"], p.id, system="cross",
                          evidence={"person": c.who(p.id), "departments": depts},
                          recommendation={"action": "fix_source", "zh": "各系统中的部门不一致：在非主数据系统中更正",
                                          "en": "the department differs between systems: correct it in the "
                                                "non-master system"})
    for conflict in c.pop.conflicts:
        if conflict.attribute == "department":
            continue  # reported above from the accounts themselves when still true
        yield Finding("cross_system_inconsistency",
                      f"cross_system_inconsistency:{conflict.person_id}:{conflict.attribute}:{conflict.other_source}",
                      cfg.severity["cross_system_inconsistency"], conflict.person_id, system=conflict.other_source,
                      evidence={"person": c.who(conflict.person_id), "attribute": conflict.attribute,
                                "master": {"source": conflict.master_source, "value": conflict.master_value},
                                "other": {"source": conflict.other_source, "value": conflict.other_value},
                                "last_seen": _iso(conflict.last_seen)},
                      recommendation={"action": "fix_source",
                                      "zh": f"在{conflict.other_source}中更正该属性，与主数据保持一致",
                                      "en": f"correct the attribute in {conflict.other_source} to match the master"})


CHECKS: tuple[Callable[[_Ctx], Iterable[Finding]], ...] = (
    unused_permissions, unused_sensitive_fields, dormant_accounts, orphan_accounts, leavers_active, stale_grants,
    sod_conflicts, peer_outliers, privileged_and_broad, temporary_access, cross_system)


def run_checks(pop: Population, cfg: AuditConfig) -> list[Finding]:
    """Every check over the population; one finding per key (the first wins)."""
    ctx = _Ctx(pop, cfg)
    out: dict[str, Finding] = {}
    for check in CHECKS:
        for f in check(ctx):
            out.setdefault(f.key, f)
    return list(out.values())
