"""The two things Coursewright asks of Stripe, through the official SDK: open a Checkout Session, and verify
that a webhook really came from Stripe. Nothing else in the app imports `stripe`.

The client is the SDK's async HTTPX client (no thread pool, no blocking call in the event loop).
STRIPE_API_BASE points it at another address (stripe-mock, the tests' fake Stripe); the SDK's request
signing, retries and error mapping run unchanged either way.
"""

from __future__ import annotations

import functools
from typing import Any

import stripe

from app.errors import InvalidInput, Unavailable
from app.settings import get_settings

# Stripe's own default: a signature older than five minutes is a replay, not a delivery.
SIGNATURE_TOLERANCE_SECONDS = 300


class CheckoutSession:
    def __init__(self, session_id: str, url: str) -> None:
        self.id = session_id
        self.url = url


@functools.cache
def _client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key, http_client=stripe.HTTPXClient(timeout=20), max_network_retries=2,
        base_addresses={"api": api_base} if api_base else None,
    )


def client() -> stripe.StripeClient:
    settings = get_settings()
    if settings.stripe_secret_key is None:
        raise Unavailable("Payments are not set up on this Coursewright install yet (no STRIPE_SECRET_KEY); "
                          "ask your workspace admin.")
    return _client(settings.stripe_secret_key, settings.stripe_api_base)


async def create_checkout_session(*, purchase_id: str, metadata: dict[str, str], title: str, amount_minor: int,
                                  currency: str, email: str, success_url: str, cancel_url: str) -> CheckoutSession:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"quantity": 1, "price_data": {
            "currency": currency.lower(), "unit_amount": amount_minor, "product_data": {"name": title[:250]}}}],
        "metadata": metadata,
        # Copied onto the payment, so that a charge.refunded event names its purchase even when it arrives
        # before the checkout.session.completed that would have told us the payment intent.
        "payment_intent_data": {"metadata": metadata},
        "client_reference_id": purchase_id,
        "customer_email": email,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    try:
        # One purchase, one session: a retried request (ours or the SDK's) gets the same session back.
        session = await client().v1.checkout.sessions.create_async(
            params, {"idempotency_key": f"coursewright-purchase-{purchase_id}"})
    except stripe.StripeError as exc:
        raise Unavailable(f"Stripe could not open the checkout page ({exc.user_message or type(exc).__name__}). "
                          "Nothing was charged; try again in a minute.") from exc
    return CheckoutSession(session.id, session.url)


def verify_event(payload: bytes, signature: str | None) -> None:
    """Raise InvalidInput unless `signature` (the Stripe-Signature header) signs exactly `payload` with
    STRIPE_WEBHOOK_SECRET, at most five minutes ago."""
    secret = get_settings().stripe_webhook_secret
    if secret is None:
        raise Unavailable("Stripe webhooks are not set up on this install (no STRIPE_WEBHOOK_SECRET).")
    if not signature:
        raise InvalidInput("Missing Stripe-Signature header.")
    # Only the signature here: the SDK's construct_event also parses the body and crashes (500) on signed
    # JSON that is not an object; webhook.parse_event turns any such body into a readable 400.
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise InvalidInput(f"Stripe signature check failed: {exc.user_message or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput("The webhook body is not a Stripe event (not UTF-8 text).") from None
