"""Signing in and out, and the reader's language."""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..auth import COOKIE, Refusal
from ..i18n import LANGUAGES
from ..web import LANG_COOKIE, Ctx, gettext_of, language_of, page, render_template

__all__ = ["routes"]


def routes() -> list[BaseRoute]:
    return [Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/lang/{language}", choose_language, methods=["GET"])]


def _next(request: Request, value: object) -> str:
    """Where to go after signing in: a path of this console, never another site."""
    target = value if isinstance(value, str) else "/"
    parts = urlsplit(target)
    return target if target.startswith("/") and not parts.netloc and not parts.scheme \
        and not target.startswith("//") else "/"


async def login_form(request: Request) -> Response:
    console = request.app.state.console
    return render_template(console, request, "login.html", language_of(console, request),
                           next=_next(request, request.query_params.get("next")), error="",
                           name="")


async def login(request: Request) -> Response:
    console = request.app.state.console
    language = language_of(console, request)
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    address = request.client.host if request.client else ""
    result = console.sessions.sign_in(name, password, address, time.time())
    if isinstance(result, Refusal):
        _ = gettext_of(language)
        until = (datetime.fromtimestamp(result.until, console.tz).strftime("%H:%M")
                 if result.until else "")
        return render_template(console, request, "login.html", language, status=401,
                               next=_next(request, form.get("next")),
                               error=_(result.message, time=until), name=name)
    token, _signed = result
    response = RedirectResponse(_next(request, form.get("next")), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=console.secure,
                        path="/")
    return response


@page()
async def logout(ctx: Ctx) -> Response:
    ctx.console.sessions.sign_out(ctx.signed)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=ctx.console.secure)
    return response


async def choose_language(request: Request) -> Response:
    language = request.path_params["language"]
    back = _next(request, request.query_params.get("back"))
    response = RedirectResponse(back, status_code=303)
    if language in LANGUAGES:
        response.set_cookie(LANG_COOKIE, language, max_age=365 * 86400, samesite="strict",
                            secure=request.app.state.console.secure, path="/")
    return response
