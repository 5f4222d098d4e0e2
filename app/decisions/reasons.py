"""Why a decision came out as it did: a structured reason and a sentence in Chinese and English."""

from __future__ import annotations

from typing import Any

import orjson

from app.authz.engine import Decision

_TEXT = {
    "allowed": ("allowed by rule", "规则允许"),
    "explicit_deny": ("denied by an explicit deny rule", "被显式拒绝规则拒绝"),
    "no_matching_rule": ("no rule allows this", "没有允许此操作的规则"),
    "no_role_here": ("the subject holds no role in the record's department", "主体在该记录所属部门没有任何角色"),
    "unknown_subject": ("unknown subject", "未知主体"),
    "unknown_subject_type": ("unknown subject type", "未知主体类型"),
    "subject_inactive": ("the person has left or is disabled", "该人员已离职或被停用"),
    "account_disabled": ("the source-system account is disabled", "该源系统账号已停用"),
    "orphan_account": ("the account is linked to no person", "该账号未关联任何人员"),
    "unknown_resource_type": ("unknown resource type", "未知资源类型"),
    "unknown_action": ("unknown action for this resource type", "该资源类型没有此操作"),
    "unknown_department": ("the record's department is missing or unknown", "记录所属部门缺失或未知"),
    "invalid_fields": ("resource.properties.fields is malformed", "字段列表格式错误"),
    "policy_not_loaded": ("the policy is not loaded", "策略尚未加载"),
    "internal_error": ("internal error: denied", "内部错误：拒绝"),
}


def reason_texts() -> dict[str, tuple[str, str]]:
    """Each reason code's words: (English, Chinese)."""
    return dict(_TEXT)


def explain_code(decision: Decision, lang: str) -> str:
    """One sentence on the decision."""
    en, zh = _TEXT.get(decision.code, (decision.code, decision.code))
    text = en if lang == "en" else zh
    if decision.rule is not None:
        text = f"{text}: {decision.rule.text}"
    if decision.hold is not None:
        via = " → ".join(decision.hold.chain)
        text = f"{text} (role {via}, held in {decision.hold.grant.dom})"
    return text


def reason_payload(decision: Decision) -> dict[str, Any]:
    """Which grant, role, rule and scope decided."""
    out: dict[str, Any] = {"code": decision.code}
    if decision.rule is not None:
        r = decision.rule
        out["rule"] = {"id": r.id, "text": r.text, "effect": r.eft, "scope": r.scope, "domain": r.dom,
                       "condition": r.cond.source}
    if decision.hold is not None:
        g = decision.hold.grant
        out["role"] = decision.hold.role
        out["via"] = list(decision.hold.chain)
        out["grant"] = {"id": g.grant_id, "source": g.source, "domain": g.dom,
                        "valid_until": g.valid_until.isoformat() if g.valid_until else None}
        if g.delegated_from:
            out["grant"]["delegated_from"] = g.delegated_from
    return out


class Explained:
    """Everything a decision's answer and log row say about why, built once per (code, rule, hold)."""

    __slots__ = ("admin", "chain", "grant", "json", "reason", "rule")

    def __init__(self, decision: Decision) -> None:
        self.reason = reason_payload(decision)  # shared by every answer: never mutated
        self.json = orjson.dumps(self.reason).decode()  # what the decision log stores
        self.admin = {"en": explain_code(decision, "en"), "zh": explain_code(decision, "zh")}
        # The objects the cache key names by identity, kept alive with the entry.
        hold = decision.hold
        self.rule, self.grant, self.chain = decision.rule, hold.grant if hold else None, hold.chain if hold else None


class ReasonCache:
    """Reasons and sentences per (code, rule, role, grant, chain): a batch asks the same few over and over.

    Rules, grant edges and inheritance chains are long-lived objects of the loaded policy, so they are
    keyed by identity; the entry keeps them alive (an id is never reused while its entry exists) and
    a hit is checked against them.  Bounded: cleared when full.
    """

    def __init__(self, limit: int = 20_000) -> None:
        self._entries: dict[tuple[Any, ...], Explained] = {}
        self._limit = limit

    def get(self, decision: Decision) -> Explained:
        """The reason payload, its JSON and the admin sentences of a decision."""
        rule, hold = decision.rule, decision.hold
        grant = chain = None
        if hold is None:
            key: tuple[Any, ...] = (decision.code, id(rule))
        else:
            grant, chain = hold.grant, hold.chain
            key = (decision.code, id(rule), hold.role, id(grant), id(chain))
        hit = self._entries.get(key)
        if hit is not None and hit.rule is rule and hit.grant is grant and hit.chain is chain:
            return hit
        if len(self._entries) >= self._limit:
            self._entries.clear()
        made = self._entries[key] = Explained(decision)
        return made
