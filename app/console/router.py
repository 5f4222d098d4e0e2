"""The console's pages (``/console/``): HTTP only; who may do what is asked of the decision service."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from app.console import service
from app.console.i18n import pick_lang
from app.console.oidc import SignInError
from app.console.pages import render, trend_chart
from app.console.runtime import ConsoleRuntime, runtime_of
from app.console.session import ConsoleSession, PendingLogin, SessionState
from app.errors import AccessGovError, NotFound
from audit.i18n import FINDING_KINDS, FINDING_STATUSES, SEVERITIES

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
PAGE_SIZE = 25
SORTS = ("severity", "kind", "first_seen", "last_seen", "person", "id")
SETTABLE = ("accepted", "remediated", "open")


@dataclass
class Viewer:
    """A signed-in person allowed the page they asked for."""

    rt: ConsoleRuntime
    session: ConsoleSession
    lang: str
    decision: dict[str, Any]


def _lang(request: Request, rt: ConsoleRuntime) -> str:
    return pick_lang(request.cookies.get(rt.codec.lang_cookie), request.headers.get("accept-language"))


def _html(request: Request, rt: ConsoleRuntime, template: str, status: int = 200, *,
          viewer: Viewer | None = None, **context: Any) -> HTMLResponse:
    lang = viewer.lang if viewer else _lang(request, rt)
    body = render(request, template, lang=lang, tz=rt.settings.timezone, viewer=viewer,
                  csrf=viewer.session.csrf if viewer else "", **context)
    response = HTMLResponse(body, status_code=status)
    if viewer is not None:
        rt.codec.write(response, viewer.session)  # slides the idle expiry
    return response


def _message(request: Request, rt: ConsoleRuntime, status: int, kind: str, *, viewer: Viewer | None = None,
             clear: bool = False, **context: Any) -> HTMLResponse:
    response = _html(request, rt, "message.html", status, viewer=viewer, kind=kind, **context)
    if clear:
        rt.codec.clear(response)
    return response


def _guard(request: Request, action: str, target: str) -> Viewer | Response:
    """The signed-in viewer if the decision service allows ``action``; else the page that says why."""
    rt = runtime_of(request.app)
    if not rt.settings.enabled:
        return HTMLResponse("", status_code=404)
    state, session = rt.codec.read(request)
    if state is SessionState.expired:
        return _message(request, rt, 401, "expired", clear=True, next=_next_of(request))
    if session is None:
        if request.method == "GET":
            return RedirectResponse(f"/console/login?next={quote(_next_of(request), safe='')}", status_code=303)
        return _message(request, rt, 401, "expired", clear=True, next="/console/")
    services = request.app.state.services
    person = service.resolve_person_by_id(services, session.person_id)
    if person is None or person.duties != [session.duty]:
        # The directory changed since sign-in (a duty revoked, or a second one added): end the session.
        kind = "unknown_person" if person is None else ("no_duty" if not person.duties else "two_duties")
        return _message(request, rt, 403, kind, clear=True, duties=person.duties if person else [])
    lang = _lang(request, rt)
    decision = service.decide(services, person_id=session.person_id, action=action, target=target)
    viewer = Viewer(rt, session, lang, decision)
    if not decision.get("decision"):
        return _message(request, rt, 403, "403", viewer=viewer, decision_id=decision["context"]["decision_id"])
    return viewer


def _next_of(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _safe_next(value: str | None) -> str:
    """Only a path of the console (never another site, never //host)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


async def form_body(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's forms are small; the app's body guard caps the size)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


Form = Annotated[dict[str, str], Depends(form_body)]


# -- sign-in and out -------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/console/") -> Response:
    rt = runtime_of(request.app)
    return _html(request, rt, "login.html", idps=rt.settings.idps, next=quote(_safe_next(next), safe=""))


@router.get("/auth/login/{idp}")
def start_login(request: Request, idp: str, next: str = "/console/") -> Response:
    rt = runtime_of(request.app)
    client = rt.clients.get(idp)
    if client is None:
        return _message(request, rt, 404, "404")
    try:
        auth = client.authorization()
    except SignInError as exc:
        log.warning("console sign-in could not start", extra={"idp": idp, "code": exc.code})
        return _message(request, rt, 502, "signin", code=exc.code)
    response = RedirectResponse(auth.url, status_code=303)
    rt.codec.start_login(response, PendingLogin(idp, auth.state, auth.nonce, auth.verifier, _safe_next(next)))
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
        return _message(request, rt, 403, "unknown_person")
    if len(person.duties) != 1:
        kind = "no_duty" if not person.duties else "two_duties"
        log.info("console sign-in refused", extra={"idp": pending.idp, "person_id": person.id, "reason": kind})
        return _message(request, rt, 403, kind, duties=person.duties)
    session = rt.codec.new_session(person_id=person.id, name=person.name, duty=person.duties[0], idp=pending.idp)
    log.info("console sign-in", extra={"idp": pending.idp, "person_id": person.id, "duty": session.duty})
    response = RedirectResponse(_safe_next(pending.next), status_code=303)
    rt.codec.write(response, session)
    return response


def _refuse_sign_in(request: Request, rt: ConsoleRuntime, code: str) -> Response:
    log.warning("console sign-in refused", extra={"reason": code})
    return _message(request, rt, 400, "signin", code=code)


@router.post("/logout")
def logout(request: Request, form: Form) -> Response:
    rt = runtime_of(request.app)
    _state, session = rt.codec.read(request)
    if session is not None and not session.csrf_ok(form.get("csrf")):
        return _message(request, rt, 403, "csrf")
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
    return _message(request, rt, 200, "signed_out", clear=True)


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/console/") -> Response:
    rt = runtime_of(request.app)
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in ("zh-CN", "en"):
        rt.codec.set_lang(response, code)
    return response


@router.get("/static/console.css")
def stylesheet() -> Response:
    return FileResponse(STATIC / "console.css", media_type="text/css")


# -- pages -----------------------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request) -> Response:
    viewer = _guard(request, "view_dashboard", "dashboard")
    if isinstance(viewer, Response):
        return viewer
    services = request.app.state.services
    data = service.dashboard(services, tz=viewer.rt.settings.timezone)
    return _html(request, viewer.rt, "dashboard.html", viewer=viewer, data=data, chart=trend_chart(data["trend"]),
                 severities=SEVERITIES, page="dashboard")


@router.get("/findings")
def findings(request: Request, kind: str = "", severity: str = "", status: str = "open", sort: str = "severity",
             order: str = "asc", page: int = 1) -> Response:
    viewer = _guard(request, "view_findings", "findings")
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
    return _html(request, viewer.rt, "findings.html", viewer=viewer, found=found, query=query, page=page,
                 pages=pages, kinds=FINDING_KINDS, severities=SEVERITIES, statuses=FINDING_STATUSES, sorts=SORTS,
                 items=[_finding_row(f) for f in found["items"]], nav="findings")


@router.get("/findings/{finding_id}")
def finding(request: Request, finding_id: int, saved: int = 0) -> Response:
    viewer = _guard(request, "view_findings", f"finding:{finding_id}")
    if isinstance(viewer, Response):
        return viewer
    return _finding_page(request, viewer, finding_id, saved=bool(saved))


def _finding_page(request: Request, viewer: Viewer, finding_id: int, *, saved: bool = False, error: str = "",
                  status: int = 200) -> Response:
    services = request.app.state.services
    try:
        found = services.audit.get_finding(finding_id)
    except NotFound:
        return _message(request, viewer.rt, 404, "404", viewer=viewer)
    may_decide = service.decide(services, person_id=viewer.session.person_id, action="decide_finding",
                                target=f"finding:{finding_id}").get("decision", False)
    return _html(request, viewer.rt, "finding.html", status, viewer=viewer, f=_finding_row(found),
                 history=[_event_row(e) for e in found["history"]], may_decide=may_decide, saved=saved,
                 error=error, settable=SETTABLE, nav="findings")


@router.post("/findings/{finding_id}/status")
def set_finding_status(request: Request, finding_id: int, form: Form) -> Response:
    rt = runtime_of(request.app)
    _state, session = rt.codec.read(request)
    if session is not None and not session.csrf_ok(form.get("csrf")):
        return _message(request, rt, 403, "csrf")
    viewer = _guard(request, "decide_finding", f"finding:{finding_id}")
    if isinstance(viewer, Response):
        return viewer
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
        return _message(request, rt, 404, "404", viewer=viewer)
    except AccessGovError as exc:
        return _finding_page(request, viewer, finding_id, error=exc.message, status=409)
    response = RedirectResponse(f"/console/findings/{finding_id}?saved=1", status_code=303)
    rt.codec.write(response, viewer.session)
    return response


@router.get("/{rest:path}")
def not_found(request: Request, rest: str) -> Response:
    return _message(request, runtime_of(request.app), 404, "404")


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
