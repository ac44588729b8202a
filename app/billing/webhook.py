"""Stripe's webhook: verify, record, then act, once per event id.

1. The signature is checked over the raw body (the SDK's verifier, 300 s tolerance) before anything else.
2. The event is recorded in billing_event (its own commit) before it is acted on: the ledger holds every
   verified event, even one whose processing then fails, so an admin can see and replay it.
3. Processing locks the ledger row, does nothing when the event already reached a final outcome
   (PROCESSED, IGNORED, REJECTED: a duplicate delivery), and runs its handler in the same transaction, which
   locks the purchase (and the payment) it touches. Two deliveries of one event at the same moment queue on
   the ledger row; a completion and a refund of one payment queue on the payment lock, in either order.
4. A handler that raises leaves the purchase untouched (rolled back), marks the event FAILED, logs
   `alert:billing_webhook_failed` with the event id, counts it, and answers 500 so that Stripe retries.
   An event whose metadata disagrees with the stored purchase is REJECTED (never acted on) and alerted the
   same way, but answered 200: retrying cannot make it true.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog

from app.audit.actions import AuditAction
from app.audit.services import Actor, audit
from app.billing import services, stripe_api
from app.billing.services import Completion, Result
from app.billing.tables import BillingEvent, EventOutcome
from app.db import engine
from app.errors import Conflict, InvalidInput, NotFound
from app.metrics import BILLING_EVENTS, BILLING_WEBHOOK_DURATION, BILLING_WEBHOOK_FAILURES

log = structlog.get_logger("coursewright.billing")

FINAL = frozenset({EventOutcome.PROCESSED.value, EventOutcome.IGNORED.value, EventOutcome.REJECTED.value})
REPLAYABLE = frozenset({EventOutcome.FAILED.value, EventOutcome.REJECTED.value, EventOutcome.RECEIVED.value})


class Event(msgspec.Struct, frozen=True):
    """The parts of a Stripe event this app reads; everything else stays in the stored payload."""

    id: str
    type: str
    data: dict[str, Any]
    livemode: bool = False


class WebhookFailed(Exception):
    """Processing raised: the caller answers 500 so Stripe delivers the event again."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"processing Stripe event {event_id} failed; Stripe will retry it")
        self.event_id = event_id


def _object(event: Event) -> dict[str, Any]:
    obj = event.data.get("object")
    return obj if isinstance(obj, dict) else {}


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    metadata = obj.get("metadata")
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def _text(value: Any) -> str | None:
    # Stripe sends ids as strings, or as whole objects when a request expanded them.
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------------------------
# Handlers: one per event type, each runs inside the processing transaction and returns a Result.


async def _completed(event: Event) -> Result:
    session = _object(event)
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        # A delayed payment method: checkout.session.async_payment_succeeded will say when it is paid.
        return Result("IGNORED", "checkout completed but not paid yet; waiting for async_payment_succeeded")
    return await services.checkout_completed(_completion(session))


def _completion(session: dict[str, Any]) -> Completion:
    session_id = _text(session.get("id"))
    if session_id is None:
        raise ValueError("checkout session without an id")
    return Completion(session_id=session_id, payment_intent_id=_text(session.get("payment_intent")),
                      amount_total=_int(session.get("amount_total")), currency=_text(session.get("currency")),
                      metadata=_metadata(session))


async def _async_paid(event: Event) -> Result:
    return await services.checkout_completed(_completion(_object(event)))


async def _expired(event: Event) -> Result:
    session = _object(event)
    return await services.checkout_expired(_metadata(session), _completion(session).session_id)


async def _refunded(event: Event) -> Result:
    charge = _object(event)
    amount, refunded = _int(charge.get("amount")) or 0, _int(charge.get("amount_refunded")) or 0
    full = charge.get("refunded") is True or (amount > 0 and refunded >= amount)
    return await services.charge_refunded(_metadata(charge), _text(charge.get("payment_intent")), full=full,
                                          amount_refunded=refunded, currency=_text(charge.get("currency")) or "")


HANDLERS: dict[str, Callable[[Event], Awaitable[Result]]] = {
    "checkout.session.completed": _completed,
    "checkout.session.async_payment_succeeded": _async_paid,
    "checkout.session.expired": _expired,
    "checkout.session.async_payment_failed": _expired,
    "charge.refunded": _refunded,
}


# ---------------------------------------------------------------------------------------------
# Receiving


