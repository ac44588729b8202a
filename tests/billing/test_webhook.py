"""Stripe's webhook, the matrix from issue 11: signed by the test with Stripe's real scheme, posted over HTTP to
the shared live server, and the database asserted after every delivery (purchase, enrollment, ledger, audit)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from app.audit.services import SYSTEM
from app.billing import services
from app.billing.tables import BillingEvent, Purchase
from tests.billing import stripe_fake as fake
from tests.conftest import DATABASE_URL, Client, LiveServer, Persona, make_member, make_tenant
from tests.publishing.helpers import published_course


@dataclass
class Shop:
    acme: dict
    globex: dict
    course_id: uuid.UUID
    product: dict
    other_product: dict  # an inactive product of the same course: a real id that is not this purchase's


@pytest.fixture(scope="module")
async def shop(live_server: LiveServer) -> Shop:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    admin = await make_member(acme, "admin", "adam")
    client = Client(live_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    await client.aclose()
    product = await services.create_product(acme["id"], syllabus["id"], services.ProductForm(
        "Practical Git", "49.00", "EUR"), actor=SYSTEM)
    other = (await Purchase.raw(
        "INSERT INTO product (id, tenant_id, syllabus_id, title, price_minor, currency, active, created_at, "
        "updated_at) VALUES (gen_random_uuid(), {}, {}, 'Old price', 1900, 'EUR', false, now(), now()) RETURNING *",
        acme["id"], syllabus["id"]))[0]
    return Shop(acme, globex, syllabus["id"], product, other)


async def pending_purchase(shop: Shop) -> tuple[Persona, dict]:
    """A new learner of Acme with a PENDING purchase whose Checkout Session Stripe has opened."""
    learner = await make_member(shop.acme, "learner", "lena")
    purchase = (await Purchase.raw(
        "INSERT INTO purchase (id, tenant_id, user_id, product_id, syllabus_id, amount_minor, currency, status, "
        "sandbox, stripe_checkout_session_id, created_at, updated_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, "
        "{}, {}, 'PENDING', false, {}, now(), now()) RETURNING *", shop.acme["id"], learner.user_id,
        shop.product["id"], shop.course_id, shop.product["price_minor"], shop.product["currency"],
        f"cs_test_{uuid.uuid4().hex}"))[0]
    return learner, purchase


async def state(purchase: dict) -> dict:
    """What the database says about a purchase: its status, the learner's access, its audit rows."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        row = await conn.fetchrow("SELECT status, stripe_payment_intent_id FROM purchase WHERE id = $1", purchase["id"])
        enrollments = await conn.fetch("SELECT purchase_id, revoked_at FROM enrollment WHERE user_id = $1 "
                                       "AND syllabus_id = $2", purchase["user_id"], purchase["syllabus_id"])
        audits = await conn.fetch("SELECT action, count(*) AS n FROM audit_log WHERE entity_id = $1 GROUP BY action",
                                  str(purchase["id"]))
        enrollment_audits = await conn.fetchval(
            "SELECT count(*) FROM audit_log a JOIN enrollment e ON a.entity_id = e.id::text "
            "WHERE e.user_id = $1 AND a.action = 'ENROLLMENT_CREATED'", purchase["user_id"])
    finally:
        await conn.close()
    return {"status": row["status"], "payment_intent": row["stripe_payment_intent_id"],
            "enrollments": len(enrollments), "access": sum(1 for e in enrollments if e["revoked_at"] is None),
            "audits": {a["action"]: a["n"] for a in audits}, "enrollment_audits": enrollment_audits}


async def ledger(event: dict) -> list[dict]:
    return await BillingEvent.select().where(BillingEvent.stripe_event_id == event["id"])


async def outcome(event: dict) -> str:
    rows = await ledger(event)
    assert len(rows) == 1, rows
    return rows[0]["outcome"]


