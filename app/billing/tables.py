from enum import StrEnum

from piccolo.columns import JSONB, UUID, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Tenant, User
from app.authoring.tables import Syllabus


class PurchaseStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    EXPIRED = "EXPIRED"
    REFUNDED = "REFUNDED"


class EventOutcome(StrEnum):
    RECEIVED = "RECEIVED"  # recorded, not processed yet (or processing crashed before it could say)
    PROCESSED = "PROCESSED"  # acted on
    IGNORED = "IGNORED"  # a type we do not handle, or nothing left to do (e.g. expired after paid)
    FAILED = "FAILED"  # processing raised; Stripe retries, an admin can replay
    REJECTED = "REJECTED"  # its metadata disagrees with the stored purchase: never trusted, never acted on


class Product(Table, tablename="product"):
    # A price on a course (the course is its syllabus, as for enrollments). At most one active product per
    # course (partial unique index); a deactivated product keeps its purchases.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    syllabus_id = ForeignKey(Syllabus, null=False)
    title = Varchar(length=200)
    price_minor = Integer()  # in the currency's minor unit (cents; yen for JPY)
    currency = Varchar(length=3)  # ISO 4217, upper case
    active = Boolean(default=True)
    stripe_product_id = Varchar(length=255, null=True, default=None)
    stripe_price_id = Varchar(length=255, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Purchase(Table, tablename="purchase"):
    # One attempt to buy a product: PENDING until Stripe (or the sandbox) says how it ended. The price is
    # copied in, so a later price change never rewrites what someone paid. The trigger purchase_guard keeps
    # the state machine and freezes who bought what for how much.
    id = UUID(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    user_id = ForeignKey(User, null=False)
    product_id = ForeignKey(Product, null=False)
    syllabus_id = UUID()  # the product's course, copied for the access check
    amount_minor = Integer()
    currency = Varchar(length=3)
    status = Varchar(length=16, choices=PurchaseStatus, default=PurchaseStatus.PENDING.value)
    sandbox = Boolean(default=False)
    stripe_checkout_session_id = Varchar(length=255, null=True, default=None)
    stripe_payment_intent_id = Varchar(length=255, null=True, default=None)
    checkout_url = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    paid_at = Timestamptz(null=True, default=None)
    expired_at = Timestamptz(null=True, default=None)
    refunded_at = Timestamptz(null=True, default=None)


class BillingEvent(Table, tablename="billing_event"):
    # The idempotency ledger: every verified Stripe event, recorded before it is acted on. tenant_id is known
    # once the event has been matched to a purchase.
    id = UUID(primary_key=True)
    stripe_event_id = Varchar(length=255, unique=True)
    type = Varchar(length=100)
    tenant_id = UUID(null=True, default=None)
    purchase_id = UUID(null=True, default=None)
    payment_intent_id = Varchar(length=255, null=True, default=None)
    livemode = Boolean(default=False)
    payload = JSONB()
    outcome = Varchar(length=16, choices=EventOutcome, default=EventOutcome.RECEIVED.value)
    detail = Text(default="")
    attempts = Integer(default=0)
    received_at = Timestamptz(default=TimestamptzNow())
    processed_at = Timestamptz(null=True, default=None)
