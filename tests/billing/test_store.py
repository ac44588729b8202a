"""The learner store on a live server in sandbox mode: a paid course is bought, not enrolled in; a refund takes
the access away and keeps the progress; buying again gives it back. Stripe's refund arrives as a signed webhook."""

from __future__ import annotations

import re

import pytest

from app.audit.services import Actor
from app.audit.tables import AuditLog
from app.billing import services as billing
from app.billing.tables import Product, Purchase
from app.player.tables import Enrollment, LessonProgress
from tests.billing import stripe_fake
from tests.conftest import Client, Personas, make_member
from tests.publishing.helpers import published_course


@pytest.fixture
async def paid_course(client_factory, personas: Personas) -> dict:
    """A published course of Acme sold for €49.00: its syllabus and its product."""
    admin = client_factory()
    await admin.login(personas.admin.email)
    syllabus, _package = await published_course(admin)
    product = await billing.create_product(
        personas.acme["id"], syllabus["id"], billing.ProductForm("Course access", "49.00", "EUR"),
        actor=Actor(personas.admin.user_id, personas.admin.email))
    return {"syllabus": syllabus, "product": product}


async def _learner(client_factory, personas: Personas) -> Client:
    client = client_factory()
    await client.login(personas.learner.email)
    return client


async def _enrollment(personas: Personas, course: dict) -> dict | None:
    return await Enrollment.select().where((Enrollment.user_id == personas.learner.user_id)
                                           & (Enrollment.syllabus_id == course["syllabus"]["id"])).first()


async def _buy(client: Client, course: dict) -> dict:
    response = await client.post(f"/learn/store/products/{course['product']['id']}/buy")
    assert response.status_code == 303, response.text[:400]
    match = re.fullmatch(r"/learn/purchases/([0-9a-f-]{36})", response.headers["location"])
    assert match, response.headers["location"]
    return await Purchase.select().where(Purchase.id == match.group(1)).first()


async def test_it_blocks_enrolling_in_a_paid_course_until_it_is_bought(client_factory, personas, paid_course,
                                                                        live_server):
    learner = await _learner(client_factory, personas)
    course_id = paid_course["syllabus"]["id"]
    catalog = await learner.get("/learn")
    assert "€49.00" in catalog.text and f"/learn/store/products/{paid_course['product']['id']}/buy" in catalog.text
    assert "Demo store: no card is charged." in catalog.text

    refused = await learner.post(f"/learn/{course_id}/enroll")
    assert refused.status_code == 402
    assert "costs €49.00: buy it to enroll." in refused.text
    assert await _enrollment(personas, paid_course) is None
    assert (await learner.get(f"/learn/{course_id}/lesson/1")).status_code == 403

    # From the overview's form, the refusal goes back to the overview with the message on it.
    overview = f"/learn/{course_id}"
    back = await learner.post(f"{overview}/enroll", headers={"referer": f"{live_server.url}{overview}"})
    assert (back.status_code, back.headers["location"]) == (303, overview)
    page = await learner.get(overview)
    assert "costs €49.00: buy it to enroll." in page.text and "Buy for €49.00" in page.text
    assert await _enrollment(personas, paid_course) is None


async def test_it_enrolls_the_buyer_with_a_paid_purchase_and_audits_it(client_factory, personas, paid_course,
                                                                        live_server):
    learner = await _learner(client_factory, personas)
    purchase = await _buy(learner, paid_course)
    assert (purchase["status"], purchase["sandbox"], purchase["amount_minor"], purchase["currency"]) == (
        "PAID", True, 4900, "EUR")
    assert purchase["user_id"] == personas.learner.user_id and purchase["tenant_id"] == personas.acme["id"]
    enrollment = await _enrollment(personas, paid_course)
    assert enrollment["purchase_id"] == purchase["id"] and enrollment["revoked_at"] is None
    actions = {row["action"] for row in await AuditLog.select(AuditLog.action).where(
        AuditLog.entity_id.is_in([str(purchase["id"]), str(enrollment["id"])]))}
    assert {"CHECKOUT_STARTED", "PURCHASE_CREATED", "ENROLLMENT_CREATED"} <= actions

    page = await learner.get(f"/learn/purchases/{purchase['id']}")
    assert page.status_code == 200 and "You are enrolled." in page.text and "Start the course" in page.text
    poll = await learner.get(f"/learn/purchases/{purchase['id']}", headers={"HX-Request": "true"})
    assert poll.headers["hx-redirect"] == f"/learn/{paid_course['syllabus']['id']}/continue"
    assert (await learner.get(f"/learn/{paid_course['syllabus']['id']}/lesson/1")).status_code == 200
    catalog = await learner.get("/learn")
    assert "Your courses" in catalog.text and f"/learn/{paid_course['syllabus']['id']}/continue" in catalog.text

    twice = await learner.post(f"/learn/store/products/{paid_course['product']['id']}/buy",
                               headers={"referer": f"{live_server.url}/learn"})
    assert (twice.status_code, twice.headers["location"]) == (303, "/learn")
    assert "You have already bought this course" in (await learner.get("/learn")).text
    assert await Purchase.count().where(Purchase.user_id == personas.learner.user_id) == 1


async def test_it_answers_409_to_a_second_purchase_posted_without_a_page_to_go_back_to(client_factory, personas,
                                                                                   paid_course):
    learner = await _learner(client_factory, personas)
    await _buy(learner, paid_course)
    twice = await learner.post(f"/learn/store/products/{paid_course['product']['id']}/buy")
    assert twice.status_code == 409 and "already bought this course" in twice.text
    assert await Purchase.count().where(Purchase.user_id == personas.learner.user_id) == 1


