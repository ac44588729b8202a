"""Buying through Stripe, with the app's real `stripe` SDK talking HTTP to a local fake of Stripe's API
(tests/billing/stripe_fake.py): a server of its own with the sandbox off, the fake's address as STRIPE_API_BASE."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from app.audit.services import SYSTEM
from app.billing import services
from app.billing.tables import Purchase
from app.player.tables import Enrollment
from tests.billing import stripe_fake as fake
from tests.conftest import Client, LiveServer, Persona, make_member, make_tenant, start_server
from tests.publishing.helpers import published_course

SECRET_KEY = "sk_test_coursewright_fake_stripe"


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[fake.FakeStripe]:
    with fake.FakeStripe() as api:
        yield api


@pytest.fixture(scope="module")
def stripe_server(migrated: None, stripe_api: fake.FakeStripe) -> Iterator[LiveServer]:
    server = start_server("stripe", BILLING_SANDBOX_MODE="false", STRIPE_SECRET_KEY=SECRET_KEY,
                          STRIPE_API_BASE=stripe_api.url)
    yield server
    server.stop()


@dataclass
class Store:
    acme: dict
    globex: dict
    course_id: uuid.UUID
    product: dict


@pytest.fixture(scope="module")
async def store(stripe_server: LiveServer) -> Store:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    admin = await make_member(acme, "admin", "adam")
    client = Client(stripe_server.url)
    await client.login(admin.email)
    syllabus, _package = await published_course(client)
    await client.aclose()
    product = await services.create_product(acme["id"], syllabus["id"], services.ProductForm(
        "Practical Git", "49.00", "EUR"), actor=SYSTEM)
    return Store(acme, globex, syllabus["id"], product)


@pytest.fixture
async def buyer(stripe_server: LiveServer, store: Store) -> AsyncIterator[tuple[Persona, Client]]:
    learner = await make_member(store.acme, "learner", "lena")
    client = Client(stripe_server.url)
    await client.login(learner.email)
    yield learner, client
    await client.aclose()


@pytest.fixture(autouse=True)
def stripe_answers(stripe_api: fake.FakeStripe) -> Iterator[None]:
    stripe_api.recover()
    yield
    stripe_api.recover()


async def purchases_of(learner: Persona) -> list[dict]:
    return await Purchase.select().where(Purchase.user_id == learner.user_id).order_by(Purchase.created_at)


async def access_of(learner: Persona, store: Store) -> int:
    return await Enrollment.count().where((Enrollment.user_id == learner.user_id)
                                          & (Enrollment.syllabus_id == store.course_id)
                                          & (Enrollment.revoked_at.is_null()))


async def test_it_opens_a_stripe_checkout_and_enrolls_only_after_the_webhook(stripe_server, stripe_api, store, buyer):
    learner, client = buyer
    seen = len(stripe_api.requests)
    response = await client.post(f"/learn/store/products/{store.product['id']}/buy")
    assert response.status_code == 303, response.text[:400]
    [purchase] = await purchases_of(learner)
    session = stripe_api.sessions[purchase["stripe_checkout_session_id"]]
    assert response.headers["location"] == session["url"] == purchase["checkout_url"]
    assert purchase["status"] == "PENDING" and purchase["sandbox"] is False and purchase["amount_minor"] == 4900

    [request] = stripe_api.requests[seen:]
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    assert request.authorization == f"Bearer {SECRET_KEY}"
    assert request.idempotency_key == f"coursewright-purchase-{purchase['id']}"
    form = request.form
    ids = {"tenant_id": store.acme["id"], "user_id": learner.user_id, "product_id": store.product["id"],
           "purchase_id": purchase["id"]}
    for key, value in ids.items():
        assert form[f"metadata[{key}]"] == form[f"payment_intent_data[metadata][{key}]"] == str(value)
    assert form["line_items[0][price_data][unit_amount]"] == "4900"
    assert form["line_items[0][price_data][currency]"] == "eur" and form["mode"] == "payment"
    assert form["line_items[0][price_data][product_data][name]"] == "Practical Git"
    assert form["customer_email"] == learner.email and form["client_reference_id"] == str(purchase["id"])
    page = f"{stripe_server.url}/learn/purchases/{purchase['id']}"
    assert form["success_url"] == f"{page}?session_id={{CHECKOUT_SESSION_ID}}"
    assert form["cancel_url"] == f"{stripe_server.url}/learn/{store.course_id}?checkout=cancelled"

    enroll = await client.post(f"/learn/{store.course_id}/enroll")
    assert enroll.status_code == 402 and "buy it to enroll" in enroll.text
    assert (await client.get(f"/learn/{store.course_id}/lesson/1")).status_code == 403
    waiting = await client.get(f"/learn/purchases/{purchase['id']}?session_id={session['id']}")
    assert waiting.status_code == 200
    assert await access_of(learner, store) == 0

    paid = fake.session_completed(purchase, session_id=session["id"], payment_intent="pi_stripe_flow")
    delivered = await fake.post_event(stripe_server.url, paid)
    assert delivered.status_code == 200 and delivered.json()["outcome"] == "PROCESSED"
    [purchase] = await purchases_of(learner)
    assert purchase["status"] == "PAID" and purchase["stripe_payment_intent_id"] == "pi_stripe_flow"
    assert await access_of(learner, store) == 1
    assert (await client.get(f"/learn/{store.course_id}/lesson/1")).status_code == 200


async def test_it_reuses_the_open_checkout_for_a_second_buy(stripe_api, store, buyer):
    learner, client = buyer
    first = await client.post(f"/learn/store/products/{store.product['id']}/buy")
    seen = len(stripe_api.requests)
    second = await client.post(f"/learn/store/products/{store.product['id']}/buy")
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    assert len(stripe_api.requests) == seen  # Stripe was not asked again
    [purchase] = await purchases_of(learner)
    assert purchase["status"] == "PENDING" and purchase["checkout_url"] == first.headers["location"]


async def test_it_answers_503_and_expires_the_purchase_when_stripe_declines(stripe_api, store, buyer):
    learner, client = buyer
    stripe_api.fail_with(402, "card_error", "Your card was declined.", code="card_declined")
    response = await client.post(f"/learn/store/products/{store.product['id']}/buy")
    assert response.status_code == 503
    assert "Stripe could not open the checkout page (Your card was declined.)" in response.text
    assert "Nothing was charged" in response.text
    [purchase] = await purchases_of(learner)
    assert purchase["status"] == "EXPIRED" and purchase["stripe_checkout_session_id"] is None
    assert await access_of(learner, store) == 0


async def test_it_retries_a_stripe_outage_with_one_idempotency_key_then_answers_503(stripe_api, store, buyer):
    learner, client = buyer
    stripe_api.fail_with(500, "api_error", "Something went wrong on Stripe's end.")
    seen = len(stripe_api.requests)
    response = await client.post(f"/learn/store/products/{store.product['id']}/buy")
    assert response.status_code == 503 and "Nothing was charged" in response.text
    [purchase] = await purchases_of(learner)
    attempts = stripe_api.requests[seen:]
    assert len(attempts) == 3  # the SDK's own retries (max_network_retries=2)
    assert {a.idempotency_key for a in attempts} == {f"coursewright-purchase-{purchase['id']}"}
    assert purchase["status"] == "EXPIRED" and await access_of(learner, store) == 0

    stripe_api.recover()  # Stripe is back: the next Buy is a new purchase with its own session
    again = await client.post(f"/learn/store/products/{store.product['id']}/buy")
    assert again.status_code == 303
    statuses = [p["status"] for p in await purchases_of(learner)]
    assert statuses == ["EXPIRED", "PENDING"]


async def test_it_forbids_buying_another_workspaces_product(stripe_server, stripe_api, store):
    outsider = await make_member(store.globex, "admin", "oscar")
    client = Client(stripe_server.url)
    await client.login(outsider.email)
    seen = len(stripe_api.requests)
    response = await client.post(f"/learn/store/products/{store.product['id']}/buy")
    await client.aclose()
    assert response.status_code == 403 and "belongs to another workspace" in response.text
    assert await purchases_of(outsider) == [] and len(stripe_api.requests) == seen
