"""Commerce: products (a price on a published course), purchases, and the access a paid purchase gives.

The only writer of product and purchase. Purchases move PENDING -> PAID -> REFUNDED, PENDING -> EXPIRED and
PENDING -> REFUNDED (a refund that arrived before its completion); each move is one function here, a
compare-and-set under a row lock, and the trigger purchase_guard is the backstop. Stripe's webhook
(app/billing/webhook.py) and the sandbox both end a checkout through complete_checkout(), so the demo and
production run the same purchase and enrollment code. Audit rows are written after the commit they describe.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog

from app.analytics import events as analytics
from app.analytics.tables import EventType
from app.audit.actions import AuditAction
from app.audit.services import SYSTEM, Actor, audit
from app.billing import money, stripe_api
from app.billing.tables import Product, Purchase, PurchaseStatus
from app.db import engine
from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from app.metrics import PURCHASES
from app.player import enrollments
from app.publishing import services as publishing
from app.settings import get_settings

log = structlog.get_logger("coursewright.billing")

# A PENDING purchase whose Stripe page is younger than this is offered again instead of opening a second one
# (a double click, a back button); Stripe keeps a Checkout Session open for 24 hours.
REUSE_CHECKOUT_MINUTES = 30


class PaymentRequired(DomainError):
    status_code = 402


class AuditNote(msgspec.Struct, frozen=True):
    """An audit row to write once the transaction that did the thing has committed."""

    action: AuditAction
    tenant_id: uuid.UUID
    entity_type: str
    entity_id: Any
    metadata: dict[str, Any] = {}


async def write_audits(notes: list[AuditNote], actor: Actor = SYSTEM) -> None:
    for note in notes:
        await audit(note.action, actor=actor, tenant_id=note.tenant_id, entity_type=note.entity_type,
                    entity_id=note.entity_id, metadata=note.metadata)


async def after_commit(result: Result) -> None:
    """What a purchase step tells the rest once it has committed: its audit rows, then the funnel events
    analytics observes (purchased, enrolled), stamped with the course's newest version."""
    await write_audits(result.audits)
    for event_type, purchase in result.observed:
        newest = await publishing.newest_published(purchase["tenant_id"], purchase["syllabus_id"])
        await analytics.record(event_type, tenant_id=purchase["tenant_id"], user_id=purchase["user_id"],
                               course_id=purchase["syllabus_id"], package_version=newest["version"] if newest else 0,
                               metadata={"purchase_id": str(purchase["id"])})


# ---------------------------------------------------------------------------------------------
# Products


class ProductForm(msgspec.Struct, frozen=True):
    title: str
    price: str
    currency: str


def _validated(form: ProductForm) -> tuple[str, int, str]:
    """(title, price in minor units, currency), or InvalidInput naming the first problem."""
    title = form.title.strip()
    if not title:
        raise InvalidInput("Give the product a title; learners see it on the checkout page.")
    currency = money.parse_currency(form.currency)
    return title, money.parse_price(form.price, currency), currency


