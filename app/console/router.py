"""The console's pages (``/console/``): HTTP only; who may do what is asked of the decision service."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from app.console import (
    campaign_pages,
    log_pages,
    person_pages,
    policy_pages,
    report_pages,
    service,
    sync_pages,
)
from app.console.oidc import SignInError
from app.console.pages import trend_chart
from app.console.runtime import ConsoleRuntime, runtime_of
from app.console.session import PendingLogin
from app.console.web import Form, Viewer, guard, guard_form, html, message, redirect, safe_next
from app.errors import AccessGovError, NotFound
from audit.i18n import FINDING_KINDS, FINDING_STATUSES, SEVERITIES

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
PAGE_SIZE = 25
SORTS = ("severity", "kind", "first_seen", "last_seen", "person", "id")
SETTABLE = ("accepted", "remediated", "open")


# -- sign-in and out -------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/console/") -> Response:
    rt = runtime_of(request.app)
    return html(request, rt, "login.html", idps=rt.settings.idps, next=quote(safe_next(next), safe=""))


@router.get("/auth/login/{idp}")
def start_login(request: Request, idp: str, next: str = "/console/") -> Response:
    rt = runtime_of(request.app)
    client = rt.clients.get(idp)
    if client is None:
        return message(request, rt, 404, "404")
    try:
        auth = client.authorization()
    except SignInError as exc:
        log.warning("console sign-in could not start", extra={"idp": idp, "code": exc.code})
        return message(request, rt, 502, "signin", code=exc.code)
    response = RedirectResponse(auth.url, status_code=303)
    rt.codec.start_login(response, PendingLogin(idp, auth.state, auth.nonce, auth.verifier, safe_next(next)))
    return response


@router.get("/auth/callback")
def callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    rt = runtime_of(request.app)
    pending = rt.codec.pending_login(request)
    response = _finish_login(request, rt, pending, state=state, code=code, error=error)
    rt.codec.end_login(response)  # a state is good once, whatever became of it
    return response


def _finish_login(request: Request, rt: ConsoleRuntime, pending: PendingLogin | None, *, state: str, code: str,
                  error: str) -> Response:
    import secrets

    if pending is None:
        return _refuse_sign_in(request, rt, "no_pending_login")
    if not state or not secrets.compare_digest(state.encode(), pending.state.encode()):
        return _refuse_sign_in(request, rt, "state_mismatch")
    if error or not code:
        return _refuse_sign_in(request, rt, f"idp_error:{error[:40]}" if error else "no_code")
    client = rt.clients.get(pending.idp)
    if client is None:
        return _refuse_sign_in(request, rt, "unknown_idp")
    try:
        claims = client.finish(code=code, verifier=pending.verifier, nonce=pending.nonce)
    except SignInError as exc:
        return _refuse_sign_in(request, rt, exc.code)
    services = request.app.state.services
    source = client.idp.sync_source
    try:
        service.record_sign_in(services, source=source, claims=claims)
    except AccessGovError as exc:  # the sign-in stands on the directory; the record is evidence only
        log.warning("console sign-in not recorded", extra={"source": source, "error": exc.message})
    person = service.resolve_person(services, source=source, subject=str(claims["sub"]))
    if person is None:
        log.info("console sign-in refused", extra={"idp": pending.idp, "reason": "unknown_person"})
        return message(request, rt, 403, "unknown_person")
    if len(person.duties) != 1:
        kind = "no_duty" if not person.duties else "two_duties"
        log.info("console sign-in refused", extra={"idp": pending.idp, "person_id": person.id, "reason": kind})
        return message(request, rt, 403, kind, duties=person.duties)
    session = rt.codec.new_session(person_id=person.id, name=person.name, duty=person.duties[0], idp=pending.idp)
    log.info("console sign-in", extra={"idp": pending.idp, "person_id": person.id, "duty": session.duty})
    response = RedirectResponse(safe_next(pending.next), status_code=303)
    rt.codec.write(response, session)
    return response


def _refuse_sign_in(request: Request, rt: ConsoleRuntime, code: str) -> Response:
    log.warning("console sign-in refused", extra={"reason": code})
    return message(request, rt, 400, "signin", code=code)


@router.post("/logout")
def logout(request: Request, form: Form) -> Response:
    rt = runtime_of(request.app)
    _state, session = rt.codec.read(request)
    if session is not None and not session.csrf_ok(form.get("csrf")):
        return message(request, rt, 403, "csrf")
    client = rt.clients.get(session.idp) if session is not None else None
    target = (client.logout_url(rt.signed_out_url) if client else None) or "/console/signed-out"
    response = RedirectResponse(target, status_code=303)
    rt.codec.clear(response)
    if session is not None:
        log.info("console sign-out", extra={"person_id": session.person_id})
    return response


@router.get("/signed-out")
def signed_out(request: Request) -> Response:
    rt = runtime_of(request.app)
    return message(request, rt, 200, "signed_out", clear=True)


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/console/") -> Response:
    rt = runtime_of(request.app)
    response = RedirectResponse(safe_next(next), status_code=303)
    if code in ("zh-CN", "en"):
        rt.codec.set_lang(response, code)
    return response


@router.get("/static/vendor/htmx.min.js")
def htmx(request: Request) -> Response:
    return FileResponse(STATIC / "vendor" / "htmx.min.js", media_type="text/javascript")


@router.get("/static/{name}.css")
def stylesheet(request: Request, name: str) -> Response:
    path = STATIC / f"{name}.css"
    if not name.replace("_", "").isalnum() or not path.is_file():
        return message(request, runtime_of(request.app), 404, "404")
    return FileResponse(path, media_type="text/css")


# -- pages -----------------------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request) -> Response:
    viewer = guard(request, "view_dashboard", "dashboard")
    if isinstance(viewer, Response):
        return viewer
    services = request.app.state.services
    data = service.dashboard(services, tz=viewer.rt.settings.timezone)
    return html(request, viewer.rt, "dashboard.html", viewer=viewer, data=data, chart=trend_chart(data["trend"]),
                 severities=SEVERITIES, page="dashboard")


@router.get("/findings")
def findings(request: Request, kind: str = "", severity: str = "", status: str = "open", sort: str = "severity",
             order: str = "asc", page: int = 1) -> Response:
    viewer = guard(request, "view_findings", "findings")
    if isinstance(viewer, Response):
        return viewer
    kind, severity = (kind if kind in FINDING_KINDS else ""), (severity if severity in SEVERITIES else "")
    status = status if status in FINDING_STATUSES else ""
    sort, order, page = (sort if sort in SORTS else "severity"), (order if order == "desc" else "asc"), max(page, 1)
    found = request.app.state.services.audit.list_findings(
        kind=[kind] if kind else None, severity=[severity] if severity else None, status=[status] if status else None,
        sort=sort, order=order, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    pages = max(1, -(-found["total"] // PAGE_SIZE))
    query = {"kind": kind, "severity": severity, "status": status, "sort": sort, "order": order}
    return html(request, viewer.rt, "findings.html", viewer=viewer, found=found, query=query, page=page,
                 pages=pages, kinds=FINDING_KINDS, severities=SEVERITIES, statuses=FINDING_STATUSES, sorts=SORTS,
                 items=[_finding_row(f) for f in found["items"]], nav="findings")


@router.get("/findings/{finding_id}")
def finding(request: Request, finding_id: int, saved: int = 0) -> Response:
    viewer = guard(request, "view_findings", f"finding:{finding_id}")
    if isinstance(viewer, Response):
        return viewer
    return _finding_page(request, viewer, finding_id, saved=bool(saved))


def _finding_page(request: Request, viewer: Viewer, finding_id: int, *, saved: bool = False, error: str = "",
                  status: int = 200) -> Response:
    services = request.app.state.services
    try:
        found = services.audit.get_finding(finding_id)
    except NotFound:
        return message(request, viewer.rt, 404, "404", viewer=viewer)
    may_decide = service.decide(services, person_id=viewer.session.person_id, action="decide_finding",
                                target=f"finding:{finding_id}").get("decision", False)
    return html(request, viewer.rt, "finding.html", status, viewer=viewer, f=_finding_row(found),
                 history=[_event_row(e) for e in found["history"]], may_decide=may_decide, saved=saved,
                 error=error, settable=SETTABLE, nav="findings")


@router.post("/findings/{finding_id}/status")
def set_finding_status(request: Request, finding_id: int, form: Form) -> Response:
    viewer = guard_form(request, form, "decide_finding", f"finding:{finding_id}")
    if isinstance(viewer, Response):
        return viewer
    rt = viewer.rt
    to, reason = form.get("to", ""), form.get("reason", "").strip()
    until = None
    if to == "accepted":
        until = _end_of_day(form.get("until", ""), viewer.rt.settings.timezone)
        if until is None:
            return _finding_page(request, viewer, finding_id, error="finding.bad_date", status=422)
    try:
        request.app.state.services.audit.set_status(finding_id, to=to, actor=viewer.session.person_id,
                                                    reason=reason, until=until, owner=viewer.session.person_id)
    except NotFound:
        return message(request, rt, 404, "404", viewer=viewer)
    except AccessGovError as exc:
        return _finding_page(request, viewer, finding_id, error=exc.message, status=409)
    return redirect(viewer, f"/console/findings/{finding_id}?saved=1")


# Each section's pages, then the catch-all 404 (it must come last).
for _section in (campaign_pages, person_pages, policy_pages, log_pages, sync_pages, report_pages):
    router.include_router(_section.router)


@router.api_route("/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def not_found(request: Request, rest: str) -> Response:
    """Any other console address, whatever the method: the 404 page (a form posted to a row that is not
    one lands here too, e.g. a non-numeric item id)."""
    return message(request, runtime_of(request.app), 404, "404")


def _end_of_day(value: str, tz: str) -> datetime | None:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1), time(), ZoneInfo(tz)) - timedelta(seconds=1)


def _finding_row(f: dict[str, Any]) -> dict[str, Any]:
    out = dict(f)
    for key in ("first_seen_at", "last_seen_at", "accepted_until", "resolved_at", "updated_at"):
        out[key] = service.parse_time(f.get(key))
    return out


def _event_row(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "at": service.parse_time(e.get("at"))}