async def test_it_pays_and_enrolls_once_on_a_valid_completion(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_completed(purchase, payment_intent="pi_valid_once")
    response = await fake.post_event(live_server.url, event)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "event_id": event["id"], "outcome": "PROCESSED"}
    after = await state(purchase)
    assert after["status"] == "PAID" and after["payment_intent"] == "pi_valid_once"
    assert (after["enrollments"], after["access"]) == (1, 1)
    assert after["audits"] == {"PURCHASE_CREATED": 1} and after["enrollment_audits"] == 1
    row = (await ledger(event))[0]
    assert (row["outcome"], row["tenant_id"], row["purchase_id"]) == ("PROCESSED", shop.acme["id"], purchase["id"])
    assert row["attempts"] == 1 and row["processed_at"] is not None


async def _assert_one_effect(purchase: dict, event: dict) -> None:
    after = await state(purchase)
    assert after["status"] == "PAID"
    assert (after["enrollments"], after["access"]) == (1, 1)
    assert after["audits"] == {"PURCHASE_CREATED": 1} and after["enrollment_audits"] == 1
    rows = await ledger(event)
    assert len(rows) == 1 and rows[0]["outcome"] == "PROCESSED" and rows[0]["attempts"] == 1
    assert await Purchase.count().where((Purchase.user_id == purchase["user_id"]) & (Purchase.status == "PAID")) == 1


