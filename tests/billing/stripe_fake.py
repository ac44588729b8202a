"""Stripe at its HTTP edge, for tests and the benchmark.

- FakeStripe: a small HTTP server on 127.0.0.1 answering POST /v1/checkout/sessions as Stripe does, so the
  app's real `stripe` SDK (STRIPE_API_BASE pointed here) signs, encodes, retries and maps errors unchanged.
  It records every request and can answer an error on demand.
- Events signed with Stripe's real scheme (HMAC-SHA256 of "<timestamp>.<body>" with the webhook secret, sent as
  `Stripe-Signature: t=...,v1=...`), builders for the event payloads Coursewright handles, shaped like
  Stripe's own (API version 2025+), and a sender."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx

from tests.conftest import WEBHOOK_SECRET

# ---------------------------------------------------------------------------------------------
# The fake Stripe API


@dataclass
class StripeRequest:
    method: str
    path: str
    form: dict[str, str]  # the SDK's form encoding, flat: "metadata[tenant_id]", "line_items[0][quantity]"
    idempotency_key: str | None
    authorization: str | None


@dataclass
class StripeError:
    status: int
    body: dict[str, Any]


@dataclass
class FakeStripe:
    """Run with `with FakeStripe() as stripe_api:`; `url` goes into STRIPE_API_BASE."""

    requests: list[StripeRequest] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: StripeError | None = None
    _by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeStripe is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeStripe:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-stripe", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail_with(self, status: int, error_type: str, message: str, *, code: str | None = None) -> None:
        """Answer every request with this Stripe error until recover() (the SDK retries 5xx itself)."""
        self.error = StripeError(status, {"error": {"type": error_type, "message": message, "code": code}})

    def recover(self) -> None:
        self.error = None

    def session_requests(self) -> list[StripeRequest]:
        return [r for r in self.requests if r.path == "/v1/checkout/sessions" and r.method == "POST"]

    def answer(self, method: str, path: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(StripeRequest(method, path, form, headers.get("idempotency-key"),
                                               headers.get("authorization")))
            if self.error is not None:
                return self.error.status, self.error.body
            if (method, path) != ("POST", "/v1/checkout/sessions"):
                return 404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL "
                                       f"({method}: {path}).", "code": None}}
            key = headers.get("idempotency-key")
            if key and key in self._by_key:  # Stripe's idempotency: the same request, the same object
                return 200, self._by_key[key]
            session = self._new_session(form)
            self.sessions[session["id"]] = session
            if key:
                self._by_key[key] = session
            return 200, session

    def _new_session(self, form: dict[str, str]) -> dict[str, Any]:
        session_id = f"cs_test_{uuid.uuid4().hex}"
        amount = int(form.get("line_items[0][price_data][unit_amount]", "0")) * int(
            form.get("line_items[0][quantity]", "1"))
        metadata = {key[len("metadata["):-1]: value for key, value in form.items()
                    if key.startswith("metadata[") and key.endswith("]")}
        return {"id": session_id, "object": "checkout.session", "mode": form.get("mode", "payment"),
                "status": "open", "payment_status": "unpaid", "payment_intent": None,
                "amount_total": amount, "currency": form.get("line_items[0][price_data][currency]"),
                "client_reference_id": form.get("client_reference_id"), "customer_email": form.get("customer_email"),
                "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"), "metadata": metadata,
                "livemode": False, "created": int(time.time()), "expires_at": int(time.time()) + 86400,
                "url": f"{self.url}/c/pay/{session_id}"}


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _respond(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            form = dict(parse_qsl(body or query, keep_blank_values=True))
            status, payload = fake.answer(method, path, form, {k.lower(): v for k, v in self.headers.items()})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:14]}")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self._respond("POST")

        def do_GET(self) -> None:  # noqa: N802
            self._respond("GET")

        def log_message(self, *args: object) -> None:  # keep pytest's output clean
            pass

    return Handler


# ---------------------------------------------------------------------------------------------
# Webhook events


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
