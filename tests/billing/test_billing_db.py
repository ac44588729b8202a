"""The database's own guards on commerce, exercised with raw SQL (asyncpg), as a buggy service or a hand-typed
psql statement would: purchase_guard, product_guard, billing_event_guard and one active product per course."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from tests.conftest import DATABASE_URL, Persona, make_member, make_tenant


@dataclass
class World:
    acme: dict
    globex: dict
    learner: Persona
    outsider: Persona
    course: uuid.UUID  # Acme's syllabus
    other_course: uuid.UUID  # another of Acme's
    globex_course: uuid.UUID
    product: uuid.UUID  # active, on `course`


async def _syllabus(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> uuid.UUID:
    course_id = await conn.fetchval("INSERT INTO course (id, tenant_id, title, brief, created_at) VALUES "
                                    "(gen_random_uuid(), $1, 'Git', '{}', now()) RETURNING id", tenant_id)
    return await conn.fetchval(
        "INSERT INTO syllabus (id, tenant_id, course_id, revision, status, content, content_hash, generation, "
        "created_at) VALUES (gen_random_uuid(), $1, $2, 1, 'DRAFT', '{}', 'x', '{}', now()) RETURNING id",
        tenant_id, course_id)


async def _product(conn: asyncpg.Connection, tenant_id: uuid.UUID, syllabus_id: uuid.UUID, *,
                   active: bool = True) -> uuid.UUID:
    return await conn.fetchval(
        "INSERT INTO product (id, tenant_id, syllabus_id, title, price_minor, currency, active, created_at, "
        "updated_at) VALUES (gen_random_uuid(), $1, $2, 'Git', 4900, 'EUR', $3, now(), now()) RETURNING id",
        tenant_id, syllabus_id, active)


@pytest.fixture
async def db(migrated: None) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(DATABASE_URL)
    yield conn
    await conn.close()


@pytest.fixture
async def world(db: asyncpg.Connection) -> World:
    acme, globex = await make_tenant("Acme"), await make_tenant("Globex")
    learner, outsider = await make_member(acme, "learner", "lena"), await make_member(globex, "learner", "oscar")
    course, other = await _syllabus(db, acme["id"]), await _syllabus(db, acme["id"])
    return World(acme, globex, learner, outsider, course, other, await _syllabus(db, globex["id"]),
                 await _product(db, acme["id"], course))


async def _purchase(db: asyncpg.Connection, world: World, status: str = "PENDING") -> uuid.UUID:
    """A purchase of Acme's product, walked to `status` through allowed transitions only."""
    purchase_id = await db.fetchval(
        "INSERT INTO purchase (id, tenant_id, user_id, product_id, syllabus_id, amount_minor, currency, status, "
        "sandbox, stripe_checkout_session_id, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, $3, $4, "
        "4900, 'EUR', 'PENDING', false, $5, now(), now()) RETURNING id", world.acme["id"], world.learner.user_id,
        world.product, world.course, f"cs_test_{uuid.uuid4().hex}")
    if status != "PENDING":
        path = {"PAID": ["PAID"], "EXPIRED": ["EXPIRED"], "REFUNDED": ["PAID", "REFUNDED"]}[status]
        for step in path:
            await db.execute("UPDATE purchase SET status = $2 WHERE id = $1", purchase_id, step)
    return purchase_id


async def _row(db: asyncpg.Connection, table: str, row_id) -> asyncpg.Record:
    return await db.fetchrow(f"SELECT * FROM {table} WHERE id = $1", row_id)


# ---------------------------------------------------------------------------------------------
# purchase_guard


async def test_it_allows_the_purchase_transitions_of_the_state_machine(db, world):
    for start, end in (("PENDING", "PAID"), ("PENDING", "EXPIRED"), ("PENDING", "REFUNDED"), ("PAID", "REFUNDED")):
        purchase_id = await _purchase(db, world, start)
        await db.execute("UPDATE purchase SET status = $2 WHERE id = $1", purchase_id, end)
        assert (await _row(db, "purchase", purchase_id))["status"] == end


@pytest.mark.parametrize(("start", "end"), [("PAID", "PENDING"), ("PAID", "EXPIRED"), ("EXPIRED", "PAID"),
                                            ("EXPIRED", "PENDING"), ("REFUNDED", "PAID"), ("REFUNDED", "PENDING")])
