"""Stripe at its HTTP edge, for tests: events signed with Stripe's real scheme (HMAC-SHA256 of
"<timestamp>.<body>" with the webhook secret, sent as `Stripe-Signature: t=...,v1=...`), builders for the
event payloads Coursewright handles, shaped like Stripe's own (API version 2025+), and a sender."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx

from tests.conftest import WEBHOOK_SECRET


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "api_version": "2025-09-30.clover",
            "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "type": event_type,
            "data": {"object": obj}}


def metadata_of(purchase: dict[str, Any]) -> dict[str, str]:
    return {"tenant_id": str(purchase["tenant_id"]), "user_id": str(purchase["user_id"]),
            "product_id": str(purchase["product_id"]), "purchase_id": str(purchase["id"])}


def session_completed(purchase: dict[str, Any], *, session_id: str | None = None, payment_intent: str | None = None,
                      event_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """checkout.session.completed for a stored purchase row (amount, currency and metadata taken from it)."""
    session = {
        "id": session_id or purchase.get("stripe_checkout_session_id") or f"cs_test_{uuid.uuid4().hex}",
        "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
        "amount_total": purchase["amount_minor"], "currency": purchase["currency"].lower(),
        "payment_intent": payment_intent or f"pi_{uuid.uuid4().hex[:24]}", "client_reference_id": str(purchase["id"]),
        "metadata": metadata_of(purchase),
    }
    session.update(overrides)
    return event("checkout.session.completed", session, event_id=event_id)


def session_expired(purchase: dict[str, Any], *, session_id: str | None = None,
                    event_id: str | None = None) -> dict[str, Any]:
    session = {"id": session_id or purchase.get("stripe_checkout_session_id") or f"cs_test_{uuid.uuid4().hex}",
               "object": "checkout.session", "status": "expired", "payment_status": "unpaid", "payment_intent": None,
               "amount_total": purchase["amount_minor"], "currency": purchase["currency"].lower(),
               "metadata": metadata_of(purchase)}
    return event("checkout.session.expired", session, event_id=event_id)


def charge_refunded(purchase: dict[str, Any], payment_intent: str, *, amount_refunded: int | None = None,
                    with_metadata: bool = True, event_id: str | None = None) -> dict[str, Any]:
    """charge.refunded for the payment of a purchase; a full refund unless amount_refunded is smaller."""
    refunded = purchase["amount_minor"] if amount_refunded is None else amount_refunded
    charge = {"id": f"ch_{uuid.uuid4().hex[:24]}", "object": "charge", "amount": purchase["amount_minor"],
              "amount_refunded": refunded, "refunded": refunded >= purchase["amount_minor"],
              "currency": purchase["currency"].lower(), "payment_intent": payment_intent,
              "metadata": metadata_of(purchase) if with_metadata else {}}
    return event("charge.refunded", charge, event_id=event_id)


async def post_event(base_url: str, payload: dict[str, Any] | bytes, *, timestamp: int | None = None,
                     secret: str = WEBHOOK_SECRET, signature: str | None = "sign",
                     client: httpx.AsyncClient | None = None) -> httpx.Response:
    """POST an event to the webhook as Stripe would. signature=None sends no header; any other string than
    "sign" is sent as the header verbatim."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if signature == "sign":
        headers["stripe-signature"] = sign(body, secret=secret, timestamp=timestamp)
    elif signature is not None:
        headers["stripe-signature"] = signature
    url = f"{base_url.rstrip('/')}/api/billing/stripe/webhook"
    if client is not None:
        return await client.post(url, content=body, headers=headers)
    async with httpx.AsyncClient(timeout=30) as fresh:
        return await fresh.post(url, content=body, headers=headers)
