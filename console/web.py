"""What every page of the console shares: templates in the reader's language, who is asking
(signed in, with which role), the CSRF check of every change, the security headers.

A handler is written as ``@page(need)``: it runs only for a live session whose role may do
``need`` (``read``: every user), and for a change (POST) only with the session's CSRF token in
the form (``csrf``) or the ``X-CSRF-Token`` header; otherwise 401 (a page: to the sign-in
form), 403 with one sentence, and nothing changes.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import COOKIE, Signed
from .i18n import LANGUAGES, translations
from .state import Console

__all__ = ["LANG_COOKIE", "Ctx", "SecurityHeaders", "gettext_of", "language_of", "page",
           "render_template", "said_of"]

LANG_COOKIE = "afc_lang"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def gettext_of(language: str) -> Callable[..., str]:
    catalog = translations(language)

    def _(message: str, **values: object) -> str:
        text = catalog.gettext(message)
        return text.format(**values) if values else text

    return _


def said_of(_: Callable[..., str]) -> Callable[[object], str]:
    """A refusal in the page's language: its English pattern (``template``, as
    :class:`center.Invalid` and the request errors carry it) through the catalog and
    filled with its ``values`` (those it names as ``words`` translated too); a refusal
    without one (a store's) as it is."""

    def said(refusal: object) -> str:
        template = getattr(refusal, "template", "")
        if not template:
            return str(refusal)
        words = getattr(refusal, "words", ())
        values = {key: _(str(value)) if key in words else value
                  for key, value in getattr(refusal, "values", {}).items()}
        return _(template, **values)

    return said


@dataclass
class Ctx:
    """One request of a signed-in user."""

    console: Console
    request: Request
    signed: Signed
    language: str

    @property
    def _(self) -> Callable[..., str]:
        return gettext_of(self.language)

    def said(self, refusal: object) -> str:
        return said_of(self._)(refusal)

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render_template(self.console, self.request, template, self.language, status,
                               signed=self.signed, csrf=self.signed.session.csrf, **values)

    def refuse(self, sentence: str, status: int = 403) -> HTMLResponse:
        return self.render("refused.html", status=status, sentence=sentence)

    def address(self) -> str:
        return self.request.client.host if self.request.client else ""


def render_template(console: Console, request: Request, template: str, language: str,
                    status: int = 200, **values: Any) -> HTMLResponse:
    tz = console.tz
    _ = gettext_of(language)
    context: dict[str, Any] = {
        "_": _, "said": said_of(_), "lang": language, "tz": tz, "now": time.time(),
        "when": lambda at: _when(at, tz), "day": lambda at: _day(at, tz),
        "path": request.url.path, "request": request, "signed": None, "csrf": ""}
    context.update(values)
    html = console.env.get_template(template).render(context)
    return HTMLResponse(html, status_code=status)


def _when(at: float | None, tz: ZoneInfo) -> str:
    return "" if at is None else datetime.fromtimestamp(at, tz).strftime("%H:%M:%S")


def _day(at: float | None, tz: ZoneInfo) -> str:
    return "" if at is None else datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M")


def language_of(console: Console, request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGUAGES else console.language


Handler = Callable[[Ctx], Awaitable[Response]]


def page(need: str = "read") -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            console: Console = request.app.state.console
            language = language_of(console, request)
            signed = console.sessions.current(request.cookies.get(COOKIE), time.time())
            if signed is None:
                if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
                return Response(gettext_of(language)("Sign in first."), status_code=401,
                                media_type="text/plain")
            ctx = Ctx(console, request, signed, language)
            if request.method not in ("GET", "HEAD") and not await _csrf_ok(request, signed):
                return ctx.refuse(ctx._("This form is out of date or did not come from the "
                                        "console; nothing was changed. Load the page again."))
            if need != "read" and not signed.role.may(need):
                return ctx.refuse(ctx._("Only a supervisor may do this."))
            return await handler(ctx)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


async def _csrf_ok(request: Request, signed: Signed) -> bool:
    origin = request.headers.get("origin")
    if origin and origin not in _own_origins(request):
        return False
    token = request.headers.get("x-csrf-token")
    if token is None:
        form = await request.form()
        value = form.get("csrf")
        token = value if isinstance(value, str) else None
    return token is not None and _same(token, signed.session.csrf)


def _own_origins(request: Request) -> set[str]:
    host = request.headers.get("host", "")
    return {f"http://{host}", f"https://{host}"}


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class SecurityHeaders:
    """Every response: no framing, no inline script, no sniffing, no referrer; pages and data
    with personal details are never cached (the static files may be)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"  # no-referrer would send Origin: null
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if static:
                    headers["Cache-Control"] = "private, max-age=3600"
                else:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
                if scope.get("scheme") == "https":
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)