async def test_it_refuses_a_purchase_transition_outside_the_state_machine(db, world, start, end):
    purchase_id = await _purchase(db, world, start)
    with pytest.raises(asyncpg.RaiseError, match=f"{start} -> {end} is not a transition"):
        await db.execute("UPDATE purchase SET status = $2 WHERE id = $1", purchase_id, end)
    assert (await _row(db, "purchase", purchase_id))["status"] == start


@pytest.mark.parametrize("change", ["amount_minor = 1", "currency = 'USD'", "user_id = $2", "tenant_id = $3",
                                    "sandbox = true", "created_at = now() - interval '1 day'"])
async def test_it_freezes_who_bought_what_for_how_much(db, world, change):
    purchase_id = await _purchase(db, world, "PAID")
    before = await _row(db, "purchase", purchase_id)
    with pytest.raises(asyncpg.RaiseError, match="who bought what for how much never changes"):
        await db.execute(f"UPDATE purchase SET {change} WHERE id = $1 AND $2::uuid IS NOT NULL AND $3::uuid IS NOT "
                         "NULL", purchase_id, world.outsider.user_id, world.globex["id"])
    assert await _row(db, "purchase", purchase_id) == before


async def test_it_sets_stripe_ids_once(db, world):
    purchase_id = await _purchase(db, world)
    await db.execute("UPDATE purchase SET stripe_payment_intent_id = 'pi_first' WHERE id = $1", purchase_id)
    for change in ("stripe_payment_intent_id = 'pi_second'", "stripe_payment_intent_id = NULL",
                   "stripe_checkout_session_id = 'cs_test_other'"):
        with pytest.raises(asyncpg.RaiseError, match="Stripe ids are set once"):
            await db.execute(f"UPDATE purchase SET {change} WHERE id = $1", purchase_id)
    row = await _row(db, "purchase", purchase_id)
    assert row["stripe_payment_intent_id"] == "pi_first" and row["stripe_checkout_session_id"].startswith("cs_test_")


async def test_it_keeps_stripe_ids_unique_across_purchases(db, world):
    first, second = await _purchase(db, world), await _purchase(db, world)
    session = (await _row(db, "purchase", first))["stripe_checkout_session_id"]
    await db.execute("UPDATE purchase SET stripe_payment_intent_id = 'pi_shared' WHERE id = $1", first)
    second_session = (await _row(db, "purchase", second))["stripe_checkout_session_id"]
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute("UPDATE purchase SET stripe_payment_intent_id = 'pi_shared' WHERE id = $1", second)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute(
            "INSERT INTO purchase (id, tenant_id, user_id, product_id, syllabus_id, amount_minor, currency, status, "
            "sandbox, stripe_checkout_session_id, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, $3, $4, "
            "4900, 'EUR', 'PENDING', false, $5, now(), now())", world.acme["id"], world.learner.user_id,
            world.product, world.course, session)
    assert (await _row(db, "purchase", second))["stripe_payment_intent_id"] is None
    assert (await _row(db, "purchase", second))["stripe_checkout_session_id"] == second_session


async def test_it_never_deletes_a_purchase(db, world):
    purchase_id = await _purchase(db, world, "REFUNDED")
    with pytest.raises(asyncpg.RaiseError, match="purchases are never deleted"):
        await db.execute("DELETE FROM purchase WHERE id = $1", purchase_id)
    assert await _row(db, "purchase", purchase_id) is not None


async def test_it_starts_every_purchase_pending_for_a_product_of_its_own_workspace(db, world):
    insert = ("INSERT INTO purchase (id, tenant_id, user_id, product_id, syllabus_id, amount_minor, currency, status, "
              "sandbox, created_at, updated_at) VALUES (gen_random_uuid(), $1, $2, $3, $4, 4900, 'EUR', $5, false, "
              "now(), now())")
    with pytest.raises(asyncpg.RaiseError, match="a purchase starts PENDING"):
        await db.execute(insert, world.acme["id"], world.learner.user_id, world.product, world.course, "PAID")
    # The outsider's workspace buying Acme's product, and Acme's product claimed for another course.
    with pytest.raises(asyncpg.RaiseError, match="is not of workspace"):
        await db.execute(insert, world.globex["id"], world.outsider.user_id, world.product, world.course, "PENDING")
    with pytest.raises(asyncpg.RaiseError, match="is not of workspace"):
        await db.execute(insert, world.acme["id"], world.learner.user_id, world.product, world.other_course,
                         "PENDING")
    assert await db.fetchval("SELECT count(*) FROM purchase WHERE product_id = $1", world.product) == 0