def parse_event(payload: bytes) -> Event:
    try:
        return msgspec.json.decode(payload, type=Event)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"The webhook body is not a Stripe event: {exc}") from None


async def receive(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The webhook endpoint's work. Raises InvalidInput (400) for an unverifiable body, WebhookFailed (500)
    when processing failed; otherwise returns the event's ledger row."""
    started = time.perf_counter()
    try:
        stripe_api.verify_event(payload, signature)
    except InvalidInput:
        BILLING_EVENTS.labels(type="unknown", outcome="bad_signature").inc()
        raise
    event = parse_event(payload)
    await record(event, payload)
    try:
        return await process(event.id)
    finally:
        BILLING_WEBHOOK_DURATION.observe(time.perf_counter() - started)


def _payment_intent(event: Event) -> str | None:
    obj = _object(event)
    return _text(obj.get("payment_intent"))


async def record(event: Event, payload: bytes) -> bool:
    """The ledger row, first and in its own commit; False when this event id was already recorded."""
    rows = await BillingEvent.raw(
        "INSERT INTO billing_event (id, stripe_event_id, type, payment_intent_id, livemode, payload, outcome, detail, "
        "attempts, received_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, {}::jsonb, 'RECEIVED', '', 0, now()) "
        "ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id",
        event.id, event.type[:100], _payment_intent(event), event.livemode, payload.decode())
    return bool(rows)


async def process(stripe_event_id: str, *, replay: bool = False) -> dict[str, Any]:
    """Act on a recorded event once. With replay=True (an admin's button) an event that was FAILED, REJECTED
    or never finished runs again; a PROCESSED or IGNORED one never does."""
    try:
        async with engine().transaction():
            rows = await BillingEvent.raw("SELECT * FROM billing_event WHERE stripe_event_id = {} FOR UPDATE",
                                          stripe_event_id)
            if not rows:
                raise NotFound("No such payment event.")
            row = rows[0]
            if row["outcome"] in FINAL and not (replay and row["outcome"] in REPLAYABLE):
                BILLING_EVENTS.labels(type=row["type"], outcome="duplicate").inc()
                return row
            event = msgspec.json.decode(_payload_bytes(row["payload"]), type=Event)
            result = await _handle(event)
            row = (await BillingEvent.raw(
                "UPDATE billing_event SET outcome = {}, detail = {}, tenant_id = coalesce({}, tenant_id), "
                "purchase_id = coalesce({}, purchase_id), processed_at = now(), attempts = attempts + 1 "
                "WHERE id = {} RETURNING *", result.outcome, result.detail[:2000], result.tenant_id,
                result.purchase_id, row["id"]))[0]
    except NotFound:
        raise
    except Exception as exc:
        await _failed(stripe_event_id, exc)
        raise WebhookFailed(stripe_event_id) from exc
    BILLING_EVENTS.labels(type=row["type"], outcome=result.outcome.lower()).inc()
    if result.outcome == EventOutcome.REJECTED.value:
        log.error("alert:billing_webhook_failed", event_id=stripe_event_id, event_type=row["type"],
                  reason="rejected", detail=result.detail)
    await services.after_commit(result)
    return row


def _payload_bytes(payload: Any) -> bytes:
    return payload.encode() if isinstance(payload, str) else msgspec.json.encode(payload)


async def _handle(event: Event) -> Result:
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Result("IGNORED", f"event type {event.type} is not one Coursewright acts on")
    try:
        return await handler(event)
    except services.Mismatch as exc:
        purchase = exc.purchase
        return Result("REJECTED", f"not trusted: {exc}", tenant_id=purchase["tenant_id"], purchase_id=purchase["id"],
                      audits=[services.AuditNote(AuditAction.BILLING_EVENT_REJECTED, purchase["tenant_id"], "purchase",
                                                 purchase["id"], {"event_id": event.id, "reason": str(exc)})])


async def _failed(stripe_event_id: str, exc: Exception) -> None:
    BILLING_WEBHOOK_FAILURES.inc()
    detail = f"{type(exc).__name__}: {exc}"[:2000]
    log.error("alert:billing_webhook_failed", event_id=stripe_event_id, error=detail, exc_info=exc)
    try:
        # The rolled-back handler never attributed the event: name the workspace of the purchase it concerns
        # (our own row, found by its ids) so that workspace's admins see it and can replay it.
        rows = await BillingEvent.raw(
            "UPDATE billing_event e SET outcome = 'FAILED', detail = {}, attempts = e.attempts + 1, "
            "processed_at = now(), tenant_id = coalesce(e.tenant_id, u.tenant_id), "
            "purchase_id = coalesce(e.purchase_id, u.id) FROM billing_event b LEFT JOIN LATERAL ("
            "  SELECT p.id, p.tenant_id FROM purchase p, (SELECT b.payload -> 'data' -> 'object' AS obj) o "
            "  WHERE p.id = CASE WHEN length(o.obj -> 'metadata' ->> 'purchase_id') = 36 "
            "    AND o.obj -> 'metadata' ->> 'purchase_id' ~ '^[0-9a-fA-F-]+$' "
            "    THEN (o.obj -> 'metadata' ->> 'purchase_id')::uuid END "
            "  OR p.stripe_checkout_session_id = o.obj ->> 'id' OR p.stripe_payment_intent_id = b.payment_intent_id "
            "  LIMIT 1) u ON true "
            "WHERE b.id = e.id AND e.stripe_event_id = {} RETURNING e.type", detail, stripe_event_id)
        BILLING_EVENTS.labels(type=rows[0]["type"] if rows else "unknown", outcome="failed").inc()
    except Exception:  # noqa: BLE001 - the database may be what failed; the alert above already went out
        log.warning("billing event outcome not saved", event_id=stripe_event_id)


# ---------------------------------------------------------------------------------------------
# Reading and replaying (admin page and CLI)


async def list_events(tenant_id: uuid.UUID | None, *, outcomes: tuple[str, ...] = ("FAILED", "REJECTED", "RECEIVED"),
                      limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Events of a workspace (tenant_id None: of no known workspace, for the CLI), newest first. RECEIVED
    events are listed only once they are a minute old: younger ones are still being processed."""
    return await BillingEvent.raw(
        "SELECT id, stripe_event_id, type, tenant_id, purchase_id, outcome, detail, attempts, received_at, "
        "processed_at FROM billing_event WHERE tenant_id IS NOT DISTINCT FROM {} AND outcome = ANY({}::text[]) "
        "AND (outcome <> 'RECEIVED' OR received_at < now() - interval '1 minute') "
        "ORDER BY received_at DESC, id LIMIT {} OFFSET {}", tenant_id, list(outcomes), limit, offset)


async def get_event(tenant_id: uuid.UUID, event_id: uuid.UUID) -> dict[str, Any]:
    row = await BillingEvent.select().where(
        (BillingEvent.id == event_id) & (BillingEvent.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such payment event in this workspace.")
    return row


async def replay(tenant_id: uuid.UUID, event_id: uuid.UUID, *, actor: Actor) -> dict[str, Any]:
    """Run a failed (or rejected, or stuck) event of a workspace again, as Stripe's own retry would."""
    rows = await BillingEvent.raw("SELECT * FROM billing_event WHERE id = {} AND tenant_id = {}", event_id, tenant_id)
    if not rows:
        raise NotFound("No such payment event in this workspace.")
    return await _replay(rows[0], actor)


async def replay_anywhere(stripe_event_id: str, *, actor: Actor) -> dict[str, Any]:
    """The operator's replay (CLI): any event, also one that names no known workspace."""
    rows = await BillingEvent.raw("SELECT * FROM billing_event WHERE stripe_event_id = {}", stripe_event_id)
    if not rows:
        raise NotFound(f"No payment event {stripe_event_id} has been received.")
    return await _replay(rows[0], actor)


async def _replay(row: dict[str, Any], actor: Actor) -> dict[str, Any]:
    if row["outcome"] not in REPLAYABLE:
        raise Conflict(f"This event was already {row['outcome'].lower()}; replaying it would do nothing.")
    try:
        return await process(row["stripe_event_id"], replay=True)
    finally:
        await audit(AuditAction.BILLING_EVENT_REPLAYED, actor=actor, tenant_id=row["tenant_id"],
                    entity_type="billing_event", entity_id=row["id"],
                    metadata={"stripe_event_id": row["stripe_event_id"], "was": row["outcome"]})


async def events_needing_attention(limit: int = 100) -> list[dict[str, Any]]:
    """Failed, rejected and stuck events of every workspace (and of none), for the operator."""
    return await BillingEvent.raw(
        "SELECT stripe_event_id, type, tenant_id, outcome, detail, attempts, received_at FROM billing_event "
        "WHERE outcome IN ('FAILED', 'REJECTED') OR (outcome = 'RECEIVED' AND received_at < now() - interval "
        "'1 minute') ORDER BY received_at DESC LIMIT {}", limit)
