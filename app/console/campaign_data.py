"""What the campaign pages show and send: rows of the audit service's campaigns, items and close preview,
and the launch / decision forms checked and turned into the service's arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.console.service import parse_time
from app.console.web import db_id, form_list
from app.directory.models import Department, Person, Role

DECISIONS = ("keep", "revoke", "reduce", "accept_risk")
BULK_DECISIONS = ("keep", "accept_risk")  # revoke and reduce are decided one item at a time
NO_RESPONSE = ("keep", "revoke", "recommendation")
SYSTEMS = ("crm", "oa")
SAVED = ("launched", "decided", "bulk", "rolled_back", "reminded", "closed")
MAX_TEXT = 2000
PAGE_SIZE = 100

# Service refusals (English, from audit.campaigns) and the reader's words for them.
_REFUSALS = (
    ("bulk decisions are for low-risk items only", "camp.err.bulk_risk"),
    ("already decided", "camp.err.decided"),
    ("nobody reviews their own access", "camp.err.own"),
    ("is closed", "camp.err.closed"),
    ("is already closed", "camp.err.closed"),
    ("accepting a risk needs a future date", "camp.err.until"),
    ("nothing applied to roll back", "camp.err.no_rollback"),
    ("due_at must be in the future", "camp.err.due"),
)


class FormError(ValueError):
    """A form the page refuses before asking the service (``key`` is a console word)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class Refusal:
    """Why nothing was changed: a console word, and the service's own message if it said one."""

    key: str
    detail: str = ""


def refusal(message: str) -> Refusal:
    """The reader's words for a service refusal (the message kept as detail)."""
    for needle, key in _REFUSALS:
        if needle in message:
            return Refusal(key, message)
    return Refusal("camp.err.refused", message)


def flag(value: str) -> bool:
    """A query flag (``1``, ``true``, ``on``); anything else is off."""
    return value.strip().lower() in ("1", "true", "on", "yes")


def end_of_day(value: str, tz: str) -> datetime | None:
    """The last second of a YYYY-MM-DD day in ``tz``; None when it is not a date."""
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1), time(), ZoneInfo(tz)) - timedelta(seconds=1)


def reason_of(form: dict[str, str]) -> str:
    """The form's reason: required, at most 2000 characters."""
    reason = form.get("reason", "").strip()
    if not reason:
        raise FormError("camp.err.reason")
    if len(reason) > MAX_TEXT:
        raise FormError("camp.err.too_long")
    return reason


# -- forms -----------------------------------------------------------------------------------------


@dataclass
class Launch:
    """The launch form's values, as the service takes them."""

    name: str
    due_at: datetime
    no_response: str
    auto_revoke_cap: int
    scope: dict[str, Any] = field(default_factory=dict)


def launch_of(form: dict[str, str], tz: str) -> Launch:
    """Check the launch form (name, due date, no-response rule, cap, scope)."""
    name = form.get("name", "").strip()
    if not name or len(name) > 200:
        raise FormError("camp.err.name")
    due = end_of_day(form.get("due", ""), tz)
    if due is None:
        raise FormError("camp.err.due_format")
    if due <= datetime.now(UTC):
        raise FormError("camp.err.due")
    rule = form.get("no_response", "keep")
    cap = form.get("auto_revoke_cap", "25").strip() or "25"
    if rule not in NO_RESPONSE or not cap.isdigit() or int(cap) > 100_000:
        raise FormError("camp.err.options")
    systems = form_list(form, "systems")
    departments = [d.strip() for d in form_list(form, "departments") if d.strip()]
    roles = [r.strip() for r in form_list(form, "roles") if r.strip()]
    if any(s not in SYSTEMS for s in systems) or any(len(d) > 1000 for d in departments) \
            or any(len(r) > 64 for r in roles):
        raise FormError("camp.err.options")
    scope = {"departments": departments, "systems": systems, "roles": roles,
             "only_findings": flag(form.get("only_findings", ""))}
    return Launch(name, due, rule, int(cap), scope)


@dataclass
class Decision:
    """One reviewer decision from the item form."""

    decision: str
    reason: str
    until: datetime | None


def decision_of(form: dict[str, str], tz: str) -> Decision:
    """Check an item's decision form (accept_risk needs a date)."""
    decision = form.get("decision", "")
    if decision not in DECISIONS:
        raise FormError("camp.err.decision")
    reason = reason_of(form)
    until = None
    if decision == "accept_risk":
        until = end_of_day(form.get("until", ""), tz)
        if until is None:
            raise FormError("camp.err.until")
    return Decision(decision, reason, until)


