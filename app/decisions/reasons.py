"""Why a decision came out as it did: a structured reason and a sentence in Chinese and English."""

from __future__ import annotations

from typing import Any

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
