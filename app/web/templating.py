"""Rendering: one helper picks page or partial; flash messages ride in a short-lived cookie."""

from __future__ import annotations

import base64
import datetime as dt
import functools
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import Cookie
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig
from markupsafe import Markup

from app.settings import PROJECT_ROOT, get_settings
from app.web.requests import add_cookie_header, request_id

TEMPLATES_DIR = PROJECT_ROOT / "templates"
FLASH_COOKIE = "cw_flash"
FLASH_LEVELS = ("success", "info", "warning", "error")


class Flash(msgspec.Struct, frozen=True):
    level: str
    message: str


def _humanize_dt(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _json_pretty(value: Any) -> str:
    if isinstance(value, (str, bytes)):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError:
            return str(value)
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


_fragments: OrderedDict[tuple, Markup] = OrderedDict()
_FRAGMENT_CACHE_SIZE = 2048


def _cached_fragment(env: Any, template_name: str, key: tuple, **context: Any) -> Markup:
    """Render an include once per key. Only for content that can never change under that key: parts of a
    published package, keyed by its content hash (the package is immutable, so the HTML is too)."""
    full_key = (template_name, *key)
    html = _fragments.get(full_key)
    if html is None:
        html = Markup(env.get_template(template_name).render(**context))
        _fragments[full_key] = html
        if len(_fragments) > _FRAGMENT_CACHE_SIZE:
            _fragments.popitem(last=False)
    return html


def _configure(engine: JinjaTemplateEngine) -> None:
    from app.authoring.render import markdown_to_html

    engine.engine.filters["tojson_pretty"] = _json_pretty
    engine.engine.filters["md"] = markdown_to_html  # the only way model text becomes HTML
    engine.engine.globals["cached_fragment"] = functools.partial(_cached_fragment, engine.engine)
    engine.engine.filters["when"] = _humanize_dt
    from app.demo import demo_logins

    settings = get_settings()
    engine.engine.globals["settings"] = settings
    engine.engine.globals["demo_logins"] = demo_logins() if settings.seed_demo else []


template_config = TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=_configure)


def render(
    request: Request,
    template: str,
    *,
    partial: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template | Response:
    """A full page, or only its partial when HTMX asks (the page template includes the partial).

    A page shown again with its problem inline (status >= 400, the message in `error` or `bulk_error`) is
    for people reading the page. htmx never swaps an error answer (static/app.js shows its text in the form
    that sent it), and a client that asked for JSON reads the documented JSON error body: both get the
    message alone, through the error handler's error_response()."""
    is_htmx = bool(getattr(request, "htmx", False))
    if status_code >= 400:
        from app.web.errors import error_response, wants_json  # errors renders its pages through render()

        problem = context.get("error") or context.get("bulk_error")
        if problem is not None and (is_htmx or wants_json(request)):
            return error_response(request, status_code, str(getattr(problem, "message", problem)), headers)
    name = partial if partial and is_htmx else template
    context.setdefault("user", request.scope.get("user"))
    context["request_id"] = request_id(request.scope)
    if not is_htmx:
        context["flashes"] = consume_flashes(request)
    if partial:
        # The same URL answers with a page or a fragment: caches (and the back button) must keep them apart.
        headers = {**(headers or {}), "Vary": "HX-Request"}
    return Template(template_name=name, context=context, status_code=status_code, headers=headers)


def redirect(path: str, status_code: int = 303) -> Redirect:
    return Redirect(path=path, status_code=status_code)


def flash(request: Request, level: str, message: str) -> None:
    assert level in FLASH_LEVELS, level
    pending = request.scope.setdefault("state", {}).setdefault("flash_out", [])
    pending.append(Flash(level, message))
    value = base64.urlsafe_b64encode(msgspec.json.encode(pending)).decode()
    _set_flash_cookie(request, value, max_age=60)


def consume_flashes(request: Request) -> list[Flash]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    _set_flash_cookie(request, "", max_age=0)
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(raw), type=list[Flash])[:5]
    except (ValueError, msgspec.DecodeError):
        return []  # a tampered or truncated cookie is not worth an error page


def _set_flash_cookie(request: Request, value: str, max_age: int) -> None:
    cookie = Cookie(key=FLASH_COOKIE, value=value, max_age=max_age, httponly=True, samesite="lax",
                    secure=get_settings().cookie_secure or request.url.scheme == "https")
    add_cookie_header(request.scope, cookie.to_header(header=""))


# ---------------------------------------------------------------------------------------------
# What pages send, for the OpenAPI document

_SEE_OTHER = ResponseSpec(
    data_container=None,
    description="See Other: the page to show next (after a form post), or the login page when signed out.")
_HTMX_FRAGMENT = ResponseSpec(data_container=str, media_type=MediaType.HTML,
                              description="htmx request: the updated fragment of the page.")


def document_pages(handlers: Iterable[object]) -> None:
    """Pages and form actions return render() or redirect() behind a bare `Response` annotation, which
    Litestar would describe as JSON. Say what they send: HTML, or a 303 to the next page. A handler that
    sends something else declares its media_type (the JSON downloads do), and /api/ routes return typed
    data. Runs before registration, while an unset media_type still reads as ""; at run time the Template
    or Redirect a handler returns sets the Content-Type, so this changes only the description."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler) or handler.media_type or not handler.include_in_schema:
            continue
        if any(path.startswith("/api/") for path in handler.paths):
            continue
        if handler.fn.__annotations__.get("return") not in ("Response", Response):
            continue
        handler.media_type = MediaType.HTML
        if "POST" in handler.http_methods:
            handler.status_code = 303
            handler.responses = {**(handler.responses or {}), 303: _SEE_OTHER, 200: _HTMX_FRAGMENT}
        else:
            handler.responses = {**(handler.responses or {}), 303: _SEE_OTHER}
