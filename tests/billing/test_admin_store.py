"""The admin store pages against the live server: products (create, change price, activate/deactivate), bad
input said inside the form that sent it, purchases and totals, and a failed payment event replayed after its
fault (a real PostgreSQL trigger) is gone."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from app.audit.tables import AuditLog
from app.billing.tables import BillingEvent, Product, Purchase
from app.player.tables import Enrollment
from tests.billing.stripe_fake import post_event, session_completed
from tests.conftest import DATABASE_URL, fetch_rows, make_member
from tests.publishing.helpers import published_course


async def _audits(action: str, entity_id) -> list[dict]:
    rows = await AuditLog.select().where((AuditLog.action == action) & (AuditLog.entity_id == str(entity_id)))
    return [{**row, "metadata": json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]}
            for row in rows]


async def _products(syllabus_id) -> list[dict]:
    return await Product.select().where(Product.syllabus_id == syllabus_id).order_by(Product.created_at)


async def _priced_course(client, personas, price: str = "49.00", currency: str = "USD") -> tuple[dict, dict]:
    """A published course of Acme with an active product, put on sale through the page."""
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    response = await client.post("/admin/store/products", {"syllabus_id": str(syllabus["id"]),
                                                           "title": "Git for Designers", "price": price,
                                                           "currency": currency})
    assert response.status_code == 303, response.text[:400]
    assert response.headers["location"] == "/admin/store"
    return syllabus, (await _products(syllabus["id"]))[0]


async def test_it_explains_what_a_product_is_before_anything_is_published(client, personas):
    await client.login(personas.admin.email)
    page = await client.get("/admin/store")
    assert page.status_code == 200
    assert "Nothing to sell yet." in page.text and "A product is a price on a published course" in page.text
    assert 'href="/admin/store"' in page.text  # the Store link of the admin section links


async def test_it_puts_a_price_on_a_published_course_and_audits_it(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    page = await client.get("/admin/store")
    assert f'<option value="{syllabus["id"]}"' in page.text and "Free to enroll: no product yet." in page.text
    response = await client.post("/admin/store/products", {"syllabus_id": str(syllabus["id"]), "title": "Git 101",
                                                           "price": "49.00", "currency": "EUR"})
    assert response.status_code == 303
    [product] = await _products(syllabus["id"])
    assert (product["tenant_id"], product["title"], product["price_minor"], product["currency"], product["active"]) == (
        personas.acme["id"], "Git 101", 4900, "EUR", True)
    [entry] = await _audits("PRODUCT_CREATED", product["id"])
    assert entry["actor_id"] == personas.admin.user_id and entry["tenant_id"] == personas.acme["id"]
    assert entry["metadata"]["price_minor"] == 4900 and entry["metadata"]["currency"] == "EUR"
    page = await client.get("/admin/store")
    assert "Git 101" in page.text and "€49.00" in page.text and ">active<" in page.text
    assert "0 paid, 0 refunded" in page.text
    assert "Every published course has an active product." in page.text


async def test_it_changes_the_price_and_audits_from_and_to(client, personas):
    _syllabus, product = await _priced_course(client, personas)
    response = await client.post(f"/admin/store/products/{product['id']}", {"title": "Git for Designers",
                                                                            "price": "59.50", "currency": "USD"})
    assert response.status_code == 303
    row = await Product.select().where(Product.id == product["id"]).first()
    assert (row["price_minor"], row["currency"], row["title"]) == (5950, "USD", "Git for Designers")
    [entry] = await _audits("PRODUCT_UPDATED", product["id"])
    assert entry["metadata"] == {"price_minor": {"from": 4900, "to": 5950}}
    page = await client.get("/admin/store")
    assert "$59.50" in page.text and 'value="59.50"' in page.text


async def test_it_answers_htmx_with_the_products_section(client, personas):
    _syllabus, product = await _priced_course(client, personas)
    response = await client.post(f"/admin/store/products/{product['id']}", {"title": "Git for Designers",
                                                                            "price": "12", "currency": "GBP"},
                                 htmx=True)
    assert response.status_code == 200
    assert response.text.lstrip().startswith("<div id=\"store-products\">") and "<html" not in response.text
    assert "now costs £12.00" in response.text
    assert (await Product.select().where(Product.id == product["id"]).first())["price_minor"] == 1200
    refused = await client.post(f"/admin/store/products/{product['id']}", {"title": "", "price": "12",
                                                                           "currency": "GBP"}, htmx=True)
    assert refused.status_code == 400 and "Give the product a title" in refused.text


async def test_it_deactivates_and_refuses_a_second_active_product(client, personas):
    syllabus, first = await _priced_course(client, personas)
    response = await client.post(f"/admin/store/products/{first['id']}/deactivate")
    assert response.status_code == 303
    assert (await Product.select().where(Product.id == first["id"]).first())["active"] is False
    [entry] = await _audits("PRODUCT_UPDATED", first["id"])
    assert entry["metadata"] == {"active": {"from": True, "to": False}}
    page = await client.get("/admin/store")
    assert ">inactive<" in page.text and ">Activate<" in page.text and f'<option value="{syllabus["id"]}"' in page.text

    response = await client.post("/admin/store/products", {"syllabus_id": str(syllabus["id"]), "title": "Git, again",
                                                           "price": "19", "currency": "USD"})
    assert response.status_code == 303
    second = (await _products(syllabus["id"]))[1]
    assert second["active"] is True

    refused = await client.post(f"/admin/store/products/{first['id']}/activate")
    assert refused.status_code == 409
    assert "already has another active product" in refused.text
    assert [p["active"] for p in await _products(syllabus["id"])] == [False, True]
    assert len(await _audits("PRODUCT_UPDATED", first["id"])) == 1

    assert (await client.post(f"/admin/store/products/{second['id']}/deactivate")).status_code == 303
    assert (await client.post(f"/admin/store/products/{first['id']}/activate")).status_code == 303
    assert [p["active"] for p in await _products(syllabus["id"])] == [True, False]


BAD_PRODUCTS = [
    ({"price": "abc"}, 400, "Write the price as a number"),
    ({"price": "-5"}, 400, "The price must be more than zero"),
    ({"price": "0"}, 400, "The price must be more than zero"),
    ({"price": "49.999"}, 400, "USD prices take at most 2 decimals."),
    ({"price": "1e9"}, 400, "Stripe&#39;s largest single payment in USD"),
    ({"currency": "XXX"}, 400, "Choose one of the listed currencies"),
    ({"title": "   "}, 400, "Give the product a title"),
    ({"syllabus_id": "not-a-course"}, 400, "Choose a course to sell."),
]


async def test_it_refuses_bad_products_inside_the_form_keeping_what_was_typed(client, personas):
    await client.login(personas.admin.email)
    syllabus, _package = await published_course(client)
    good = {"syllabus_id": str(syllabus["id"]), "title": "Typed title", "price": "49.00", "currency": "USD"}
    for change, status, message in BAD_PRODUCTS:
        response = await client.post("/admin/store/products", {**good, **change})
        assert response.status_code == status, (change, response.text[:300])
        form = response.text.split('id="new-product"', 1)[1].split("</form>", 1)[0]
        assert message in form, (change, form[:600])
        assert 'class="form-error"' in form
        if "price" in change:
            assert f'value="{change["price"]}"' in form
        if "title" not in change:
            assert 'value="Typed title"' in form
        assert await _products(syllabus["id"]) == [], change
    assert not await _audits_for_course(syllabus["id"])


async def _audits_for_course(syllabus_id) -> list[dict]:
    rows = await AuditLog.select().where(AuditLog.action == "PRODUCT_CREATED")
    return [row for row in rows if str(syllabus_id) in str(row["metadata"])]


async def test_it_refuses_another_workspaces_course_and_a_second_active_product(client, personas, client_factory):
    syllabus, product = await _priced_course(client, personas)
    second = await client.post("/admin/store/products", {"syllabus_id": str(syllabus["id"]), "title": "Twice",
                                                         "price": "10", "currency": "USD"})
    assert second.status_code == 409 and "already has an active product" in second.text
    assert 'value="Twice"' in second.text
    assert len(await _products(syllabus["id"])) == 1

    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    foreign = await outsider.post("/admin/store/products", {"syllabus_id": str(syllabus["id"]), "title": "Stolen",
                                                            "price": "10", "currency": "USD"})
    assert foreign.status_code == 404 and "Only a published course of this workspace can be sold." in foreign.text
    assert len(await _products(syllabus["id"])) == 1

    bad_update = await client.post(f"/admin/store/products/{product['id']}", {"title": "Git for Designers",
                                                                              "price": "4.999", "currency": "USD"})
    assert bad_update.status_code == 400 and 'value="4.999"' in bad_update.text
    form = bad_update.text.split(f'action="/admin/store/products/{product["id"]}"', 1)[1].split("</form>", 1)[0]
    assert "USD prices take at most 2 decimals." in form
    assert (await Product.select().where(Product.id == product["id"]).first())["price_minor"] == 4900
    assert await _audits("PRODUCT_UPDATED", product["id"]) == []


async def test_it_keeps_learners_out_of_every_store_route(client, personas):
    await client.login(personas.learner.email)
    some = uuid.uuid4()
    for path in ("/admin/store", "/admin/store/purchases", "/admin/store/events", f"/admin/store/events/{some}"):
        assert (await client.get(path)).status_code == 403, path
    for path in ("/admin/store/products", f"/admin/store/products/{some}", f"/admin/store/products/{some}/activate",
                 f"/admin/store/products/{some}/deactivate", f"/admin/store/events/{some}/replay"):
        response = await client.post(path, {"syllabus_id": str(some), "title": "x", "price": "1", "currency": "USD"})
        assert response.status_code == 403, path
    assert await Product.count().where(Product.tenant_id == personas.acme["id"]) == 0


async def test_it_lists_a_sandbox_purchase_with_totals_per_currency(client, personas, client_factory):
    syllabus, product = await _priced_course(client, personas)
    learner = client_factory()
    await learner.login(personas.learner.email)
    bought = await learner.post(f"/learn/store/products/{product['id']}/buy")
    assert bought.status_code == 303, bought.text[:300]
    [purchase] = await Purchase.select().where(Purchase.user_id == personas.learner.user_id)
    assert (purchase["status"], purchase["sandbox"], purchase["amount_minor"]) == ("PAID", True, 4900)

    # The same course priced in euros: a second learner pays in EUR; the totals keep the currencies apart.
    assert (await client.post(f"/admin/store/products/{product['id']}", {
        "title": "Git for Designers", "price": "30", "currency": "EUR"})).status_code == 303
    other = await make_member(personas.acme, "learner", "lars")
    second = client_factory()
    await second.login(other.email)
    assert (await second.post(f"/learn/store/products/{product['id']}/buy")).status_code == 303

    page = await client.get("/admin/store/purchases")
    assert page.status_code == 200
    row = page.text.split(f'id="purchase-{purchase["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert personas.learner.email in row and "$49.00" in row and ">Paid<" in row and ">sandbox<" in row
    assert other.email in page.text and "€30.00" in page.text

    store = await client.get("/admin/store")
    totals = store.text.split('id="totals-title"', 1)[1]
    assert "$49.00" in totals and "€30.00" in totals
    assert "$79" not in totals and "€79" not in totals  # never summed across currencies
    assert "2 paid, 0 refunded" in store.text

    refunded = await client.get("/admin/store/purchases?status=REFUNDED")
    assert "No purchase matches these filters." in refunded.text
    by_course = await client.get(f"/admin/store/purchases?status=PAID&course={syllabus['id']}")
    assert personas.learner.email in by_course.text and other.email in by_course.text
    bad = await client.get("/admin/store/purchases?status=STOLEN")
    assert bad.status_code == 400 and "Status must be one of" in bad.text


async def test_it_shows_another_workspace_nothing_of_this_ones_store(client, personas, client_factory):
    syllabus, product = await _priced_course(client, personas)
    event = await BillingEvent.raw(
        "INSERT INTO billing_event (id, stripe_event_id, type, tenant_id, payload, outcome, detail, attempts, "
        "received_at) VALUES (gen_random_uuid(), {}, 'checkout.session.completed', {}, '[]'::jsonb, 'FAILED', "
        "'boom', 1, now()) RETURNING id", f"evt_{uuid.uuid4().hex}", personas.acme["id"])
    event_id = event[0]["id"]
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    form = {"title": "Mine now", "price": "1", "currency": "USD"}
    assert (await outsider.post(f"/admin/store/products/{product['id']}", form)).status_code == 404
    assert (await outsider.post(f"/admin/store/products/{product['id']}/deactivate")).status_code == 404
    assert (await outsider.post(f"/admin/store/products/{product['id']}/activate")).status_code == 404
    assert (await outsider.get(f"/admin/store/events/{event_id}")).status_code == 404
    assert (await outsider.post(f"/admin/store/events/{event_id}/replay")).status_code == 404
    row = await Product.select().where(Product.id == product["id"]).first()
    assert (row["title"], row["active"]) == ("Git for Designers", True)
    assert (await BillingEvent.select().where(BillingEvent.id == event_id).first())["attempts"] == 1
    assert str(syllabus["id"]) not in (await outsider.get("/admin/store")).text
    assert "boom" not in (await outsider.get("/admin/store/events")).text


FAULT = "test_admin_store_fault"


async def _inject_enrollment_fault(user_id: uuid.UUID) -> None:
    # A real fault inside the webhook's transaction: PostgreSQL refuses this learner's enrollment.
    await fetch_rows(DATABASE_URL, f"""
        CREATE OR REPLACE FUNCTION {FAULT}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.user_id = '{user_id}'::uuid THEN RAISE EXCEPTION 'injected enrollment fault'; END IF;
          RETURN NEW;
        END $$""")
    await fetch_rows(DATABASE_URL, f"CREATE TRIGGER {FAULT} BEFORE INSERT OR UPDATE ON enrollment "
                                   f"FOR EACH ROW EXECUTE FUNCTION {FAULT}()")


async def _remove_enrollment_fault() -> None:
    await fetch_rows(DATABASE_URL, f"DROP TRIGGER IF EXISTS {FAULT} ON enrollment")
    await fetch_rows(DATABASE_URL, f"DROP FUNCTION IF EXISTS {FAULT}()")


async def _pending_purchase(personas, product: dict) -> dict:
    return (await Purchase.raw(
        "INSERT INTO purchase (id, tenant_id, user_id, product_id, syllabus_id, amount_minor, currency, status, "
        "sandbox, created_at, updated_at) VALUES (gen_random_uuid(), {}, {}, {}, {}, {}, {}, 'PENDING', false, now(), "
        "now()) RETURNING *", personas.acme["id"], personas.learner.user_id, product["id"], product["syllabus_id"],
        product["price_minor"], product["currency"]))[0]


async def test_it_replays_a_failed_event_once_its_fault_is_gone(client, personas, live_server):
    _syllabus, product = await _priced_course(client, personas)
    purchase = await _pending_purchase(personas, product)
    payload = session_completed(purchase)
    await _inject_enrollment_fault(personas.learner.user_id)
    try:
        answer = await post_event(live_server.url, payload)
        assert answer.status_code == 500, answer.text
        event = await BillingEvent.select().where(BillingEvent.stripe_event_id == payload["id"]).first()
        assert event["outcome"] == "FAILED" and "injected enrollment fault" in event["detail"]
        assert event["tenant_id"] == personas.acme["id"] and event["purchase_id"] == purchase["id"]
        assert (await Purchase.select().where(Purchase.id == purchase["id"]).first())["status"] == "PENDING"

        listed = await client.get("/admin/store/events")
        assert f'id="event-{event["id"]}"' in listed.text and "injected enrollment fault" in listed.text
        store = await client.get("/admin/store")
        assert re.search(r'Payment events <span class="badge status-failed"[^>]*>1</span>', store.text)

        again = await client.post(f"/admin/store/events/{event['id']}/replay")
        assert again.status_code == 502
        assert "Replay failed again: " in again.text and "injected enrollment fault" in again.text
        row = await BillingEvent.select().where(BillingEvent.id == event["id"]).first()
        assert (row["outcome"], row["attempts"]) == ("FAILED", 2)
        assert (await Purchase.select().where(Purchase.id == purchase["id"]).first())["status"] == "PENDING"
    finally:
        await _remove_enrollment_fault()

    detail = await client.get(f"/admin/store/events/{event['id']}")
    assert detail.status_code == 200 and "Replay this event" in detail.text and payload["id"] in detail.text
    assert f"/admin/store/purchases#purchase-{purchase['id']}" in detail.text
    replayed = await client.post(f"/admin/store/events/{event['id']}/replay")
    assert replayed.status_code == 303 and replayed.headers["location"] == f"/admin/store/events/{event['id']}"
    row = await BillingEvent.select().where(BillingEvent.id == event["id"]).first()
    assert (row["outcome"], row["attempts"]) == ("PROCESSED", 3)
    assert (await Purchase.select().where(Purchase.id == purchase["id"]).first())["status"] == "PAID"
    assert await Enrollment.exists().where((Enrollment.purchase_id == purchase["id"])
                                           & (Enrollment.user_id == personas.learner.user_id))
    replays = await _audits("BILLING_EVENT_REPLAYED", event["id"])
    assert len(replays) == 2 and {r["actor_id"] for r in replays} == {personas.admin.user_id}
    assert f'id="event-{event["id"]}"' not in (await client.get("/admin/store/events")).text
    done = await client.get(f"/admin/store/events/{event['id']}")
    assert "Replay this event" not in done.text and "Processed" in done.text
    twice = await client.post(f"/admin/store/events/{event['id']}/replay")
    assert twice.status_code == 409 and "already processed" in twice.text
    download = await client.get(f"/admin/store/events/{event['id']}?format=json")
    assert download.status_code == 200 and download.json()["id"] == payload["id"]


@pytest.fixture(autouse=True)
async def _no_leftover_fault():
    yield
    await _remove_enrollment_fault()
