"""What every console page shares: the guard (signed in, one duty, the engine allows), rendering, forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.console import service
from app.console.i18n import pick_lang
from app.console.pages import render
from app.console.runtime import ConsoleRuntime, runtime_of
from app.console.session import ConsoleSession, SessionState


@dataclass
class Viewer:
    """A signed-in person allowed the page they asked for."""

    rt: ConsoleRuntime
    session: ConsoleSession
    lang: str
    decision: dict[str, Any]

    @property
    def person_id(self) -> str:
        """The signed-in person's directory id."""
        return self.session.person_id


def lang_of(request: Request, rt: ConsoleRuntime) -> str:
    """The reader's language (their cookie, else the browser's)."""
    return pick_lang(request.cookies.get(rt.codec.lang_cookie), request.headers.get("accept-language"))


def html(request: Request, rt: ConsoleRuntime, template: str, status: int = 200, *,
         viewer: Viewer | None = None, **context: Any) -> HTMLResponse:
    """A rendered page; a signed-in viewer's session cookie is rewritten (slides the idle expiry)."""
    lang = viewer.lang if viewer else lang_of(request, rt)
    body = render(request, template, lang=lang, tz=rt.settings.timezone, viewer=viewer,
                  csrf=viewer.session.csrf if viewer else "", **context)
    response = HTMLResponse(body, status_code=status)
    if viewer is not None:
        rt.codec.write(response, viewer.session)
    return response


def page(request: Request, viewer: Viewer, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page for a guarded viewer."""
    return html(request, viewer.rt, template, status, viewer=viewer, **context)


def message(request: Request, rt: ConsoleRuntime, status: int, kind: str, *, viewer: Viewer | None = None,
            clear: bool = False, **context: Any) -> HTMLResponse:
    """The page for 401 / 403 / 404 / CSRF / sign-in outcomes (``message.html``)."""
    response = html(request, rt, "message.html", status, viewer=viewer, kind=kind, **context)
    if clear:
        rt.codec.clear(response)
    return response


def not_found(request: Request, viewer: Viewer) -> HTMLResponse:
    """The 404 page for a signed-in viewer."""
    return message(request, viewer.rt, 404, "404", viewer=viewer)


def guard(request: Request, action: str, target: str) -> Viewer | Response:
    """The signed-in viewer if the decision service allows ``action``; else the page that says why."""
    rt = runtime_of(request.app)
    if not rt.settings.enabled:
        return HTMLResponse("", status_code=404)
    state, session = rt.codec.read(request)
    if state is SessionState.expired:
        return message(request, rt, 401, "expired", clear=True, next=next_of(request))
    if session is None:
        if request.method == "GET":
            return RedirectResponse(f"/console/login?next={quote(next_of(request), safe='')}", status_code=303)
        return message(request, rt, 401, "expired", clear=True, next="/console/")
    services = request.app.state.services
    person = service.resolve_person_by_id(services, session.person_id)
    if person is None or person.duties != [session.duty]:
        # The directory changed since sign-in (a duty revoked, or a second one added): end the session.
        kind = "unknown_person" if person is None else ("no_duty" if not person.duties else "two_duties")
        return message(request, rt, 403, kind, clear=True, duties=person.duties if person else [])
    decision = service.decide(services, person_id=session.person_id, action=action, target=target)
    viewer = Viewer(rt, session, lang_of(request, rt), decision)
    if not decision.get("decision"):
        return message(request, rt, 403, "403", viewer=viewer, decision_id=decision["context"]["decision_id"])
    return viewer


def guard_form(request: Request, form: dict[str, str], action: str, target: str) -> Viewer | Response:
    """``guard`` for a state-changing form: its CSRF token must match the session's first."""
    rt = runtime_of(request.app)
    _state, session = rt.codec.read(request)
    if session is not None and not session.csrf_ok(form.get("csrf")):
        return message(request, rt, 403, "csrf")
    return guard(request, action, target)


def may(request: Request, viewer: Viewer, action: str, target: str) -> bool:
    """Whether the engine allows the viewer ``action`` too (decided and logged like the page itself)."""
    decision = service.decide(request.app.state.services, person_id=viewer.person_id, action=action, target=target)
    return bool(decision.get("decision", False))


def redirect(viewer: Viewer, url: str) -> Response:
    """303 to ``url`` after a form (post/redirect/get), the session slid."""
    response = RedirectResponse(url, status_code=303)
    viewer.rt.codec.write(response, viewer.session)
    return response


DB_ID_MAX = 2**31 - 1


def db_id(value: str | int) -> int | None:
    """A row id from a path, query or form value (ASCII digits only, 1 to 2**31 - 1); None when it is not one."""
    text = str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    number = int(text)
    return number if 1 <= number <= DB_ID_MAX else None


def next_of(request: Request) -> str:
    """This request's path and query."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def safe_next(value: str | None) -> str:
    """Only a path of the console (never another site, never //host)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/"


async def form_body(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's forms are small; the app's body guard caps the size).

    A field sent several times (checkboxes) keeps its values joined by newlines; ``form_list`` splits them.
    """
    body = (await request.body()).decode("utf-8", "replace")
    return {k: "\n".join(v) for k, v in parse_qs(body, keep_blank_values=True).items()}


def form_list(form: dict[str, str], name: str) -> list[str]:
    """Every value a repeated form field (checkboxes) was sent with."""
    return [v for v in form.get(name, "").split("\n") if v]


Form = Annotated[dict[str, str], Depends(form_body)]
