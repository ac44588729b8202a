"""The admin side of the store: prices on published courses, the purchases and refunds they brought, and the
payment events that need a person (failed, rejected, stuck) with a Replay button.

Product forms post to their own URL; with htmx the products section is swapped in place (an error is shown in
the form that sent it by static/app.js), without it the post redirects (PRG) or, refused, the page comes back
with the message inside that form and the typed values kept.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.billing import money, services, webhook
from app.billing.routes import STATUS_WORDS
from app.errors import DomainError, InvalidInput
from app.web import inputs
from app.web.auth import actor_of, current_user, requires_admin
from app.web.templating import flash, redirect, render

ADMIN = {"guards": [requires_admin]}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
PAGE_SIZE = 50
OUTCOME_WORDS = {"RECEIVED": "Stuck (never finished)", "PROCESSED": "Processed", "IGNORED": "Ignored",
                 "FAILED": "Failed", "REJECTED": "Rejected (not trusted)"}
# An admin's replay that fails again answers 502: the request was right and can be sent again as it is; what
# failed is the processing behind it (the database, a handler), as for Stripe's own delivery that got a 500.
# A 409 would say the event's state forbids replaying, which is not so: it stays FAILED and replayable.
REPLAY_FAILED_STATUS = 502


class ProductCreate(msgspec.Struct):
    syllabus_id: inputs.UUIDText = ""
    title: inputs.Title = ""
    price: inputs.Line(32) = ""
    currency: inputs.Line(8) = ""


class ProductUpdate(msgspec.Struct):
    title: inputs.Title = ""
    price: inputs.Line(32) = ""
    currency: inputs.Line(8) = ""


def _tenant(request: Request) -> uuid.UUID:
    return current_user(request).tenant_id


def _form(data: ProductCreate | ProductUpdate) -> services.ProductForm:
    return services.ProductForm(title=data.title, price=data.price, currency=data.currency)


def _course_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise InvalidInput("Choose a course to sell.") from None


async def _store_page(request: Request, *, status_code: int = 200, **context: Any) -> Response:
    tenant_id = _tenant(request)
    context.setdefault("error", None)
    return render(request, "billing/admin_store.html", partial="billing/_admin_products.html",
                  status_code=status_code, courses=await services.store_courses(tenant_id),
                  totals=await services.sales_totals(tenant_id), attention=len(await webhook.list_events(
                      tenant_id, limit=100)), currencies=money.CURRENCIES, money=money, nav="store", **context)


async def _changed(request: Request, message: str) -> Response:
    if request.htmx:
        return await _store_page(request, notice=message)
    flash(request, "success", message)
    return redirect("/admin/store")


@get("/admin/store", **ADMIN)
async def store(request: Request) -> Response:
    return await _store_page(request)


@post("/admin/store/products", **ADMIN)
async def create_product(request: Request, data: Annotated[ProductCreate, Form]) -> Response:
    try:
        row = await services.create_product(_tenant(request), _course_id(data.syllabus_id), _form(data),
                                            actor=actor_of(request))
    except DomainError as exc:
        return await _store_page(request, status_code=exc.status_code, error=exc.message, form_for="new",
                                 typed=data)
    return await _changed(request, f"{row['title']} is on sale for "
                                   f"{money.format_amount(row['price_minor'], row['currency'])}.")


@post("/admin/store/products/{product_id:uuid}", **ADMIN)
async def update_product(request: Request, product_id: uuid.UUID, data: Annotated[ProductUpdate, Form]) -> Response:
    try:
        row = await services.update_product(_tenant(request), product_id, _form(data), actor=actor_of(request))
    except DomainError as exc:
        return await _store_page(request, status_code=exc.status_code, error=exc.message, form_for=str(product_id),
                                 typed=data)
    price = money.format_amount(row["price_minor"], row["currency"])
    return await _changed(request, f"{row['title']} now costs {price}.")


async def _set_active(request: Request, product_id: uuid.UUID, active: bool) -> Response:
    try:
        row = await services.set_product_active(_tenant(request), product_id, active, actor=actor_of(request))
    except DomainError as exc:
        return await _store_page(request, status_code=exc.status_code, error=exc.message,
                                 form_for=f"toggle-{product_id}")
    words = "is on sale again" if active else "is no longer sold: its course is free to join"
    return await _changed(request, f"{row['title']} {words}.")


@post("/admin/store/products/{product_id:uuid}/activate", **ADMIN)
async def activate_product(request: Request, product_id: uuid.UUID) -> Response:
    return await _set_active(request, product_id, True)


@post("/admin/store/products/{product_id:uuid}/deactivate", **ADMIN)
async def deactivate_product(request: Request, product_id: uuid.UUID) -> Response:
    return await _set_active(request, product_id, False)


@get("/admin/store/purchases", **ADMIN)
async def purchases(request: Request, status: inputs.QueryLine(16) = "", course: inputs.QueryLine(64) = "",
                    page: inputs.Int4Query(ge=1, le=10_000) = 1) -> Response:
    tenant_id, error = _tenant(request), None
    try:
        filters = _purchase_filters(status, course)
    except InvalidInput as exc:
        filters, error = {"status": None, "syllabus_id": None}, exc.message
    rows = await services.list_purchases(tenant_id, **filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    total = await services.count_purchases(tenant_id, **filters)
    return render(request, "billing/admin_purchases.html", partial="billing/_admin_purchases.html", rows=rows,
                  total=total, page=page, has_next=page * PAGE_SIZE < total, filters=filters, error=error,
                  status_code=400 if error else 200, courses=await services.store_courses(tenant_id),
                  statuses=STATUS_WORDS, money=money, nav="store")


def _purchase_filters(status: str, course: str) -> dict[str, Any]:
    if status and status not in STATUS_WORDS:
        raise InvalidInput(f"Status must be one of: {', '.join(STATUS_WORDS.values())}.")
    try:
        syllabus_id = uuid.UUID(course) if course else None
    except ValueError:
        raise InvalidInput("That course is not one of this workspace's.") from None
    return {"status": status or None, "syllabus_id": syllabus_id}


@get("/admin/store/events", **ADMIN)
async def events(request: Request) -> Response:
    return render(request, "billing/admin_events.html", events=await webhook.list_events(_tenant(request)),
                  outcomes=OUTCOME_WORDS, nav="store")


async def _event_page(request: Request, event_id: uuid.UUID, *, status_code: int = 200,
                      error: str | None = None) -> Response:
    event = await webhook.get_event(_tenant(request), event_id)
    return render(request, "billing/admin_event.html", status_code=status_code, event=event, error=error,
                  outcomes=OUTCOME_WORDS, replayable=event["outcome"] in webhook.REPLAYABLE, nav="store")


@get("/admin/store/events/{event_id:uuid}", **ADMIN)
async def event_detail(request: Request, event_id: uuid.UUID, format: inputs.QueryLine(8) = "") -> Response:
    if format == "json":  # the JSON viewer's download link: the stored payload as received
        event = await webhook.get_event(_tenant(request), event_id)
        payload = event["payload"]
        body = payload.encode() if isinstance(payload, str) else msgspec.json.encode(payload)
        return Response(body, media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="{event["stripe_event_id"]}.json"'})
    return await _event_page(request, event_id)


@post("/admin/store/events/{event_id:uuid}/replay", **ADMIN)
async def replay_event(request: Request, event_id: uuid.UUID) -> Response:
    try:
        row = await webhook.replay(_tenant(request), event_id, actor=actor_of(request))
    except webhook.WebhookFailed:
        event = await webhook.get_event(_tenant(request), event_id)
        return await _event_page(request, event_id, status_code=REPLAY_FAILED_STATUS,
                                 error=f"Replay failed again: {event['detail']}")
    except DomainError as exc:
        return await _event_page(request, event_id, status_code=exc.status_code, error=exc.message)
    flash(request, "success", f"Replayed: {OUTCOME_WORDS.get(row['outcome'], row['outcome']).lower()}. "
                              f"{row['detail']}")
    return redirect(f"/admin/store/events/{event_id}")


ROUTES = [store, create_product, update_product, activate_product, deactivate_product, purchases, events,
          event_detail, replay_event]
