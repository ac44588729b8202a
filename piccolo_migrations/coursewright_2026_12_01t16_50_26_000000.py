"""Commerce: one active product per course, purchases whose state machine and money are guarded by a trigger,
Stripe ids unique, the billing_event ledger's payload frozen, and enrollments that remember their purchase."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-01T16:50:26:000000"
VERSION = "1.38.0"
DESCRIPTION = "commerce: product, purchase and billing_event constraints and triggers"

SQL = r"""
ALTER TABLE product ADD CONSTRAINT product_currency_iso CHECK (currency ~ '^[A-Z]{3}$');
ALTER TABLE product ADD CONSTRAINT product_price_positive CHECK (price_minor > 0);
ALTER TABLE product ADD CONSTRAINT product_title_present CHECK (length(btrim(title)) > 0);
CREATE UNIQUE INDEX product_one_active_per_course ON product (syllabus_id) WHERE active;
CREATE INDEX product_tenant_idx ON product (tenant_id, syllabus_id);

ALTER TABLE purchase ADD CONSTRAINT purchase_status_known
    CHECK (status IN ('PENDING', 'PAID', 'EXPIRED', 'REFUNDED'));
ALTER TABLE purchase ADD CONSTRAINT purchase_currency_iso CHECK (currency ~ '^[A-Z]{3}$');
ALTER TABLE purchase ADD CONSTRAINT purchase_amount_positive CHECK (amount_minor > 0);
CREATE UNIQUE INDEX purchase_checkout_session_key ON purchase (stripe_checkout_session_id);
CREATE UNIQUE INDEX purchase_payment_intent_key ON purchase (stripe_payment_intent_id);
CREATE INDEX purchase_access_idx ON purchase (user_id, syllabus_id, status);
CREATE INDEX purchase_tenant_idx ON purchase (tenant_id, created_at DESC);

ALTER TABLE billing_event ADD CONSTRAINT billing_event_outcome_known
    CHECK (outcome IN ('RECEIVED', 'PROCESSED', 'IGNORED', 'FAILED', 'REJECTED'));
CREATE INDEX billing_event_payment_intent_idx ON billing_event (payment_intent_id) WHERE payment_intent_id IS NOT NULL;
CREATE INDEX billing_event_outcome_idx ON billing_event (outcome, received_at DESC);

ALTER TABLE enrollment ADD CONSTRAINT enrollment_purchase_fk FOREIGN KEY (purchase_id) REFERENCES purchase (id);

-- A product prices a course of its own workspace, and never moves to another course or workspace.
CREATE FUNCTION product_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.id <> OLD.id OR NEW.tenant_id <> OLD.tenant_id OR NEW.syllabus_id <> OLD.syllabus_id
                             OR NEW.created_at <> OLD.created_at) THEN
        RAISE EXCEPTION 'product %: its workspace and course never change', OLD.id;
    END IF;
    IF TG_OP = 'INSERT' AND NOT EXISTS (SELECT 1 FROM syllabus s WHERE s.id = NEW.syllabus_id AND s.tenant_id = NEW.tenant_id) THEN
        RAISE EXCEPTION 'product %: course % is not in workspace %', NEW.id, NEW.syllabus_id, NEW.tenant_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER product_guard BEFORE INSERT OR UPDATE ON product FOR EACH ROW EXECUTE FUNCTION product_guard();

-- Money records: who bought what for how much never changes, Stripe ids are set once, the status only moves
-- PENDING -> PAID -> REFUNDED, PENDING -> EXPIRED, or PENDING -> REFUNDED (a refund that arrived before its
-- completion), and a purchase is never deleted.
CREATE FUNCTION purchase_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'purchase %: purchases are never deleted', OLD.id;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'PENDING' THEN
            RAISE EXCEPTION 'purchase %: a purchase starts PENDING', NEW.id;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM product p WHERE p.id = NEW.product_id AND p.tenant_id = NEW.tenant_id
                                                 AND p.syllabus_id = NEW.syllabus_id) THEN
            RAISE EXCEPTION 'purchase %: product % is not of workspace % and course %', NEW.id, NEW.product_id,
                NEW.tenant_id, NEW.syllabus_id;
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.tenant_id <> OLD.tenant_id OR NEW.user_id <> OLD.user_id
       OR NEW.product_id <> OLD.product_id OR NEW.syllabus_id <> OLD.syllabus_id OR NEW.amount_minor <> OLD.amount_minor
       OR NEW.currency <> OLD.currency OR NEW.sandbox <> OLD.sandbox OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'purchase %: who bought what for how much never changes', OLD.id;
    END IF;
    IF (OLD.stripe_checkout_session_id IS NOT NULL AND NEW.stripe_checkout_session_id IS DISTINCT FROM OLD.stripe_checkout_session_id)
       OR (OLD.stripe_payment_intent_id IS NOT NULL AND NEW.stripe_payment_intent_id IS DISTINCT FROM OLD.stripe_payment_intent_id) THEN
        RAISE EXCEPTION 'purchase %: Stripe ids are set once', OLD.id;
    END IF;
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'PENDING' AND NEW.status IN ('PAID', 'EXPIRED', 'REFUNDED'))
        OR (OLD.status = 'PAID' AND NEW.status = 'REFUNDED')
    ) THEN
        RAISE EXCEPTION 'purchase %: % -> % is not a transition', OLD.id, OLD.status, NEW.status;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER purchase_guard BEFORE INSERT OR UPDATE OR DELETE ON purchase
    FOR EACH ROW EXECUTE FUNCTION purchase_guard();

-- The ledger keeps what Stripe sent exactly as it was verified; only the processing columns move.
CREATE FUNCTION billing_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'billing_event %: the ledger is never deleted from', OLD.stripe_event_id;
    END IF;
    IF NEW.id <> OLD.id OR NEW.stripe_event_id <> OLD.stripe_event_id OR NEW.type <> OLD.type
       OR NEW.payload <> OLD.payload OR NEW.received_at <> OLD.received_at THEN
        RAISE EXCEPTION 'billing_event %: what Stripe sent never changes', OLD.stripe_event_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER billing_event_guard BEFORE UPDATE OR DELETE ON billing_event
    FOR EACH ROW EXECUTE FUNCTION billing_event_guard();
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="coursewright", description=DESCRIPTION)

    async def run():
        transaction = engine_finder().current_transaction.get()
        await transaction.connection.execute(SQL)

    manager.add_raw(run)
    return manager