def bulk_of(form: dict[str, str], tz: str) -> tuple[list[int], Decision]:
    """(item ids, the decision) of the bulk form; at least one item (accept_risk needs a date)."""
    raw = form_list(form, "item")
    ids = [db_id(v) for v in raw]
    if not raw or any(i is None for i in ids) or len(ids) > 1000:
        raise FormError("camp.err.no_items")
    if form.get("decision", "keep") not in BULK_DECISIONS:
        raise FormError("camp.err.decision")
    return sorted({i for i in ids if i is not None}), decision_of(form, tz)


# -- rows ------------------------------------------------------------------------------------------


def progress_of(campaign: dict[str, Any]) -> dict[str, int]:
    """Decided and total items of a campaign."""
    progress = campaign.get("progress") or {}
    total = int(progress.get("total", 0))
    pending = int((progress.get("by_decision") or {}).get("pending", 0))
    return {"total": total, "decided": total - pending, "pending": pending}


def campaign_row(campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign with its times parsed and its progress counted."""
    out = dict(campaign)
    for key in ("launched_at", "due_at", "closed_at"):
        out[key] = parse_time(campaign.get(key))
    out.update(progress_of(campaign))
    return out


def item_row(item: dict[str, Any]) -> dict[str, Any]:
    """An item with its times parsed and what became of it."""
    out = dict(item)
    out["decided_at"] = parse_time(item.get("decided_at"))
    out["accept_until"] = parse_time(item.get("accept_until"))
    result = item.get("apply_result") or {}
    out["rolled_back"] = result.get("rolled_back") if isinstance(result, dict) else None
    out["error"] = result.get("error") if isinstance(result, dict) else None
    return out


def my_pending(audit: Any, person_id: str, campaigns: list[dict[str, Any]], *, limit: int = 50
               ) -> list[dict[str, Any]]:
    """The viewer's pending items in each active campaign (reviewer is the viewer)."""
    out: list[dict[str, Any]] = []
    for c in campaigns:
        if c["status"] != "active":
            continue
        found = audit.campaign_items(c["id"], reviewer_id=person_id, pending=True, limit=limit)
        out.extend({**item_row(i), "campaign_name": c["name"], "due_at": c["due_at"]} for i in found["items"])
    return out


def names(services: Any, person_ids: set[str]) -> dict[str, str]:
    """Directory names of people, by id."""
    ids = sorted(p for p in person_ids if p)
    if not ids:
        return {}
    with services.factory() as session:
        return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).all())


def role_titles(services: Any, lang: str) -> dict[str, str]:
    """Role titles in the reader's language, by role name."""
    with services.factory() as session:
        rows = session.execute(select(Role.name, Role.title_zh, Role.title_en)).all()
    return {name: (en if lang == "en" else zh) or name for name, zh, en in rows}


def launch_choices(services: Any) -> dict[str, Any]:
    """What the launch form offers: departments (path, name), roles, systems, rules."""
    with services.factory() as session:
        departments = session.execute(select(Department.path, Department.name).order_by(Department.path)).all()
        roles = session.scalars(select(Role.name).order_by(Role.name)).all()
    return {"departments": [(p, n) for p, n in departments], "roles": list(roles), "systems": SYSTEMS,
            "rules": NO_RESPONSE}


def preview_rows(audit: Any, campaign_id: int, preview: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The close preview's items, grouped by outcome (revoke, keep, kept by the cap)."""
    wanted = set(preview["revoke"]) | set(preview["keep"])
    items: dict[int, dict[str, Any]] = {}
    offset = 0
    while wanted and offset < 1_000_000:
        page = audit.campaign_items(campaign_id, pending=True, limit=1000, offset=offset)
        items.update({i["id"]: item_row(i) for i in page["items"] if i["id"] in wanted})
        offset += 1000
        if offset >= page["total"]:
            break
    capped = set(preview["kept_by_cap"])
    return {"revoke": [items[i] for i in preview["revoke"] if i in items],
            "capped": [items[i] for i in preview["keep"] if i in items and i in capped],
            "keep": [items[i] for i in preview["keep"] if i in items and i not in capped]}
