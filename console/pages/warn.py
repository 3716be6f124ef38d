"""A new warning: the ``warn`` form (number, fraud type from the catalog, risk, case id,
note), or a CSV of many with each bad row named by its line, as the command line does."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from center import Invalid
from stores import StoreError

from ..web import Ctx, page

__all__ = ["routes"]

CSV_MAX_BYTES = 8 * 1024 * 1024


def routes() -> list[BaseRoute]:
    return [Route("/warn", warn_form, methods=["GET"]),
            Route("/warn", warn, methods=["POST"]),
            Route("/warn/csv", warn_csv, methods=["POST"])]


def _form(ctx: Ctx, status: int = 200, values: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, done: str = "", rows: object = None) -> Response:
    catalog = ctx.console.settings.catalog
    return ctx.render("warn.html", status=status, values=values or {"risk": "high"},
                      errors=errors or {}, done=done, rows=rows,
                      fraud_types=sorted(catalog.known()))


@page()
async def warn_form(ctx: Ctx) -> Response:
    return _form(ctx)


@page()
async def warn(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("number", "fraud_type", "risk",
                                                        "case_id", "note")}
    center = ctx.console.center
    try:
        request = center.request(values["number"], values["fraud_type"] or None,
                                 values["risk"] or None, values["case_id"] or None,
                                 values["note"] or None, source="console")
        submitted = center.warn(request, ctx.signed.actor())
    except Invalid as exc:
        field = exc.field or "number"
        if field != "number":  # a number that is fine is not shown again (it is personal)
            values["number"] = ""
            return _form(ctx, 422, values, {field: ctx.said(exc), "number": ctx._(
                "Write the number again.")})
        return _form(ctx, 422, values, {field: ctx.said(exc)})
    except StoreError as exc:
        return _form(ctx, 503, values, {"": str(exc)})
    return RedirectResponse(f"/tasks/{submitted.task.id}", status_code=303)


@page()
async def warn_csv(ctx: Ctx) -> Response:
    form = await ctx.request.form()
    upload = form.get("file")
    _ = ctx._
    if not isinstance(upload, UploadFile):
        return _form(ctx, 422, errors={"file": _("Choose a CSV file to upload.")})
    raw = await upload.read(CSV_MAX_BYTES + 1)
    if len(raw) > CSV_MAX_BYTES:
        return _form(ctx, 413, errors={"file": _("The file is larger than 8 MB.")})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _form(ctx, 422, errors={"file": _("The file is not UTF-8 text; save it as CSV "
                                                 "(UTF-8).")})
    if "\x00" in text or not text.strip():
        return _form(ctx, 422, errors={"file": _("The file is not a CSV of requests.")})
    try:
        accepted, bad = ctx.console.center.warn_csv(text, ctx.signed.actor())
    except Invalid as exc:
        return _form(ctx, 422, errors={"file": ctx.said(exc)})
    except StoreError as exc:
        return _form(ctx, 503, errors={"file": str(exc)})
    done = _("{n} requests accepted, {b} rows refused.", n=len(accepted), b=len(bad))
    return _form(ctx, 200 if accepted or not bad else 422, done=done,
                 rows={"accepted": accepted, "bad": bad})