async def test_it_acts_once_on_the_same_event_five_times_in_a_row(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_completed(purchase)
    for _ in range(5):
        response = await fake.post_event(live_server.url, event)
        assert response.status_code == 200 and response.json()["outcome"] == "PROCESSED"
    await _assert_one_effect(purchase, event)


async def test_it_acts_once_on_the_same_event_five_times_at_once(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_completed(purchase)
    async with httpx.AsyncClient(timeout=30) as http:
        responses = await asyncio.gather(*(fake.post_event(live_server.url, event, client=http) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    await _assert_one_effect(purchase, event)


async def test_it_refunds_and_revokes_when_the_refund_follows_the_completion(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    assert (await fake.post_event(live_server.url, fake.session_completed(purchase, payment_intent="pi_then"))
            ).status_code == 200
    assert (await state(purchase))["access"] == 1
    refund = fake.charge_refunded(purchase, "pi_then")
    response = await fake.post_event(live_server.url, refund)
    assert response.status_code == 200 and response.json()["outcome"] == "PROCESSED"
    after = await state(purchase)
    assert after["status"] == "REFUNDED" and (after["enrollments"], after["access"]) == (1, 0)  # progress kept
    assert after["audits"] == {"PURCHASE_CREATED": 1, "PURCHASE_REFUNDED": 1}


@pytest.mark.parametrize("with_metadata", [True, False], ids=["charge-metadata", "no-charge-metadata"])
async def test_it_ends_refunded_without_access_when_the_refund_comes_first(live_server, shop, with_metadata):
    _learner, purchase = await pending_purchase(shop)
    intent = f"pi_first_{uuid.uuid4().hex[:12]}"
    refund = fake.charge_refunded(purchase, intent, with_metadata=with_metadata)
    assert (await fake.post_event(live_server.url, refund)).status_code == 200
    assert await outcome(refund) == "PROCESSED"
    # With metadata the purchase is found and refunded at once; without, the ledger keeps it for the completion.
    assert (await state(purchase))["status"] == ("REFUNDED" if with_metadata else "PENDING")
    completed = fake.session_completed(purchase, payment_intent=intent)
    response = await fake.post_event(live_server.url, completed)
    assert response.status_code == 200
    after = await state(purchase)
    assert after["status"] == "REFUNDED" and after["access"] == 0 and after["enrollments"] == 0
    assert after["audits"].get("PURCHASE_CREATED") is None and after["audits"]["PURCHASE_REFUNDED"] == 1
    assert await outcome(completed) == ("IGNORED" if with_metadata else "PROCESSED")


@pytest.mark.parametrize("tamper", ["old", "changed", "missing", "wrong-secret", "garbage-header"])
async def test_it_refuses_an_unverifiable_delivery_with_400(live_server, shop, tamper):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_completed(purchase)
    body = json.dumps(event).encode()
    if tamper == "old":
        response = await fake.post_event(live_server.url, body, timestamp=int(time.time()) - 301)
    elif tamper == "changed":
        signature = fake.sign(body)
        response = await fake.post_event(live_server.url, body.replace(b'"paid"', b'"PAID"'), signature=signature)
    elif tamper == "missing":
        response = await fake.post_event(live_server.url, body, signature=None)
    elif tamper == "wrong-secret":
        response = await fake.post_event(live_server.url, body, secret="whsec_someone_else")
    else:
        response = await fake.post_event(live_server.url, body, signature="t=now,v1=nonsense")
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert "Stripe-Signature" in message or "signature" in message.lower()
    assert await ledger(event) == []
    after = await state(purchase)
    assert after["status"] == "PENDING" and after["enrollments"] == 0


async def test_it_accepts_a_signature_just_inside_the_tolerance(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_completed(purchase)
    response = await fake.post_event(live_server.url, event, timestamp=int(time.time()) - 280)
    assert response.status_code == 200 and (await state(purchase))["status"] == "PAID"


async def test_it_answers_200_and_ignores_an_unknown_event_type(live_server, shop):
    event = fake.event("customer.subscription.created", {"id": "sub_123", "object": "subscription"})
    response = await fake.post_event(live_server.url, event)
    assert response.status_code == 200 and response.json()["outcome"] == "IGNORED"
    row = (await ledger(event))[0]
    assert row["outcome"] == "IGNORED" and "not one Coursewright acts on" in row["detail"]
    assert row["tenant_id"] is None and row["purchase_id"] is None


async def test_it_expires_a_pending_purchase(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_expired(purchase)
    assert (await fake.post_event(live_server.url, event)).status_code == 200
    after = await state(purchase)
    assert after["status"] == "EXPIRED" and after["enrollments"] == 0
    assert after["audits"] == {"PURCHASE_EXPIRED": 1} and await outcome(event) == "PROCESSED"


async def test_it_keeps_a_paid_purchase_paid_when_its_expiry_arrives_late(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    assert (await fake.post_event(live_server.url, fake.session_completed(purchase))).status_code == 200
    late = fake.session_expired(purchase)
    response = await fake.post_event(live_server.url, late)
    assert response.status_code == 200 and response.json()["outcome"] == "IGNORED"
    after = await state(purchase)
    assert after["status"] == "PAID" and after["access"] == 1 and "PURCHASE_EXPIRED" not in after["audits"]


async def test_it_keeps_access_after_a_partial_refund(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    assert (await fake.post_event(live_server.url, fake.session_completed(purchase, payment_intent="pi_partial"))
            ).status_code == 200
    partial = fake.charge_refunded(purchase, "pi_partial", amount_refunded=1000)
    response = await fake.post_event(live_server.url, partial)
    assert response.status_code == 200 and response.json()["outcome"] == "IGNORED"
    after = await state(purchase)
    assert after["status"] == "PAID" and after["access"] == 1 and "PURCHASE_REFUNDED" not in after["audits"]
    assert "partial refund (€10.00 of €49.00)" in (await ledger(partial))[0]["detail"]


@pytest.mark.parametrize("field", ["tenant_id", "user_id", "product_id"])
async def test_it_rejects_and_alerts_metadata_that_names_someone_else(live_server, shop, field):
    _learner, purchase = await pending_purchase(shop)
    outsider = await make_member(shop.globex, "learner", "oscar")
    claimed = {"tenant_id": shop.globex["id"], "user_id": outsider.user_id, "product_id": shop.other_product["id"]}
    event = fake.session_completed(purchase)
    event["data"]["object"]["metadata"][field] = str(claimed[field])
    response = await fake.post_event(live_server.url, event)
    assert response.status_code == 200 and response.json()["outcome"] == "REJECTED"
    after = await state(purchase)
    assert after["status"] == "PENDING" and after["payment_intent"] is None and after["enrollments"] == 0
    assert after["audits"] == {"BILLING_EVENT_REJECTED": 1}
    row = (await ledger(event))[0]
    assert row["outcome"] == "REJECTED" and row["purchase_id"] == purchase["id"] and "not trusted" in row["detail"]
    alerts = [line for line in live_server.log().splitlines() if "alert:billing_webhook_failed" in line]
    assert any(event["id"] in line for line in alerts), alerts[-3:]
    assert await Purchase.count().where(Purchase.user_id == outsider.user_id) == 0


async def test_it_rejects_a_completion_for_another_amount(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_completed(purchase, amount_total=100)
    response = await fake.post_event(live_server.url, event)
    assert response.status_code == 200 and response.json()["outcome"] == "REJECTED"
    after = await state(purchase)
    assert after["status"] == "PENDING" and after["enrollments"] == 0
    assert "the checkout was for 100 EUR" in (await ledger(event))[0]["detail"]


async def test_it_rejects_a_completion_naming_a_purchase_that_does_not_exist(live_server, shop):
    _learner, purchase = await pending_purchase(shop)
    event = fake.session_completed({**purchase, "id": uuid.uuid4()}, session_id=f"cs_test_{uuid.uuid4().hex}")
    response = await fake.post_event(live_server.url, event)
    assert response.status_code == 200 and response.json()["outcome"] == "REJECTED"
    assert (await state(purchase))["status"] == "PENDING"


async def _failures(live_server: LiveServer) -> float:
    metrics = httpx.get(f"{live_server.url}/metrics", timeout=10)
    assert metrics.status_code == 200
    for line in metrics.text.splitlines():
        if line.startswith("coursewright_billing_webhook_failures_total "):
            return float(line.split()[1])
    return 0.0


async def test_it_answers_500_on_a_failing_handler_and_processes_stripes_retry(live_server, shop):
    learner, purchase = await pending_purchase(shop)
    before = await _failures(live_server)
    conn = await asyncpg.connect(DATABASE_URL)
    # Fault injection: an enrollment for this learner (and nobody else) fails inside the handler's transaction.
    await conn.execute(f"""
        CREATE FUNCTION test_enrollment_fails() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.user_id = '{learner.user_id}' THEN RAISE EXCEPTION 'injected enrollment failure'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_enrollment_fails BEFORE INSERT OR UPDATE ON enrollment
            FOR EACH ROW EXECUTE FUNCTION test_enrollment_fails();""")
    try:
        event = fake.session_completed(purchase)
        response = await fake.post_event(live_server.url, event)
        assert response.status_code == 500
        assert response.json()["outcome"] == "FAILED" and "Stripe will retry" in response.json()["error"]
        row = (await ledger(event))[0]
        assert row["outcome"] == "FAILED" and "injected enrollment failure" in row["detail"] and row["attempts"] == 1
        after = await state(purchase)
        assert after["status"] == "PENDING" and after["payment_intent"] is None and after["enrollments"] == 0
        assert after["audits"] == {}
        assert await _failures(live_server) == before + 1
        assert any(event["id"] in line for line in live_server.log().splitlines()
                   if "alert:billing_webhook_failed" in line)
    finally:
        await conn.execute("DROP TRIGGER test_enrollment_fails ON enrollment; DROP FUNCTION test_enrollment_fails()")
        await conn.close()
    retry = await fake.post_event(live_server.url, event)
    assert retry.status_code == 200 and retry.json()["outcome"] == "PROCESSED"
    row = (await ledger(event))[0]
    assert row["outcome"] == "PROCESSED" and row["attempts"] == 2
    after = await state(purchase)
    assert after["status"] == "PAID" and after["access"] == 1 and after["audits"] == {"PURCHASE_CREATED": 1}


@pytest.mark.parametrize("body", [b'{"id": "evt_1", "type": "checkout.session.completed", "data": {',
                                  b'["not", "an", "event"]', b'{"id": 7, "type": null}', b'\xff\xfe{}'],
                         ids=["truncated", "array", "wrong-types", "not-utf8"])
async def test_it_refuses_a_signed_body_that_is_not_an_event(live_server, shop, body):
    count = await BillingEvent.count()
    response = await fake.post_event(live_server.url, body)
    assert response.status_code == 400, response.text
    assert "not a Stripe event" in response.json()["error"]
    assert await BillingEvent.count() == count


async def test_it_refuses_an_oversized_body_with_413(live_server, shop):
    count = await BillingEvent.count()
    event = fake.event("checkout.session.completed", {"id": "cs_test_big", "padding": "x" * (2**20 + 10)})
    response = await fake.post_event(live_server.url, event)
    assert response.status_code == 413
    assert "larger than this server accepts" in response.text
    assert await BillingEvent.count() == count