async def test_it_hides_a_purchase_from_another_learner(client_factory, personas, paid_course):
    buyer = await _learner(client_factory, personas)
    purchase = await _buy(buyer, paid_course)
    colleague = await make_member(personas.acme, "learner", "leo")
    other = client_factory()
    await other.login(colleague.email)
    assert (await other.get(f"/learn/purchases/{purchase['id']}")).status_code == 404
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.get(f"/learn/purchases/{purchase['id']}")).status_code == 404


async def test_it_refuses_to_sell_another_workspaces_product(client_factory, personas, paid_course):
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    response = await outsider.post(f"/learn/store/products/{paid_course['product']['id']}/buy")
    assert response.status_code == 403
    assert "belongs to another workspace" in response.text
    assert await Purchase.count().where(Purchase.user_id == personas.outsider.user_id) == 0
    assert await Enrollment.count().where(Enrollment.user_id == personas.outsider.user_id) == 0


async def test_it_lists_only_the_own_workspaces_active_products(client_factory, personas, paid_course):
    learner = await _learner(client_factory, personas)
    listed = (await learner.get("/api/store/products")).json()
    assert [(p["id"], p["price"], p["currency"]) for p in listed] == [
        (str(paid_course["product"]["id"]), "€49.00", "EUR")]
    outsider = client_factory()
    await outsider.login(personas.outsider.email)
    assert (await outsider.get("/api/store/products")).json() == []

    await billing.set_product_active(personas.acme["id"], paid_course["product"]["id"], False,
                                     actor=Actor(personas.admin.user_id, personas.admin.email))
    assert (await learner.get("/api/store/products")).json() == []


async def test_it_takes_the_access_away_on_a_refund_and_gives_it_back_with_the_progress(
        client_factory, personas, paid_course, live_server):
    learner = await _learner(client_factory, personas)
    course_id = paid_course["syllabus"]["id"]
    purchase = await _buy(learner, paid_course)
    assert purchase["stripe_payment_intent_id"].startswith("sandbox_pi_")
    done = await learner.post(f"/learn/{course_id}/lesson/1/complete")
    assert done.status_code == 303
    enrollment = await _enrollment(personas, paid_course)
    assert await LessonProgress.count().where(LessonProgress.enrollment_id == enrollment["id"]) == 1

    refund = stripe_fake.charge_refunded(purchase, purchase["stripe_payment_intent_id"])
    answer = await stripe_fake.post_event(live_server.url, refund)
    assert answer.status_code == 200, answer.text
    assert (await Purchase.select(Purchase.status).where(Purchase.id == purchase["id"]).first())["status"] == "REFUNDED"
    revoked = await _enrollment(personas, paid_course)
    assert revoked["revoked_at"] is not None
    assert await LessonProgress.count().where(LessonProgress.enrollment_id == enrollment["id"]) == 1

    lesson = await learner.get(f"/learn/{course_id}/lesson/1")
    assert lesson.status_code == 403 and "when its purchase was refunded" in lesson.text
    overview = await learner.get(f"/learn/{course_id}")
    assert "when the purchase was refunded; your progress is kept" in overview.text and "Buy again" in overview.text
    assert str(course_id).replace("-", "") not in _your_courses(await learner.get("/learn"))

    again = await _buy(learner, paid_course)
    assert again["id"] != purchase["id"] and again["status"] == "PAID"
    restored = await _enrollment(personas, paid_course)
    assert (restored["id"], restored["purchase_id"], restored["revoked_at"]) == (enrollment["id"], again["id"], None)
    assert await LessonProgress.count().where(LessonProgress.enrollment_id == enrollment["id"]) == 1
    overview = await learner.get(f"/learn/{course_id}")
    assert overview.status_code == 200 and "1 of " in overview.text


async def test_it_makes_the_course_free_when_its_product_is_deactivated(client_factory, personas, paid_course):
    learner = await _learner(client_factory, personas)
    course_id = paid_course["syllabus"]["id"]
    assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 402
    await billing.set_product_active(personas.acme["id"], paid_course["product"]["id"], False,
                                     actor=Actor(personas.admin.user_id, personas.admin.email))
    product = await Product.select(Product.active).where(Product.id == paid_course["product"]["id"]).first()
    assert product["active"] is False
    overview = await learner.get(f"/learn/{course_id}")
    assert "Enroll in this course" in overview.text and "Buy for" not in overview.text
    assert (await learner.post(f"/learn/{course_id}/enroll")).status_code == 303
    enrollment = await _enrollment(personas, paid_course)
    assert enrollment is not None and enrollment["purchase_id"] is None
    assert await Purchase.count().where(Purchase.user_id == personas.learner.user_id) == 0


async def test_it_shows_a_calm_note_when_the_checkout_was_cancelled(client_factory, personas, paid_course):
    learner = await _learner(client_factory, personas)
    page = await learner.get(f"/learn/{paid_course['syllabus']['id']}?checkout=cancelled")
    assert page.status_code == 200 and "Checkout cancelled; nothing was charged" in page.text
    assert "Buy for €49.00" in page.text
    assert await Purchase.count().where(Purchase.user_id == personas.learner.user_id) == 0


def _your_courses(page) -> str:
    """The "Your courses" section of the catalog (ids without dashes would not match; compare its links)."""
    return page.text.split("Available courses")[0].replace("-", "")
