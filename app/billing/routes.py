"""The store for learners (buy a course, watch the purchase complete) and Stripe's webhook.

Buying is a plain form post that redirects to Stripe's Checkout page (or, in the sandbox, straight to the
purchase page, already paid). Stripe sends the buyer back to the purchase page, which polls until the webhook
has enrolled them. The webhook has no session and no CSRF token: its Stripe-Signature is its credential.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import Request, Response, get, post
from litestar.plugins.htmx import ClientRedirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.billing import money, services, webhook
from app.billing.tables import PurchaseStatus
from app.player.routes import LEARNER, _who
from app.publishing import services as publishing
from app.settings import get_settings
from app.web.auth import actor_of, current_user
from app.web.templating import redirect, render

STATUS_WORDS = {"PENDING": "Waiting for payment", "PAID": "Paid", "EXPIRED": "Not completed", "REFUNDED": "Refunded"}


@post("/learn/store/products/{product_id:uuid}/buy", **LEARNER)
async def buy(request: Request, product_id: uuid.UUID) -> Response:
    tenant_id, user_id = _who(request)
    checkout = await services.start_checkout(tenant_id, user_id, current_user(request).email, product_id,
                                             base_url=str(request.base_url), actor=actor_of(request))
    return redirect(checkout.redirect_to)


@get("/learn/purchases/{purchase_id:uuid}", **LEARNER)
async def purchase_page(request: Request, purchase_id: uuid.UUID) -> Response:
    """Where Stripe sends the buyer back: "payment received, enrolling…" until the webhook has enrolled them
    (HTMX polls the partial; without JavaScript a meta refresh does)."""
    tenant_id, user_id = _who(request)
    purchase = await services.get_own_purchase(tenant_id, user_id, purchase_id)
    if request.htmx and purchase["status"] == PurchaseStatus.PAID.value:
        # The poll that sees the payment land takes the learner into the course; the full page keeps its button.
        return ClientRedirect(f"/learn/{purchase['syllabus_id']}/continue")
    package = await publishing.newest_published(tenant_id, purchase["syllabus_id"])
    return render(request, "billing/purchase.html", partial="billing/_purchase_status.html", purchase=purchase,
                  course_title=package["title"] if package else "", statuses=STATUS_WORDS,
                  amount=money.format_amount(purchase["amount_minor"], purchase["currency"]),
                  waiting=purchase["status"] == PurchaseStatus.PENDING.value, nav="learn")


class StoreProduct(msgspec.Struct, frozen=True):
    id: uuid.UUID
    course_id: uuid.UUID
    title: str
    price_minor: int
    currency: str
    price: str  # for people: "€49.00"


@get("/api/store/products", **LEARNER)
async def store_products(request: Request) -> list[StoreProduct]:
    """The active products of the signed-in learner's workspace (C3: never another workspace's)."""
    tenant_id, _user_id = _who(request)
    rows = sorted((await services.active_products(tenant_id)).values(), key=lambda r: (r["title"].lower(), r["id"]))
    return [StoreProduct(r["id"], r["syllabus_id"], r["title"], r["price_minor"], r["currency"],
                         money.format_amount(r["price_minor"], r["currency"])) for r in rows]


class WebhookAnswer(msgspec.Struct, frozen=True):
    received: bool
    event_id: str
    outcome: str


@post("/api/billing/stripe/webhook", opt={"exclude_from_csrf": True, "accepts": ("application/json",)},
      status_code=200)
async def stripe_webhook(request: Request) -> Response:
    payload = await request.body()
    try:
        row = await webhook.receive(payload, request.headers.get("stripe-signature"))
    except webhook.WebhookFailed as exc:
        # 500 on purpose: Stripe retries a delivery that did not answer 2xx; the event is FAILED in the ledger.
        return Response({"received": True, "event_id": exc.event_id, "outcome": "FAILED",
                         "error": "processing failed; Stripe will retry this event"},
                        status_code=HTTP_500_INTERNAL_SERVER_ERROR)
    return Response(WebhookAnswer(True, row["stripe_event_id"], row["outcome"]))


def sandbox_mode() -> bool:
    return get_settings().billing_sandbox_mode


ROUTES = [buy, purchase_page, store_products, stripe_webhook]