# ---------------------------------------------------------------------------------------------
# product_guard and one active product per course


async def test_it_refuses_a_product_for_another_workspaces_course(db, world):
    with pytest.raises(asyncpg.RaiseError, match="is not in workspace"):
        await _product(db, world.acme["id"], world.globex_course)
    assert await db.fetchval("SELECT count(*) FROM product WHERE syllabus_id = $1", world.globex_course) == 0


@pytest.mark.parametrize("change", ["syllabus_id = $2", "tenant_id = $3", "created_at = now() - interval '1 day'"])
async def test_it_never_moves_a_product(db, world, change):
    before = await _row(db, "product", world.product)
    with pytest.raises(asyncpg.RaiseError, match="its workspace and course never change"):
        await db.execute(f"UPDATE product SET {change} WHERE id = $1 AND $2::uuid IS NOT NULL AND $3::uuid IS NOT "
                         "NULL", world.product, world.other_course, world.globex["id"])
    assert await _row(db, "product", world.product) == before


async def test_it_allows_one_active_product_per_course(db, world):
    with pytest.raises(asyncpg.UniqueViolationError, match="product_one_active_per_course"):
        await _product(db, world.acme["id"], world.course)
    inactive = await _product(db, world.acme["id"], world.course, active=False)
    with pytest.raises(asyncpg.UniqueViolationError, match="product_one_active_per_course"):
        await db.execute("UPDATE product SET active = true WHERE id = $1", inactive)
    assert await db.fetchval("SELECT count(*) FROM product WHERE syllabus_id = $1 AND active", world.course) == 1
    await db.execute("UPDATE product SET active = false WHERE id = $1", world.product)
    await db.execute("UPDATE product SET active = true WHERE id = $1", inactive)
    assert await db.fetchval("SELECT id FROM product WHERE syllabus_id = $1 AND active", world.course) == inactive


# ---------------------------------------------------------------------------------------------
# billing_event_guard


async def _event(db: asyncpg.Connection) -> uuid.UUID:
    payload = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "charge.refunded", "data": {"object": {}}})
    return await db.fetchval(
        "INSERT INTO billing_event (id, stripe_event_id, type, livemode, payload, outcome, detail, attempts, "
        "received_at) VALUES (gen_random_uuid(), $1::jsonb ->> 'id', 'charge.refunded', false, $1::jsonb, "
        "'RECEIVED', '', 0, now()) RETURNING id", payload)


async def test_it_lets_the_ledger_record_how_an_event_ended(db, world):
    event_id = await _event(db)
    await db.execute("UPDATE billing_event SET outcome = 'PROCESSED', attempts = 1, processed_at = now(), "
                     "tenant_id = $2 WHERE id = $1", event_id, world.acme["id"])
    row = await _row(db, "billing_event", event_id)
    assert (row["outcome"], row["attempts"], row["tenant_id"]) == ("PROCESSED", 1, world.acme["id"])


@pytest.mark.parametrize("change", ["payload = '{\"id\": \"evt_forged\"}'", "type = 'checkout.session.completed'",
                                    "stripe_event_id = 'evt_other'", "received_at = now() - interval '1 day'"])
async def test_it_never_changes_what_stripe_sent(db, world, change):
    event_id = await _event(db)
    before = await _row(db, "billing_event", event_id)
    with pytest.raises(asyncpg.RaiseError, match="what Stripe sent never changes"):
        await db.execute(f"UPDATE billing_event SET {change} WHERE id = $1", event_id)
    assert await _row(db, "billing_event", event_id) == before


async def test_it_never_deletes_from_the_ledger(db, world):
    event_id = await _event(db)
    with pytest.raises(asyncpg.RaiseError, match="the ledger is never deleted from"):
        await db.execute("DELETE FROM billing_event WHERE id = $1", event_id)
    assert await _row(db, "billing_event", event_id) is not None
    first = await _row(db, "billing_event", event_id)
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.execute("INSERT INTO billing_event (id, stripe_event_id, type, livemode, payload, outcome, detail, "
                         "attempts, received_at) VALUES (gen_random_uuid(), $1, 'x', false, '{}', 'RECEIVED', '', 0, "
                         "now())", first["stripe_event_id"])