async def get_product(tenant_id: uuid.UUID, product_id: uuid.UUID) -> dict[str, Any]:
    row = await Product.select().where((Product.id == product_id) & (Product.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound("No such product in this workspace.")
    return row


async def active_product(tenant_id: uuid.UUID, syllabus_id: uuid.UUID) -> dict[str, Any] | None:
    return await Product.select().where(
        (Product.tenant_id == tenant_id) & (Product.syllabus_id == syllabus_id) & (Product.active == True)  # noqa: E712
    ).first()


async def active_products(tenant_id: uuid.UUID) -> dict[uuid.UUID, dict[str, Any]]:
    """The active product of each priced course of the workspace, by course."""
    rows = await Product.select().where((Product.tenant_id == tenant_id) & (Product.active == True))  # noqa: E712
    return {row["syllabus_id"]: row for row in rows}


async def create_product(tenant_id: uuid.UUID, syllabus_id: uuid.UUID, form: ProductForm, *,
                         actor: Actor) -> dict[str, Any]:
    title, price, currency = _validated(form)
    if await publishing.newest_published(tenant_id, syllabus_id) is None:
        raise NotFound("Only a published course of this workspace can be sold.")
    rows = await Product.raw(
        "INSERT INTO product (id, tenant_id, syllabus_id, title, price_minor, currency, active, created_at, "
        "updated_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, {}, true, now(), now()) "
        "ON CONFLICT DO NOTHING RETURNING *",
        tenant_id, syllabus_id, title, price, currency)
    if not rows:
        raise Conflict("This course already has an active product: change its price, or deactivate it first.")
    product = rows[0]
    await audit(AuditAction.PRODUCT_CREATED, actor=actor, tenant_id=tenant_id, entity_type="product",
                entity_id=product["id"], metadata={"syllabus_id": str(syllabus_id), "title": title,
                                                   "price_minor": price, "currency": currency})
    return product


async def update_product(tenant_id: uuid.UUID, product_id: uuid.UUID, form: ProductForm, *,
                         actor: Actor) -> dict[str, Any]:
    """A new title or price applies to checkouts started from now on; purchases keep what they paid."""
    title, price, currency = _validated(form)
    before = await get_product(tenant_id, product_id)
    changes = {key: (before[key], value) for key, value in
               (("title", title), ("price_minor", price), ("currency", currency)) if before[key] != value}
    if not changes:
        return before
    rows = await Product.raw(
        "UPDATE product SET title = {}, price_minor = {}, currency = {}, updated_at = now() "
        "WHERE id = {} AND tenant_id = {} RETURNING *", title, price, currency, product_id, tenant_id)
    await audit(AuditAction.PRODUCT_UPDATED, actor=actor, tenant_id=tenant_id, entity_type="product",
                entity_id=product_id, metadata={key: {"from": old, "to": new} for key, (old, new) in changes.items()})
    return rows[0]


async def set_product_active(tenant_id: uuid.UUID, product_id: uuid.UUID, active: bool, *,
                             actor: Actor) -> dict[str, Any]:
    """Deactivating makes the course free to enroll in (learners who bought it keep their access);
    activating needs the course to have no other active product."""
    product = await get_product(tenant_id, product_id)
    if product["active"] == active:
        return product
    try:
        rows = await Product.raw(
            "UPDATE product SET active = {}, updated_at = now() WHERE id = {} AND tenant_id = {} AND active = {} "
            "RETURNING *", active, product_id, tenant_id, not active)
    except Exception as exc:  # asyncpg's UniqueViolationError, wrapped differently by versions
        if "product_one_active_per_course" not in str(exc):
            raise
        raise Conflict("This course already has another active product; deactivate that one first.") from None
    if not rows:
        raise Conflict("The product changed meanwhile; reload the page.")
    await audit(AuditAction.PRODUCT_UPDATED, actor=actor, tenant_id=tenant_id, entity_type="product",
                entity_id=product_id, metadata={"active": {"from": not active, "to": active}})
    return rows[0]


async def list_products(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every product of the workspace with its course title and sales so far (active ones first)."""
    return await Product.raw(
        "SELECT p.*, coalesce(c.title, '') AS course_title, "
        "  (SELECT count(*) FROM purchase u WHERE u.product_id = p.id AND u.status = 'PAID') AS paid, "
        "  (SELECT count(*) FROM purchase u WHERE u.product_id = p.id AND u.status = 'REFUNDED') AS refunded "
        "FROM product p JOIN syllabus s ON s.id = p.syllabus_id LEFT JOIN course c ON c.id = s.course_id "
        "WHERE p.tenant_id = {} ORDER BY p.active DESC, lower(coalesce(c.title, p.title)), p.created_at DESC",
        tenant_id)


# ---------------------------------------------------------------------------------------------
# Purchases: starting a checkout


class Checkout(msgspec.Struct, frozen=True):
    purchase_id: uuid.UUID
    redirect_to: str  # Stripe's page, or (sandbox, already paid) our purchase page


async def product_for_buyer(tenant_id: uuid.UUID, product_id: uuid.UUID) -> dict[str, Any]:
    """The product a learner wants to buy. Another workspace's product is 403, as the seeds say (C3): the
    buyer named it on purpose, and it must never be sold into the wrong workspace."""
    row = await Product.select().where(Product.id == product_id).first()
    if row is None:
        raise NotFound("No such product.")
    if row["tenant_id"] != tenant_id:
        raise Forbidden("This course belongs to another workspace; it cannot be bought from this one.")
    if not row["active"]:
        raise Conflict("This course is no longer sold this way; open it from your courses to see how to join.")
    return row


async def has_paid(tenant_id: uuid.UUID, user_id: uuid.UUID, syllabus_id: uuid.UUID) -> bool:
    return await Purchase.exists().where(
        (Purchase.tenant_id == tenant_id) & (Purchase.user_id == user_id) & (Purchase.syllabus_id == syllabus_id)
        & (Purchase.status == PurchaseStatus.PAID.value))


async def start_checkout(tenant_id: uuid.UUID, user_id: uuid.UUID, email: str, product_id: uuid.UUID, *,
                         base_url: str, actor: Actor) -> Checkout:
    product = await product_for_buyer(tenant_id, product_id)
    if await has_paid(tenant_id, user_id, product["syllabus_id"]):
        raise Conflict("You have already bought this course; it is in your courses.")
    if await publishing.newest_published(tenant_id, product["syllabus_id"]) is None:
        raise NotFound("This course is not published any more.")
    reused = await _open_checkout(tenant_id, user_id, product)
    if reused is not None:
        return Checkout(reused["id"], reused["checkout_url"])
    sandbox = get_settings().billing_sandbox_mode
    purchase = (await Purchase.raw(
        "INSERT INTO purchase (id, tenant_id, user_id, product_id, syllabus_id, amount_minor, currency, status, "
        "sandbox, created_at, updated_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, {}, {}, 'PENDING', {}, now(), "
        "now()) RETURNING *", tenant_id, user_id, product["id"], product["syllabus_id"], product["price_minor"],
        product["currency"], sandbox))[0]
    await audit(AuditAction.CHECKOUT_STARTED, actor=actor, tenant_id=tenant_id, entity_type="purchase",
                entity_id=purchase["id"], metadata={"product_id": str(product["id"]), "sandbox": sandbox,
                                                    "amount": money.format_amount(purchase["amount_minor"],
                                                                                  purchase["currency"])})
    if sandbox:
        await complete_checkout(sandbox_completion(purchase))
        return Checkout(purchase["id"], purchase_page(purchase))
    return await _stripe_checkout(purchase, product, email, base_url)


def purchase_page(purchase: dict[str, Any]) -> str:
    return f"/learn/purchases/{purchase['id']}"


def checkout_metadata(purchase: dict[str, Any]) -> dict[str, str]:
    return {"tenant_id": str(purchase["tenant_id"]), "user_id": str(purchase["user_id"]),
            "product_id": str(purchase["product_id"]), "purchase_id": str(purchase["id"])}


async def _open_checkout(tenant_id: uuid.UUID, user_id: uuid.UUID, product: dict[str, Any]) -> dict[str, Any] | None:
    return (await Purchase.raw(
        "SELECT * FROM purchase WHERE tenant_id = {} AND user_id = {} AND product_id = {} AND status = 'PENDING' "
        "AND NOT sandbox AND checkout_url IS NOT NULL AND amount_minor = {} AND currency = {} "
        f"AND created_at > now() - interval '{REUSE_CHECKOUT_MINUTES} minutes' ORDER BY created_at DESC LIMIT 1",
        tenant_id, user_id, product["id"], product["price_minor"], product["currency"]) or [None])[0]


async def _stripe_checkout(purchase: dict[str, Any], product: dict[str, Any], email: str, base_url: str) -> Checkout:
    base = get_settings().public_base_url or base_url.rstrip("/")
    try:
        session = await stripe_api.create_checkout_session(
            purchase_id=str(purchase["id"]), metadata=checkout_metadata(purchase), title=product["title"],
            amount_minor=purchase["amount_minor"], currency=purchase["currency"], email=email,
            success_url=f"{base}{purchase_page(purchase)}?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/learn/{purchase['syllabus_id']}?checkout=cancelled")
    except DomainError:
        # Stripe never opened a page for it: nothing can complete it, so it does not linger as PENDING.
        await Purchase.raw("UPDATE purchase SET status = 'EXPIRED', expired_at = now(), updated_at = now() "
                           "WHERE id = {} AND status = 'PENDING'", purchase["id"])
        PURCHASES.labels(outcome="checkout_failed", mode="stripe").inc()
        raise
    await Purchase.raw("UPDATE purchase SET stripe_checkout_session_id = {}, checkout_url = {}, updated_at = now() "
                       "WHERE id = {} AND stripe_checkout_session_id IS NULL", session.id, session.url, purchase["id"])
    PURCHASES.labels(outcome="checkout_started", mode="stripe").inc()
    return Checkout(purchase["id"], session.url)


# ---------------------------------------------------------------------------------------------
# Purchases: how a checkout ends (webhook and sandbox alike)


class Completion(msgspec.Struct, frozen=True):
    """What a completed (paid) Checkout Session says, from Stripe's event or from the sandbox."""

    session_id: str
    payment_intent_id: str | None
    amount_total: int | None
    currency: str | None
    metadata: dict[str, str]


class Result(msgspec.Struct):
    """How one billing step ended: the ledger's outcome and words, and the audit rows to write."""

    outcome: str  # EventOutcome value
    detail: str
    tenant_id: uuid.UUID | None = None
    purchase_id: uuid.UUID | None = None
    audits: list[AuditNote] = []
    observed: list[tuple[EventType, dict[str, Any]]] = []  # analytics events to record after the commit


class Mismatch(Exception):
    """An event names a purchase but disagrees with what we stored about it: never trusted."""

    def __init__(self, message: str, purchase: dict[str, Any]) -> None:
        super().__init__(message)
        self.purchase = purchase


def sandbox_completion(purchase: dict[str, Any]) -> Completion:
    key = purchase["id"].hex
    return Completion(session_id=f"sandbox_cs_{key}", payment_intent_id=f"sandbox_pi_{key}",
                      amount_total=purchase["amount_minor"], currency=purchase["currency"].lower(),
                      metadata=checkout_metadata(purchase))


async def complete_checkout(completion: Completion) -> Result:
    """A paid checkout: the purchase becomes PAID and the learner is enrolled, in one transaction. Used by the
    sandbox directly; the webhook calls checkout_completed() inside its own transaction."""
    async with engine().transaction():
        result = await checkout_completed(completion)
    await after_commit(result)
    return result


async def lock_purchase(metadata: dict[str, str], *, session_id: str | None = None,
                        payment_intent_id: str | None = None) -> dict[str, Any] | None:
    """The stored purchase an event is about, locked FOR UPDATE. Found by our purchase id in the metadata,
    else by the Stripe ids; the metadata's tenant, user and product must then agree with it (Mismatch)."""
    purchase_id = _uuid(metadata.get("purchase_id"))
    row = None
    if purchase_id is not None:
        row = await _locked("id = {}", purchase_id)
    if row is None and session_id:
        row = await _locked("stripe_checkout_session_id = {}", session_id)
    if row is None and payment_intent_id:
        row = await _locked("stripe_payment_intent_id = {}", payment_intent_id)
    if row is None:
        return None
    claimed = {"tenant_id": metadata.get("tenant_id"), "user_id": metadata.get("user_id"),
               "product_id": metadata.get("product_id"), "purchase_id": metadata.get("purchase_id")}
    stored = {"tenant_id": str(row["tenant_id"]), "user_id": str(row["user_id"]),
              "product_id": str(row["product_id"]), "purchase_id": str(row["id"])}
    wrong = [key for key, value in claimed.items() if value is not None and value != stored[key]]
    if session_id and row["stripe_checkout_session_id"] not in (None, session_id):
        wrong.append("checkout session")
    if payment_intent_id and row["stripe_payment_intent_id"] not in (None, payment_intent_id):
        wrong.append("payment intent")
    if wrong:
        raise Mismatch(f"the event's {', '.join(wrong)} disagree(s) with purchase {row['id']}", row)
    return row


async def _locked(condition: str, value: Any) -> dict[str, Any] | None:
    rows = await Purchase.raw(f"SELECT * FROM purchase WHERE {condition} FOR UPDATE", value)
    return rows[0] if rows else None


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


async def lock_payment(payment_intent_id: str | None) -> None:
    """Serializes everything that happens to one payment (its completion and its refund): without it, a
    refund and its completion processed at the same moment could each miss the other."""
    if payment_intent_id:
        await Purchase.raw("SELECT pg_advisory_xact_lock(hashtextextended({}, 7))", f"payment:{payment_intent_id}")


async def refund_recorded_for(payment_intent_id: str | None) -> bool:
    """Has a full refund of this payment already reached us (before its completion did)?"""
    if not payment_intent_id:
        return False
    rows = await Purchase.raw(
        "SELECT 1 FROM billing_event WHERE payment_intent_id = {} AND type = 'charge.refunded' "
        "AND outcome <> 'REJECTED' AND (payload -> 'data' -> 'object' ->> 'refunded')::boolean LIMIT 1",
        payment_intent_id)
    return bool(rows)


def _unknown_purchase(metadata: dict[str, str], what: str) -> Result:
    # Our checkouts always carry our purchase id: an event naming one we never stored is forged or misrouted
    # (rejected and alerted); one without it is some other checkout on the same Stripe account (ignored).
    if metadata.get("purchase_id"):
        return Result("REJECTED", f"not trusted: {what} names purchase {metadata['purchase_id']!r}, which does not "
                      "exist")
    return Result("IGNORED", f"{what} is not a Coursewright purchase")


def _words(purchase: dict[str, Any]) -> str:
    return money.format_amount(purchase["amount_minor"], purchase["currency"])


async def checkout_completed(completion: Completion) -> Result:
    """PENDING -> PAID with its enrollment; PENDING -> REFUNDED when the refund came first. Runs inside the
    caller's transaction."""
    await lock_payment(completion.payment_intent_id)
    purchase = await lock_purchase(completion.metadata, session_id=completion.session_id,
                                   payment_intent_id=completion.payment_intent_id)
    if purchase is None:
        return _unknown_purchase(completion.metadata, f"checkout session {completion.session_id}")
    base = Result("PROCESSED", "", tenant_id=purchase["tenant_id"], purchase_id=purchase["id"])
    paid = (completion.amount_total, (completion.currency or "").upper())
    if paid != (purchase["amount_minor"], purchase["currency"]):
        raise Mismatch(f"the checkout was for {paid[0]} {paid[1]}, purchase {purchase['id']} is for "
                       f"{purchase['amount_minor']} {purchase['currency']}", purchase)
    if purchase["status"] != PurchaseStatus.PENDING:
        base.outcome, base.detail = "IGNORED", f"purchase is already {purchase['status'].lower()}; nothing to do"
        return base
    if await refund_recorded_for(completion.payment_intent_id):
        await _set_status(purchase, PurchaseStatus.REFUNDED, "refunded_at", completion)
        base.detail = "payment completed after its refund: purchase refunded, no access given"
        base.audits = [AuditNote(AuditAction.PURCHASE_REFUNDED, purchase["tenant_id"], "purchase", purchase["id"],
                                 {"amount": _words(purchase), "order": "refund before completion"})]
        PURCHASES.labels(outcome="refunded", mode=_mode(purchase)).inc()
        return base
    await _set_status(purchase, PurchaseStatus.PAID, "paid_at", completion)
    enrollment = await enrollments.grant_from_purchase(purchase["tenant_id"], purchase["user_id"],
                                                       purchase["syllabus_id"], purchase["id"])
    base.detail = f"paid {_words(purchase)}; learner enrolled"
    base.audits = [AuditNote(AuditAction.PURCHASE_CREATED, purchase["tenant_id"], "purchase", purchase["id"],
                             {"amount": _words(purchase), "product_id": str(purchase["product_id"]),
                              "sandbox": purchase["sandbox"]})]
    base.observed = [(EventType.PURCHASED, purchase)]
    if enrollment is not None:
        base.observed.append((EventType.ENROLLED, purchase))
        base.audits.append(AuditNote(AuditAction.ENROLLMENT_CREATED, purchase["tenant_id"], "enrollment",
                                     enrollment["id"], {"syllabus_id": str(purchase["syllabus_id"]),
                                                        "purchase_id": str(purchase["id"]),
                                                        "reopened": not enrollment["created"]}))
    PURCHASES.labels(outcome="paid", mode=_mode(purchase)).inc()
    return base


def _mode(purchase: dict[str, Any]) -> str:
    return "sandbox" if purchase["sandbox"] else "stripe"


async def _set_status(purchase: dict[str, Any], status: PurchaseStatus, stamp: str,
                      completion: Completion | None = None, payment_intent_id: str | None = None) -> None:
    session_id = completion.session_id if completion else None
    intent = completion.payment_intent_id if completion else payment_intent_id
    rows = await Purchase.raw(
        f"UPDATE purchase SET status = {{}}, {stamp} = now(), updated_at = now(), "
        "stripe_checkout_session_id = coalesce(stripe_checkout_session_id, {}), "
        "stripe_payment_intent_id = coalesce(stripe_payment_intent_id, {}) "
        "WHERE id = {} AND status = {} RETURNING id", status.value, session_id, intent, purchase["id"],
        purchase["status"])
    if len(rows) != 1:  # the row is locked: only a bug gets here
        raise RuntimeError(f"purchase {purchase['id']} did not move {purchase['status']} -> {status}")


async def checkout_expired(metadata: dict[str, str], session_id: str) -> Result:
    purchase = await lock_purchase(metadata, session_id=session_id)
    if purchase is None:
        return _unknown_purchase(metadata, f"checkout session {session_id}")
    result = Result("PROCESSED", "checkout expired without payment", tenant_id=purchase["tenant_id"],
                    purchase_id=purchase["id"])
    if purchase["status"] != PurchaseStatus.PENDING:
        result.outcome, result.detail = "IGNORED", f"purchase is already {purchase['status'].lower()}; nothing to do"
        return result
    await _set_status(purchase, PurchaseStatus.EXPIRED, "expired_at")
    result.audits = [AuditNote(AuditAction.PURCHASE_EXPIRED, purchase["tenant_id"], "purchase", purchase["id"],
                               {"amount": _words(purchase)})]
    PURCHASES.labels(outcome="expired", mode=_mode(purchase)).inc()
    return result


async def charge_refunded(metadata: dict[str, str], payment_intent_id: str | None, *, full: bool,
                          amount_refunded: int, currency: str) -> Result:
    """A full refund: PAID -> REFUNDED and the access revoked (progress kept), or PENDING -> REFUNDED when the
    completion has not arrived yet. A partial refund keeps the access."""
    await lock_payment(payment_intent_id)
    purchase = await lock_purchase(metadata, payment_intent_id=payment_intent_id)
    if purchase is None:
        # Neither our ids nor a completed payment name it yet: kept in the ledger (with its payment intent),
        # where the completion looks for it and ends the purchase REFUNDED.
        return Result("PROCESSED", f"refund of payment {payment_intent_id} recorded before its purchase completed; "
                      "the purchase will end refunded when it does")
    result = Result("PROCESSED", "", tenant_id=purchase["tenant_id"], purchase_id=purchase["id"])
    if not full:
        result.outcome = "IGNORED"
        result.detail = (f"partial refund ({money.format_amount(amount_refunded, currency.upper())} of "
                         f"{_words(purchase)}): access kept")
        return result
    if purchase["status"] in (PurchaseStatus.REFUNDED, PurchaseStatus.EXPIRED):
        result.outcome, result.detail = "IGNORED", f"purchase is already {purchase['status'].lower()}; nothing to do"
        return result
    was = purchase["status"]
    await _set_status(purchase, PurchaseStatus.REFUNDED, "refunded_at", payment_intent_id=payment_intent_id)
    revoked = await enrollments.revoke_for_purchase(purchase["tenant_id"], purchase["id"])
    result.detail = f"refunded {_words(purchase)}; " + ("access revoked" if revoked else "no access to revoke")
    result.audits = [AuditNote(AuditAction.PURCHASE_REFUNDED, purchase["tenant_id"], "purchase", purchase["id"],
                               {"amount": _words(purchase), "was": was})]
    result.audits += [AuditNote(AuditAction.ENROLLMENT_REVOKED, purchase["tenant_id"], "enrollment", enrollment_id,
                                {"purchase_id": str(purchase["id"]), "reason": "refund"}) for enrollment_id in revoked]
    PURCHASES.labels(outcome="refunded", mode=_mode(purchase)).inc()
    return result


# ---------------------------------------------------------------------------------------------
# Reading purchases


async def get_own_purchase(tenant_id: uuid.UUID, user_id: uuid.UUID, purchase_id: uuid.UUID) -> dict[str, Any]:
    """A learner's own purchase (for its status page); anyone else's is "not found"."""
    row = await Purchase.select().where((Purchase.id == purchase_id) & (Purchase.tenant_id == tenant_id)
                                        & (Purchase.user_id == user_id)).first()
    if row is None:
        raise NotFound("No such purchase.")
    return row


PURCHASES_SQL = """
SELECT u.*, a.email, coalesce(c.title, p.title) AS course_title, p.title AS product_title
FROM purchase u JOIN app_user a ON a.id = u.user_id JOIN product p ON p.id = u.product_id
JOIN syllabus s ON s.id = u.syllabus_id LEFT JOIN course c ON c.id = s.course_id
WHERE u.tenant_id = {} AND ({}::text IS NULL OR u.status = {}) AND ({}::uuid IS NULL OR u.syllabus_id = {})
ORDER BY u.created_at DESC, u.id LIMIT {} OFFSET {}
"""

TOTALS_SQL = """
SELECT u.syllabus_id, coalesce(c.title, min(p.title)) AS course_title, u.currency,
       count(*) FILTER (WHERE u.status IN ('PAID', 'REFUNDED')) AS sold,
       count(*) FILTER (WHERE u.status = 'REFUNDED') AS refunds,
       coalesce(sum(u.amount_minor) FILTER (WHERE u.status IN ('PAID', 'REFUNDED')), 0) AS gross_minor,
       coalesce(sum(u.amount_minor) FILTER (WHERE u.status = 'REFUNDED'), 0) AS refunded_minor,
       coalesce(sum(u.amount_minor) FILTER (WHERE u.status = 'PAID'), 0) AS net_minor
FROM purchase u JOIN product p ON p.id = u.product_id JOIN syllabus s ON s.id = u.syllabus_id
LEFT JOIN course c ON c.id = s.course_id
WHERE u.tenant_id = {}
GROUP BY u.syllabus_id, c.title, u.currency
HAVING count(*) FILTER (WHERE u.status IN ('PAID', 'REFUNDED')) > 0
ORDER BY lower(coalesce(c.title, min(p.title))), u.currency
"""


async def list_purchases(tenant_id: uuid.UUID, *, status: str | None = None, syllabus_id: uuid.UUID | None = None,
                         limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    return await Purchase.raw(PURCHASES_SQL, tenant_id, status, status, syllabus_id, syllabus_id, limit, offset)


async def count_purchases(tenant_id: uuid.UUID, *, status: str | None = None,
                          syllabus_id: uuid.UUID | None = None) -> int:
    rows = await Purchase.raw(
        "SELECT count(*) AS n FROM purchase u WHERE u.tenant_id = {} AND ({}::text IS NULL OR u.status = {}) "
        "AND ({}::uuid IS NULL OR u.syllabus_id = {})", tenant_id, status, status, syllabus_id, syllabus_id)
    return rows[0]["n"]


async def sales_totals(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Per course and currency: purchases sold, refunds, and the money in, refunded and kept (never summed
    across currencies)."""
    return await Purchase.raw(TOTALS_SQL, tenant_id)


# ---------------------------------------------------------------------------------------------
# The admin store page


async def store_courses(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Each published course with its products (active first), then courses that still have products but are
    no longer published: their products keep their purchases and can still be switched off."""
    products: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in await list_products(tenant_id):
        products.setdefault(row["syllabus_id"], []).append(row)
    courses = [{"syllabus_id": p["syllabus_id"], "title": p["title"], "published": True,
                "products": products.pop(p["syllabus_id"], [])}
               for p in await publishing.latest_packages(tenant_id, published_only=True)]
    courses += [{"syllabus_id": syllabus_id, "title": rows[0]["course_title"] or rows[0]["title"],
                 "published": False, "products": rows} for syllabus_id, rows in products.items()]
    for course in courses:
        course["active"] = next((p for p in course["products"] if p["active"]), None)
    return courses
